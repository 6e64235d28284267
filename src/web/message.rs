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
use crate::store::models::Message;

use super::content::{self, ContentView};

pub struct EventRow {
    pub time: String,
    pub kind: String,
    pub kind_label: String,
    pub smtp_reply: String,
    pub mx: String,
    pub attempt: String,
    pub reason_label: String,
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
    smtp_reply: String,
    rule: String,
    requested: String,
    updated: String,
    events: Vec<EventRow>,
    splus_log: bool,
    send_log: Option<String>,
    splus_content: bool,
    content: Option<ContentView>,
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

pub async fn page(mut viewer: Viewer, id: web::Path<String>) -> AppResult<MessagePage> {
    let message = find(&mut viewer, &id).await?;
    let scope = viewer.scope();
    let (id, splus_log, splus_content) = (
        message.id,
        viewer.account.splus_log,
        viewer.account.splus_content,
    );
    let (events, send_log, raw) = with_db(viewer.state(), move |conn| {
        let events = messages::events(conn, &scope, id)?;
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
        Ok((events, send_log, raw))
    })
    .await?;
    let zone = viewer.account.zone();
    let lang = viewer.lang;
    let status = message.status();
    let events = events
        .into_iter()
        .map(|e| EventRow {
            time: format_in_zone(e.occurred_at, &zone),
            kind_label: lang.t(&format!("event.{}", e.kind)),
            kind: e.kind,
            smtp_reply: e.smtp_reply.unwrap_or_default(),
            mx: e.mx.unwrap_or_default(),
            attempt: e.attempt.map(|a| a.to_string()).unwrap_or_default(),
            reason_label: e
                .reason
                .and_then(Reason::from_i16)
                .map(|r| r.label(lang.code()).to_string())
                .unwrap_or_default(),
        })
        .collect();
    let page = MessagePage {
        ctx: viewer.page("/status"),
        id: message.id,
        email_id: message.email_id.clone(),
        api_user: message.api_user.clone(),
        mail_type: message.mail_type().label(lang.code()).to_string(),
        tags: message.tag_list().into_iter().map(str::to_string).collect(),
        recipient: viewer.show_address(&message.recipient),
        recipient_query: url::form_urlencoded::Serializer::new(String::new())
            .append_pair("address", &message.recipient)
            .finish(),
        sender: message.sender.clone(),
        subject: message.subject.clone(),
        status,
        status_label: status.label(lang.code()).to_string(),
        reason_code: message
            .reason()
            .map(|r| r.code().to_string())
            .unwrap_or_default(),
        reason_explained: message
            .reason()
            .map(|r| lang.t(&format!("explain.{}", r.code())))
            .unwrap_or_default(),
        reason_label: message
            .reason()
            .map(|r| r.label(lang.code()).to_string())
            .unwrap_or_default(),
        smtp_reply: message.smtp_reply.clone().unwrap_or_default(),
        rule: message.rule.clone().unwrap_or_default(),
        requested: format_in_zone(message.requested_at, &zone),
        updated: format_in_zone(message.updated_at, &zone),
        events,
        splus_log,
        send_log,
        splus_content,
        content: raw.as_deref().map(content::read),
        account_param: if viewer.is_staff_view() {
            format!("?account={}", viewer.account.id)
        } else {
            String::new()
        },
    };
    Ok(page)
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
    require(viewer.account.splus_content, &viewer)?;
    let message = find(&mut viewer, &id).await?;
    let scope = viewer.scope();
    let raw = with_db(viewer.state(), move |conn| {
        Ok(messages::content(conn, &scope, message.id)?)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    let html = content::sanitized_html(&raw).ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "content-security-policy",
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox",
        ))
        .insert_header(("x-frame-options", "SAMEORIGIN"))
        .body(format!("<!DOCTYPE html><meta charset=\"utf-8\"><base target=\"_blank\">{html}")))
}

/// `GET /status/{id}/message.eml`: the kept raw message.
pub async fn eml(mut viewer: Viewer, id: web::Path<String>) -> AppResult<HttpResponse> {
    require(viewer.account.splus_content, &viewer)?;
    let message = find(&mut viewer, &id).await?;
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
    require(viewer.account.splus_log, &viewer)?;
    let message = find(&mut viewer, &id).await?;
    let scope = viewer.scope();
    let lines = with_db(viewer.state(), move |conn| {
        Ok(messages::send_log(conn, &scope, message.id)?)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(lines))
}
