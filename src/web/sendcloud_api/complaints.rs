//! The spam-report list under both its names: `/apiv2/spamreported/…` and
//! `/apiv2/complaint/…`.

use actix_web::web;
use serde::Serialize;

use super::answer::{data_list, Answer, SendCloudError};
use super::call::Call;
use super::lists::domain_of;
use super::ZH;
use crate::domain::{ListEntry, ListKind, UnsubscribeReason};
use crate::store::lists::{AnyOf, ListFilter};
use crate::web::{with_db, AppState};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpamReportVo {
    receiver: String,
    reason: String,
    spam_reported_time: String,
    domain: String,
}

/// `/apiv2/spamreported/list`: the spam reports by `email` or window.
pub async fn spam_reported_list(state: web::Data<AppState>, call: Call) -> Answer {
    let data: Vec<SpamReportVo> = complaints(&state, &call)
        .await?
        .into_iter()
        .map(|(e, reason)| SpamReportVo {
            receiver: e.address.clone(),
            reason,
            spam_reported_time: call.time(e.created_at),
            domain: domain_of(&e.address),
        })
        .collect();
    Ok(data_list(&data))
}

/// One page of the spam-report list, as its `list` call selects it, each entry with its reason.
async fn complaints(
    state: &AppState,
    call: &Call,
) -> Result<Vec<(ListEntry, String)>, SendCloudError> {
    let entries = call
        .list_page(state, ListKind::SpamReports, AnyOf::default())
        .await?;
    let reasons = complaint_reasons(state, call, &entries).await?;
    Ok(entries.into_iter().zip(reasons).collect())
}

/// Where each complaint came from, in words, never empty: the recipient's unsubscribe with
/// reason spam or fraud (its words), else a spam report by the recipient (the mailbox
/// provider's feedback loop, SendCloud's `report_spam`, or an ARF report).
async fn complaint_reasons(
    state: &AppState,
    call: &Call,
    entries: &[ListEntry],
) -> Result<Vec<String>, SendCloudError> {
    let addresses: Vec<String> = entries.iter().map(|e| e.address.clone()).collect();
    let scope = call.caller.scope;
    let unsubscribes = if addresses.is_empty() {
        Vec::new()
    } else {
        with_db(state, move |conn| {
            Ok(crate::store::lists::entries_for_addresses(
                conn, &scope, &addresses,
            )?)
        })
        .await?
    };
    Ok(entries
        .iter()
        .map(|e| {
            let by_unsubscribe = unsubscribes
                .iter()
                .filter(|u| u.list == ListKind::Unsubscribes && u.address == e.address)
                .filter(|u| u.created_at == e.created_at)
                .filter_map(|u| u.reason.as_deref().and_then(UnsubscribeReason::from_code))
                .find(|r| r.is_complaint());
            let source = match by_unsubscribe {
                Some(r) => format!("取消订阅: {}", r.label(ZH)),
                None => "收件人举报垃圾邮件".to_string(),
            };
            match e.email_id.as_deref() {
                Some(id) => format!("{source} (emailId: {id})"),
                None => source,
            }
        })
        .collect())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ComplaintVo {
    email: String,
    reason: String,
    domain: String,
    complaint_time: String,
    expire_time: String,
}

/// `/apiv2/complaint/list`, the current name of the spam-report list, with its field names.
pub async fn complaint_list(state: web::Data<AppState>, call: Call) -> Answer {
    let data: Vec<ComplaintVo> = complaints(&state, &call)
        .await?
        .into_iter()
        .map(|(e, reason)| ComplaintVo {
            email: e.address.clone(),
            reason,
            domain: domain_of(&e.address),
            complaint_time: call.time(e.created_at),
            expire_time: e.expires_at.map(|t| call.time(t)).unwrap_or_default(),
        })
        .collect();
    Ok(data_list(&data))
}

/// `/apiv2/complaint/delete`: the entry of `email`, or every complaint of a window.
pub async fn complaint_delete(state: web::Data<AppState>, call: Call) -> Answer {
    let filter = call.list_filter()?;
    call.delete(&state, ListKind::SpamReports, filter).await
}

/// `/apiv2/spamreported/delete`: one address only, as SendCloud has it: deleting complaints
/// in bulk invites second ones.
pub async fn spam_reported_delete(state: web::Data<AppState>, call: Call) -> Answer {
    let filter = ListFilter {
        address: Some(call.required_email()?),
        ..ListFilter::default()
    };
    call.delete(&state, ListKind::SpamReports, filter).await
}
