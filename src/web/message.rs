//! `/status/{id}`: one message, its status and reason, and its log details.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use askama_web::WebTemplate;

use super::auth::Viewer;
use super::layout::PageCtx;
use super::{with_db, AppError, AppResult};
use crate::domain::{format_in_zone, Reason, Status};
use crate::store::messages;
use crate::store::models::{Message, MessageEvent};
use crate::store::status::Engagement;

use super::content::{self, ContentView};

/// An open or a click, with where it came from.
pub struct EngagementRow {
    pub time: String,
    pub kind: &'static str,
    pub kind_label: String,
    pub url: String,
    /// Only http(s) URLs become links.
    pub linkable: bool,
    pub ip: String,
    pub agent: String,
    pub browser: String,
}

pub struct EventRow {
    pub time: String,
    pub kind: String,
    pub kind_label: String,
    pub smtp_reply: String,
    pub mx: String,
    pub attempt: String,
    pub reason_label: String,
    /// The classifier's finer label of a failure (`mailbox_full`, `expired`, ...).
    pub detail: String,
}

/// A failure's detail as words: `mailbox_full` reads "mailbox full".
fn detail_words(detail: &str) -> String {
    detail.replace('_', " ")
}

/// Failure events carry the classifier's detail in their `detail` column.
fn is_failure(kind: &str) -> bool {
    matches!(kind, "soft_bounce" | "invalid" | "bounce")
}

#[derive(Template, WebTemplate)]
#[template(path = "message.html")]
pub struct MessagePage {
    ctx: PageCtx,
    id: i64,
    email_id: String,
    api_user: String,
    mail_type: String,
    tags: Vec<String>,
    recipient: String,
    sender: String,
    subject: String,
    status: Status,
    status_label: String,
    reason_code: String,
    reason_explained: String,
    reason_label: String,
    /// The finer detail of the latest failure, for a failed message.
    detail: String,
    smtp_reply: String,
    rule: String,
    requested: String,
    updated: String,
    events: Vec<EventRow>,
    engagement: Vec<EngagementRow>,
    splus_log: bool,
    send_log: Option<String>,
    splus_content: bool,
    content: Option<ContentView>,
    /// The raw `.eml` is offered only to viewers who see addresses unmasked: masking it
    /// would break the message.
    raw_download: bool,
    account_param: String,
    recipient_query: String,
}

/// Finds a message of the viewer's account; staff are taken to the message's own account
/// (audited), anyone else gets 404 for another account's message.
async fn find(viewer: &mut Viewer, id: &str) -> AppResult<Message> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let scope = viewer.scope();
    let found = with_db(viewer.state(), move |conn| {
        Ok(messages::get(conn, &scope, id)?)
    })
    .await?;
    if let Some(message) = found {
        return Ok(message);
    }
    if !viewer.is_staff() {
        return Err(AppError::NotFound);
    }
    let owner = with_db(viewer.state(), move |conn| {
        Ok(messages::account_of(conn, id)?)
    })
    .await?;
    let account_id = owner.ok_or(AppError::NotFound)?;
    viewer
        .staff_open(account_id, format!("/status/{id}"))
        .await?;
    let scope = viewer.scope();
    with_db(viewer.state(), move |conn| {
        messages::get(conn, &scope, id)?.ok_or(AppError::NotFound)
    })
    .await
}

/// `GET /status/{id}`: the message, its event log, its opens and clicks and, with S+, its
/// send log and content.
pub async fn page(mut viewer: Viewer, id: web::Path<String>) -> AppResult<MessagePage> {
    let message = find(&mut viewer, &id).await?;
    let scope = viewer.scope();
    let (id, splus_log, splus_content) = (
        message.id,
        viewer.account.splus_log,
        viewer.account.splus_content,
    );
    let (email_id, recipient) = (message.email_id.clone(), message.recipient.clone());
    let (events, send_log, raw, engagement) = with_db(viewer.state(), move |conn| {
        let events = messages::events(conn, &scope, id)?;
        let engagement =
            crate::store::status::engagement_of(conn, &scope, &email_id, &recipient, 200)?;
        let send_log = if splus_log {
            messages::send_log(conn, &scope, id)?
        } else {
            None
        };
        let raw = if splus_content {
            messages::content(conn, &scope, id)?
        } else {
            None
        };
        Ok((events, send_log, raw, engagement))
    })
    .await?;
    let zone = viewer.account.zone();
    let events: Vec<EventRow> = events
        .into_iter()
        .map(|e| EventRow::of(&viewer, e, &zone))
        .collect();
    let engagement = engagement
        .into_iter()
        .map(|e| EngagementRow::of(&viewer, e, &zone))
        .collect();
    let mut page = MessagePage::of(&viewer, &message, &zone);
    page.detail = failure_detail(page.status, &events);
    page.events = events;
    page.engagement = engagement;
    page.send_log = send_log.map(|log| viewer.show_text(&log));
    page.content = raw.as_deref().map(|raw| content_view(&viewer, raw));
    Ok(page)
}

