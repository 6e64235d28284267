//! `/apiv2/data/emailStatus`: the status table.

use actix_web::web;
use serde::Serialize;
use serde_json::json;

use super::answer::{success, Answer, SendCloudError};
use super::call::Call;
use super::{code, ZH};
use crate::domain::{sub_stat_desc, Reason, Status, MAX_PERIOD_DAYS};
use crate::store::models::Message;
use crate::store::status::{self, StatusFilter, StatusSelection};
use crate::store::OffsetPage;
use crate::web::{with_db, AppState};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmailStatusVo {
    email_id: String,
    status: &'static str,
    api_user: String,
    recipients: String,
    request_time: String,
    modified_time: String,
    /// The receiving server's reply; without one, the rule the status rests on (for a
    /// suppressed message, the entry that suppressed it).
    send_log: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_stat: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_stat_desc: Option<&'static str>,
    /// The recipient's mailbox provider (ours, beyond SendCloud's fields).
    provider: String,
}

impl EmailStatusVo {
    fn of(m: &Message, call: &Call) -> Self {
        let status = m.status();
        let failure = m.reason().and_then(|r| {
            let code = r.sub_stat(status)?;
            Some((code, sub_stat_desc(code)?))
        });
        EmailStatusVo {
            email_id: m.email_id.clone(),
            status: status.label(ZH),
            api_user: m.api_user.clone(),
            recipients: m.recipient.clone(),
            request_time: call.time(m.requested_at),
            modified_time: call.time(m.updated_at),
            send_log: m
                .smtp_reply
                .clone()
                .or_else(|| m.rule.clone())
                .unwrap_or_default(),
            sub_stat: failure.map(|(code, _)| code),
            sub_stat_desc: failure.map(|(_, desc)| desc),
            provider: m.provider.clone(),
        }
    }
}

/// SendCloud's `status` codes of `emailStatus`: 1 送达, 4 无效邮件, 5 软退信, 18 请求中.
fn status_of_code(raw: &str) -> Option<Status> {
    Some(match raw {
        "1" => Status::Delivered,
        "4" => Status::Invalid,
        "5" => Status::SoftBounce,
        "18" => Status::Requesting,
        _ => return None,
    })
}

/// `/apiv2/data/emailStatus`: the status table of a window of at most 30 days, as `/status`
/// shows it.
pub async fn email_status(state: web::Data<AppState>, call: Call) -> Answer {
    let (selection, page) = selection(&call)?;
    let scope = call.caller.scope;
    let (total, rows) = with_db(&state, move |conn| {
        Ok((
            status::total(conn, &scope, &selection)?,
            status::offset_page(conn, &scope, &selection, page)?,
        ))
    })
    .await?;
    let vo_list: Vec<EmailStatusVo> = rows.iter().map(|m| EmailStatusVo::of(m, &call)).collect();
    // SendCloud answers `total` as a string and `voListSize` as a number; clients read both so.
    Ok(success(json!({
        "total": total.to_string(),
        "voListSize": vo_list.len(),
        "voList": vo_list,
    })))
}

/// What the call selects and which page of it, its parameters checked in this order.
fn selection(call: &Call) -> Result<(StatusSelection, OffsetPage), SendCloudError> {
    let (from_ms, to_ms) = call.required_window(MAX_PERIOD_DAYS)?;
    let page = call.page()?;
    let status = match call.params.get("status") {
        None => None,
        Some(raw) => Some(status_of_code(raw).ok_or_else(|| {
            SendCloudError::new(
                code::BAD_PARAMETER,
                "status 须为 1 (送达), 4 (无效邮件), 5 (软退信) 或 18 (请求中)",
            )
        })?),
    };
    let outcomes = call
        .params
        .list("subStatus")?
        .iter()
        .map(|raw| outcome_of_code(raw))
        .collect::<Result<Vec<_>, _>>()?;
    // With `status` too, both apply: a subStatus of another status selects nothing.
    let tag = match (call.param("labelId"), call.param("labelName")) {
        (Some(_), Some(_)) => {
            return Err(SendCloudError::new(
                code::BAD_PARAMETER,
                "labelId 与 labelName 只能二选一",
            ))
        }
        (id, name) => name.or(id),
    };
    let selection = StatusSelection {
        filter: StatusFilter {
            from_ms,
            to_ms,
            recipient: call.email()?,
            tag,
            status,
            ..StatusFilter::default()
        },
        email_ids: call.params.list("emailIds")?,
        api_users: call.params.list("apiUserList")?,
        outcomes,
    };
    Ok((selection, page))
}

/// A `subStatus` code: SendCloud's numbers for a status and its reason.
fn outcome_of_code(raw: &str) -> Result<(Status, Reason), SendCloudError> {
    raw.parse::<u16>()
        .ok()
        .and_then(Reason::from_sub_stat)
        .ok_or_else(|| {
            SendCloudError::new(
                code::BAD_PARAMETER,
                format!(
                    "subStatus 含无效的代码 {:?}",
                    raw.chars().take(12).collect::<String>()
                ),
            )
        })
}
