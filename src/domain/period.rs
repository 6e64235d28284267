//! A period of whole days, as the list pages filter by: `from` and `to` inclusive, at most
//! 30 days (DESIGN §7), cut at midnight in the account's time zone.

use chrono::{Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;

use super::Millis;

pub const MAX_PERIOD_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// What is wrong with a period, field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodError {
    BadFrom,
    BadTo,
    Reversed,
    TooLong,
}

impl Period {
    /// Reads `YYYY-MM-DD` dates; a missing date defaults to `today` (the other end for `from`
    /// when only `to` is given).
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        today: NaiveDate,
    ) -> Result<Period, PeriodError> {
        let read = |s: Option<&str>, err| match s.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| err),
        };
        let from = read(from, PeriodError::BadFrom)?;
        let to = read(to, PeriodError::BadTo)?;
        let (from, to) = match (from, to) {
            (Some(f), Some(t)) => (f, t),
            (Some(f), None) => (f, today.max(f)),
            (None, Some(t)) => (t, t),
            (None, None) => (today, today),
        };
        if to < from {
            return Err(PeriodError::Reversed);
        }
        if (to - from).num_days() + 1 > MAX_PERIOD_DAYS {
            return Err(PeriodError::TooLong);
        }
        Ok(Period { from, to })
    }

    pub fn today(today: NaiveDate) -> Period {
        Period {
            from: today,
            to: today,
        }
    }

    /// The period as `[start, end)` in UTC milliseconds, days cut in `zone`.
    pub fn bounds(&self, zone: &Tz) -> (Millis, Millis) {
        (
            day_start(zone, self.from),
            day_start(zone, self.to + Duration::days(1)),
        )
    }
}

/// Midnight of `day` in `zone`, in UTC milliseconds (the first instant of the day when a
/// zone's clock skips midnight).
pub fn day_start(zone: &Tz, day: NaiveDate) -> Millis {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    zone.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| midnight.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn defaults_and_limits() {
        let today = d("2026-11-27");
        assert_eq!(Period::parse(None, None, today), Ok(Period::today(today)));
        assert_eq!(
            Period::parse(Some("2026-11-01"), Some("2026-11-30"), today),
            Ok(Period {
                from: d("2026-11-01"),
                to: d("2026-11-30")
            })
        );
        assert_eq!(
            Period::parse(Some("2026-11-01"), Some("2026-12-01"), today),
            Err(PeriodError::TooLong)
        );
        assert_eq!(
            Period::parse(Some("2026-11-20"), Some("2026-11-10"), today),
            Err(PeriodError::Reversed)
        );
        assert_eq!(
            Period::parse(Some("20261120"), None, today),
            Err(PeriodError::BadFrom)
        );
        assert_eq!(
            Period::parse(None, Some("2026-02-30"), today),
            Err(PeriodError::BadTo)
        );
    }

    #[test]
    fn bounds_follow_the_zone() {
        let zone: Tz = "Asia/Shanghai".parse().unwrap();
        let p = Period::today(d("2026-01-01"));
        // 2026-01-01 00:00 in Shanghai is 2025-12-31T16:00:00Z.
        assert_eq!(p.bounds(&zone), (1_767_196_800_000, 1_767_283_200_000));
    }
}
