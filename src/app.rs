//! Builds the actix application and runs it on a listener that the caller bound (tests bind
//! port 0).

use std::net::TcpListener;

use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web as aweb, App, HttpServer};

use crate::web::error::MachineAnswers;
use crate::web::{self, AppState};

/// Every route of the application, on one screen.
pub fn router(cfg: &mut aweb::ServiceConfig) {
    use crate::web::{auth, exports, lang, lookup, message, overview, pages, staff, status};
    cfg.route("/healthz", aweb::get().to(pages::healthz))
        .service(
            aweb::resource("/metrics")
                .app_data(MachineAnswers)
                .route(aweb::get().to(web::metrics::scrape)),
        )
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
        .route("/providers", aweb::get().to(crate::web::providers::list))
        .route(
            "/providers/domains",
            aweb::post().to(crate::web::providers::add_domain),
        )
        .route(
            "/providers/domains/delete",
            aweb::post().to(crate::web::providers::remove_domain),
        )
        .route(
            "/providers/{id}",
            aweb::get().to(crate::web::providers::page),
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
    settings_routes(cfg);
    alert_routes(cfg);
    list_routes(cfg);
    ingestion_routes(cfg);
    sendcloud_routes(cfg);
    tracking_routes(cfg);
}

/// Alerts: everyone of the account reads them; owners change rules and targets.
fn alert_routes(cfg: &mut aweb::ServiceConfig) {
    use crate::web::alerts;
    cfg.route("/alerts", aweb::get().to(alerts::page))
        .route("/alerts/rules", aweb::post().to(alerts::create_rule))
        .route("/alerts/rules/{id}", aweb::post().to(alerts::update_rule))
        .route(
            "/alerts/rules/{id}/switch",
            aweb::post().to(alerts::switch_rule),
        )
        .route(
            "/alerts/rules/{id}/delete",
            aweb::post().to(alerts::delete_rule),
        )
        .route("/alerts/targets", aweb::post().to(alerts::save_targets))
        .route(
            "/alerts/targets/rotate",
            aweb::post().to(alerts::rotate_secret),
        )
        .route(
            "/alerts/deliveries/{id}/retry",
            aweb::post().to(alerts::retry_delivery),
        );
}

/// The settings page and its forms (owners and staff).
fn settings_routes(cfg: &mut aweb::ServiceConfig) {
    use crate::web::settings;
    cfg.route("/settings", aweb::get().to(settings::page))
        .route("/settings/feeds", aweb::get().to(crate::web::feeds::page))
        .route("/settings/feeds", aweb::post().to(crate::web::feeds::save))
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
        );
}

/// The delivery-response lists and the opens/clicks page.
fn list_routes(cfg: &mut aweb::ServiceConfig) {
    use crate::web::{lists, opens_clicks};
    cfg.route("/opens-clicks", aweb::get().to(opens_clicks::page))
        .route("/opens-clicks.csv", aweb::get().to(opens_clicks::csv))
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
        );
}

/// Where events come in: the events API, raw bounce messages, SendCloud's webhook; and the
/// suppression API. Their answers are for machines.
fn ingestion_routes(cfg: &mut aweb::ServiceConfig) {
    use crate::web::{api, suppressions, webhooks};
    // The events and bounce-message handlers read their bodies themselves, within their own
    // bounds (web::body), after the caller is known: no PayloadConfig applies to them.
    cfg.service(
        aweb::scope("/api")
            .app_data(MachineAnswers)
            .service(aweb::resource("/v1/events").route(aweb::post().to(api::events)))
            .service(
                aweb::resource("/v1/bounce-messages").route(aweb::post().to(api::bounce_messages)),
            )
            .service(
                aweb::resource(
                    "/v1/suppressions/{list:bounces|unsubscribes|spam-reports|blacklist}",
                )
                .route(aweb::get().to(suppressions::list))
                .route(aweb::post().to(suppressions::add))
                .route(aweb::delete().to(suppressions::delete)),
            ),
    )
    .service(
        aweb::scope("/webhooks")
            .app_data(MachineAnswers)
            .route("/sendcloud", aweb::post().to(webhooks::sendcloud))
            .configure(feed_routes),
    );
}

/// The other ESPs' webhooks, inside the `/webhooks` scope.
fn feed_routes(cfg: &mut aweb::ServiceConfig) {
    use crate::web::feeds;
    // SendGrid posts batches of events: larger than the default limit, still bounded.
    let limit = || aweb::PayloadConfig::new(8 * 1024 * 1024);
    cfg.service(
        aweb::resource("/mailgun")
            .app_data(limit())
            .route(aweb::post().to(feeds::mailgun)),
    )
    .service(
        aweb::resource("/sendgrid")
            .app_data(limit())
            .route(aweb::post().to(feeds::sendgrid)),
    )
    .service(
        aweb::resource("/postmark")
            .app_data(limit())
            .route(aweb::post().to(feeds::postmark)),
    )
    .service(
        aweb::resource("/ses")
            .app_data(limit())
            .route(aweb::post().to(feeds::ses)),
    );
}

/// SendCloud's API v2 for delivery data (SENDCLOUD.md): GET and POST alike, with the
/// parameters in the query string or a form body.
fn sendcloud_routes(cfg: &mut aweb::ServiceConfig) {
    use crate::web::sendcloud_api as sc;
    cfg.service(
        aweb::scope("/apiv2")
            .app_data(MachineAnswers)
            .service(get_and_post("/data/emailStatus", sc::email_status))
            .service(get_and_post("/bounce/list", sc::bounce_list))
            .service(get_and_post("/bounce/delete", sc::bounce_delete))
            .service(get_and_post("/unsubscribe/list", sc::unsubscribe_list))
            .service(get_and_post("/unsubscribe/add", sc::unsubscribe_add))
            .service(get_and_post("/unsubscribe/delete", sc::unsubscribe_delete))
            .service(get_and_post("/spamreported/list", sc::spam_reported_list))
            .service(get_and_post(
                "/spamreported/delete",
                sc::spam_reported_delete,
            ))
            .service(get_and_post("/complaint/list", sc::complaint_list))
            .service(get_and_post("/complaint/delete", sc::complaint_delete))
            .service(get_and_post("/data/openOrClick", sc::open_or_click))
            .service(get_and_post("/openandclick/list", sc::open_or_click)),
    );
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
/// everything after the prefix, so that any garbage under `/t/o/` still gets the pixel,
/// which answers a GIF of its own; a bad click link is an ordinary, friendly 404 page.
fn tracking_routes(cfg: &mut aweb::ServiceConfig) {
    use crate::web::tracking;
    cfg.service(
        aweb::scope("/t/o")
            .app_data(MachineAnswers)
            .route("/{token:.*}", aweb::get().to(tracking::open)),
    )
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
    crate::jobs::alerts::start(
        state.pool.clone(),
        state.settings.alerts.clone(),
        shutdown.clone(),
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
            .wrap(from_fn(web::guard::staff_read_only))
            // Inside the session, so that an error page shows who is signed in.
            .wrap(ErrorHandlers::new().default_handler(web::error::render_error_page))
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
            // What a middleware fails with (the session store away) becomes a page too.
            .wrap(from_fn(web::error::catch_failures))
            .wrap(from_fn(web::headers::security_headers))
            .wrap(web::guard::access_log())
            .wrap(from_fn(web::metrics::track))
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
