//! An authenticated call: its API user found by `apiUser` + `apiKey`, the rate limit, and
//! what its parameters select.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::Utc;
use chrono_tz::Tz;
use futures_util::future::LocalBoxFuture;
use serde_json::json;

use super::answer::{auth_failed, success, Answer, SendCloudError};
use super::params::{offset_page, window, Params};
use super::{code, LIST_MAX_DAYS};
use crate::domain::{format_in_zone, now_ms, EmailAddress, ListEntry, ListKind, Millis};
use crate::store::lists::{self, AnyOf, ListFilter};
use crate::store::{accounts, OffsetPage};
use crate::web::api::ApiCaller;
use crate::web::{with_db, AppState};

/// An authenticated call: its parameters, its API user and its account's time zone.
pub struct Call {
    pub(super) params: Params,
    pub(super) caller: ApiCaller,
    zone: Tz,
}

/// A handler's call: the body read as `web::Bytes` reads it (within the same limit), then
/// [`Call::open`]; a refusal answers in SendCloud's envelope.
impl FromRequest for Call {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Call, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = body.await?;
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| SendCloudError::from(crate::web::AppError::internal("no state")))?;
            Ok(Call::open(&state, &req, &body).await?)
        })
    }
}

impl Call {
    /// Reads the parameters and finds the live API user named `apiUser` whose key is `apiKey`.
    pub(super) async fn open(
        state: &AppState,
        req: &HttpRequest,
        body: &[u8],
    ) -> Result<Call, SendCloudError> {
        let params = Params::read(req, body)?;
        let (Some(name), Some(key)) = (params.get("apiUser"), params.get("apiKey")) else {
            return Err(auth_failed());
        };
        let (name, key) = (name.to_string(), key.to_string());
        let found = with_db(state, move |conn| {
            let Some(api_user) = accounts::api_user_by_key(conn, &key)?.filter(|u| u.name == name)
            else {
                return Ok(None);
            };
            let account = accounts::get_account(conn, api_user.account_id)?;
            Ok(account.map(|a| (api_user, a.zone())))
        })
        .await?;
        let (api_user, zone) = found.ok_or_else(auth_failed)?;
        if !state.apiv2_limiter.allow(api_user.id) {
            return Err(SendCloudError::new(
                code::RATE_LIMITED,
                "接口调用频率受限, 请稍后重试",
            ));
        }
        Ok(Call {
            params,
            caller: ApiCaller::of(api_user),
            zone,
        })
    }

    pub(super) fn param(&self, name: &str) -> Option<String> {
        self.params.get(name).map(str::to_string)
    }

    pub(super) fn page(&self) -> Result<OffsetPage, SendCloudError> {
        offset_page(self.params.get("start"), self.params.get("limit"))
    }

    /// The window as UTC bounds `[from, to)`, days cut in the account's zone.
    pub(super) fn window(&self, max_days: i64) -> Result<Option<(Millis, Millis)>, SendCloudError> {
        let today = Utc::now().with_timezone(&self.zone).date_naive();
        let period = window(
            self.params.get("days"),
            self.params.get("startDate"),
            self.params.get("endDate"),
            today,
            max_days,
        )?;
        Ok(period.map(|p| p.bounds(&self.zone)))
    }

    pub(super) fn required_window(
        &self,
        max_days: i64,
    ) -> Result<(Millis, Millis), SendCloudError> {
        self.window(max_days)?.ok_or_else(|| {
            SendCloudError::new(
                code::WINDOW_MISSING,
                "请指定时间区间: days, 或 startDate 与 endDate",
            )
        })
    }

    /// `email`, checked and normalised like every address the lists compare.
    pub(super) fn email(&self) -> Result<Option<String>, SendCloudError> {
        self.params
            .get("email")
            .map(|raw| {
                EmailAddress::parse(raw)
                    .map(|a| a.as_str().to_string())
                    .ok_or_else(|| SendCloudError::new(code::BAD_EMAIL, "email 格式不合法"))
            })
            .transpose()
    }

    pub(super) fn required_email(&self) -> Result<String, SendCloudError> {
        self.email()?
            .ok_or_else(|| SendCloudError::new(code::EMAIL_MISSING, "email 不能为空"))
    }

    /// What a list or delete call selects: `email` (then the window is ignored), else the
    /// window, one of which is required.
    pub(super) fn list_filter(&self) -> Result<ListFilter, SendCloudError> {
        if let Some(address) = self.email()? {
            return Ok(ListFilter {
                address: Some(address),
                ..ListFilter::default()
            });
        }
        let (from_ms, to_ms) = self.window(LIST_MAX_DAYS)?.ok_or_else(|| {
            SendCloudError::new(
                code::WINDOW_MISSING,
                "请指定 email, 或时间区间: days, 或 startDate 与 endDate",
            )
        })?;
        Ok(ListFilter {
            from_ms: Some(from_ms),
            to_ms: Some(to_ms),
            ..ListFilter::default()
        })
    }

    pub(super) fn time(&self, ms: Millis) -> String {
        format_in_zone(ms, &self.zone)
    }

    /// One page of a list, oldest first, as its `list` call selects it.
    pub(super) async fn list_page(
        &self,
        state: &AppState,
        list: ListKind,
        any: AnyOf,
    ) -> Result<Vec<ListEntry>, SendCloudError> {
        let filter = self.list_filter()?;
        let page = self.page()?;
        let scope = self.caller.scope;
        Ok(with_db(state, move |conn| {
            Ok(lists::offset_page(
                conn,
                &scope,
                list,
                &filter,
                &any,
                page,
                now_ms(),
            )?)
        })
        .await?)
    }

    /// Deletes what the filter matches through the store call the list pages and
    /// `/api/v1/suppressions` delete with; answers SendCloud's `{count}`.
    pub(super) async fn delete(
        &self,
        state: &AppState,
        list: ListKind,
        filter: ListFilter,
    ) -> Answer {
        let scope = self.caller.scope;
        let count = with_db(state, move |conn| {
            Ok(lists::delete_matching(
                conn,
                &scope,
                list,
                &filter,
                now_ms(),
            )?)
        })
        .await?;
        Ok(success(json!({ "count": count })))
    }
}
