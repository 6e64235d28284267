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

mod answer;
mod call;
mod complaints;
mod email_status;
mod lists;
mod params;
mod tracking;

pub use answer::SendCloudError;
pub use complaints::{complaint_delete, complaint_list, spam_reported_delete, spam_reported_list};
pub use email_status::email_status;
pub use lists::{
    bounce_delete, bounce_list, unsubscribe_add, unsubscribe_delete, unsubscribe_list,
};
pub use tracking::open_or_click;
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