impl MessagePage {
    /// The message itself as the viewer may see it, without its logs.
    fn of(viewer: &Viewer, message: &Message, zone: &chrono_tz::Tz) -> Self {
        let lang = viewer.lang;
        let status = message.status();
        let reason = message.reason();
        MessagePage {
            ctx: viewer.page("/status"),
            detail: String::new(),
            id: message.id,
            email_id: viewer.show_text(&message.email_id),
            api_user: message.api_user.clone(),
            mail_type: message.mail_type().label(lang.code()).to_string(),
            tags: message.tag_list().into_iter().map(str::to_string).collect(),
            recipient: viewer.show_address(&message.recipient),
            recipient_query: viewer.lookup_query(&message.recipient, message.id),
            sender: viewer.show_text(&message.sender),
            subject: viewer.show_text(&message.subject),
            status,
            status_label: status.label(lang.code()).to_string(),
            reason_code: reason.map(|r| r.code().to_string()).unwrap_or_default(),
            reason_explained: reason
                .map(|r| lang.t(&format!("explain.{}", r.code())))
                .unwrap_or_default(),
            reason_label: reason
                .map(|r| r.label_in(status, lang.code()).to_string())
                .unwrap_or_default(),
            smtp_reply: viewer.show_text(&message.smtp_reply.clone().unwrap_or_default()),
            rule: viewer.show_text(&rule_shown(
                lang,
                message.rule.as_deref().unwrap_or_default(),
            )),
            requested: format_in_zone(message.requested_at, zone),
            updated: format_in_zone(message.updated_at, zone),
            events: Vec::new(),
            engagement: Vec::new(),
            splus_log: viewer.account.splus_log,
            send_log: None,
            splus_content: viewer.account.splus_content,
            content: None,
            raw_download: !viewer.masks(),
            account_param: crate::web::filters::account_query(viewer),
        }
    }
}

impl EventRow {
    fn of(viewer: &Viewer, e: MessageEvent, zone: &chrono_tz::Tz) -> Self {
        let lang = viewer.lang;
        EventRow {
            detail: e
                .detail
                .as_deref()
                .filter(|_| is_failure(&e.kind))
                .map(detail_words)
                .unwrap_or_default(),
            time: format_in_zone(e.occurred_at, zone),
            kind_label: lang.t(&format!("event.{}", e.kind)),
            kind: e.kind,
            smtp_reply: viewer.show_text(&e.smtp_reply.unwrap_or_default()),
            mx: e.mx.unwrap_or_default(),
            attempt: e.attempt.map(|a| a.to_string()).unwrap_or_default(),
            reason_label: e
                .reason
                .and_then(Reason::from_i16)
                .map(|r| r.label(lang.code()).to_string())
                .unwrap_or_default(),
        }
    }
}

impl EngagementRow {
    fn of(viewer: &Viewer, e: Engagement, zone: &chrono_tz::Tz) -> Self {
        let lang = viewer.lang;
        let agent = e.user_agent.unwrap_or_default();
        let (browser, os) = crate::domain::browser_and_os(&agent);
        let click = e.kind == 2;
        EngagementRow {
            time: format_in_zone(e.occurred_at, zone),
            kind: if click { "click" } else { "open" },
            kind_label: lang.t(if click { "event.click" } else { "event.open" }),
            linkable: e.url.starts_with("https://") || e.url.starts_with("http://"),
            url: viewer.show_text(&e.url),
            ip: e.ip.unwrap_or_default(),
            browser: format!("{browser} · {os}"),
            agent,
        }
    }
}

/// The finer detail of the latest failure, for a failed message.
fn failure_detail(status: Status, events: &[EventRow]) -> String {
    if !matches!(status, Status::SoftBounce | Status::Invalid) {
        return String::new();
    }
    events
        .iter()
        .rev()
        .find(|e| is_failure(&e.kind) && !e.detail.is_empty())
        .map(|e| e.detail.clone())
        .unwrap_or_default()
}

/// The stored S+ content, its headers and text masked as the viewer sees free text.
fn content_view(viewer: &Viewer, raw: &[u8]) -> ContentView {
    let mut view = content::read(raw);
    for (_, value) in &mut view.headers {
        *value = viewer.show_text(value);
    }
    view.text = view.text.map(|t| viewer.show_text(&t));
    view
}

/// The S+ content routes answer 403 for an account without the feature.
fn require(enabled: bool, viewer: &Viewer) -> AppResult<()> {
    if enabled {
        Ok(())
    } else {
        Err(AppError::forbidden(viewer.lang.t("splus.not_enabled")))
    }
}

