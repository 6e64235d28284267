//! `GET|POST|DELETE /api/v1/suppressions/{bounces|unsubscribes|spam-reports|blacklist}`: the
//! lists as JSON for scripts, with the same rules as the pages (DESIGN §3, §7).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::api::authenticate;
use super::AppState;
use super::{with_db, AppError, AppResult};
use crate::domain::{day_start, now_ms, EmailAddress, UnsubscribeReason};
use crate::domain::{ListEntry, ListKind};
use crate::store::lists::{self, ListFilter, ListPosition, ManualEntry};

const PAGE: i64 = 100;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    address: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct ListAnswer {
    entries: Vec<ListEntry>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

fn kind(segment: &str) -> AppResult<ListKind> {
    ListKind::from_code(segment).ok_or(AppError::NotFound)
}

/// An address, or on the blacklist a whole `@domain`.
fn address_of(list: ListKind, raw: &str) -> AppResult<String> {
    let raw = raw.trim();
    if list == ListKind::Blacklist && raw.starts_with('@') && raw[1..].contains('.') {
        return Ok(raw.to_lowercase());
    }
    EmailAddress::parse(raw)
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| AppError::bad_request(format!("{raw:?} is not an email address")))
}

/// Dates are whole days in UTC for the API (`YYYY-MM-DD`).
fn day(raw: &Option<String>, field: &str) -> AppResult<Option<i64>> {
    match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(|d| Some(day_start(&chrono_tz::UTC, d)))
            .map_err(|_| AppError::bad_request(format!("{field} must be a date as YYYY-MM-DD"))),
    }
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    segment: web::Path<String>,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let caller = authenticate(&state, &req).await?;
    let list = kind(&segment)?;
    let filter = ListFilter {
        address: query
            .address
            .as_deref()
            .map(|a| address_of(list, a))
            .transpose()?,
        from_ms: day(&query.from, "from")?,
        to_ms: day(&query.to, "to")?.map(|t| t + 86_400_000),
        ..ListFilter::default()
    };
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let mut p = c.split('_').map(str::parse::<i64>);
            match (p.next(), p.next(), p.next()) {
                (Some(Ok(at)), Some(Ok(rank)), Some(Ok(id))) => Some(ListPosition {
                    at,
                    rank: rank as i32,
                    id,
                }),
                _ => return Err(AppError::bad_request("cursor is not one this API gave out")),
            }
        }
    };
    let scope = caller.scope;
    let mut entries = with_db(&state, move |conn| {
        Ok(lists::page(
            conn,
            &scope,
            list,
            &filter,
            after,
            PAGE + 1,
            now_ms(),
        )?)
    })
    .await?;
    let next_cursor = (entries.len() as i64 > PAGE).then(|| {
        entries.truncate(PAGE as usize);
        let p = lists::position(entries.last().expect("a full page"));
        format!("{}_{}_{}", p.at, p.rank, p.id)
    });
    Ok(HttpResponse::Ok().json(ListAnswer {
        entries,
        next_cursor,
    }))
}

#[derive(Deserialize)]
pub struct AddBody {
    address: String,
    reason: Option<String>,
    /// RFC 3339.
    expires_at: Option<String>,
}

pub async fn add(
    state: web::Data<AppState>,
    req: HttpRequest,
    segment: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let caller = authenticate(&state, &req).await?;
    let list = kind(&segment)?;
    let body: AddBody = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request(format!("the body is not the JSON expected: {e}")))?;
    let address = address_of(list, &body.address)?;
    if list == ListKind::Unsubscribes {
        if let Some(r) = &body.reason {
            if UnsubscribeReason::from_code(r).is_none() {
                return Err(AppError::bad_request(
                    "reason must be not_wanted, not_subscribed, spam or fraud",
                ));
            }
        }
    }
    let expires_at = match &body.expires_at {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|_| AppError::bad_request("expires_at must be an RFC 3339 time"))?
                .timestamp_millis(),
        ),
    };
    let entry = ManualEntry {
        list,
        address,
        reason: body.reason,
        expires_at,
        api_user: Some(caller.sender.api_user.clone()),
        source: "api",
    };
    let scope = caller.scope;
    let stored = with_db(&state, move |conn| {
        let now = now_ms();
        let stored = lists::add(conn, &scope, &entry, now)?;
        // Requests already taken at or after the entry's start are suppressed by it too.
        let since = std::collections::HashMap::from([(entry.address.clone(), now)]);
        crate::ingest::suppress::catch_up(conn, &scope, &since, now)?;
        Ok(stored)
    })
    .await?;
    Ok(HttpResponse::Created().json(stored))
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    address: Option<String>,
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    segment: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> AppResult<HttpResponse> {
    let caller = authenticate(&state, &req).await?;
    let list = kind(&segment)?;
    let raw = query
        .address
        .as_deref()
        .ok_or_else(|| AppError::bad_request("say which address to delete: ?address="))?;
    let filter = ListFilter {
        address: Some(address_of(list, raw)?),
        ..ListFilter::default()
    };
    let scope = caller.scope;
    let deleted = with_db(&state, move |conn| {
        Ok(lists::delete_matching(
            conn,
            &scope,
            list,
            &filter,
            now_ms(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": deleted })))
}
