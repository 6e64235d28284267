//! SendCloud's API v2 for delivery data (`/apiv2/…`, ../shared/SENDCLOUD.md): the mail status,
//! the bounce, unsubscribe and spam-report lists and the opens and clicks, with SendCloud's
//! parameter names, envelope and field names, so that a SendCloud customer only changes the
//! host name. The data and the rules are the pages' and `/api/v1/suppressions`': the same store
//! calls, in the scope of the account whose API_USER key the call carries.
//!
//! A call names `apiUser` and `apiKey` (a mailtrail API_USER and its key) in the query string
//! or a form body, GET or POST alike. Errors answer HTTP 200 with `result: false`, an error
//! `statusCode` and a message, as SendCloud does, so that SendCloud clients read them; only a
//! failure on our side answers 5xx, in the same envelope.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{json, Value};

use super::api::ApiCaller;
use super::AppState;
use super::{with_db, AppError};
use crate::domain::{
    format_in_zone, now_ms, sub_stat_desc, EmailAddress, ListEntry, ListKind, Millis, Period,
    Reason, Status, TrackKind, UnsubscribeReason, MAX_PERIOD_DAYS,
};
use crate::store::lists::{self, AnyOf, ListFilter, ManualEntry};
use crate::store::models::Message;
use crate::store::status::{self, StatusFilter, StatusSelection};
use crate::store::tracking::{self, TrackingFilter, TrackingRow};
use crate::store::{accounts, OffsetPage};

/// SendCloud's labels (status, subStatDesc) and messages are Chinese.
const ZH: &str = "zh-CN";

/// The list calls' windows: SendCloud documents "at most three months" for them.
pub const LIST_MAX_DAYS: i64 = 90;
/// SendCloud's `limit`: 0–100, 100 when absent.
pub const MAX_LIMIT: i64 = 100;
/// At most this many values in one `;`-separated list, so that a call stays one indexed query.
pub const MAX_LIST_VALUES: usize = 1_000;

/// The `statusCode`s answered (README, "SendCloud API v2"). SendCloud's own codes keep their
/// meaning; the 400 9x codes are mailtrail's, for cases SendCloud documents no code for.
pub mod code {
    pub const OK: u32 = 200;
    pub const BAD_START: u32 = 40002;
    pub const BAD_LIMIT: u32 = 40004;
    pub const AUTH_FAILED: u32 = 40005;
    pub const BAD_DAYS: u32 = 40006;
    pub const BAD_START_DATE: u32 = 40007;
    pub const BAD_END_DATE: u32 = 40008;
    pub const EMAIL_MISSING: u32 = 40011;
    pub const BAD_EMAIL: u32 = 40012;
    pub const WINDOW_MISSING: u32 = 40090;
    pub const WINDOW_TOO_LONG: u32 = 40091;
    pub const BAD_PARAMETER: u32 = 40099;
    /// SendCloud's "interface frequency limited": too many calls by this API_USER.
    pub const RATE_LIMITED: u32 = 50000;
    /// mailtrail's own: something failed on our side (not the caller's doing).
    pub const SERVER_ERROR: u32 = 59900;
}

/// SendCloud API v2 calls per API_USER: `apiv2_calls_per_minute` in a burst, refilled evenly
/// over the minute. Over it, a call answers `50000`.
pub struct CallLimiter {
    limiter: Option<governor::DefaultKeyedRateLimiter<i64>>,
}

impl CallLimiter {
    pub fn new(settings: &crate::Settings) -> Self {
        let limiter = std::num::NonZeroU32::new(settings.apiv2_calls_per_minute)
            .map(|n| governor::RateLimiter::keyed(governor::Quota::per_minute(n)));
        CallLimiter { limiter }
    }

    /// Counts one call of API user `id`; false when its calls are exhausted for now.
    fn allow(&self, id: i64) -> bool {
        self.limiter
            .as_ref()
            .is_none_or(|l| l.check_key(&id).is_ok())
    }
}

