//! The days of the daily provider rollup: the days of the account's own time zone, so that a
//! providers page, whose periods are whole days there, reads the daily table alone. An hour
//! counts in the zone day that holds its last moment: in a zone whose offset is not a whole
//! hour (Asia/Kolkata), the hour its midnight falls in counts in the day that midnight begins,
//! as the pages' periods start there too. `provider_rollup_zone` names the zone an account's
//! daily rows are days of; when the account's zone changes, the daily rows are summed again
//! from the hourly ones.

use chrono::{NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;
use diesel::prelude::*;

use super::HOURS_PER_DAY;
use crate::db::schema::{accounts, provider_rollup_zone};
use crate::db::{db_run, DbConn};
use crate::domain::parse_zone;
use crate::store::rollup::HOUR_MS;
use crate::store::{AccountScope, StoreResult};

/// Whole hours to add to a UTC hour so that dividing by 24 gives its zone day: the zone's
/// offset at the hour's last moment, rounded up to a whole hour.
fn offset_hours(zone: &Tz, hour: i64) -> i64 {
    let last = (hour + 1) * HOUR_MS - 1;
    let seconds = match zone.timestamp_millis_opt(last).single() {
        Some(t) => t.offset().fix().local_minus_utc() as i64,
        None => 0,
    };
    seconds.div_euclid(3600) + i64::from(seconds.rem_euclid(3600) != 0)
}

/// The zone day (days since 1970-01-01 of the local date) that `hour` (UTC, since the epoch)
/// counts in.
pub fn zone_day(zone: &Tz, hour: i64) -> i64 {
    (hour + offset_hours(zone, hour)).div_euclid(HOURS_PER_DAY)
}

/// The first hour that counts in zone day `day`.
pub fn zone_day_start(zone: &Tz, day: i64) -> i64 {
    let date = NaiveDate::from_num_days_from_ce_opt(
        i32::try_from(day + EPOCH_DAYS_FROM_CE).unwrap_or(EPOCH_DAYS_FROM_CE as i32),
    )
    .unwrap_or_default();
    let mut hour = crate::domain::day_start(zone, date).div_euclid(HOUR_MS);
    // The local midnight is where the day begins; step to the first hour that counts in it.
    while zone_day(zone, hour) < day {
        hour += 1;
    }
    while zone_day(zone, hour - 1) >= day {
        hour -= 1;
    }
    hour
}

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// The zone the account's daily rows are days of, if it has any yet.
pub fn rollup_zone(conn: &mut DbConn, scope: &AccountScope) -> StoreResult<Option<Tz>> {
    let name: Option<String> = provider_rollup_zone::table
        .filter(provider_rollup_zone::account_id.eq(scope.account_id()))
        .select(provider_rollup_zone::zone)
        .first(conn)
        .optional()?;
    Ok(name.as_deref().and_then(parse_zone))
}

/// The zone the daily rows that a writer adds are days of, inside the writer's transaction:
/// on PostgreSQL the row is held shared, so that a re-summing (which holds it alone) waits
/// for the writers before it and the writers after it see its zone. An account without one
/// takes its own zone (it has no daily rows yet: the migration named UTC for the others).
pub fn writing_zone(conn: &mut DbConn, scope: &AccountScope) -> StoreResult<Tz> {
    let t = provider_rollup_zone::table
        .filter(provider_rollup_zone::account_id.eq(scope.account_id()))
        .select(provider_rollup_zone::zone);
    let name: Option<String> = db_run!(
        &mut *conn,
        sqlite: |c| t.first(c).optional(),
        postgres: |c| t.for_share().first(c).optional(),
    )?;
    if let Some(zone) = name.as_deref().and_then(parse_zone) {
        return Ok(zone);
    }
    let zone = account_zone(conn, scope)?;
    let row = (
        provider_rollup_zone::account_id.eq(scope.account_id()),
        provider_rollup_zone::zone.eq(zone.name()),
    );
    db_run!(&mut *conn, |c| diesel::insert_into(
        provider_rollup_zone::table
    )
    .values(row)
    .on_conflict_do_nothing()
    .execute(c))?;
    // A concurrent writer may have named it first: read what stands.
    Ok(rollup_zone(conn, scope)?.unwrap_or(zone))
}

fn account_zone(conn: &mut DbConn, scope: &AccountScope) -> StoreResult<Tz> {
    let name: String = accounts::table
        .filter(accounts::id.eq(scope.account_id()))
        .select(accounts::time_zone)
        .first(conn)?;
    Ok(parse_zone(&name).unwrap_or(chrono_tz::Asia::Shanghai))
}

/// Sums the account's daily rows again from its hourly ones, as days of `zone`, in one
/// transaction; a no-op when they are days of it already. Answers whether it re-summed.
pub fn realign_days(conn: &mut DbConn, scope: &AccountScope, zone: &Tz) -> StoreResult<bool> {
    let _writer = conn.sqlite_writer_turn();
    conn.transaction(|conn| {
        crate::store::events::begin_writing(conn)?;
        let account = scope.account_id();
        let row = (
            provider_rollup_zone::account_id.eq(account),
            provider_rollup_zone::zone.eq(zone.name()),
        );
        // Inserted or held alone (PostgreSQL: writers hold it shared until they commit).
        db_run!(&mut *conn, |c| diesel::insert_into(provider_rollup_zone::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c))?;
        let t = provider_rollup_zone::table
            .filter(provider_rollup_zone::account_id.eq(account))
            .select(provider_rollup_zone::zone);
        let now: String = db_run!(
            &mut *conn,
            sqlite: |c| t.first(c),
            postgres: |c| t.for_update().first(c),
        )?;
        if now == zone.name() {
            return Ok(false);
        }
        diesel::sql_query(format!(
            "DELETE FROM provider_rollup_daily WHERE account_id = {account}"
        ))
        .execute(conn)?;
        for (from, to, offset) in segments(conn, scope, zone)? {
            diesel::sql_query(format!(
                "INSERT INTO provider_rollup_daily (account_id, provider, day, status, reason, count) \
                 SELECT account_id, provider, (hour + {offset}) / {HOURS_PER_DAY}, status, reason, SUM(count) \
                 FROM provider_rollup WHERE account_id = {account} AND hour >= {from} AND hour < {to} \
                 GROUP BY account_id, provider, (hour + {offset}) / {HOURS_PER_DAY}, status, reason \
                 HAVING SUM(count) <> 0 \
                 ON CONFLICT (account_id, day, provider, status, reason) \
                 DO UPDATE SET count = provider_rollup_daily.count + excluded.count"
            ))
            .execute(conn)?;
        }
        diesel::update(provider_rollup_zone::table.filter(provider_rollup_zone::account_id.eq(account)))
            .set(provider_rollup_zone::zone.eq(zone.name()))
            .execute(conn)?;
        Ok(true)
    })
}

/// The account's hours with rows, cut where the zone's offset changes: `(from, to, offset)`.
fn segments(
    conn: &mut DbConn,
    scope: &AccountScope,
    zone: &Tz,
) -> StoreResult<Vec<(i64, i64, i64)>> {
    use crate::db::schema::provider_rollup as h;
    let span: (Option<i64>, Option<i64>) = h::table
        .filter(h::account_id.eq(scope.account_id()))
        .select((diesel::dsl::min(h::hour), diesel::dsl::max(h::hour)))
        .first(conn)?;
    let (Some(first), Some(last)) = span else {
        return Ok(Vec::new());
    };
    let mut out: Vec<(i64, i64, i64)> = Vec::new();
    for hour in first..=last {
        let offset = offset_hours(zone, hour);
        match out.last_mut() {
            Some(s) if s.2 == offset => s.1 = hour + 1,
            _ => out.push((hour, hour + 1, offset)),
        }
    }
    Ok(out)
}

/// Brings every account's daily rows to the account's zone (at start, after migrations).
/// Answers how many accounts were re-summed.
pub fn realign_all(conn: &mut DbConn) -> StoreResult<usize> {
    let zones: Vec<(i64, String)> = accounts::table
        .select((accounts::id, accounts::time_zone))
        .load(conn)?;
    let mut done = 0;
    for (id, name) in zones {
        let zone = parse_zone(&name).unwrap_or(chrono_tz::Asia::Shanghai);
        let scope = AccountScope::new(id);
        if rollup_zone(conn, &scope)? != Some(zone) && realign_days(conn, &scope, &zone)? {
            done += 1;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour_of(zone: &Tz, date: &str) -> i64 {
        let d: NaiveDate = date.parse().unwrap();
        crate::domain::day_start(zone, d).div_euclid(HOUR_MS)
    }

    #[test]
    fn an_hour_counts_in_the_day_of_the_zone_it_ends_in() {
        for name in [
            "UTC",
            "Asia/Shanghai",
            "America/Sao_Paulo",
            "Asia/Kolkata",
            "America/St_Johns",
            "America/New_York",
            "Australia/Lord_Howe",
        ] {
            let zone: Tz = name.parse().unwrap();
            for date in ["2026-03-08", "2026-03-09", "2026-11-01", "2026-12-01"] {
                let d: NaiveDate = date.parse().unwrap();
                let day = (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days();
                let start = hour_of(&zone, date);
                assert_eq!(zone_day_start(&zone, day), start, "{name} {date}");
                assert_eq!(zone_day(&zone, start), day, "{name} {date}");
                assert_eq!(zone_day(&zone, start - 1), day - 1, "{name} {date}");
            }
        }
    }
}
