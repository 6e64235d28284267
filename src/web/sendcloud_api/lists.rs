//! The bounce and unsubscribe lists: `/apiv2/bounce/…`, `/apiv2/unsubscribe/…`.

use std::collections::HashMap;

use actix_web::web;
use serde::Serialize;
use serde_json::{json, Value};

use super::answer::{data_list, success, Answer, SendCloudError};
use super::call::Call;
use super::{code, ZH};
use crate::domain::{now_ms, EmailAddress, ListEntry, ListKind, UnsubscribeReason};
use crate::store::lists::{self, AnyOf, ManualEntry};
use crate::web::{with_db, AppError, AppState};

pub(super) fn domain_of(address: &str) -> String {
    EmailAddress::parse(address)
        .map(|a| a.domain().to_string())
        .unwrap_or_default()
}

/// SendCloud's labelId is a number (0: none). Tags that came from SendCloud's webhook are its
/// label ids and answer as numbers; any other tag answers as the string it is.
fn label_id(tag: Option<&str>) -> Value {
    match tag {
        None => json!(0),
        Some(t) => t
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| json!(t)),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BounceVo {
    email: String,
    reason: String,
    bounce_time: String,
    /// When the entry stops blocking sends (the bounce list backs off with each bounce).
    expire_time: String,
    domain: String,
}

/// `/apiv2/bounce/list`: the bounce list by `email` or window.
pub async fn bounce_list(state: web::Data<AppState>, call: Call) -> Answer {
    let entries = call
        .list_page(&state, ListKind::Bounces, AnyOf::default())
        .await?;
    let data: Vec<BounceVo> = entries
        .iter()
        .map(|e| BounceVo {
            email: e.address.clone(),
            reason: e.reason.clone().unwrap_or_default(),
            bounce_time: call.time(e.created_at),
            expire_time: e.expires_at.map(|t| call.time(t)).unwrap_or_default(),
            domain: domain_of(&e.address),
        })
        .collect();
    Ok(data_list(&data))
}

/// `/apiv2/bounce/delete`: the entry of `email`, or every entry bounced in the window.
pub async fn bounce_delete(state: web::Data<AppState>, call: Call) -> Answer {
    let filter = call.list_filter()?;
    call.delete(&state, ListKind::Bounces, filter).await
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UnsubscribeVo {
    email: String,
    domain: String,
    label_id: Value,
    label_name: String,
    api_user: String,
    unsubscribe_time: String,
    /// 0 我不想再收到此类邮件, 1 这不是我订阅的, 2 这是垃圾邮件, 3 这是欺诈邮件.
    unsubscribe_type: i16,
    unsubscribe_type_desc: &'static str,
}

impl UnsubscribeVo {
    /// `labels`: the tags of the message the recipient unsubscribed from, when known: its
    /// SendCloud label id (a number) and label name.
    fn of(e: &ListEntry, labels: &[String], call: &Call) -> Self {
        let mut tags: Vec<&str> = e.tag.as_deref().into_iter().collect();
        tags.extend(labels.iter().map(String::as_str));
        let id = tags.iter().find(|t| t.parse::<i64>().is_ok()).copied();
        let name = tags.iter().find(|t| t.parse::<i64>().is_err()).copied();
        let reason = e
            .reason
            .as_deref()
            .and_then(UnsubscribeReason::from_code)
            .unwrap_or(UnsubscribeReason::NotWanted);
        UnsubscribeVo {
            email: e.address.clone(),
            domain: domain_of(&e.address),
            label_id: label_id(id),
            label_name: name.unwrap_or_default().to_string(),
            api_user: e.api_user.clone().unwrap_or_default(),
            unsubscribe_time: call.time(e.created_at),
            unsubscribe_type: reason.as_i16() - 1,
            unsubscribe_type_desc: reason.label(ZH),
        }
    }
}

/// The tags of the messages these entries came from, by emailId: one query for a page.
async fn labels_of(
    state: &AppState,
    call: &Call,
    entries: &[ListEntry],
) -> Result<HashMap<String, Vec<String>>, SendCloudError> {
    let ids: Vec<String> = entries.iter().filter_map(|e| e.email_id.clone()).collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let scope = call.caller.scope;
    let messages = with_db(state, move |conn| {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        Ok(crate::store::events::messages_by_email_ids(
            conn, &scope, &ids,
        )?)
    })
    .await?;
    Ok(messages
        .into_iter()
        .map(|m| {
            let tags = m.tag_list().into_iter().map(str::to_string).collect();
            (m.email_id, tags)
        })
        .collect())
}

/// `/apiv2/unsubscribe/list`: the unsubscribe list by `email` or window, narrowed by
/// `apiUserList` and `labelIdList`.
pub async fn unsubscribe_list(state: web::Data<AppState>, call: Call) -> Answer {
    let (ids, names) = (
        call.params.list("labelIdList")?,
        call.params.list("labelNameList")?,
    );
    if !ids.is_empty() && !names.is_empty() {
        return Err(SendCloudError::new(
            code::BAD_PARAMETER,
            "labelIdList 与 labelNameList 只能二选一",
        ));
    }
    let any = AnyOf {
        api_users: call.params.list("apiUserList")?,
        tags: if names.is_empty() { ids } else { names },
    };
    let entries = call.list_page(&state, ListKind::Unsubscribes, any).await?;
    let labels = labels_of(&state, &call, &entries).await?;
    let data: Vec<UnsubscribeVo> = entries
        .iter()
        .map(|e| {
            let tags = e.email_id.as_ref().and_then(|id| labels.get(id));
            UnsubscribeVo::of(e, tags.map(Vec::as_slice).unwrap_or(&[]), &call)
        })
        .collect();
    Ok(data_list(&data))
}

/// `/apiv2/unsubscribe/add`: adds `email` as the console's add does (source `api`, reason
/// `not_wanted`, the calling API_USER); answers the entry as stored.
pub async fn unsubscribe_add(state: web::Data<AppState>, call: Call) -> Answer {
    let entry = ManualEntry {
        list: ListKind::Unsubscribes,
        address: call.required_email()?,
        reason: None,
        expires_at: None,
        api_user: Some(call.caller.sender.api_user.clone()),
        source: "api",
    };
    let scope = call.caller.scope;
    let stored = with_db(&state, move |conn| {
        let now = now_ms();
        let stored = lists::add(conn, &scope, &entry, now)?;
        let since = HashMap::from([(entry.address.clone(), now)]);
        crate::ingest::suppress::catch_up(conn, &scope, &since, now)?;
        Ok(stored)
    })
    .await?
    .ok_or_else(|| AppError::internal("an added unsubscribe was not found again"))?;
    Ok(success(
        json!({"data": UnsubscribeVo::of(&stored, &[], &call)}),
    ))
}

/// `/apiv2/unsubscribe/delete`: the entry of `email`, or every entry of the window.
pub async fn unsubscribe_delete(state: web::Data<AppState>, call: Call) -> Answer {
    let filter = call.list_filter()?;
    call.delete(&state, ListKind::Unsubscribes, filter).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_ids_are_numbers_when_they_can_be() {
        assert_eq!(label_id(None), json!(0));
        assert_eq!(label_id(Some("42")), json!(42));
        assert_eq!(label_id(Some("welcome")), json!("welcome"));
    }
}