/// An answer with `result: false`.
#[derive(Debug)]
pub struct SendCloudError {
    code: u32,
    message: String,
    status: StatusCode,
}

type Answer = Result<HttpResponse, SendCloudError>;

impl SendCloudError {
    fn new(code: u32, message: impl Into<String>) -> Self {
        SendCloudError {
            code,
            message: message.into(),
            status: StatusCode::OK,
        }
    }
}

impl std::fmt::Display for SendCloudError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl ResponseError for SendCloudError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut answer = HttpResponse::build(self.status);
        if self.code == code::RATE_LIMITED {
            answer.insert_header((header::RETRY_AFTER, "60"));
        }
        answer.json(envelope(false, self.code, &self.message, json!({})))
    }
}

/// Whatever fails below the web layer is ours, not the caller's: logged, answered 5xx.
impl From<AppError> for SendCloudError {
    fn from(e: AppError) -> Self {
        log::error!("apiv2: {e}");
        let (status, message) = match e {
            AppError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "服务暂时不可用, 请稍后重试",
            ),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "服务器内部错误"),
        };
        SendCloudError {
            code: code::SERVER_ERROR,
            message: message.into(),
            status,
        }
    }
}

fn envelope(result: bool, status_code: u32, message: &str, info: Value) -> Value {
    json!({"result": result, "statusCode": status_code, "message": message, "info": info})
}

fn success(info: Value) -> HttpResponse {
    HttpResponse::Ok().json(envelope(true, code::OK, "请求成功", info))
}

fn auth_failed() -> SendCloudError {
    SendCloudError::new(code::AUTH_FAILED, "认证失败")
}

/// The parameters of a call: the query string, then a form body. A name given twice takes
/// its last value; an empty value counts as absent.
struct Params(Vec<(String, String)>);

impl Params {
    fn read(req: &HttpRequest, body: &[u8]) -> Result<Params, SendCloudError> {
        let mut pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .into_owned()
                .collect();
        if !body.is_empty() {
            let multipart = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("multipart/"));
            if multipart {
                return Err(SendCloudError::new(
                    code::BAD_PARAMETER,
                    "参数请放在查询字符串或 application/x-www-form-urlencoded 表单中",
                ));
            }
            pairs.extend(url::form_urlencoded::parse(body).into_owned());
        }
        Ok(Params(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn list(&self, name: &str) -> Result<Vec<String>, SendCloudError> {
        split_list(self.get(name), MAX_LIST_VALUES).ok_or_else(|| {
            SendCloudError::new(
                code::BAD_PARAMETER,
                format!("{name} 最多 {MAX_LIST_VALUES} 个值"),
            )
        })
    }
}

/// `a;b;c` (also `[a;b]`, as SendCloud's own examples write it) without blanks and repeats;
/// None as soon as more than `max` distinct values are met. Linear in the input: repeats are
/// found with a set, and nothing past the cap is looked at.
fn split_list(raw: Option<&str>, max: usize) -> Option<Vec<String>> {
    let raw = raw.unwrap_or("");
    let inner = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    let mut seen = std::collections::HashSet::new();
    let mut values: Vec<String> = Vec::new();
    for v in inner.split(';').map(str::trim).filter(|v| !v.is_empty()) {
        if seen.insert(v) {
            if values.len() == max {
                return None;
            }
            values.push(v.to_string());
        }
    }
    Some(values)
}

/// `days` (1 is today, N the last N days including today) or `startDate` + `endDate`
/// (inclusive), at most `max_days` long; `None` when neither is given.
fn window(
    days: Option<&str>,
    start_date: Option<&str>,
    end_date: Option<&str>,
    today: NaiveDate,
    max_days: i64,
) -> Result<Option<Period>, SendCloudError> {
    let too_long = || {
        SendCloudError::new(
            code::WINDOW_TOO_LONG,
            format!("时间区间不能超过 {max_days} 天"),
        )
    };
    if let Some(days) = days {
        if start_date.is_some() || end_date.is_some() {
            return Err(SendCloudError::new(
                code::BAD_PARAMETER,
                "days 与 startDate/endDate 只能二选一",
            ));
        }
        let n: i64 = days
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| SendCloudError::new(code::BAD_DAYS, "days 须为大于 0 的整数"))?;
        if n > max_days {
            return Err(too_long());
        }
        return Ok(Some(Period {
            from: today - Duration::days(n - 1),
            to: today,
        }));
    }
    let date = |raw: Option<&str>, code: u32, name: &str| {
        let raw = raw.ok_or_else(|| {
            SendCloudError::new(
                code,
                format!("{name} 不能为空 (startDate 与 endDate 须同时给出)"),
            )
        })?;
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| SendCloudError::new(code, format!("{name} 格式不合法, 应为 yyyy-MM-dd")))
    };
    if start_date.is_none() && end_date.is_none() {
        return Ok(None);
    }
    let from = date(start_date, code::BAD_START_DATE, "startDate")?;
    let to = date(end_date, code::BAD_END_DATE, "endDate")?;
    if to < from {
        return Err(SendCloudError::new(
            code::BAD_END_DATE,
            "endDate 不能早于 startDate",
        ));
    }
    if (to - from).num_days() + 1 > max_days {
        return Err(too_long());
    }
    Ok(Some(Period { from, to }))
}

