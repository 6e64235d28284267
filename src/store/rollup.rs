//! The status rollup: message counts per account, UTC hour of request, status, reason,
//! API_USER and mail type, kept current by every status change (DESIGN §6); summed per UTC
//! day beside it, and kept once more per tag (a message counts under each of its tags).

use std::collections::HashMap;

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use super::providers::ProviderBucket;
use super::{AccountScope, StoreResult};
use crate::db::schema::{status_rollup, status_rollup_daily, status_rollup_tags};
use crate::db::DbConn;

mod add;
pub use add::{add_counts, CountTable, ProviderDay, ProviderHour, Value};

pub const HOUR_MS: i64 = 3_600_000;
const HOURS_PER_DAY: i64 = 24;

/// One bucket's change: +1 when a message enters a status, -1 when it leaves it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketKey {
    pub hour: i64,
    pub status: i16,
    /// 0 for "no reason".
    pub reason: i16,
    pub api_user: String,
    pub mail_type: i16,
}

/// Adds `delta` to each bucket, creating buckets as needed, in the hourly table and in the
/// daily one that sums it.
pub fn apply(
    conn: &mut DbConn,
    scope: &AccountScope,
    changes: &[(BucketKey, i64)],
) -> StoreResult<()> {
    let mut daily: HashMap<BucketKey, i64> = HashMap::new();
    for (key, delta) in changes {
        let day = BucketKey {
            hour: key.hour.div_euclid(HOURS_PER_DAY),
            ..key.clone()
        };
        *daily.entry(day).or_default() += delta;
    }
    let hourly: Vec<(&BucketKey, &str, i64)> = changes.iter().map(|(k, d)| (k, "", *d)).collect();
    let daily: Vec<(&BucketKey, &str, i64)> = daily.iter().map(|(k, d)| (k, "", *d)).collect();
    add_counts::<add::StatusHour>(conn, &rows(scope, hourly, false))?;
    add_counts::<add::StatusDay>(conn, &rows(scope, daily, false))
}

/// Adds `delta` to each tag's bucket: the same change as [`apply`] made once for each tag of
/// the message.
pub fn apply_tags(
    conn: &mut DbConn,
    scope: &AccountScope,
    changes: &[((BucketKey, String), i64)],
) -> StoreResult<()> {
    let tagged = changes
        .iter()
        .map(|((k, tag), d)| (k, tag.as_str(), *d))
        .collect();
    add_counts::<add::StatusTagHour>(conn, &rows(scope, tagged, true))
}

/// Adds each provider bucket's delta to the provider rollup: `hourly` keyed by UTC hour,
/// `daily` by zone day (see `ProviderDeltas::write`), in a handful of statements.
pub fn apply_providers(
    conn: &mut DbConn,
    scope: &AccountScope,
    hourly: &HashMap<ProviderBucket, i64>,
    daily: &HashMap<ProviderBucket, i64>,
) -> StoreResult<()> {
    add_counts::<ProviderHour>(conn, &provider_rows(scope, hourly))?;
    add_counts::<ProviderDay>(conn, &provider_rows(scope, daily))
}

/// The provider rollup's rows for `changes`, the zero ones left out, in key order.
fn provider_rows<'k>(
    scope: &AccountScope,
    changes: &'k HashMap<ProviderBucket, i64>,
) -> Vec<Value<'k>> {
    let mut sorted: Vec<(&ProviderBucket, i64)> = changes
        .iter()
        .filter(|(_, d)| **d != 0)
        .map(|(k, d)| (k, *d))
        .collect();
    sorted.sort_by(|(a, _), (b, _)| {
        (a.hour, &a.provider, a.status, a.reason).cmp(&(b.hour, &b.provider, b.status, b.reason))
    });
    let mut values = Vec::with_capacity(sorted.len() * 6);
    for (key, delta) in sorted {
        values.extend([
            Value::Big(scope.account_id()),
            Value::Text(&key.provider),
            Value::Big(key.hour),
            Value::Small(key.status),
            Value::Small(key.reason),
            Value::Big(delta),
        ]);
    }
    values
}

/// The rows of a rollup table for `changes` (bucket, tag, delta): the zero ones left out, in
/// key order; `key.hour` holds the bucket in the table's unit (an hour or a day since the
/// epoch), the tag counts only in the per-tag table.
fn rows<'k>(
    scope: &AccountScope,
    mut changes: Vec<(&'k BucketKey, &'k str, i64)>,
    tagged: bool,
) -> Vec<Value<'k>> {
    changes.retain(|(_, _, delta)| *delta != 0);
    changes.sort_by(|(a, a_tag, _), (b, b_tag, _)| {
        let key = |k: &'k BucketKey, tag: &'k str| {
            (
                tag,
                k.hour,
                k.status,
                k.reason,
                k.api_user.as_str(),
                k.mail_type,
            )
        };
        key(a, a_tag).cmp(&key(b, b_tag))
    });
    let mut values = Vec::with_capacity(changes.len() * 8);
    for (key, tag, delta) in changes {
        values.push(Value::Big(scope.account_id()));
        if tagged {
            values.push(Value::Text(tag));
        }
        values.extend([
            Value::Big(key.hour),
            Value::Small(key.status),
            Value::Small(key.reason),
            Value::Text(&key.api_user),
            Value::Small(key.mail_type),
            Value::Big(delta),
        ]);
    }
    values
}

