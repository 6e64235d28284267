//! Builds the actix application and runs it on a listener that the caller bound (tests bind
//! port 0).

use std::net::TcpListener;
use std::sync::Arc;

use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers, Logger};
use actix_web::{web as aweb, App, HttpServer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::{self, Pool};
use crate::settings::Settings;
use crate::web;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    pub login_limiter: Arc<web::auth::LoginLimiter>,
    /// Cancelled when the process is asked to stop (SIGTERM or SIGINT): the HTTP server then
    /// finishes the requests in flight and the background workers put their work down.
    pub shutdown: CancellationToken,
    /// The background workers, so that a stopping server can wait for them to finish.
    pub tasks: TaskTracker,
}

impl AppState {
    /// Opens the database named by the settings and brings its schema up to date.
    pub fn open(settings: Settings) -> anyhow::Result<Self> {
        let pool = db::open_pool(&settings.database_url, settings.pool_size)?;
        let mut conn = pool.get()?;
        db::migrate(&mut conn)?;
        crate::store::partitions::ensure_ahead(&mut conn, crate::domain::now_ms())?;
        drop(conn);
        let login_limiter = Arc::new(web::auth::LoginLimiter::new(&settings));
        Ok(AppState {
            pool,
            settings: Arc::new(settings),
            login_limiter,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }
}

/// Every route of the application, on one screen.
pub fn router(cfg: &mut aweb::ServiceConfig) {
    use crate::web::{
        auth, exports, lang, lists, lookup, message, overview, pages, settings, staff, status,
    };
    cfg.route("/healthz", aweb::get().to(pages::healthz))
        .route("/static/{file}", aweb::get().to(pages::static_file))
        .route("/lang/{code}", aweb::get().to(lang::switch))
        .route("/login", aweb::get().to(auth::login_page))
        .route("/login", aweb::post().to(auth::login_submit))
        .route("/logout", aweb::post().to(auth::logout))
        .route("/", aweb::get().to(overview::page))
        .route("/reveal", aweb::post().to(auth::reveal))
        .route("/lookup", aweb::get().to(lookup::page))
        .route("/lookup/remove", aweb::get().to(lookup::confirm))
        .route("/lookup/remove", aweb::post().to(lookup::remove))
        .route("/status", aweb::get().to(status::page))
        .route("/status.csv", aweb::get().to(status::csv))
        .route("/settings", aweb::get().to(settings::page))
        .route("/settings/account", aweb::post().to(settings::save_account))
        .route("/settings/splus", aweb::post().to(settings::save_splus))
        .route(
            "/settings/webhook-key",
            aweb::post().to(settings::rotate_webhook_key),
        )
        .route("/settings/users", aweb::post().to(settings::add_user))
        .route(
            "/settings/users/remove",
            aweb::post().to(settings::remove_user),
        )
        .route(
            "/settings/users/password",
            aweb::post().to(settings::reset_password),
        )
        .route(
            "/settings/api-users",
            aweb::post().to(settings::add_api_user),
        )
        .route(
            "/settings/api-users/rotate",
            aweb::post().to(settings::rotate_api_key),
        )
        .route(
            "/settings/api-users/revoke",
            aweb::post().to(settings::revoke_api_user),
        )
        .route("/opens-clicks", aweb::get().to(lists::tracking))
        .route("/opens-clicks.csv", aweb::get().to(lists::tracking_csv))
        .route(
            "/{list:bounces|spam-reports|unsubscribes|blacklist}",
            aweb::get().to(lists::page),
        )
        .route(
            "/{list:(bounces|spam-reports|unsubscribes|blacklist)\\.csv}",
            aweb::get().to(lists::csv),
        )
        .route(
            "/{list:bounces|spam-reports|unsubscribes|blacklist}/add",
            aweb::post().to(lists::add),
        )
        .route(
            "/{list:bounces|spam-reports|unsubscribes|blacklist}/delete",
            aweb::post().to(lists::delete),
        )
        .route("/exports", aweb::get().to(exports::page))
        .route("/exports", aweb::post().to(exports::create))
        .route("/exports/{id}/download", aweb::get().to(exports::download))
        .route("/exports/{id}/retry", aweb::post().to(exports::retry))
        .route("/exports/{id}/cancel", aweb::post().to(exports::cancel))
        .route("/staff", aweb::get().to(staff::page))
        .route("/staff/audit", aweb::get().to(staff::audit_page))
        .route("/status/{id}", aweb::get().to(message::page))
        .route(
            "/status/{id}/content.html",
            aweb::get().to(message::content_html),
        )
        .route("/status/{id}/message.eml", aweb::get().to(message::eml))
        .route(
            "/status/{id}/send-log.txt",
            aweb::get().to(message::send_log),
        );
    ingestion_routes(cfg);
    sendcloud_routes(cfg);
    tracking_routes(cfg);
}

/// Where events come in: the events API, raw bounce messages, SendCloud's webhook.
fn ingestion_routes(cfg: &mut aweb::ServiceConfig) {
    use crate::web::{api, suppressions, webhooks};
    // A batch of 10,000 events with raw message contents is far larger than the default limit.
    let large = aweb::PayloadConfig::new(256 * 1024 * 1024);
    cfg.service(
        aweb::resource("/api/v1/events")
            .app_data(large)
            .route(aweb::post().to(api::events)),
    )
    .service(
        aweb::resource("/api/v1/bounce-messages")
            .app_data(aweb::PayloadConfig::new(32 * 1024 * 1024))
            .route(aweb::post().to(api::bounce_messages)),
    )
    .route("/webhooks/sendcloud", aweb::post().to(webhooks::sendcloud))
    .configure(feed_routes)
    .service(
        aweb::resource("/api/v1/suppressions/{list:bounces|unsubscribes|spam-reports|blacklist}")
            .route(aweb::get().to(suppressions::list))
            .route(aweb::post().to(suppressions::add))
            .route(aweb::delete().to(suppressions::delete)),
    );
}

/// Other ESPs' webhooks and the settings page that shows their URLs and keys.
fn feed_routes(cfg: &mut aweb::ServiceConfig) {
    use crate::web::feeds;
    // SendGrid posts batches of events: larger than the default limit, still bounded.
    let limit = || aweb::PayloadConfig::new(8 * 1024 * 1024);
    cfg.service(
        aweb::resource("/webhooks/mailgun")
            .app_data(limit())
            .route(aweb::post().to(feeds::mailgun)),
    )
    .service(
        aweb::resource("/webhooks/sendgrid")
            .app_data(limit())
            .route(aweb::post().to(feeds::sendgrid)),
    )
    .service(
        aweb::resource("/webhooks/postmark")
            .app_data(limit())
            .route(aweb::post().to(feeds::postmark)),
    )
    .service(
        aweb::resource("/webhooks/ses")
            .app_data(limit())
            .route(aweb::post().to(feeds::ses)),
    )
    .route("/settings/feeds", aweb::get().to(feeds::page))
    .route("/settings/feeds", aweb::post().to(feeds::save));
}

/// SendCloud's API v2 for delivery data (SENDCLOUD.md): GET and POST alike, with the
/// parameters in the query string or a form body.
fn sendcloud_routes(cfg: &mut aweb::ServiceConfig) {
    use crate::web::sendcloud_api as sc;
    cfg.service(get_and_post("/apiv2/data/emailStatus", sc::email_status))
        .service(get_and_post("/apiv2/bounce/list", sc::bounce_list))
        .service(get_and_post("/apiv2/bounce/delete", sc::bounce_delete))
        .service(get_and_post(
            "/apiv2/unsubscribe/list",
            sc::unsubscribe_list,
        ))
        .service(get_and_post("/apiv2/unsubscribe/add", sc::unsubscribe_add))
        .service(get_and_post(
            "/apiv2/unsubscribe/delete",
            sc::unsubscribe_delete,
        ))
        .service(get_and_post(
            "/apiv2/spamreported/list",
            sc::spam_reported_list,
        ))
        .service(get_and_post(
            "/apiv2/spamreported/delete",
            sc::spam_reported_delete,
        ))
        .service(get_and_post("/apiv2/data/openOrClick", sc::open_or_click))
        .service(get_and_post("/apiv2/openandclick/list", sc::open_or_click));
}

fn get_and_post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    aweb::resource(path)
        .route(aweb::get().to(handler.clone()))
        .route(aweb::post().to(handler))
}

/// The recipient's side (DESIGN §4), reached from inside mails, without login. A token is
/// everything after the prefix, so that any garbage under `/t/o/` still gets the pixel.
fn tracking_routes(cfg: &mut aweb::ServiceConfig) {
    use crate::web::tracking;
    cfg.route("/t/o/{token:.*}", aweb::get().to(tracking::open))
        .route("/t/c/{token}", aweb::get().to(tracking::click))
        .route("/u/{token}", aweb::get().to(tracking::unsubscribe_page))
        .route("/u/{token}", aweb::post().to(tracking::unsubscribe_submit));
}

/// Starts serving on `listener`; the returned server runs until stopped.
pub fn launch(listener: TcpListener, state: AppState) -> anyhow::Result<Server> {
    let secret = state.settings.load_or_create_secret()?;
    let key = Key::derive_from(&secret);
    let link_key = aweb::Data::new(crate::domain::token::LinkKey::derive(&secret));
    let secure = state.settings.secure_cookies();
    let idle = actix_web::cookie::time::Duration::minutes(state.settings.session_idle_minutes);
    let store = web::session_store::DbSessionStore::new(state.pool.clone());
    let workers = state.settings.workers;
    let shutdown = state.shutdown.clone();
    crate::jobs::exports::start(
        state.pool.clone(),
        crate::jobs::exports::WorkerSettings {
            shutdown: shutdown.clone(),
            ..crate::jobs::exports::WorkerSettings::new(&state.settings)
        },
        state.settings.export_workers,
        &state.tasks,
    );
    crate::jobs::maintenance::start(
        state.pool.clone(),
        std::time::Duration::from_secs(600),
        state.settings.retention_days,
    );
    let data = aweb::Data::new(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(link_key.clone())
            .app_data(aweb::FormConfig::default().limit(64 * 1024))
            .configure(router)
            .default_service(aweb::to(web::pages::not_found))
            .wrap(from_fn(web::csrf::guard))
            .wrap(
                SessionMiddleware::builder(store.clone(), key.clone())
                    .cookie_name("mailtrail_session".into())
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Lax)
                    .cookie_secure(secure)
                    .session_lifecycle(
                        PersistentSession::default()
                            .session_ttl(idle)
                            .session_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
                    )
                    .build(),
            )
            .wrap(ErrorHandlers::new().default_handler(web::error::render_error_page))
            .wrap(from_fn(web::headers::security_headers))
            .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
    });
    if let Some(n) = workers {
        server = server.workers(n);
    }
    // actix stops gracefully on SIGTERM but drops requests on SIGINT; both are a request to
    // stop here, so the signals are ours and the server follows the token.
    let server = server
        .disable_signals()
        .shutdown_signal(shutdown.cancelled_owned())
        .shutdown_timeout(30);
    Ok(server.listen(listener)?.run())
}