/// `start` (an offset, 0 when absent) and `limit` (0–100, 100 when absent).
fn offset_page(start: Option<&str>, limit: Option<&str>) -> Result<OffsetPage, SendCloudError> {
    let start = match start {
        None => 0,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| SendCloudError::new(code::BAD_START, "start 须为不小于 0 的整数"))?,
    };
    let limit = match limit {
        None => MAX_LIMIT,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                SendCloudError::new(
                    code::BAD_LIMIT,
                    format!("limit 须为 0 到 {MAX_LIMIT} 的整数"),
                )
            })?,
    };
    Ok(OffsetPage { start, limit })
}

/// An authenticated call: its parameters, its API user and its account's time zone.
struct Call {
    params: Params,
    caller: ApiCaller,
    zone: Tz,
}

impl Call {
    /// Reads the parameters and finds the live API user named `apiUser` whose key is `apiKey`.
    async fn open(
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

    fn param(&self, name: &str) -> Option<String> {
        self.params.get(name).map(str::to_string)
    }

    fn page(&self) -> Result<OffsetPage, SendCloudError> {
        offset_page(self.params.get("start"), self.params.get("limit"))
    }

    /// The window as UTC bounds `[from, to)`, days cut in the account's zone.
    fn window(&self, max_days: i64) -> Result<Option<(Millis, Millis)>, SendCloudError> {
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

    fn required_window(&self, max_days: i64) -> Result<(Millis, Millis), SendCloudError> {
        self.window(max_days)?.ok_or_else(|| {
            SendCloudError::new(
                code::WINDOW_MISSING,
                "请指定时间区间: days, 或 startDate 与 endDate",
            )
        })
    }

    /// `email`, checked and normalised like every address the lists compare.
    fn email(&self) -> Result<Option<String>, SendCloudError> {
        self.params
            .get("email")
            .map(|raw| {
                EmailAddress::parse(raw)
                    .map(|a| a.as_str().to_string())
                    .ok_or_else(|| SendCloudError::new(code::BAD_EMAIL, "email 格式不合法"))
            })
            .transpose()
    }

    fn required_email(&self) -> Result<String, SendCloudError> {
        self.email()?
            .ok_or_else(|| SendCloudError::new(code::EMAIL_MISSING, "email 不能为空"))
    }

    /// What a list or delete call selects: `email` (then the window is ignored), else the
    /// window, one of which is required.
    fn list_filter(&self) -> Result<ListFilter, SendCloudError> {
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

    fn time(&self, ms: Millis) -> String {
        format_in_zone(ms, &self.zone)
    }

    /// One page of a list, oldest first, as its `list` call selects it.
    async fn list_page(
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
    async fn delete(&self, state: &AppState, list: ListKind, filter: ListFilter) -> Answer {
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

fn domain_of(address: &str) -> String {
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
pub async fn email_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Answer {
    let call = Call::open(&state, &req, &body).await?;
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
    let mut outcomes = Vec::new();
    for raw in call.params.list("subStatus")? {
        let outcome = raw
            .parse::<u16>()
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
            })?;
        outcomes.push(outcome);
    }
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
pub async fn bounce_list(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Answer {
    let call = Call::open(&state, &req, &body).await?;
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
    Ok(success(json!({"count": data.len(), "dataList": data})))
}

/// `/apiv2/bounce/delete`: the entry of `email`, or every entry bounced in the window.
pub async fn bounce_delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Answer {
    let call = Call::open(&state, &req, &body).await?;
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
) -> Result<std::collections::HashMap<String, Vec<String>>, SendCloudError> {
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
pub async fn unsubscribe_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Answer {
    let call = Call::open(&state, &req, &body).await?;
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
    Ok(success(json!({"count": data.len(), "dataList": data})))
}

/// `/apiv2/unsubscribe/add`: adds `email` as the console's add does (source `api`, reason
/// `not_wanted`, the calling API_USER); answers the entry as stored.
pub async fn unsubscribe_add(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Answer {
    let call = Call::open(&state, &req, &body).await?;
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
        let since = std::collections::HashMap::from([(entry.address.clone(), now)]);
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
pub async fn unsubscribe_delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Answer {
    let call = Call::open(&state, &req, &body).await?;
    let filter = call.list_filter()?;
    call.delete(&state, ListKind::Unsubscribes, filter).await
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpamReportVo {
    receiver: String,
    reason: String,
    spam_reported_time: String,
    domain: String,
}

/// `/apiv2/spamreported/list`: the spam reports by `email` or window.
pub async fn spam_reported_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Answer {
    let call = Call::open(&state, &req, &body).await?;
    let entries = call
        .list_page(&state, ListKind::SpamReports, AnyOf::default())
        .await?;
    let reasons = complaint_reasons(&state, &call, &entries).await?;
    let data: Vec<SpamReportVo> = entries
        .iter()
        .zip(reasons)
        .map(|(e, reason)| SpamReportVo {
            receiver: e.address.clone(),
            reason,
            spam_reported_time: call.time(e.created_at),
            domain: domain_of(&e.address),
        })
        .collect();
    Ok(success(json!({"count": data.len(), "dataList": data})))
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
pub async fn complaint_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Answer {
    let call = Call::open(&state, &req, &body).await?;
    let entries = call
        .list_page(&state, ListKind::SpamReports, AnyOf::default())
        .await?;
    let reasons = complaint_reasons(&state, &call, &entries).await?;
    let data: Vec<ComplaintVo> = entries
        .iter()
        .zip(reasons)
        .map(|(e, reason)| ComplaintVo {
            email: e.address.clone(),
            reason,
            domain: domain_of(&e.address),
            complaint_time: call.time(e.created_at),
            expire_time: e.expires_at.map(|t| call.time(t)).unwrap_or_default(),
        })
        .collect();
    Ok(success(json!({"count": data.len(), "dataList": data})))
}

/// `/apiv2/complaint/delete`: the entry of `email`, or every complaint of a window.
pub async fn complaint_delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Answer {
    let call = Call::open(&state, &req, &body).await?;
    let filter = call.list_filter()?;
    call.delete(&state, ListKind::SpamReports, filter).await
}

/// `/apiv2/spamreported/delete`: one address only, as SendCloud has it: deleting complaints
/// in bulk invites second ones.
pub async fn spam_reported_delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Answer {
    let call = Call::open(&state, &req, &body).await?;
    let filter = ListFilter {
        address: Some(call.required_email()?),
        ..ListFilter::default()
    };
    call.delete(&state, ListKind::SpamReports, filter).await
}

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
pub async fn open_or_click(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Answer {
    let call = Call::open(&state, &req, &body).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn code_of<T: std::fmt::Debug>(r: Result<T, SendCloudError>) -> u32 {
        r.expect_err("an error").code
    }

    #[test]
    fn windows_follow_sendcloud() {
        let today = d("2026-11-27");
        assert_eq!(window(None, None, None, today, 30).unwrap(), None);
        assert_eq!(
            window(Some("1"), None, None, today, 30).unwrap(),
            Some(Period::today(today))
        );
        assert_eq!(
            window(Some("30"), None, None, today, 30).unwrap(),
            Some(Period {
                from: d("2026-10-29"),
                to: today
            })
        );
        assert_eq!(
            code_of(window(Some("31"), None, None, today, 30)),
            code::WINDOW_TOO_LONG
        );
        assert_eq!(
            code_of(window(Some("0"), None, None, today, 30)),
            code::BAD_DAYS
        );
        assert_eq!(
            code_of(window(Some("x"), None, None, today, 30)),
            code::BAD_DAYS
        );
        assert_eq!(
            code_of(window(Some("99999999999999"), None, None, today, 30)),
            code::WINDOW_TOO_LONG
        );
        assert_eq!(
            window(None, Some("2026-11-01"), Some("2026-11-30"), today, 30).unwrap(),
            Some(Period {
                from: d("2026-11-01"),
                to: d("2026-11-30")
            })
        );
        assert_eq!(
            code_of(window(
                None,
                Some("2026-11-01"),
                Some("2026-12-01"),
                today,
                30
            )),
            code::WINDOW_TOO_LONG
        );
        assert_eq!(
            code_of(window(None, Some("2026-11-01"), None, today, 30)),
            code::BAD_END_DATE
        );
        assert_eq!(
            code_of(window(None, None, Some("2026-11-01"), today, 30)),
            code::BAD_START_DATE
        );
        assert_eq!(
            code_of(window(
                None,
                Some("2026/11/01"),
                Some("2026-11-02"),
                today,
                30
            )),
            code::BAD_START_DATE
        );
        assert_eq!(
            code_of(window(
                None,
                Some("2026-11-05"),
                Some("2026-11-02"),
                today,
                30
            )),
            code::BAD_END_DATE
        );
        assert_eq!(
            code_of(window(Some("1"), Some("2026-11-05"), None, today, 30)),
            code::BAD_PARAMETER
        );
    }

    #[test]
    fn paging_and_lists() {
        assert_eq!(
            offset_page(None, None).unwrap(),
            OffsetPage {
                start: 0,
                limit: 100
            }
        );
        assert_eq!(
            offset_page(Some("200"), Some("0")).unwrap(),
            OffsetPage {
                start: 200,
                limit: 0
            }
        );
        assert_eq!(code_of(offset_page(Some("-1"), None)), code::BAD_START);
        assert_eq!(code_of(offset_page(None, Some("101"))), code::BAD_LIMIT);
        assert_eq!(code_of(offset_page(None, Some("ten"))), code::BAD_LIMIT);
        assert_eq!(
            split_list(Some("a; b;;a;c"), 10).unwrap(),
            vec!["a", "b", "c"]
        );
        assert_eq!(split_list(Some("[x;y]"), 10).unwrap(), vec!["x", "y"]);
        assert!(split_list(None, 10).unwrap().is_empty());
        assert!(split_list(Some("a;b;a;b"), 2).is_some());
        assert!(split_list(Some("a;b;c"), 2).is_none());
        assert_eq!(label_id(None), json!(0));
        assert_eq!(label_id(Some("42")), json!(42));
        assert_eq!(label_id(Some("welcome")), json!("welcome"));
    }
}