/// The tables of the rollup: the same count, bucketed by UTC hour or UTC day, or by tag and
/// UTC hour.
#[derive(Debug, Clone, Copy)]
enum Grain {
    Hour,
    Day,
    TagHour,
}

/// `SUM(count)` as a BIGINT on both backends (PostgreSQL's own sum of bigints is numeric).
fn summed() -> diesel::expression::SqlLiteral<BigInt> {
    sql::<BigInt>("CAST(SUM(count) AS BIGINT)")
}

#[derive(Debug, Clone, Queryable)]
pub struct HourCount {
    pub hour: i64,
    pub status: i16,
    pub reason: i16,
    pub count: i64,
}

/// Counts per hour, status and reason for hours in `[from_hour, to_hour)` (hours since the epoch).
pub fn hourly(
    conn: &mut DbConn,
    scope: &AccountScope,
    from_hour: i64,
    to_hour: i64,
) -> StoreResult<Vec<HourCount>> {
    use status_rollup as t;
    t::table
        .filter(t::account_id.eq(scope.account_id()))
        .filter(t::hour.ge(from_hour))
        .filter(t::hour.lt(to_hour))
        .group_by((t::hour, t::status, t::reason))
        .having(sql::<Bool>("SUM(count) <> 0"))
        .select((t::hour, t::status, t::reason, summed()))
        .load(conn)
}

#[derive(Debug, Clone, Queryable)]
pub struct StatusReasonCount {
    pub status: i16,
    pub reason: i16,
    pub count: i64,
}

/// What narrows a rollup count beyond the period.
#[derive(Debug, Clone, Copy, Default)]
pub struct Narrowing<'a> {
    pub api_user: Option<&'a str>,
    pub mail_type: Option<i16>,
    pub tag: Option<&'a str>,
}

/// Counts per status and reason over `[from_hour, to_hour)`, narrowed. The whole UTC days
/// inside the span are read from the daily table and only the hours before the first and
/// after the last of them from the hourly one; a tag's counts come from the per-tag table.
pub fn grouped(
    conn: &mut DbConn,
    scope: &AccountScope,
    from_hour: i64,
    to_hour: i64,
    narrowing: Narrowing<'_>,
) -> StoreResult<Vec<StatusReasonCount>> {
    let first_day = (from_hour + HOURS_PER_DAY - 1).div_euclid(HOURS_PER_DAY);
    let end_day = to_hour.div_euclid(HOURS_PER_DAY);
    let spans = if narrowing.tag.is_some() {
        vec![(Grain::TagHour, from_hour, to_hour)]
    } else if first_day < end_day {
        vec![
            (Grain::Hour, from_hour, first_day * HOURS_PER_DAY),
            (Grain::Day, first_day, end_day),
            (Grain::Hour, end_day * HOURS_PER_DAY, to_hour),
        ]
    } else {
        vec![(Grain::Hour, from_hour, to_hour)]
    };
    let mut totals: HashMap<(i16, i16), i64> = HashMap::new();
    for (grain, from, to) in spans {
        if from >= to {
            continue;
        }
        for row in grouped_in(conn, scope, grain, from, to, narrowing)? {
            *totals.entry((row.status, row.reason)).or_default() += row.count;
        }
    }
    let mut rows: Vec<StatusReasonCount> = totals
        .into_iter()
        .filter(|(_, count)| *count != 0)
        .map(|((status, reason), count)| StatusReasonCount {
            status,
            reason,
            count,
        })
        .collect();
    rows.sort_by_key(|r| (r.status, r.reason));
    Ok(rows)
}

/// Counts per status and reason of rollup table `$t` for buckets of column `$bucket` in
/// `[$from, $to)`, narrowed.
macro_rules! grouped_counts {
    ($conn:expr, $scope:expr, $t:ident, $bucket:ident, $from:expr, $to:expr, $narrowing:expr $(, $tag:ident)?) => {{
        let Narrowing {
            api_user,
            mail_type,
            ..
        } = $narrowing;
        let mut q = $t::table
            .group_by(($t::status, $t::reason))
            .select(($t::status, $t::reason, summed()))
            .filter($t::account_id.eq($scope.account_id()))
            .into_boxed();
        $(
            q = q.filter($t::$tag.eq($narrowing.tag.unwrap_or_default()));
        )?
        q = q.filter($t::$bucket.ge($from)).filter($t::$bucket.lt($to));
        if let Some(a) = api_user {
            q = q.filter($t::api_user.eq(a));
        }
        if let Some(m) = mail_type {
            q = q.filter($t::mail_type.eq(m));
        }
        q.load($conn)
    }};
}

/// One table's counts per status and reason for buckets in `[from, to)`.
fn grouped_in(
    conn: &mut DbConn,
    scope: &AccountScope,
    grain: Grain,
    from: i64,
    to: i64,
    narrowing: Narrowing<'_>,
) -> StoreResult<Vec<StatusReasonCount>> {
    match grain {
        Grain::Hour => grouped_counts!(conn, scope, status_rollup, hour, from, to, narrowing),
        Grain::Day => grouped_counts!(conn, scope, status_rollup_daily, day, from, to, narrowing),
        Grain::TagHour => {
            grouped_counts!(
                conn,
                scope,
                status_rollup_tags,
                hour,
                from,
                to,
                narrowing,
                tag
            )
        }
    }
}
