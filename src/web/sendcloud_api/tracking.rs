//! Opens and clicks: `/apiv2/data/openOrClick` and `/apiv2/openandclick/list`.

use actix_web::web;
use serde::Serialize;
use serde_json::json;

use super::answer::{success, Answer, SendCloudError};
use super::call::Call;
use super::{code, LIST_MAX_DAYS};
use crate::domain::{Millis, TrackKind};
use crate::store::tracking::{self, TrackingFilter, TrackingRow};
use crate::web::{with_db, AppState};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TrackVo {
    track_type: i16,
    api_user: String,
    email: String,
    url: String,
    curr_time: String,
}

impl TrackVo {
    fn of(r: &TrackingRow, call: &Call) -> Self {
        TrackVo {
            track_type: r.kind.as_i16(),
            api_user: r.api_user.clone(),
            email: r.recipient.clone(),
            url: r.url.clone(),
            curr_time: call.time(r.occurred_at),
        }
    }
}

/// `/apiv2/data/openOrClick` and `/apiv2/openandclick/list`: opens (`trackType=1`) and clicks
/// (`2`) by `email` (any time) or window.
pub async fn open_or_click(state: web::Data<AppState>, call: Call) -> Answer {
    let kind = match call.params.get("trackType") {
        None => None,
        Some("1") => Some(TrackKind::Open),
        Some("2") => Some(TrackKind::Click),
        Some(_) => {
            return Err(SendCloudError::new(
                code::BAD_PARAMETER,
                "trackType 须为 1 (打开) 或 2 (点击)",
            ))
        }
    };
    let address = call.email()?;
    let (from_ms, to_ms) = match address {
        Some(_) => (Millis::MIN, Millis::MAX),
        None => call.required_window(LIST_MAX_DAYS)?,
    };
    let filter = TrackingFilter {
        from_ms,
        to_ms,
        kind,
        address,
        api_user: None,
        tag: call.param("labelId"),
    };
    let api_users = call.params.list("apiUserList")?;
    let page = call.page()?;
    let scope = call.caller.scope;
    let (total, rows) = with_db(&state, move |conn| {
        Ok((
            tracking::count(conn, &scope, &filter, &api_users)?,
            tracking::offset_page(conn, &scope, &filter, &api_users, page)?,
        ))
    })
    .await?;
    let data: Vec<TrackVo> = rows.iter().map(|r| TrackVo::of(r, &call)).collect();
    Ok(success(
        json!({"total": total, "count": data.len(), "dataList": data}),
    ))
}
