//! `POST /webhooks/sendcloud`: SendCloud's event posts (../shared/SENDCLOUD.md).
//!
//! Whose post is it? SendCloud signs with the account's app key but does not name the
//! account, so the receiver finds it by `?account=NAME` in the webhook URL when given, else by
//! the post's `apiUser` when exactly one account has an API user of that name.

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
    let api_user = get("apiUser");
    let (account, sender) = with_db(&state, move |conn| {
        resolve_account(conn, account_name.as_deref(), &api_user)
    })
    .await?;

    let (timestamp, token) = (get("timestamp"), get("token"));
    let app_key = account.webhook_app_key.as_deref().unwrap_or("");
    if app_key.is_empty()
        || token.is_empty()
        || !sendcloud::signature_is_valid(app_key, &timestamp, &token, &get("signature"))
    {
        log::warn!(
            "sendcloud webhook for account {}: bad signature, post dropped",
            account.name
        );
        return Err(AppError::forbidden("bad signature"));
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
            conn,
            &scope,
            &sender,
            &token,
            &events,
            now_ms(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(match received {
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
    }))
}

/// The post's fields: a form, or a JSON object whose values are flattened to strings.
fn read_fields(req: &HttpRequest, body: &[u8]) -> AppResult<HashMap<String, String>> {
    let is_json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !is_json {
        return Ok(url::form_urlencoded::parse(body).into_owned().collect());
    }
    let object: serde_json::Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("invalid JSON: {e}")))?;
    Ok(object
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

fn resolve_account(
    conn: &mut crate::db::DbConn,
    account_name: Option<&str>,
    api_user: &str,
) -> AppResult<(Account, Sender)> {
    let named = webhooks::api_users_named(conn, api_user)?;
    let account =
        match account_name {
            Some(name) => accounts::find_account_by_name(conn, name)?
                .ok_or_else(|| AppError::forbidden("unknown account"))?,
            None => {
                let mut ids: Vec<i64> = named.iter().map(|u| u.account_id).collect();
                ids.sort_unstable();
                ids.dedup();
                match ids.as_slice() {
                    [id] => accounts::get_account(conn, *id)?
                        .ok_or_else(|| AppError::forbidden("unknown account"))?,
                    [] => return Err(AppError::forbidden("unknown apiUser")),
                    _ => return Err(AppError::bad_request(
                        "several accounts have this apiUser: add ?account=NAME to the webhook URL",
                    )),
                }
            }
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
    Ok((account, sender))
}
