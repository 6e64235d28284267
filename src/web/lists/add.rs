//! `POST /{list}/add`: an entry typed in by hand.

use actix_web::{web, HttpResponse};
use chrono::NaiveDate;

use super::{list_from_path, path_of};
use crate::domain::{day_start, now_ms, EmailAddress, ListKind, UnsubscribeReason};
use crate::store::lists::{self, ManualEntry};
use crate::web::auth::{redirect, Viewer};
use crate::web::{with_db, AppError, AppResult};

pub(super) fn pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A posted field, trimmed; None when blank.
fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `POST /{list}/add`: a manual entry (source `ui`).
pub async fn add(
    viewer: Viewer,
    segment: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let list = list_from_path(&segment)?;
    if viewer.is_staff_view() {
        return Err(AppError::forbidden(viewer.lang.t("staff.read_only")));
    }
    if list == ListKind::SpamReports {
        return Err(AppError::forbidden(viewer.lang.t("lists.no_add_spam")));
    }
    let entry = manual_entry(&viewer, list, &pairs(&body))?;
    let address = entry.address.clone();
    let scope = viewer.scope();
    with_db(viewer.state(), move |conn| {
        Ok(lists::add(conn, &scope, &entry, now_ms())?)
    })
    .await?;
    viewer
        .audit("list.add", format!("{} {address}", list.code()))
        .await?;
    Ok(redirect(&format!("{}?added=1", path_of(list))))
}

/// The entry the add form describes, or what is wrong with it.
fn manual_entry(
    viewer: &Viewer,
    list: ListKind,
    fields: &[(String, String)],
) -> AppResult<ManualEntry> {
    let lang = viewer.lang;
    let raw = field(fields, "address").unwrap_or_default();
    let domain = list == ListKind::Blacklist
        && raw.starts_with('@')
        && raw.len() > 2
        && raw[1..].contains('.');
    let address = if domain {
        raw.to_lowercase()
    } else {
        let key = match list {
            ListKind::Blacklist => "lists.bad_address_or_domain",
            _ => "lookup.bad_address",
        };
        EmailAddress::parse(&raw)
            .ok_or_else(|| AppError::bad_request(lang.t(key)))?
            .as_str()
            .to_string()
    };
    let reason = match list {
        ListKind::Unsubscribes => {
            let code = field(fields, "reason").unwrap_or_else(|| "not_wanted".into());
            if UnsubscribeReason::from_code(&code).is_none() {
                return Err(AppError::bad_request(
                    lang.t("lists.bad_unsubscribe_reason"),
                ));
            }
            Some(code)
        }
        ListKind::Bounces => {
            Some(field(fields, "reason").unwrap_or_else(|| lang.t("lists.added_by_hand")))
        }
        _ => None,
    };
    Ok(ManualEntry {
        list,
        address,
        reason,
        expires_at: expiry(viewer, field(fields, "expires"))?,
        api_user: None,
        source: "ui",
    })
}

/// An optional expiry date, which must lie in the future (the start of that day in the
/// account's zone).
fn expiry(viewer: &Viewer, typed: Option<String>) -> AppResult<Option<i64>> {
    let Some(d) = typed else {
        return Ok(None);
    };
    let zone = viewer.account.zone();
    match NaiveDate::parse_from_str(&d, "%Y-%m-%d") {
        Ok(day) if day_start(&zone, day) > now_ms() => Ok(Some(day_start(&zone, day))),
        _ => Err(AppError::bad_request(viewer.lang.t("lists.bad_expiry"))),
    }
}
