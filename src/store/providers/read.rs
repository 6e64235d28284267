//! Reading the provider rollup: counts per provider over a period, per bucket of a period
//! (hours, or days of the account's zone), and a provider's recent failures. The daily table
//! holds days of the zone `provider_rollup_zone` names (the account's, unless it has just
//! changed), so a period of whole days there reads the daily table alone; the hours at a
//! period's ends that are not a whole day come from the hourly table.

use std::collections::HashMap;

use chrono_tz::Tz;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, SmallInt, Text};

use super::zone::{rollup_zone, zone_day, zone_day_start};
use crate::db::schema::{provider_rollup, provider_rollup_daily};
use crate::db::DbConn;
use crate::store::{AccountScope, StoreResult};

/// Counts of one provider (or of every provider) per status and reason: over a period (`time`
/// 0), or per bucket of it (`time` the bucket's index).
#[derive(Debug, Clone, Queryable)]
pub struct ProviderCount {
    pub provider: String,
    pub time: i64,
    pub status: i16,
    pub reason: i16,
    pub count: i64,
}

/// The table a span of time is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    Hour,
    Day,
}

/// The rows of one table over buckets `[from, to)` of its grain, of one provider or all:
/// `time` is the row's hour or zone day.
fn read(
    conn: &mut DbConn,
    scope: &AccountScope,
    grain: Grain,
    (from, to): (i64, i64),
    provider: Option<&str>,
) -> StoreResult<Vec<ProviderCount>> {
    macro_rules! read {
        ($t:ident, $bucket:ident) => {{
            // Provider first when narrowed to one (the `…_by_provider` index), else the key.
            let mut q = $t::table
                .filter($t::account_id.eq(scope.account_id()))
                .filter($t::$bucket.ge(from))
                .filter($t::$bucket.lt(to))
                .filter($t::count.ne(0))
                .select(($t::provider, $t::$bucket, $t::status, $t::reason, $t::count))
                .into_boxed();
            if let Some(p) = provider {
                q = q.filter($t::provider.eq(p));
            }
            q.load::<ProviderCount>(conn)
        }};
    }
    match grain {
        Grain::Hour => read!(provider_rollup, hour),
        Grain::Day => read!(provider_rollup_daily, day),
    }
}

/// The hours `[from_hour, to_hour)` as spans of the two tables: the whole days of `zone`
/// (the daily rows' zone) inside from the daily one, the hours before and after them from
/// the hourly one; empty spans left out. Without a zone, the hourly table alone.
fn spans(zone: Option<&Tz>, from_hour: i64, to_hour: i64) -> Vec<(Grain, i64, i64)> {
    let mut spans = vec![(Grain::Hour, from_hour, to_hour)];
    if let Some(zone) = zone.filter(|_| from_hour < to_hour) {
        let first = zone_day(zone, from_hour);
        let first = first + i64::from(zone_day_start(zone, first) != from_hour);
        let end = zone_day(zone, to_hour);
        if first < end {
            spans = vec![
                (Grain::Hour, from_hour, zone_day_start(zone, first)),
                (Grain::Day, first, end),
                (Grain::Hour, zone_day_start(zone, end), to_hour),
            ];
        }
    }
    spans.into_iter().filter(|(_, f, t)| f < t).collect()
}

