//! Times are stored as UTC milliseconds since the epoch and shown in the account's zone.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

/// Milliseconds since the Unix epoch, UTC: the stored form of every time.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

pub fn parse_zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// Formats a stored time in `zone` as `YYYY-MM-DD HH:MM:SS`, the way SendCloud shows times.
pub fn format_in_zone(ms: Millis, zone: &Tz) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => zone
            .from_utc_datetime(&t.naive_utc())
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => String::from("—"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_the_accounts_zone() {
        let zone = parse_zone("Asia/Shanghai").unwrap();
        // 2026-01-01T00:00:00Z is 08:00 in Shanghai.
        assert_eq!(
            format_in_zone(1_767_225_600_000, &zone),
            "2026-01-01 08:00:00"
        );
        assert!(parse_zone("Mars/Olympus").is_none());
    }
}
