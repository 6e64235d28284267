//! `/status/{id}`: one message, its status and reason, and its log details.

use actix_web::{web, HttpResponse};
use askama::Template;

use super::auth::Viewer;
use super::layout::PageCtx;
use super::{with_db, AppError, AppResult};
use crate::domain::{format_in_zone, mask_address, Reason, Status};
use crate::store::messages;

pub struct EventRow {
    pub time: String,
    pub kind: String,
    pub kind_label: String,
    pub smtp_reply: String,
    pub mx: String,
    pub attempt: String,
    pub reason_label: String,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
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
    reason_label: String,
    smtp_reply: String,
    rule: String,
    requested: String,
    updated: String,
    events: Vec<EventRow>,
}

pub async fn page(mut viewer: Viewer, id: web::Path<String>) -> AppResult<HttpResponse> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let scope = viewer.scope();
    let found = with_db(viewer.state(), move |conn| {
        Ok(messages::get(conn, &scope, id)?)
    })
    .await?;
    if found.is_none() && viewer.is_staff() {
        // Staff may open any account's message; the switch is audited.
        let owner = with_db(viewer.state(), move |conn| {
            Ok(messages::account_of(conn, id)?)
        })
        .await?;
        if let Some(account_id) = owner {
            viewer
                .staff_open(account_id, format!("/status/{id}"))
                .await?;
        }
    }
    let scope = viewer.scope();
    let (message, events) = with_db(viewer.state(), move |conn| {
        let message = messages::get(conn, &scope, id)?.ok_or(AppError::NotFound)?;
        let events = messages::events(conn, &scope, id)?;
        Ok((message, events))
    })
    .await?;
    let zone = viewer.account.zone();
    let lang = viewer.lang;
    let mask = |a: &str| {
        if viewer.account.mask_addresses {
            mask_address(a)
        } else {
            a.to_string()
        }
    };
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
        recipient: mask(&message.recipient),
        sender: message.sender.clone(),
        subject: message.subject.clone(),
        status,
        status_label: status.label(lang.code()).to_string(),
        reason_code: message
            .reason()
            .map(|r| r.code().to_string())
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
    };
    let html = page.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}