/// A row the database summed: `grain` 0 for an hour, 1 for a zone day in `time`, -1 for a
/// total of the whole period.
#[derive(Debug, QueryableByName)]
struct Summed {
    #[diesel(sql_type = Text)]
    provider: String,
    #[diesel(sql_type = SmallInt)]
    grain: i16,
    #[diesel(sql_type = BigInt)]
    time: i64,
    #[diesel(sql_type = SmallInt)]
    status: i16,
    #[diesel(sql_type = SmallInt)]
    reason: i16,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// PostgreSQL sums a period's rows itself, a few hundred rows answered instead of thousands
/// (decoding them was most of a page's time there); SQLite, where a `GROUP BY` sorts in a
/// temporary tree, hands the rows over and they are added up here in one pass.
fn sums_in_database(conn: &mut DbConn) -> bool {
    crate::db::db_run!(conn, sqlite: |_| false, postgres: |_| true)
}

/// The spans' rows summed by PostgreSQL: per provider, status and reason (`by_bucket` false;
/// `grain` -1, `time` 0), or per provider, hour or day and status 0–3 (`reason` 0).
fn summed(
    conn: &mut DbConn,
    scope: &AccountScope,
    spans: &[(Grain, i64, i64)],
    provider: Option<&str>,
    by_bucket: bool,
) -> StoreResult<Vec<Summed>> {
    let account = scope.account_id();
    let narrowed = if provider.is_some() {
        " AND provider = $1"
    } else {
        ""
    };
    let parts: Vec<String> = spans
        .iter()
        .map(|(grain, from, to)| {
            let (table, column, code) = match grain {
                Grain::Hour => ("provider_rollup", "hour", 0),
                Grain::Day => ("provider_rollup_daily", "day", 1),
            };
            format!(
                "SELECT provider, CAST({code} AS SMALLINT) AS grain, {column} AS time, status, \
                 reason, count FROM {table} WHERE account_id = {account} AND {column} >= {from} \
                 AND {column} < {to} AND count <> 0{narrowed}"
            )
        })
        .collect();
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let (columns, only, keys) = if by_bucket {
        (
            "grain, time, status, CAST(0 AS SMALLINT) AS reason",
            " WHERE status < 4",
            "provider, grain, time, status",
        )
    } else {
        (
            "CAST(-1 AS SMALLINT) AS grain, CAST(0 AS BIGINT) AS time, status, reason",
            "",
            "provider, status, reason",
        )
    };
    let sql = format!(
        "SELECT provider, {columns}, CAST(SUM(count) AS BIGINT) AS count \
         FROM ({}) AS spans{only} GROUP BY {keys} HAVING SUM(count) <> 0",
        parts.join(" UNION ALL ")
    );
    match provider {
        Some(p) => diesel::sql_query(sql).bind::<Text, _>(p).load(conn),
        None => diesel::sql_query(sql).load(conn),
    }
}

/// Counts per provider, status and reason over hours `[from_hour, to_hour)`, of one provider
/// or all, in provider, status and reason order. `time` is 0.
pub fn totals(
    conn: &mut DbConn,
    scope: &AccountScope,
    from_hour: i64,
    to_hour: i64,
    provider: Option<&str>,
) -> StoreResult<Vec<ProviderCount>> {
    let zone = rollup_zone(conn, scope)?;
    let spans = spans(zone.as_ref(), from_hour, to_hour);
    let mut sums = Sums::default();
    if sums_in_database(conn) {
        for r in summed(conn, scope, &spans, provider, false)? {
            sums.add_total(r.provider, r.status, r.reason, r.count);
        }
    } else {
        for &(grain, from, to) in &spans {
            for r in read(conn, scope, grain, (from, to), provider)? {
                sums.add_total(r.provider, r.status, r.reason, r.count);
            }
        }
    }
    Ok(sums.into_period().totals)
}

/// A period's counts: `totals` per provider, status and reason (`time` 0), and `buckets` per
/// provider, bucket and status 0–3 (`time` the bucket's index, `reason` 0).
#[derive(Debug, Default)]
pub struct Period {
    pub totals: Vec<ProviderCount>,
    pub buckets: Vec<ProviderCount>,
}

#[derive(Default)]
struct Sums {
    totals: HashMap<(String, i16, i16), i64>,
    buckets: HashMap<(String, i64, i16), i64>,
}

impl Period {
    /// This period's counts and `other`'s together (two halves of one period).
    pub fn merged(mut self, other: Period) -> Period {
        self.totals.extend(other.totals);
        self.buckets.extend(other.buckets);
        self
    }
}

impl Sums {
    fn add_total(&mut self, provider: String, status: i16, reason: i16, count: i64) {
        *self.totals.entry((provider, status, reason)).or_default() += count;
    }

