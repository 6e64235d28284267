//! Plain types of the product, with no I/O: the codes that are contract live here once.

mod address;
pub mod alerts;
mod export;
mod lists;
mod period;
pub mod providers;
mod redact;
mod secret;
mod status;
mod time;
pub mod token;
mod user_agent;

pub use address::{mask_address, normalize_address, AddressProblem, EmailAddress};
pub use export::ExportFormat;
pub use lists::{
    bounce_backoff_ms, suppression_among, ListEntry, ListKind, Suppression, TrackKind,
    SPAM_REPORT_TTL_MS,
};
pub use period::{day_start, Period, PeriodError, MAX_PERIOD_DAYS};
pub use redact::{
    export_cell, export_record, log_text, mask_addresses_in, neutralise_formula, redact_target,
};
pub use secret::{
    constant_time_eq, dummy_password_hash, hash_api_key, hash_password, new_api_key, random_token,
    verify_password,
};
pub use status::{sub_stat_desc, MailType, Reason, Role, Status, UnsubscribeReason};
pub use time::{format_in_zone, now_ms, parse_zone, Millis, DEFAULT_TIME_ZONE};
pub use user_agent::browser_and_os;
