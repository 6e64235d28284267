//! PostgreSQL's monthly partitions of the tables that grow with mail volume (migration
//! `2026-11-28-000003_partitions`). The server creates the next months ahead; ingestion and the
//! generator make sure the months their rows fall in exist, so that a backfill of old events
//! finds its partitions too. SQLite has no partitions: everything here is a no-op there.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};

use super::StoreResult;
use crate::db::{db_run, DbConn};
use crate::domain::Millis;

/// The partitioned tables: messages and their tags by request time, the event log and
/// opens/clicks by the time the event happened.
pub const TABLES: [&str; 4] = [
    "messages",
    "message_tags",
    "message_events",
    "tracking_events",
];

/// How many months after the current one the server keeps created.
pub const AHEAD_MONTHS: u32 = 3;

/// A calendar month in UTC, the unit of partitioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// The month holding the instant `ms`.
    pub fn of(ms: Millis) -> Month {
        let at = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        Month {
            year: at.year(),
            month: at.month(),
        }
    }

    fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a month's first day exists")
    }

    /// The month's first instant.
    pub fn start_ms(self) -> Millis {
        self.first_day()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis()
    }

    pub fn next(self) -> Month {
        let next = self.first_day() + Months::new(1);
        Month {
            year: next.year(),
            month: next.month(),
        }
    }

    /// The first instant after the month.
    pub fn end_ms(self) -> Millis {
        self.next().start_ms()
    }

    /// The partition of `table` for this month, as the migration's function names it.
    pub fn partition_of(self, table: &str) -> String {
        format!("{table}_p{:04}{:02}", self.year, self.month)
    }

    /// Reads a partition's month back from its name; None for anything not named by us.
    pub fn from_partition(table: &str, name: &str) -> Option<Month> {
        let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let month = Month {
            year: digits[..4].parse().ok()?,
            month: digits[4..].parse().ok()?,
        };
        NaiveDate::from_ymd_opt(month.year, month.month, 1).map(|_| month)
    }
}

/// Makes sure every partitioned table has the partitions of the months the instants fall in.
/// One round trip, whatever is missing; partitions that exist are left alone.
pub fn ensure_months(
    conn: &mut DbConn,
    instants: impl IntoIterator<Item = Millis>,
) -> StoreResult<()> {
    let pg = db_run!(conn, sqlite: |_| return Ok(()), postgres: |pg| pg);
    let months: BTreeSet<Month> = instants.into_iter().map(Month::of).collect();
    if months.is_empty() {
        return Ok(());
    }
    let mut tables = Vec::new();
    let mut starts = Vec::new();
    for month in &months {
        for table in TABLES {
            tables.push(table.to_string());
            starts.push(month.start_ms());
        }
    }
    diesel::sql_query(
        "SELECT count(mailtrail_month_partition(t.parent, t.at_ms)) AS n \
         FROM unnest($1::text[], $2::bigint[]) AS t (parent, at_ms)",
    )
    .bind::<Array<Text>, _>(tables)
    .bind::<Array<BigInt>, _>(starts)
    .execute(pg)?;
    Ok(())
}

/// Every month from the one holding `from` to the one holding `to`.
pub fn ensure_range(conn: &mut DbConn, from: Millis, to: Millis) -> StoreResult<()> {
    let (mut month, last) = (Month::of(from), Month::of(to));
    let mut months = Vec::new();
    while month <= last {
        months.push(month.start_ms());
        month = month.next();
    }
    ensure_months(conn, months)
}

/// The current month and the next [`AHEAD_MONTHS`], so that inserts never wait for a
/// partition to be made. Run at start and by the periodic maintenance.
pub fn ensure_ahead(conn: &mut DbConn, now: Millis) -> StoreResult<()> {
    let mut last = Month::of(now);
    for _ in 0..AHEAD_MONTHS {
        last = last.next();
    }
    ensure_range(conn, now, last.start_ms())
}

#[derive(QueryableByName)]
struct Partition {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    detach_pending: bool,
}

/// A partition of one of [`TABLES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub month: Month,
    pub name: String,
    /// A `DETACH … CONCURRENTLY` was interrupted: it must be finalized before the drop.
    pub detach_pending: bool,
}

/// The month partitions of `table`, oldest first (PostgreSQL; empty on SQLite).
pub fn list(conn: &mut DbConn, table: &str) -> StoreResult<Vec<PartitionInfo>> {
    let pg = db_run!(conn, sqlite: |_| return Ok(Vec::new()), postgres: |pg| pg);
    let rows: Vec<Partition> = diesel::sql_query(
        "SELECT CAST(c.relname AS TEXT) AS name, i.inhdetachpending AS detach_pending \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = to_regclass($1) AND c.relkind = 'r'",
    )
    .bind::<Text, _>(table)
    .load(pg)?;
    let mut found: Vec<PartitionInfo> = rows
        .into_iter()
        .filter_map(|p| {
            Some(PartitionInfo {
                month: Month::from_partition(table, &p.name)?,
                name: p.name,
                detach_pending: p.detach_pending,
            })
        })
        .collect();
    found.sort_by_key(|p| p.month);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_utc_calendar_months() {
        // 2026-11-30 23:59:59.999 UTC and 2026-12-01 00:00 UTC.
        let last = 1_796_083_199_999;
        assert_eq!(
            Month::of(last),
            Month {
                year: 2026,
                month: 11
            }
        );
        assert_eq!(
            Month::of(last + 1),
            Month {
                year: 2026,
                month: 12
            }
        );
        assert_eq!(Month::of(last).end_ms(), last + 1);
        assert_eq!(Month::of(last + 1).start_ms(), last + 1);
        let december = Month {
            year: 2026,
            month: 12,
        };
        assert_eq!(
            december.next(),
            Month {
                year: 2027,
                month: 1
            }
        );
    }

    #[test]
    fn partition_names_round_trip() {
        let m = Month {
            year: 2026,
            month: 3,
        };
        assert_eq!(m.partition_of("messages"), "messages_p202603");
        assert_eq!(
            Month::from_partition("messages", "messages_p202603"),
            Some(m)
        );
        assert_eq!(
            Month::from_partition("messages", "message_tags_p202603"),
            None
        );
        assert_eq!(Month::from_partition("messages", "messages_p202613"), None);
        assert_eq!(Month::from_partition("messages", "messages_old"), None);
    }
}
