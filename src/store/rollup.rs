//! The status rollup: message counts per account, UTC hour of request, status, reason,
//! API_USER and mail type, kept current by every status change (DESIGN §6); summed per UTC
//! day beside it, and kept once more per tag (a message counts under each of its tags).

use std::collections::HashMap;

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use diesel::upsert::excluded;

use super::{AccountScope, StoreResult};
use crate::db::schema::{status_rollup, status_rollup_daily, status_rollup_tags};
use crate::db::{db_run, DbConn};

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
    upsert(
        conn,
        scope,
        Grain::Hour,
        changes.iter().map(|(k, d)| (k, "", *d)),
    )?;
    upsert(
        conn,
        scope,
        Grain::Day,
        daily.iter().map(|(k, d)| (k, "", *d)),
    )
}

/// Adds `delta` to each tag's bucket: the same change as [`apply`] made once for each tag of
/// the message.
pub fn apply_tags(
    conn: &mut DbConn,
    scope: &AccountScope,
    changes: &[((BucketKey, String), i64)],
) -> StoreResult<()> {
    upsert(
        conn,
        scope,
        Grain::TagHour,
        changes.iter().map(|((k, tag), d)| (k, tag.as_str(), *d)),
    )
}

/// The tables of the rollup: the same count, bucketed by UTC hour or UTC day, or by tag and
/// UTC hour.
#[derive(Debug, Clone, Copy)]
enum Grain {
    Hour,
    Day,
    TagHour,
}

/// Adds a change to one bucket of rollup table `$t`, whose bucket column is `$bucket`; the
/// key columns ahead of the bucket (the account, and the tag) are `$lead`.
macro_rules! add_to_bucket {
    ($conn:expr, $t:ident, $bucket:ident, ($($lead:ident = $lead_value:expr),+), $key:expr, $delta:expr) => {{
        let key: &BucketKey = $key;
        let row = (
            $($t::$lead.eq($lead_value),)+
            $t::$bucket.eq(key.hour),
            $t::status.eq(key.status),
            $t::reason.eq(key.reason),
            $t::api_user.eq(&key.api_user),
            $t::mail_type.eq(key.mail_type),
            $t::count.eq($delta),
        );
        db_run!(&mut *$conn, |c| diesel::insert_into($t::table)
            .values(row)
            .on_conflict(($($t::$lead,)+ $t::$bucket, $t::status, $t::reason, $t::api_user, $t::mail_type))
            .do_update()
            .set($t::count.eq($t::count + excluded($t::count)))
            .execute(c))
    }};
}

/// `key.hour` holds the bucket in the grain's unit (an hour or a day since the epoch); the
/// tag counts only in the per-tag table.
fn upsert<'k>(
    conn: &mut DbConn,
    scope: &AccountScope,
    grain: Grain,
    changes: impl Iterator<Item = (&'k BucketKey, &'k str, i64)>,
) -> StoreResult<()> {
    let account = scope.account_id();
    for (key, tag, delta) in changes.filter(|(_, _, delta)| *delta != 0) {
        match grain {
            Grain::Hour => {
                add_to_bucket!(
                    conn,
                    status_rollup,
                    hour,
                    (account_id = account),
                    key,
                    delta
                )
            }
            Grain::Day => {
                add_to_bucket!(
                    conn,
                    status_rollup_daily,
                    day,
                    (account_id = account),
                    key,
                    delta
                )
            }
            Grain::TagHour => add_to_bucket!(
                conn,
                status_rollup_tags,
                hour,
                (account_id = account, tag = tag),
                key,
                delta
            ),
        }?;
    }
    Ok(())
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
