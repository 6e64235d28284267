//! The provider rollup: message counts per account, mailbox provider, UTC hour of request,
//! status and reason, kept current by every change of a message's status or provider (the
//! same discipline as `status_rollup`), summed per day of the account's zone beside it; and an
//! account's own provider domains.

use std::collections::HashMap;

use diesel::prelude::*;

use super::models::Message;
use super::rollup::HOUR_MS;
use super::{AccountScope, StoreResult};
use crate::db::schema::{provider_domains, provider_rollup, provider_rollup_daily};
use crate::db::{db_run, DbConn};
use crate::domain::providers::ProviderMap;
use crate::domain::Millis;

pub const HOURS_PER_DAY: i64 = 24;

/// The bucket of the provider rollup a message counts in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderBucket {
    pub provider: String,
    /// Hours since the epoch (UTC) of the request.
    pub hour: i64,
    pub status: i16,
    /// 0 for "no reason".
    pub reason: i16,
}

impl ProviderBucket {
    pub fn of(m: &Message) -> ProviderBucket {
        ProviderBucket {
            provider: m.provider.clone(),
            hour: m.requested_at.div_euclid(HOUR_MS),
            status: m.status,
            reason: m.reason.unwrap_or(0),
        }
    }
}

/// The changes one write makes to the provider rollup, gathered and then applied at once.
#[derive(Debug, Default)]
pub struct ProviderDeltas(HashMap<ProviderBucket, i64>);

impl ProviderDeltas {
    /// A message that was in `before` (none when it is new) and is now as `after` says.
    pub fn moved(&mut self, before: Option<&ProviderBucket>, after: &Message) {
        let now = ProviderBucket::of(after);
        if before == Some(&now) {
            return;
        }
        if let Some(before) = before {
            *self.0.entry(before.clone()).or_default() -= 1;
        }
        *self.0.entry(now).or_default() += 1;
    }

    /// Adds `delta` to a bucket directly (the demo generator counts what it draws).
    pub fn add(&mut self, bucket: ProviderBucket, delta: i64) {
        *self.0.entry(bucket).or_default() += delta;
    }

    /// Writes the changes into the hourly table and the daily one that sums it by the days
    /// of the zone `provider_rollup_zone` names, in multi-row statements.
    pub fn write(self, conn: &mut DbConn, scope: &AccountScope) -> StoreResult<()> {
        if self.0.values().all(|d| *d == 0) {
            return Ok(());
        }
        let zone = zone::writing_zone(conn, scope)?;
        let mut days: HashMap<i64, i64> = HashMap::new();
        let mut daily: HashMap<ProviderBucket, i64> = HashMap::new();
        for (key, delta) in self.0.iter().filter(|(_, d)| **d != 0) {
            let day = ProviderBucket {
                hour: *days
                    .entry(key.hour)
                    .or_insert_with(|| zone::zone_day(&zone, key.hour)),
                ..key.clone()
            };
            *daily.entry(day).or_default() += delta;
        }
        super::rollup::apply_providers(conn, scope, &self.0, &daily)
    }
}

/// The map ingestion uses for the account: the list with the account's own domains on top.
pub fn map_for(conn: &mut DbConn, scope: &AccountScope) -> StoreResult<ProviderMap> {
    Ok(ProviderMap::with_account_domains(account_domains(
        conn, scope,
    )?))
}

/// The account's own `(domain, provider)` pairs, by domain.
pub fn account_domains(
    conn: &mut DbConn,
    scope: &AccountScope,
) -> StoreResult<Vec<(String, String)>> {
    use provider_domains as t;
    t::table
        .filter(t::account_id.eq(scope.account_id()))
        .order(t::domain.asc())
        .select((t::domain, t::provider))
        .load(conn)
}

/// Maps `domain` to `provider` for the account's mail from now on (replacing its mapping).
pub fn set_account_domain(
    conn: &mut DbConn,
    scope: &AccountScope,
    domain: &str,
    provider: &str,
    now: Millis,
) -> StoreResult<()> {
    use provider_domains as t;
    let row = (
        t::account_id.eq(scope.account_id()),
        t::domain.eq(domain),
        t::provider.eq(provider),
        t::created_at.eq(now),
    );
    db_run!(conn, |c| diesel::insert_into(t::table)
        .values(row)
        .on_conflict((t::account_id, t::domain))
        .do_update()
        .set((t::provider.eq(provider), t::created_at.eq(now)))
        .execute(c))?;
    Ok(())
}

/// Removes the account's mapping of `domain`; answers whether there was one.
pub fn remove_account_domain(
    conn: &mut DbConn,
    scope: &AccountScope,
    domain: &str,
) -> StoreResult<bool> {
    use provider_domains as t;
    let n = diesel::delete(
        t::table
            .filter(t::account_id.eq(scope.account_id()))
            .filter(t::domain.eq(domain)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Deletes the account's provider counts of the hours before `before_hour`; answers the rows.
pub fn trim(conn: &mut DbConn, scope: &AccountScope, before_hour: i64) -> StoreResult<usize> {
    let hourly = diesel::delete(
        provider_rollup::table
            .filter(provider_rollup::account_id.eq(scope.account_id()))
            .filter(provider_rollup::hour.lt(before_hour)),
    )
    .execute(conn)?;
    let before_day = match zone::rollup_zone(conn, scope)? {
        Some(zone) => zone::zone_day(&zone, before_hour),
        None => before_hour.div_euclid(HOURS_PER_DAY),
    };
    let daily = diesel::delete(
        provider_rollup_daily::table
            .filter(provider_rollup_daily::account_id.eq(scope.account_id()))
            .filter(provider_rollup_daily::day.lt(before_day)),
    )
    .execute(conn)?;
    Ok(hourly + daily)
}

/// The rollup's pseudo-status of a message's first open: counted once per message, in the
/// bucket (provider, hour of request) of the message, so that rates compare like with like.
pub const OPENED: i16 = 100;
/// The same for a message's first click.
pub const CLICKED: i16 = 101;

pub fn engagement_status(click: bool) -> i16 {
    if click {
        CLICKED
    } else {
        OPENED
    }
}

/// Which of these messages (by emailId) already have an open (false) or a click (true).
pub fn engaged(
    conn: &mut DbConn,
    scope: &AccountScope,
    email_ids: &[&str],
) -> StoreResult<std::collections::HashSet<(String, bool)>> {
    use crate::db::schema::tracking_events as t;
    let mut out = std::collections::HashSet::new();
    for chunk in email_ids.chunks(500) {
        let rows: Vec<(String, i16)> = t::table
            .filter(t::account_id.eq(scope.account_id()))
            .filter(t::email_id.eq_any(chunk))
            .select((t::email_id, t::kind))
            .distinct()
            .load(conn)?;
        out.extend(
            rows.into_iter()
                .map(|(e, k)| (e, k == crate::domain::TrackKind::Click.as_i16())),
        );
    }
    Ok(out)
}

mod read;
mod refile;
pub mod zone;

pub use read::*;
pub use refile::*;
pub use zone::{realign_all, realign_days};
