//! Reading the provider rollup: counts per provider over a period, per bucket of a period
//! (hours, or days of the account's zone), and a provider's recent failures. The database adds
//! the rows up (whole UTC days from the daily table, the ragged hours at a period's ends from
//! the hourly one), so a page receives its sums, not every bucket's row.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, SmallInt, Text};

use super::HOURS_PER_DAY;
use crate::db::DbConn;
use crate::store::{AccountScope, StoreResult};

/// Counts of one provider (or of every provider): per status and reason over a period
/// (`time` 0), or per bucket and status (`reason` 0), as the reading says.
#[derive(Debug, Clone, QueryableByName)]
pub struct ProviderCount {
    #[diesel(sql_type = Text)]
    pub provider: String,
    #[diesel(sql_type = BigInt)]
    pub time: i64,
    #[diesel(sql_type = SmallInt)]
    pub status: i16,
    #[diesel(sql_type = SmallInt)]
    pub reason: i16,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// The table a span of time is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    Hour,
    Day,
}

/// The hours `[from_hour, to_hour)` as spans of the two tables: the whole UTC days inside
/// from the daily one, the ragged edges from the hourly one; empty spans left out.
fn spans(from_hour: i64, to_hour: i64) -> Vec<(Grain, i64, i64)> {
    let first_day = (from_hour + HOURS_PER_DAY - 1).div_euclid(HOURS_PER_DAY);
    let end_day = to_hour.div_euclid(HOURS_PER_DAY);
    let spans = if first_day < end_day {
        vec![
            (Grain::Hour, from_hour, first_day * HOURS_PER_DAY),
            (Grain::Day, first_day, end_day),
            (Grain::Hour, end_day * HOURS_PER_DAY, to_hour),
        ]
    } else {
        vec![(Grain::Hour, from_hour, to_hour)]
    };
    spans.into_iter().filter(|(_, f, t)| f < t).collect()
}

/// One `SELECT` per span, joined by `UNION ALL`: each row's provider, its hour (a day's row
/// stands at the day's middle hour), status, reason and count. Only numbers the code made
/// are written into the text; the provider is the statement's one parameter, `$1`.
fn spans_sql(
    scope: &AccountScope,
    spans: &[(Grain, i64, i64)],
    provider: bool,
    statuses: &str,
) -> String {
    let account = scope.account_id();
    let narrowed = if provider { " AND provider = $1" } else { "" };
    spans
        .iter()
        .map(|(grain, from, to)| {
            let (table, column, hour) = match grain {
                Grain::Hour => ("provider_rollup", "hour", "hour".to_string()),
                Grain::Day => (
                    "provider_rollup_daily",
                    "day",
                    format!("day * {HOURS_PER_DAY} + {}", HOURS_PER_DAY / 2),
                ),
            };
            format!(
                "SELECT provider, {hour} AS time, status, reason, count FROM {table} \
                 WHERE account_id = {account} AND {column} >= {from} AND {column} < {to}\
                 {narrowed}{statuses}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

fn load(conn: &mut DbConn, sql: String, provider: Option<&str>) -> StoreResult<Vec<ProviderCount>> {
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
    let spans = spans(from_hour, to_hour);
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT provider, CAST(0 AS BIGINT) AS time, status, reason, \
         CAST(SUM(count) AS BIGINT) AS count FROM ({}) AS spans \
         GROUP BY provider, status, reason HAVING SUM(count) <> 0 \
         ORDER BY provider, status, reason",
        spans_sql(scope, &spans, provider.is_some(), "")
    );
    load(conn, sql, provider)
}

/// Requests per provider, bucket and status (0–3; `reason` 0), where bucket `i` holds the
/// hours `[bounds[i], bounds[i + 1])` (the hours of a day, or the days of the account's zone)
/// and `time` is `i`. A period of whole UTC days (a zone at UTC) is read from the daily table
/// with its ragged edges from the hourly one. Otherwise the hours are read and each is counted
/// in its bucket, unless `exact` is false: then a whole UTC day of the daily table counts in the
/// bucket that holds its middle (a sparkline's shape, read from ~24 times fewer rows), and only
/// the edges are read by the hour.
pub fn series(
    conn: &mut DbConn,
    scope: &AccountScope,
    bounds: &[i64],
    exact: bool,
    provider: Option<&str>,
) -> StoreResult<Vec<ProviderCount>> {
    let (Some(&from), Some(&to)) = (bounds.first(), bounds.last()) else {
        return Ok(Vec::new());
    };
    let whole_days = bounds.windows(2).all(|w| w[1] - w[0] >= HOURS_PER_DAY);
    let aligned = bounds.iter().all(|b| b.rem_euclid(HOURS_PER_DAY) == 0);
    let spans = if whole_days && (aligned || !exact) {
        spans(from, to)
    } else {
        vec![(Grain::Hour, from, to)]
    };
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT provider, CAST(time AS BIGINT) AS time, status, CAST(0 AS SMALLINT) AS reason, \
         CAST(SUM(count) AS BIGINT) AS count FROM ({}) AS spans \
         GROUP BY provider, time, status HAVING SUM(count) <> 0",
        spans_sql(scope, &spans, provider.is_some(), " AND status < 4")
    );
    let last = bounds.len().saturating_sub(2);
    let mut sums: HashMap<(String, i64, i16), i64> = HashMap::new();
    for r in load(conn, sql, provider)? {
        let bucket = bounds
            .partition_point(|b| *b <= r.time)
            .saturating_sub(1)
            .min(last) as i64;
        *sums.entry((r.provider, bucket, r.status)).or_default() += r.count;
    }
    Ok(sums
        .into_iter()
        .map(|((provider, time, status), count)| ProviderCount {
            provider,
            time,
            status,
            reason: 0,
            count,
        })
        .collect())
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
