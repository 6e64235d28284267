//! `POST /webhooks/sendcloud`: SendCloud's event posts (../shared/SENDCLOUD.md).
//!
//! Whose post is it? SendCloud signs with the account's APP KEY but does not name the
//! account, so the receiver finds it by `?account=NAME` in the webhook URL when given, else
//! among the accounts with an API user named as the post's `apiUser`, by whose key verifies
//! the signature. A post no key verifies, or stamped outside the ±10-minute window, is 403.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::AppState;
use super::{with_db, AppError, AppResult};
use crate::domain::{now_ms, MailType};
use crate::ingest::sendcloud::{self, Meaning, Received};
use crate::ingest::{Outcome, Sender};
use crate::store::models::Account;
use crate::store::{accounts, webhooks, AccountScope};

pub async fn sendcloud(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let fields = read_fields(&req, &body)?;
    let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let account_name = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("account").cloned());
    let (api_user, timestamp, token, signature) = (
        get("apiUser"),
        get("timestamp"),
        get("token"),
        get("signature"),
    );
    let signed = (timestamp.clone(), token.clone(), signature);
    let found = with_db(&state, move |conn| {
        resolve_account(conn, account_name.as_deref(), &api_user, &signed)
    })
    .await?;
    // An unknown account, an unknown apiUser, an account without a key and a wrong signature
    // all answer the same: a sender learns nothing about which names exist.
    let Some((account, sender)) = found else {
        log::warn!("sendcloud webhook: no account's app key verifies the post; dropped");
        return Err(AppError::forbidden("bad signature"));
    };
    let now = now_ms();
    if !sendcloud::timestamp_is_fresh(&timestamp, now) {
        log::warn!(
            "sendcloud webhook for account {}: timestamp {:?} outside the window; dropped",
            account.name,
            timestamp.chars().take(20).collect::<String>()
        );
        return Err(AppError::forbidden(format!(
            "timestamp outside the window of ±{} minutes around the server's time",
            sendcloud::TIMESTAMP_WINDOW_MS / 60_000
        )));
    }

    let events = match sendcloud::meaning(&fields).map_err(AppError::bad_request)? {
        Meaning::Ignored(name) => {
            log::info!("sendcloud webhook: event {name:?} ignored");
            return Ok(HttpResponse::Ok().json(json!({"ok": true, "ignored": name})));
        }
        Meaning::Events(events) => events,
    };
    let scope = AccountScope::new(account.id);
    let received = with_db(&state, move |conn| {
        Ok(sendcloud::receive(
            conn, &scope, &sender, &token, &events, now,
        )?)
    })
    .await?;
    Ok(received_answer(received))
}

/// The answer to a webhook post: replayed, or applied with the events it rejected.
pub fn received_answer(received: Received) -> HttpResponse {
    HttpResponse::Ok().json(match received {
        Received::Replayed => json!({"ok": true, "replayed": true}),
        Received::Applied(outcomes) => {
            let errors: Vec<String> = outcomes
                .into_iter()
                .filter_map(|o| match o {
                    Outcome::Rejected(e) => Some(e),
                    _ => None,
                })
                .collect();
            json!({"ok": errors.is_empty(), "errors": errors})
        }
    })
}

/// The fields that are lists: repeated, they gather; PHP-style `name[]` is the same name.
const LIST_FIELDS: [&str; 2] = ["emailIds", "recipientArray"];

/// Gathers `(name, value)` pairs: a list field given several times keeps every value (one a
/// line, which [`sendcloud::meaning`] splits); any other field keeps its last value.
fn gather(pairs: impl Iterator<Item = (String, String)>) -> HashMap<String, String> {
    let mut fields: HashMap<String, String> = HashMap::new();
    for (name, value) in pairs {
        let name = name.strip_suffix("[]").map(str::to_string).unwrap_or(name);
        match fields.get_mut(&name) {
            Some(existing) if LIST_FIELDS.contains(&name.as_str()) => {
                existing.push('\n');
                existing.push_str(&value);
            }
            _ => {
                fields.insert(name, value);
            }
        }
    }
    fields
}

/// The post's fields: a form, or a JSON object whose values are flattened to strings.
fn read_fields(req: &HttpRequest, body: &[u8]) -> AppResult<HashMap<String, String>> {
    let is_json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !is_json {
        return Ok(gather(url::form_urlencoded::parse(body).into_owned()));
    }
    let object: serde_json::Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("invalid JSON: {e}")))?;
    Ok(gather(object.into_iter().map(|(k, v)| {
        let v = match v {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        };
        (k, v)
    })))
}

/// The account whose app key verifies the post's signature, with the sender the post names:
/// the account named by `?account=`, else any account with a live API user of that name (when
/// several have one, the signature tells which). `None` whatever the cause, so that the answer
/// never tells names apart.
fn resolve_account(
    conn: &mut crate::db::DbConn,
    account_name: Option<&str>,
    api_user: &str,
    (timestamp, token, signature): &(String, String, String),
) -> AppResult<Option<(Account, Sender)>> {
    let named = webhooks::api_users_named(conn, api_user)?;
    let candidates: Vec<Account> = match account_name {
        Some(name) => accounts::find_account_by_name(conn, name)?
            .into_iter()
            .collect(),
        None => {
            let mut ids: Vec<i64> = named.iter().map(|u| u.account_id).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                found.extend(accounts::get_account(conn, id)?);
            }
            found
        }
    };
    let verifies = |account: &Account| {
        let key = account.webhook_app_key.as_deref().unwrap_or("");
        !key.is_empty()
            && !token.is_empty()
            && sendcloud::signature_is_valid(key, timestamp, token, signature)
    };
    let Some(account) = candidates.into_iter().find(verifies) else {
        // As much work as a real check, so that the time taken tells nothing either.
        sendcloud::signature_is_valid("no such key", timestamp, token, signature);
        return Ok(None);
    };
    let mail_type = named
        .iter()
        .find(|u| u.account_id == account.id)
        .and_then(|u| MailType::from_i16(u.mail_type))
        .unwrap_or(MailType::Trigger);
    let sender = Sender {
        api_user: api_user.to_string(),
        mail_type,
    };
    Ok(Some((account, sender)))
}
