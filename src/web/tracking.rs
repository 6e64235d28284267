//! The recipient's side (DESIGN §4): the open pixel, the click redirect and the public
//! unsubscribe page. Every route here is reached from inside a mail, by people who have no
//! account: the signed token in the path says which account's message it is about, and the
//! event goes through ingestion like one posted to the events API.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::auth::client_ip;
use super::lang::Lang;
use super::layout::PageCtx;
use super::AppState;
use super::{with_db, AppError, AppResult};
use crate::domain::token::{Link, LinkKey, LinkKind};
use crate::domain::{
    format_in_zone, mask_address, now_ms, parse_zone, MailType, UnsubscribeReason,
};
use crate::ingest::{self, Event, EventKind, Outcome, Sender};
use crate::store::tracking::{self as store, Recipient};
use crate::store::AccountScope;

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// User agents longer than this are cut: the column is for people to read, not for storage.
const MAX_USER_AGENT: usize = 512;

/// `GET /t/o/{token}`: records an open and answers the pixel — always the pixel, whatever the
/// token or the database says, because an error here would show as a broken image in
/// someone's mail.
pub async fn open(
    state: web::Data<AppState>,
    key: web::Data<LinkKey>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    if let Some(link) = key.verify(LinkKind::Open, &token) {
        let event = recipient_event(EventKind::Open, &link, Some(&req), &state);
        if let Err(e) = record(&state, &link, event).await {
            log::warn!("open of {} not recorded: {e}", link.email_id);
        }
    }
    HttpResponse::Ok()
        .content_type("image/gif")
        .insert_header((header::CACHE_CONTROL, "no-store, max-age=0"))
        .body(PIXEL)
}

/// `GET /t/c/{token}`: records a click and sends the reader on to the URL the token binds.
/// Only a token this server signed leads anywhere, so the route is no open redirect.
pub async fn click(
    state: web::Data<AppState>,
    key: web::Data<LinkKey>,
    req: HttpRequest,
    token: web::Path<String>,
) -> AppResult<HttpResponse> {
    let link = key
        .verify(LinkKind::Click, &token)
        .ok_or(AppError::NotFound)?;
    let destination = link.url.clone().ok_or(AppError::NotFound)?;
    let event = recipient_event(EventKind::Click, &link, Some(&req), &state);
    if let Err(e) = record(&state, &link, event).await {
        // The reader still gets where they wanted to go; the statistic is what we lose.
        log::warn!("click of {} not recorded: {e}", link.email_id);
    }
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, destination))
        .finish())
}

/// What the unsubscribe page shows.
enum UnsubscribeState {
    /// The four reasons to choose from; `error` when the form came back without one.
    Choose { error: Option<String> },
    /// Just unsubscribed; `complaint` when the reason also reported spam.
    Done { complaint: bool },
    /// The address had left before this visit, at `since`.
    Already { since: String },
}

struct ReasonChoice {
    code: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "tracking/unsubscribe.html")]
struct UnsubscribePage {
    ctx: PageCtx,
    action: String,
    /// Who sends the mail: the account's display name.
    sender: String,
    address: String,
    state: UnsubscribeState,
    reasons: Vec<ReasonChoice>,
}

/// `GET /u/{token}`: the public unsubscribe page, no login.
pub async fn unsubscribe_page(
    state: web::Data<AppState>,
    key: web::Data<LinkKey>,
    lang: Lang,
    token: web::Path<String>,
) -> AppResult<HttpResponse> {
    let link = key
        .verify(LinkKind::Unsubscribe, &token)
        .ok_or(AppError::NotFound)?;
    let recipient = find_recipient(&state, &link).await?;
    let view = match recipient.recipient.unsubscribed_at {
        Some(at) => UnsubscribeState::Already {
            since: show_time(at, &recipient.recipient),
        },
        None => UnsubscribeState::Choose { error: None },
    };
    render(lang, &token, &recipient, view, 200)
}

/// `POST /u/{token}`: the page's form (field `reason`), or an RFC 8058 one-click unsubscribe
/// from the mailbox provider (body `List-Unsubscribe=One-Click`, no page needed).
///
/// No CSRF token on purpose (the CSRF middleware exempts `/u/`): nothing here depends on a
/// cookie or session, so a forged cross-site POST gains no authority the forger lacks. What
/// authorises the change is the signed token in the path, which only the recipient's own mail
/// contains and nobody can guess or alter; whoever holds it may unsubscribe that one address,
/// which is exactly what RFC 8058 asks for. A session-bound token would also break one-click,
/// which the provider sends without any session.
pub async fn unsubscribe_submit(
    state: web::Data<AppState>,
    key: web::Data<LinkKey>,
    req: HttpRequest,
    lang: Lang,
    token: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let link = key
        .verify(LinkKind::Unsubscribe, &token)
        .ok_or(AppError::NotFound)?;
    if is_one_click(&req, &body) {
        let event = unsubscribe_event(&link, UnsubscribeReason::NotWanted, &state);
        record(&state, &link, event).await?;
        return Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("unsubscribed\n"));
    }
    let recipient = find_recipient(&state, &link).await?;
    let chosen = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "reason")
        .and_then(|(_, v)| UnsubscribeReason::from_code(&v));
    let Some(reason) = chosen else {
        let error = Some(lang.t("unsubscribe.choose_reason"));
        return render(
            lang,
            &token,
            &recipient,
            UnsubscribeState::Choose { error },
            400,
        );
    };
    let event = unsubscribe_event(&link, reason, &state);
    record(&state, &link, event).await?;
    let view = UnsubscribeState::Done {
        complaint: reason.is_complaint(),
    };
    render(lang, &token, &recipient, view, 200)
}

