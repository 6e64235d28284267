//! The status rollup: message counts per account, UTC hour of request, status, reason,
//! API_USER and mail type, kept current by every status change (DESIGN §6).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, SmallInt, Text};

use super::{AccountScope, StoreResult};
use crate::db::{placeholders, DbConn};

pub const HOUR_MS: i64 = 3_600_000;

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

/// Adds `delta` to each bucket, creating buckets as needed.
pub fn apply(
    conn: &mut DbConn,
    scope: &AccountScope,
    changes: &[(BucketKey, i64)],
) -> StoreResult<()> {
    let sql = placeholders(
        "INSERT INTO status_rollup (account_id, hour, status, reason, api_user, mail_type, count) \
         VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (account_id, hour, status, reason, api_user, mail_type) \
         DO UPDATE SET count = status_rollup.count + excluded.count",
        !conn.is_sqlite(),
    );
    for (key, delta) in changes {
        if *delta == 0 {
            continue;
        }
        diesel::sql_query(&sql)
            .bind::<BigInt, _>(scope.account_id())
            .bind::<BigInt, _>(key.hour)
            .bind::<SmallInt, _>(key.status)
            .bind::<SmallInt, _>(key.reason)
            .bind::<Text, _>(&key.api_user)
            .bind::<SmallInt, _>(key.mail_type)
            .bind::<BigInt, _>(*delta)
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

/// Counts per status and reason over `[from_hour, to_hour)`, optionally for one API_USER
/// and one mail type.
pub fn grouped(
    conn: &mut DbConn,
    scope: &AccountScope,
    from_hour: i64,
    to_hour: i64,
    api_user: Option<&str>,
    mail_type: Option<i16>,
) -> StoreResult<Vec<StatusReasonCount>> {
    let mut sql = String::from(
        "SELECT status, reason, CAST(SUM(count) AS BIGINT) AS count FROM status_rollup \
         WHERE account_id = ? AND hour >= ? AND hour < ?",
    );
    if api_user.is_some() {
        sql.push_str(" AND api_user = ?");
    }
    if mail_type.is_some() {
        sql.push_str(" AND mail_type = ?");
    }
    sql.push_str(" GROUP BY status, reason HAVING SUM(count) <> 0");
    let sql = placeholders(&sql, !conn.is_sqlite());
    let query = diesel::sql_query(sql)
        .into_boxed()
        .bind::<BigInt, _>(scope.account_id())
        .bind::<BigInt, _>(from_hour)
        .bind::<BigInt, _>(to_hour);
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