    fn add_bucket(&mut self, provider: String, bucket: i64, status: i16, count: i64) {
        if (0..4).contains(&status) {
            *self.buckets.entry((provider, bucket, status)).or_default() += count;
        }
    }

    fn into_period(self) -> Period {
        let mut totals: Vec<ProviderCount> = self
            .totals
            .into_iter()
            .filter(|(_, c)| *c != 0)
            .map(|((provider, status, reason), count)| ProviderCount {
                provider,
                time: 0,
                status,
                reason,
                count,
            })
            .collect();
        totals.sort_by(|a, b| {
            (&a.provider, a.status, a.reason).cmp(&(&b.provider, b.status, b.reason))
        });
        let buckets = self
            .buckets
            .into_iter()
            .filter(|(_, c)| *c != 0)
            .map(|((provider, time, status), count)| ProviderCount {
                provider,
                time,
                status,
                reason: 0,
                count,
            })
            .collect();
        Period { totals, buckets }
    }
}

/// A period's counts, where bucket `i` holds the hours `[bounds[i], bounds[i + 1])` (the hours
/// of a day, or the days of the account's zone), of one provider or all: both halves of
/// [`period_half`], one after the other.
pub fn period(
    conn: &mut DbConn,
    scope: &AccountScope,
    bounds: &[i64],
    provider: Option<&str>,
) -> StoreResult<Period> {
    let first = period_half(conn, scope, bounds, provider, Half::First)?;
    Ok(first.merged(period_half(conn, scope, bounds, provider, Half::Second)?))
}

/// The two halves of a period's counts, which a page reads side by side on two connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    First,
    Second,
}

/// Half of a period's counts (see [`period`]). On PostgreSQL, which sums the rows itself, the
/// first half is the totals and the second the per-bucket counts, each one statement; on
/// SQLite the first half is all of it, from one pass over the rows, and the second nothing.
/// When every bound begins a day of the daily rows' zone (the account's zone, as it is unless
/// it has just changed), the whole days come from the daily table; else every hour is read
/// from the hourly one. Either way each count lands in its own bucket.
pub fn period_half(
    conn: &mut DbConn,
    scope: &AccountScope,
    bounds: &[i64],
    provider: Option<&str>,
    half: Half,
) -> StoreResult<Period> {
    let in_database = sums_in_database(conn);
    let (Some(&from), Some(&to)) = (bounds.first(), bounds.last()) else {
        return Ok(Period::default());
    };
    if !in_database && half == Half::Second {
        return Ok(Period::default());
    }
    let zone = rollup_zone(conn, scope)?.filter(|z| {
        bounds
            .iter()
            .all(|b| zone_day_start(z, zone_day(z, *b)) == *b)
    });
    let last = bounds.len().saturating_sub(2);
    let bucket_of = |hour: i64| {
        bounds
            .partition_point(|b| *b <= hour)
            .saturating_sub(1)
            .min(last) as i64
    };
    let mut day_buckets: HashMap<i64, i64> = HashMap::new();
    let mut bucket = |grain: Grain, time: i64| match (grain, &zone) {
        (Grain::Day, Some(z)) => *day_buckets
            .entry(time)
            .or_insert_with(|| bucket_of(zone_day_start(z, time))),
        _ => bucket_of(time),
    };
    let spans = spans(zone.as_ref(), from, to);
    let mut sums = Sums::default();
    if in_database {
        for r in summed(conn, scope, &spans, provider, half == Half::Second)? {
            match r.grain {
                -1 => sums.add_total(r.provider, r.status, r.reason, r.count),
                1 => sums.add_bucket(r.provider, bucket(Grain::Day, r.time), r.status, r.count),
                _ => sums.add_bucket(r.provider, bucket(Grain::Hour, r.time), r.status, r.count),
            }
        }
    } else {
        for &(grain, from, to) in &spans {
            for r in read(conn, scope, grain, (from, to), provider)? {
                sums.add_bucket(r.provider.clone(), bucket(grain, r.time), r.status, r.count);
                sums.add_total(r.provider, r.status, r.reason, r.count);
            }
        }
    }
    Ok(sums.into_period())
}