/// The recipient of the link's message; a 404 when the account has no such message.
async fn find_recipient(state: &AppState, link: &Link) -> AppResult<MailOf> {
    let scope = AccountScope::new(link.account_id);
    let email_id = link.email_id.clone();
    let account_id = link.account_id;
    let (recipient, sender) = with_db(state, move |conn| {
        let recipient = store::recipient(conn, &scope, &email_id)?;
        // Who sends: the name the owners set for recipients, else the account's own.
        let sender = match crate::store::accounts::display_name(conn, account_id)? {
            Some(name) => name,
            None => crate::store::accounts::get_account(conn, account_id)?
                .map(|a| a.name)
                .unwrap_or_default(),
        };
        Ok((recipient, sender))
    })
    .await?;
    let recipient = recipient.ok_or(AppError::NotFound)?;
    Ok(MailOf {
        recipient,
        name: sender,
    })
}

/// The recipient of a link's message and the name of who sent it.
struct MailOf {
    recipient: Recipient,
    name: String,
}

fn render(
    lang: Lang,
    token: &str,
    sender: &MailOf,
    state: UnsubscribeState,
    status: u16,
) -> AppResult<HttpResponse> {
    let recipient = &sender.recipient;
    let action = format!("{}{}", LinkKind::Unsubscribe.path_prefix(), token);
    let mut ctx = PageCtx::anonymous(lang, String::new());
    ctx.here = action.clone();
    let page = UnsubscribePage {
        ctx,
        action,
        sender: sender.name.clone(),
        address: if recipient.mask_addresses {
            mask_address(&recipient.address)
        } else {
            recipient.address.clone()
        },
        state,
        reasons: UnsubscribeReason::ALL
            .iter()
            .map(|r| ReasonChoice {
                code: r.code(),
                label: r.label(lang.code()),
            })
            .collect(),
    };
    let html = page.render().map_err(AppError::internal)?;
    let status = actix_web::http::StatusCode::from_u16(status).map_err(AppError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // The page's address is the recipient's secret link: keep it out of Referer headers.
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(html))
}

/// The account's time and zone, e.g. `2026-11-27 09:30:00 (Asia/Shanghai)`.
fn show_time(at: i64, recipient: &Recipient) -> String {
    let zone = parse_zone(&recipient.time_zone).unwrap_or(chrono_tz::Asia::Shanghai);
    format!("{} ({})", format_in_zone(at, &zone), zone.name())
}

/// RFC 8058: `List-Unsubscribe=One-Click`, form-encoded or as a multipart field.
fn is_one_click(req: &HttpRequest, body: &[u8]) -> bool {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
    if multipart {
        let text = String::from_utf8_lossy(body);
        return text.contains("name=\"List-Unsubscribe\"") && text.contains("One-Click");
    }
    url::form_urlencoded::parse(body).any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click")
}

/// An event of the recipient's side, stamped to the second: a mail client fetching the pixel
/// twice, a double click or a reloaded form within one second count once (DESIGN §4). The
/// event id makes ingestion drop the repeat; clicks count once per link.
fn recipient_event(
    kind: EventKind,
    link: &Link,
    req: Option<&HttpRequest>,
    state: &AppState,
) -> Event {
    let second = now_ms().div_euclid(1000);
    let mut event = Event::new(kind, second * 1000);
    event.email_id = Some(link.email_id.clone());
    event.event_id = Some(match &link.url {
        Some(url) => format!(
            "recipient:{}:{}:{second}:{}",
            kind.code(),
            link.email_id,
            short_hash(url)
        ),
        None => format!("recipient:{}:{}:{second}", kind.code(), link.email_id),
    });
    event.url = link.url.clone();
    if let Some(req) = req {
        event.ip = Some(client_ip(req, state));
        event.user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.trim().chars().take(MAX_USER_AGENT).collect::<String>())
            .filter(|ua| !ua.is_empty());
    }
    event
}

fn unsubscribe_event(link: &Link, reason: UnsubscribeReason, state: &AppState) -> Event {
    let mut event = recipient_event(EventKind::Unsubscribe, link, None, state);
    event.unsubscribe_reason = Some(reason);
    event
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// Applies one event in the link's account. The sender only matters for `request` events,
/// which never come from here; the event takes its API_USER from its message.
async fn record(state: &AppState, link: &Link, event: Event) -> AppResult<Outcome> {
    let scope = AccountScope::new(link.account_id);
    let sender = Sender {
        api_user: String::new(),
        mail_type: MailType::Trigger,
    };
    let outcomes = with_db(state, move |conn| {
        Ok(ingest::ingest(conn, &scope, &sender, &[event])?)
    })
    .await?;
    match outcomes.into_iter().next() {
        Some(Outcome::Rejected(why)) => Err(AppError::internal(why)),
        Some(outcome) => Ok(outcome),
        None => Err(AppError::internal("ingestion answered nothing")),
    }
}
