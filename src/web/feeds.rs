//! Other ESPs' webhooks (`POST /webhooks/{mailgun,sendgrid,postmark}?account=NAME`) and the
//! settings page that shows each feed's URL and keeps its key (`/settings/feeds`).
//!
//! Every post names its account in the URL; its signature (or, for Postmark, its secret) is
//! checked with that account's key before the body is read as events. A bad signature is a
//! 403 and nothing is stored; a stale timestamp or a replayed token is refused likewise.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{redirect, Viewer};
use super::layout::PageCtx;
use super::{with_db, AppError, AppResult};
use crate::domain::{constant_time_eq, now_ms, random_token, MailType, Role};
use crate::feeds::{self, mailgun, postmark, sendgrid, ses};
use crate::ingest::{Event, Sender};
use crate::store::feeds as store;
use crate::store::models::Account;
use crate::store::{accounts, AccountScope};
use crate::web::AppState;

/// The account named by `?account=` and its key for `feed`; 403 when either is missing, so
/// that an unconfigured feed stores nothing.
async fn account_and_key(
    state: &AppState,
    req: &HttpRequest,
    feed: &'static str,
) -> AppResult<(Account, String)> {
    let Some(name) = query(req).remove("account") else {
        log::warn!("{feed} webhook without ?account=NAME in its URL; post dropped");
        return Err(unverified());
    };
    with_db(state, move |conn| {
        let Some(account) = accounts::find_account_by_name(conn, &name)? else {
            return Err(refuse(feed, &name, "unknown account"));
        };
        let key = store::secret(conn, &AccountScope::new(account.id), feed)?
            .ok_or_else(|| refuse(feed, &account.name, "no key is set for this feed"))?;
        Ok((account, key))
    })
    .await
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// One answer for every refused post, whatever the reason (unknown account, no key, bad
/// signature, stale timestamp): a sender learns nothing about which accounts exist. The reason
/// goes to the log.
fn unverified() -> AppError {
    AppError::forbidden("the post could not be verified")
}

fn refuse(feed: &str, account: &str, why: &str) -> AppError {
    log::warn!("{feed} webhook for account {account}: {why}; post dropped");
    unverified()
}

fn json_body(body: &[u8]) -> AppResult<Value> {
    serde_json::from_slice(body).map_err(|e| AppError::bad_request(format!("invalid JSON: {e}")))
}

/// Applies the events and answers what became of them. Events that make no sense are
/// reported, not retried: the post as a whole is taken (200).
async fn apply(
    state: &AppState,
    account: &Account,
    feed: &'static str,
    token: Option<String>,
    events: Vec<Event>,
) -> AppResult<HttpResponse> {
    let scope = AccountScope::new(account.id);
    let sender = Sender {
        api_user: feed.to_string(),
        mail_type: MailType::Trigger,
    };
    let received = with_db(state, move |conn| {
        Ok(feeds::receive(
            conn,
            &scope,
            &sender,
            feed,
            token.as_deref(),
            &events,
            now_ms(),
        )?)
    })
    .await?;
    Ok(super::webhooks::received_answer(received))
}

pub async fn mailgun(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (account, key) = account_and_key(&state, &req, "mailgun").await?;
    let post = json_body(&body)?;
    let signature = mailgun::Signature::of(&post)
        .filter(|s| s.is_valid(&key))
        .ok_or_else(|| refuse("mailgun", &account.name, "bad signature"))?;
    if !signature
        .timestamp_ms()
        .is_some_and(|t| feeds::timestamp_is_fresh(t, now_ms()))
    {
        return Err(refuse("mailgun", &account.name, "stale timestamp"));
    }
    let events = mailgun::events(&post).map_err(AppError::bad_request)?;
    let token = format!("{}:{}", signature.timestamp, signature.token);
    apply(&state, &account, "mailgun", Some(token), events).await
}

pub async fn sendgrid(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (account, key) = account_and_key(&state, &req, "sendgrid").await?;
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let (signature, timestamp) = (
        header(sendgrid::SIGNATURE_HEADER),
        header(sendgrid::TIMESTAMP_HEADER),
    );
    if !sendgrid::signature_is_valid(&key, &signature, &timestamp, &body) {
        return Err(refuse("sendgrid", &account.name, "bad signature"));
    }
    let fresh = timestamp
        .parse::<f64>()
        .ok()
        .and_then(feeds::seconds_to_ms)
        .is_some_and(|t| feeds::timestamp_is_fresh(t, now_ms()));
    if !fresh {
        return Err(refuse("sendgrid", &account.name, "stale timestamp"));
    }
    let events = sendgrid::events(&json_body(&body)?).map_err(AppError::bad_request)?;
    apply(&state, &account, "sendgrid", Some(signature), events).await
}

pub async fn postmark(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (account, key) = account_and_key(&state, &req, "postmark").await?;
    let from_url = query(&req).remove("secret");
    let from_basic = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_string()));
    let given = from_basic.or(from_url).unwrap_or_default();
    if given.is_empty() || !constant_time_eq(given.as_bytes(), key.as_bytes()) {
        return Err(refuse("postmark", &account.name, "bad secret"));
    }
    let events = postmark::events(&json_body(&body)?).map_err(AppError::bad_request)?;
    // Postmark signs nothing and stamps no post; its records' own ids make replays harmless.
    apply(&state, &account, "postmark", None, events).await
}

