//! The status rollup: message counts per account, UTC hour of request, status, reason,
//! API_USER and mail type, kept current by every status change (DESIGN §6); summed per UTC
//! day beside it, and kept once more per tag (a message counts under each of its tags).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, SmallInt, Text};

use super::{AccountScope, StoreResult};
use crate::db::{placeholders, DbConn};

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

impl Grain {
    fn table(self) -> &'static str {
        match self {
            Grain::Hour => "status_rollup",
            Grain::Day => "status_rollup_daily",
            Grain::TagHour => "status_rollup_tags",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Grain::Hour | Grain::TagHour => "hour",
            Grain::Day => "day",
        }
    }

    /// The key's leading column beyond the account, if any.
    fn tag_column(self) -> &'static str {
        match self {
            Grain::TagHour => "tag, ",
            Grain::Hour | Grain::Day => "",
        }
    }
}

/// `key.hour` holds the bucket in the grain's unit (an hour or a day since the epoch); the
/// tag is bound only for the per-tag table.
fn upsert<'k>(
    conn: &mut DbConn,
    scope: &AccountScope,
    grain: Grain,
    changes: impl Iterator<Item = (&'k BucketKey, &'k str, i64)>,
) -> StoreResult<()> {
    let (table, bucket, tag) = (grain.table(), grain.column(), grain.tag_column());
    let tag_value = if tag.is_empty() { "" } else { "?, " };
    let sql = placeholders(
        &format!(
            "INSERT INTO {table} (account_id, {tag}{bucket}, status, reason, api_user, mail_type, \
             count) VALUES (?, {tag_value}?, ?, ?, ?, ?, ?) \
             ON CONFLICT (account_id, {tag}{bucket}, status, reason, api_user, mail_type) \
             DO UPDATE SET count = {table}.count + excluded.count"
        ),
        !conn.is_sqlite(),
    );
    for (key, tag_name, delta) in changes {
        if delta == 0 {
            continue;
        }
        let query = diesel::sql_query(&sql)
            .into_boxed()
            .bind::<BigInt, _>(scope.account_id());
        let query = if tag.is_empty() {
            query
        } else {
            query.bind::<Text, _>(tag_name)
        };
        query
            .bind::<BigInt, _>(key.hour)
            .bind::<SmallInt, _>(key.status)
            .bind::<SmallInt, _>(key.reason)
            .bind::<Text, _>(&key.api_user)
            .bind::<SmallInt, _>(key.mail_type)
            .bind::<BigInt, _>(delta)
            .execute(conn)?;
    }
    Ok(())
}

#[derive(Debug, Clone, QueryableByName)]
pub struct HourCount {
    #[diesel(sql_type = BigInt)]
    pub hour: i64,
    #[diesel(sql_type = SmallInt)]
    pub status: i16,
    #[diesel(sql_type = SmallInt)]
    pub reason: i16,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// Counts per hour, status and reason for hours in `[from_hour, to_hour)` (hours since the epoch).
pub fn hourly(
    conn: &mut DbConn,
    scope: &AccountScope,
    from_hour: i64,
    to_hour: i64,
) -> StoreResult<Vec<HourCount>> {
    let sql = placeholders(
        "SELECT hour, status, reason, CAST(SUM(count) AS BIGINT) AS count FROM status_rollup \
         WHERE account_id = ? AND hour >= ? AND hour < ? \
         GROUP BY hour, status, reason HAVING SUM(count) <> 0",
        !conn.is_sqlite(),
    );
    diesel::sql_query(sql)
        .bind::<BigInt, _>(scope.account_id())
        .bind::<BigInt, _>(from_hour)
        .bind::<BigInt, _>(to_hour)
        .load(conn)
}

#[derive(Debug, Clone, QueryableByName)]
pub struct StatusReasonCount {
    #[diesel(sql_type = SmallInt)]
    pub status: i16,
    #[diesel(sql_type = SmallInt)]
    pub reason: i16,
    #[diesel(sql_type = BigInt)]
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

/// One table's counts per status and reason for buckets in `[from, to)`.
fn grouped_in(
    conn: &mut DbConn,
    scope: &AccountScope,
    grain: Grain,
    from: i64,
    to: i64,
    narrowing: Narrowing<'_>,
) -> StoreResult<Vec<StatusReasonCount>> {
    let Narrowing {
        api_user,
        mail_type,
        tag,
    } = narrowing;
    let (table, bucket) = (grain.table(), grain.column());
    let mut sql = format!("SELECT status, reason, CAST(SUM(count) AS BIGINT) AS count FROM {table} WHERE account_id = ?");
    if tag.is_some() {
        sql.push_str(" AND tag = ?");
    }
    sql.push_str(&format!(" AND {bucket} >= ? AND {bucket} < ?"));
    if api_user.is_some() {
        sql.push_str(" AND api_user = ?");
    }
    if mail_type.is_some() {
        sql.push_str(" AND mail_type = ?");
    }
    sql.push_str(" GROUP BY status, reason");
    let sql = placeholders(&sql, !conn.is_sqlite());
    let query = diesel::sql_query(sql)
        .into_boxed()
        .bind::<BigInt, _>(scope.account_id());
    let query = match tag {
        Some(t) => query.bind::<Text, _>(t.to_string()),
        None => query,
    };
    let query = query.bind::<BigInt, _>(from).bind::<BigInt, _>(to);
    let query = match api_user {
        Some(a) => query.bind::<Text, _>(a.to_string()),
        None => query,
    };
    let query = match mail_type {
        Some(m) => query.bind::<SmallInt, _>(m),
        None => query,
    };
    query.load(conn)
}
