//! Rules of the suppression lists that need no database (DESIGN §3).

use super::Millis;

const HOUR_MS: Millis = 3_600_000;
const DAY_MS: Millis = 24 * HOUR_MS;

/// How long the n-th bounce of an address suppresses it: 1 h, 4 h, 8 h, 1 d, then 2^(n-1)
/// days, at most 180 days.
pub fn bounce_backoff_ms(n: i32) -> Millis {
    match n {
        i32::MIN..=1 => HOUR_MS,
        2 => 4 * HOUR_MS,
        3 => 8 * HOUR_MS,
        4 => DAY_MS,
        n => {
            let days = 1i64
                .checked_shl((n - 1) as u32)
                .unwrap_or(i64::MAX)
                .min(180);
            days * DAY_MS
        }
    }
}

/// A spam report suppresses for 180 days.
pub const SPAM_REPORT_TTL_MS: Millis = 180 * DAY_MS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(bounce_backoff_ms(1), HOUR_MS);
        assert_eq!(bounce_backoff_ms(2), 4 * HOUR_MS);
        assert_eq!(bounce_backoff_ms(3), 8 * HOUR_MS);
        assert_eq!(bounce_backoff_ms(4), DAY_MS);
        assert_eq!(bounce_backoff_ms(5), 16 * DAY_MS);
        assert_eq!(bounce_backoff_ms(9), 180 * DAY_MS);
        assert_eq!(bounce_backoff_ms(500), 180 * DAY_MS);
    }
}