pub async fn ses(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (account, certificate) = account_and_key(&state, &req, "ses").await?;
    // SNS posts JSON as text/plain.
    let post = json_body(&body)?;
    if !ses::signature_is_valid(&certificate, &post) {
        return Err(refuse("ses", &account.name, "bad signature"));
    }
    if !ses::timestamp_ms(&post).is_some_and(|t| feeds::timestamp_is_fresh(t, now_ms())) {
        return Err(refuse("ses", &account.name, "stale timestamp"));
    }
    let field = |name: &str| {
        post.get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    match field("Type").as_str() {
        "SubscriptionConfirmation" => {
            // Confirming means visiting SubscribeURL, which only SNS's own hosts may name. When
            // this server cannot reach it, the settings page offers the link to the owner.
            let url = field("SubscribeURL");
            if !ses::is_sns_url(&url) {
                return Err(AppError::bad_request(
                    "SubscribeURL must be an https URL on an sns.<region>.amazonaws.com host",
                ));
            }
            let via = state.settings.sns_confirm_via.clone();
            let visit = url.clone();
            let confirmed =
                web::block(move || ses::confirm_subscription(&visit, via.as_deref())).await;
            let confirmed = match confirmed {
                Ok(Ok(())) => true,
                Ok(Err(why)) => {
                    log::warn!(
                        "ses webhook for account {}: could not confirm the subscription ({why}); the link is shown in the settings",
                        account.name
                    );
                    false
                }
                Err(e) => return Err(AppError::internal(e)),
            };
            let scope = AccountScope::new(account.id);
            let (saved, topic) = (url.clone(), field("TopicArn"));
            with_db(&state, move |conn| {
                let now = now_ms();
                if confirmed {
                    store::set_secret(conn, &scope, feeds::SES_SUBSCRIBE_URL, "", now)?;
                    store::set_secret(conn, &scope, feeds::SES_SUBSCRIBED, &topic, now)?;
                } else {
                    store::set_secret(conn, &scope, feeds::SES_SUBSCRIBE_URL, &saved, now)?;
                }
                Ok(())
            })
            .await?;
            log::info!(
                "ses webhook for account {}: SNS subscription to {} {}",
                account.name,
                field("TopicArn"),
                if confirmed {
                    "confirmed"
                } else {
                    "waits for the owner"
                }
            );
            Ok(HttpResponse::Ok()
                .json(json!({"ok": true, "confirmed": confirmed, "subscribe_url": url})))
        }
        "Notification" => {
            let events = ses::events(&post).map_err(AppError::bad_request)?;
            let token = field("MessageId");
            apply(&state, &account, "ses", Some(token), events).await
        }
        _ => Ok(HttpResponse::Ok().json(json!({"ok": true, "ignored": field("Type")}))),
    }
}

pub struct FeedRow {
    pub feed: &'static str,
    pub url: String,
    pub key: Option<String>,
    /// Set but not shown (a shared secret) when empty; SendGrid's public key is shown.
    /// The key is a secret of ours (shown once), not one the ESP shows the owner.
    pub secret: bool,
}

#[derive(Template)]
#[template(path = "settings/feeds.html")]
struct FeedsPage {
    ctx: PageCtx,
    is_owner: bool,
    feeds: Vec<FeedRow>,
    /// SNS's request to confirm the SES subscription, to visit.
    subscribe_url: Option<String>,
    /// The SNS topic whose subscription this server confirmed itself.
    subscribed: Option<String>,
    /// A Postmark URL with its new secret, shown this once.
    new_url: Option<String>,
    message: Option<String>,
}

fn is_owner(viewer: &Viewer) -> bool {
    viewer.role() == Role::Owner && !viewer.is_staff_view()
}

async fn render(
    viewer: &Viewer,
    new_url: Option<String>,
    message: Option<String>,
) -> AppResult<HttpResponse> {
    let scope = viewer.scope();
    let keys: HashMap<String, String> = with_db(viewer.state(), move |conn| {
        Ok(store::secrets(conn, &scope)?)
    })
    .await?
    .into_iter()
    .collect();
    let base = viewer
        .state()
        .settings
        .public_url
        .clone()
        .unwrap_or_else(|| "https://mailtrail.example.com".into());
    let account: String =
        url::form_urlencoded::byte_serialize(viewer.account.name.as_bytes()).collect();
    let feeds = feeds::WEBHOOK_FEEDS
        .iter()
        .map(|feed| FeedRow {
            feed,
            url: format!(
                "{}/webhooks/{feed}?account={account}",
                base.trim_end_matches('/')
            ),
            key: keys.get(*feed).map(|k| {
                if *feed == "mailgun" || *feed == "postmark" {
                    String::new()
                } else {
                    k.clone()
                }
            }),
            secret: *feed == "postmark",
        })
        .collect();
    let page = FeedsPage {
        subscribe_url: keys.get(feeds::SES_SUBSCRIBE_URL).cloned(),
        subscribed: keys.get(feeds::SES_SUBSCRIBED).cloned(),
        ctx: viewer.page("/settings"),
        is_owner: is_owner(viewer),
        feeds,
        new_url,
        message,
    };
    let html = page.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

pub async fn page(viewer: Viewer) -> AppResult<HttpResponse> {
    if !matches!(viewer.role(), Role::Owner) && !viewer.is_staff() {
        return Err(AppError::forbidden(viewer.lang.t("settings.owners_only")));
    }
    render(&viewer, None, None).await
}

#[derive(Deserialize)]
pub struct KeyForm {
    pub feed: String,
    #[serde(default)]
    pub key: String,
}

/// Saves a pasted key (Mailgun, SendGrid), or makes a new Postmark secret.
pub async fn save(viewer: Viewer, form: web::Form<KeyForm>) -> AppResult<HttpResponse> {
    if !is_owner(&viewer) {
        return Err(AppError::forbidden(viewer.lang.t("settings.owners_only")));
    }
    let feed = feeds::WEBHOOK_FEEDS
        .iter()
        .copied()
        .find(|f| *f == form.feed)
        .ok_or_else(|| AppError::bad_request("unknown feed"))?;
    let key = match feed {
        "postmark" => random_token(32),
        "sendgrid" => {
            let key = form.key.trim().to_string();
            if !key.is_empty() && sendgrid::public_key(&key).is_none() {
                return Err(AppError::bad_request(
                    "this is not a SendGrid verification key (base64 of a P-256 public key)",
                ));
            }
            key
        }
        "ses" => {
            let key = form.key.trim().to_string();
            if !key.is_empty() && ses::certificate_key(&key).is_none() {
                return Err(AppError::bad_request(
                    "this is not SNS's signing certificate (PEM of an RSA certificate)",
                ));
            }
            key
        }
        _ => form.key.trim().to_string(),
    };
    let scope = viewer.scope();
    let saved = key.clone();
    with_db(viewer.state(), move |conn| {
        Ok(store::set_secret(conn, &scope, feed, &saved, now_ms())?)
    })
    .await?;
    viewer
        .audit("settings.feed_key", format!("{feed} key set"))
        .await?;
    if feed != "postmark" {
        return Ok(redirect("/settings/feeds"));
    }
    let base = viewer
        .state()
        .settings
        .public_url
        .clone()
        .unwrap_or_else(|| "https://mailtrail.example.com".into());
    let account: String =
        url::form_urlencoded::byte_serialize(viewer.account.name.as_bytes()).collect();
    let url = format!(
        "{}/webhooks/postmark?account={account}&secret={key}",
        base.trim_end_matches('/')
    );
    render(&viewer, Some(url), None).await
}
