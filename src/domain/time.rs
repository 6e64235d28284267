//! Times are stored as UTC milliseconds since the epoch and shown in the account's zone.

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
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
/// Exports call this twice a row, so the digits are laid out directly instead of through a
/// format string that would be parsed again on every call.
pub fn format_in_zone(ms: Millis, zone: &Tz) -> String {
    let Some(t) = DateTime::<Utc>::from_timestamp_millis(ms) else {
        return String::from("—");
    };
    let local = zone.from_utc_datetime(&t.naive_utc()).naive_local();
    let year = local.year();
    if !(0..=9999).contains(&year) {
        return local.format("%Y-%m-%d %H:%M:%S").to_string();
    }
    let mut out = String::with_capacity(19);
    push_digits(&mut out, year as u32, 4);
    out.push('-');
    push_digits(&mut out, local.month(), 2);
    out.push('-');
    push_digits(&mut out, local.day(), 2);
    out.push(' ');
    push_digits(&mut out, local.hour(), 2);
    out.push(':');
    push_digits(&mut out, local.minute(), 2);
    out.push(':');
    push_digits(&mut out, local.second(), 2);
    out
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn push_digits(out: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        out.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
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

    proptest::proptest! {
        #[test]
        fn lays_out_the_same_text_as_chrono(
            ms in -80_000_000_000_000i64..300_000_000_000_000,
            zone in proptest::sample::select(vec!["Asia/Shanghai", "America/New_York", "Asia/Kolkata", "UTC"]),
        ) {
            let zone = parse_zone(zone).unwrap();
            let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
            let expected = zone.from_utc_datetime(&t.naive_utc()).format("%Y-%m-%d %H:%M:%S").to_string();
            proptest::prop_assert_eq!(format_in_zone(ms, &zone), expected);
        }
    }
}