/// A failed message of a provider, as its page lists it.
#[derive(Debug, Clone, Queryable)]
pub struct Failure {
    pub id: i64,
    pub recipient: String,
    pub status: i16,
    pub reason: Option<i16>,
    pub smtp_reply: Option<String>,
    pub requested_at: i64,
    pub updated_at: i64,
}

/// The condition of the index of failed messages: soft bounces (2) and invalid ones (3).
const FAILED: &str = "status IN (2, 3)";

/// The provider's newest soft bounces and invalid messages requested in `[from_ms, to_ms)`,
/// read newest first on the provider's index of failed messages.
pub fn recent_failures(
    conn: &mut DbConn,
    scope: &AccountScope,
    provider: &str,
    from_ms: i64,
    to_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Failure>> {
    use crate::db::schema::messages as m;
    m::table
        .filter(m::account_id.eq(scope.account_id()))
        .filter(m::provider.eq(provider))
        .filter(m::requested_at.ge(from_ms))
        .filter(m::requested_at.lt(to_ms))
        // Written as the partial index `messages_provider_failures` says, so that both
        // databases see the index applies.
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(FAILED))
        .order((m::requested_at.desc(), m::id.desc()))
        .limit(limit)
        .select((
            m::id,
            m::recipient,
            m::status,
            m::reason,
            m::smtp_reply,
            m::requested_at,
            m::updated_at,
        ))
        .load(conn)
}

#[cfg(test)]
mod tests {
    use crate::domain::Status;

    #[test]
    fn the_failed_index_condition_names_soft_bounces_and_invalid_mail() {
        let codes = (Status::SoftBounce.as_i16(), Status::Invalid.as_i16());
        assert_eq!(
            super::FAILED,
            format!("status IN ({}, {})", codes.0, codes.1)
        );
    }
}

#[cfg(test)]
mod span_tests {
    use super::*;
    use chrono::NaiveDate;

    fn start(zone: &Tz, date: &str) -> i64 {
        let d: NaiveDate = date.parse().unwrap();
        crate::domain::day_start(zone, d).div_euclid(crate::store::rollup::HOUR_MS)
    }

    #[test]
    fn whole_days_of_the_rollups_zone_read_the_daily_table_alone() {
        let zone = chrono_tz::Asia::Shanghai;
        let (from, to) = (start(&zone, "2026-11-25"), start(&zone, "2026-12-02"));
        let days = spans(Some(&zone), from, to);
        assert_eq!(days.len(), 1, "{days:?}");
        assert_eq!(days[0].0, Grain::Day);
        assert_eq!(days[0].2 - days[0].1, 7);
        // Half a day on each side: the hours there, the whole days between from the daily rows.
        let ragged = spans(Some(&zone), from - 5, to + 3);
        let grains: Vec<Grain> = ragged.iter().map(|s| s.0).collect();
        assert_eq!(grains, [Grain::Hour, Grain::Day, Grain::Hour]);
        assert_eq!((ragged[0].1, ragged[0].2), (from - 5, from));
        assert_eq!((ragged[2].1, ragged[2].2), (to, to + 3));
        // The same period over days of another zone: its inner days, the rest by the hour.
        let utc = spans(Some(&chrono_tz::UTC), from, to);
        let covered: i64 = utc
            .iter()
            .map(|(g, f, t)| (t - f) * if *g == Grain::Day { 24 } else { 1 })
            .sum();
        assert_eq!(covered, to - from);
        assert_eq!(spans(None, from, to), [(Grain::Hour, from, to)]);
    }
}
