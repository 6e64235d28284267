//! Reading the provider rollup: counts per provider over a period, per bucket of a period
//! (hours, or days of the account's zone), and a provider's recent failures.

use std::collections::HashMap;

use diesel::prelude::*;

use super::HOURS_PER_DAY;
use crate::db::schema::{provider_rollup, provider_rollup_daily};
use crate::db::DbConn;
use crate::store::{AccountScope, StoreResult};

/// Counts of one provider (or of every provider) per bucket: `time` is an hour or a day since
/// the epoch, as the grain says.
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
pub enum Grain {
    Hour,
    Day,
}

/// Counts per provider, bucket, status and reason over buckets `[from, to)` of `grain`, of
/// one provider or all.
pub fn counts(
    conn: &mut DbConn,
    scope: &AccountScope,
    grain: Grain,
    from: i64,
    to: i64,
    provider: Option<&str>,
) -> StoreResult<Vec<ProviderCount>> {
    macro_rules! read {
        ($t:ident, $bucket:ident) => {{
            // One row per bucket (the primary key): read in key order, nothing to group.
            let mut q = $t::table
                .filter($t::account_id.eq(scope.account_id()))
                .filter($t::$bucket.ge(from))
                .filter($t::$bucket.lt(to))
                .select(($t::provider, $t::$bucket, $t::status, $t::reason, $t::count))
                .into_boxed();
            if let Some(p) = provider {
                q = q.filter($t::provider.eq(p));
            }
            q.load::<ProviderCount>(conn)
        }};
    }
    let rows = match grain {
        Grain::Hour => read!(provider_rollup, hour)?,
        Grain::Day => read!(provider_rollup_daily, day)?,
    };
    Ok(rows.into_iter().filter(|r| r.count != 0).collect())
}

/// Counts per provider, status and reason over hours `[from_hour, to_hour)`: the whole UTC
/// days inside from the daily table, the ragged edges from the hourly one. `time` is 0.
pub fn totals(
    conn: &mut DbConn,
    scope: &AccountScope,
    from_hour: i64,
    to_hour: i64,
    provider: Option<&str>,
) -> StoreResult<Vec<ProviderCount>> {
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
    let mut sums: HashMap<(String, i16, i16), i64> = HashMap::new();
    for (grain, from, to) in spans.into_iter().filter(|(_, f, t)| f < t) {
        for r in counts(conn, scope, grain, from, to, provider)? {
            *sums.entry((r.provider, r.status, r.reason)).or_default() += r.count;
        }
    }
    let mut rows: Vec<ProviderCount> = sums
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
    rows.sort_by(|a, b| (&a.provider, a.status, a.reason).cmp(&(&b.provider, b.status, b.reason)));
    Ok(rows)
}

/// Counts per provider, bucket, status and reason, where bucket `i` holds the hours
/// `[bounds[i], bounds[i + 1])` (the hours of a day, or the days of the account's zone) and
/// `time` is `i`. A period of whole UTC days (a zone at UTC) is read from the daily table with
/// its ragged edges from the hourly one. Otherwise the hours are read and each is counted in
/// its bucket, unless `exact` is false: then a whole UTC day of the daily table counts in the
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
    let last = bounds.len().saturating_sub(2);
    let bucket_of = |hour: i64| {
        bounds
            .partition_point(|b| *b <= hour)
            .saturating_sub(1)
            .min(last) as i64
    };
    let whole_days = bounds.windows(2).all(|w| w[1] - w[0] >= HOURS_PER_DAY);
    let aligned = bounds.iter().all(|b| b.rem_euclid(HOURS_PER_DAY) == 0);
    let mut spans = vec![(Grain::Hour, from, to)];
    if whole_days && (aligned || !exact) {
        let first_day = (from + HOURS_PER_DAY - 1).div_euclid(HOURS_PER_DAY);
        let end_day = to.div_euclid(HOURS_PER_DAY);
        if first_day < end_day {
            spans = vec![
                (Grain::Hour, from, first_day * HOURS_PER_DAY),
                (Grain::Day, first_day, end_day),
                (Grain::Hour, end_day * HOURS_PER_DAY, to),
            ];
        }
    }
    let mut sums: HashMap<(String, i64, i16, i16), i64> = HashMap::new();
    for (grain, from, to) in spans.into_iter().filter(|(_, f, t)| f < t) {
        for r in counts(conn, scope, grain, from, to, provider)? {
            let time = match grain {
                Grain::Hour => bucket_of(r.time),
                Grain::Day => bucket_of(r.time * HOURS_PER_DAY + HOURS_PER_DAY / 2),
            };
            *sums
                .entry((r.provider, time, r.status, r.reason))
                .or_default() += r.count;
        }
    }
    Ok(sums
        .into_iter()
        .filter(|(_, c)| *c != 0)
        .map(|((provider, time, status, reason), count)| ProviderCount {
            provider,
            time,
            status,
            reason,
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

/// The provider's newest soft bounces and invalid messages requested in `[from_ms, to_ms)`,
/// read newest first on the provider's index.
pub fn recent_failures(
    conn: &mut DbConn,
    scope: &AccountScope,
    provider: &str,
    from_ms: i64,
    to_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Failure>> {
    use crate::db::schema::messages as m;
    use crate::domain::Status;
    m::table
        .filter(m::account_id.eq(scope.account_id()))
        .filter(m::provider.eq(provider))
        .filter(m::requested_at.ge(from_ms))
        .filter(m::requested_at.lt(to_ms))
        .filter(m::status.eq_any([Status::SoftBounce.as_i16(), Status::Invalid.as_i16()]))
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