/// `GET /status/{id}/content.html`: the sanitized HTML part, for a sandboxed frame of the
/// message page; its own policy forbids scripts and every remote load.
pub async fn content_html(mut viewer: Viewer, id: web::Path<String>) -> AppResult<HttpResponse> {
    // The message's own account decides (`find` takes staff there), never the one named.
    let message = find(&mut viewer, &id).await?;
    require(viewer.account.splus_content, &viewer)?;
    let scope = viewer.scope();
    let raw = with_db(viewer.state(), move |conn| {
        Ok(messages::content(conn, &scope, message.id)?)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    let html = viewer.show_text(&content::sanitized_html(&raw).ok_or(AppError::NotFound)?);
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "content-security-policy",
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox",
        ))
        .insert_header(("x-frame-options", "SAMEORIGIN"))
        .body(format!("<!DOCTYPE html><meta charset=\"utf-8\"><base target=\"_blank\">{html}")))
}

/// `GET /status/{id}/message.eml`: the kept raw message, for viewers who see addresses
/// unmasked (the raw message names its recipient, and masking it would break it).
pub async fn eml(mut viewer: Viewer, id: web::Path<String>) -> AppResult<HttpResponse> {
    // The message's own account decides (`find` takes staff there), never the one named.
    let message = find(&mut viewer, &id).await?;
    require(viewer.account.splus_content, &viewer)?;
    if viewer.masks() {
        return Err(AppError::forbidden(viewer.lang.t("message.eml_masked")));
    }
    let scope = viewer.scope();
    let raw = with_db(viewer.state(), move |conn| {
        Ok(messages::content(conn, &scope, message.id)?)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type("message/rfc822")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"message-{}.eml\"", message.id),
        ))
        .body(raw))
}

/// `GET /status/{id}/send-log.txt`: the send log lines as text.
pub async fn send_log(mut viewer: Viewer, id: web::Path<String>) -> AppResult<HttpResponse> {
    // The message's own account decides (`find` takes staff there), never the one named.
    let message = find(&mut viewer, &id).await?;
    require(viewer.account.splus_log, &viewer)?;
    let scope = viewer.scope();
    let lines = with_db(viewer.state(), move |conn| {
        Ok(messages::send_log(conn, &scope, message.id)?)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(viewer.show_text(&lines)))
}

/// The recorded evidence of a verdict in the viewer's language: the stored forms are
/// `generated`, `suppressed: LIST ENTRY`, `reason: CODE`, `bounce message: RULE`, `subStat N`.
pub fn rule_shown(lang: super::lang::Lang, rule: &str) -> String {
    let list_label = |code: &str| -> Option<String> {
        let key = match code {
            "blacklist" => "nav.blacklist",
            "bounces" | "bounce" => "nav.bounces",
            "unsubscribes" | "unsubscribe list" | "unsubscribe" => "nav.unsubscribes",
            "spam_reports" => "nav.spam_reports",
            _ => return None,
        };
        Some(lang.t(key))
    };
    if rule == "generated" {
        return lang.t("message.rule_generated");
    }
    if let Some(rest) = rule.strip_prefix("suppressed: ") {
        let (list, entry) = if let Some(label) = list_label(rest) {
            (label, String::new())
        } else {
            match rest.split_once(' ') {
                Some((code, entry)) => match list_label(code) {
                    Some(label) => (label, entry.to_string()),
                    None => (rest.to_string(), String::new()),
                },
                None => (rest.to_string(), String::new()),
            }
        };
        return lang
            .t("message.rule_suppressed")
            .replace("{list}", &list)
            .replace("{entry}", &entry)
            .trim_end()
            .to_string();
    }
    if let Some(code) = rule.strip_prefix("reason: ") {
        if let Some(reason) = Reason::from_code(code) {
            return lang
                .t("message.rule_reason")
                .replace("{reason}", reason.label(lang.code()));
        }
    }
    if let Some(rest) = rule.strip_prefix("bounce message: ") {
        return lang
            .t("message.rule_bounce_message")
            .replace("{rule}", rest);
    }
    rule.to_string()
}

#[cfg(test)]
mod tests {
    use super::super::lang::Lang;
    use super::rule_shown;

    #[test]
    fn rules_read_in_chinese() {
        let zh = Lang::Zh;
        assert!(!rule_shown(zh, "generated").contains("generated"));
        let s = rule_shown(zh, "suppressed: blacklist @example.com");
        assert!(
            s.contains("@example.com") && !s.contains("suppressed"),
            "{s}"
        );
        let s = rule_shown(zh, "suppressed: unsubscribe list");
        assert!(
            !s.contains("suppressed") && !s.contains("unsubscribe"),
            "{s}"
        );
        assert_eq!(rule_shown(zh, "subStat 401"), "subStat 401");
    }
}
