//! Retention: mail data older than the configured number of days goes, with the rollup counts
//! of the same hours, so that every count still adds up to the rows behind it.
//!
//! On PostgreSQL whole month partitions are dropped once their last instant is older than the
//! cutoff: nothing is deleted row by row, and a month is kept until all of it is old enough
//! (data lives between `keep_days` and `keep_days` plus a month). On SQLite the rows older than
//! the cutoff are deleted in small chunks, each its own short write, so that ingestion goes on
//! between them.
//!
//! The suppression lists are not mail data: their entries expire by their own rules.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use super::partitions::{self, PartitionInfo};
use super::rollup::HOUR_MS;
use super::{AccountScope, StoreResult};
use crate::db::schema::accounts;
use crate::db::{db_run, DbConn};
use crate::domain::Millis;

const DAY_MS: i64 = 24 * HOUR_MS;

/// Rows per DELETE on SQLite: a few milliseconds of write lock each.
const CHUNK: i64 = 2_000;

/// Several servers run the same maintenance; one prunes at a time.
const PRUNE_LOCK: i64 = 0x6d61_696c_7472_6c01;

/// What one run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Everything older than this (UTC midnight) may go.
    pub cutoff: Millis,
    /// Messages deleted (SQLite); their event logs, tags, contents and send logs went with
    /// them and are not counted.
    pub messages: usize,
    /// Other rows deleted: opens and clicks, events that never got their request (SQLite),
    /// rollup counts and the Message-IDs feeds remembered (both).
    pub rows: usize,
    /// Partitions dropped (PostgreSQL), table by table, oldest first.
    pub partitions: Vec<String>,
    /// Another server was pruning: this run did nothing.
    pub skipped: bool,
}

/// The first instant kept: the UTC midnight `keep_days` before `now`.
pub fn cutoff(keep_days: u32, now: Millis) -> Millis {
    (now - i64::from(keep_days) * DAY_MS).div_euclid(DAY_MS) * DAY_MS
}

/// Removes the mail data older than `keep_days` days.
pub fn prune(conn: &mut DbConn, keep_days: u32, now: Millis) -> StoreResult<Pruned> {
    let cutoff = cutoff(keep_days, now);
    if db_run!(&*conn, sqlite: |_| true, postgres: |_| false) {
        prune_rows(conn, cutoff)
    } else {
        prune_partitions(conn, cutoff)
    }
}

fn account_scopes(conn: &mut DbConn) -> StoreResult<Vec<AccountScope>> {
    let ids: Vec<i64> = accounts::table.select(accounts::id).load(conn)?;
    Ok(ids.into_iter().map(AccountScope::new).collect())
}

/// Runs a `DELETE … WHERE id IN (SELECT … LIMIT $n)` until it deletes nothing.
fn delete_in_chunks(
    conn: &mut DbConn,
    sql: &str,
    account: Option<i64>,
    before: Millis,
) -> StoreResult<usize> {
    let mut total = 0;
    loop {
        let n = match account {
            Some(account) => diesel::sql_query(sql)
                .bind::<BigInt, _>(account)
                .bind::<BigInt, _>(before)
                .bind::<BigInt, _>(CHUNK)
                .execute(conn)?,
            None => diesel::sql_query(sql)
                .bind::<BigInt, _>(before)
                .bind::<BigInt, _>(CHUNK)
                .execute(conn)?,
        };
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

fn prune_rows(conn: &mut DbConn, cutoff: Millis) -> StoreResult<Pruned> {
    let (mut messages, mut rows) = (0, 0);
    for scope in account_scopes(conn)? {
        // Tags, event log, content and send log go with their message (ON DELETE CASCADE).
        messages += delete_in_chunks(
            conn,
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages \
             WHERE account_id = $1 AND requested_at < $2 LIMIT $3)",
            Some(scope.account_id()),
            cutoff,
        )?;
        rows += delete_in_chunks(
            conn,
            "DELETE FROM tracking_events WHERE id IN (SELECT id FROM tracking_events \
             WHERE account_id = $1 AND occurred_at < $2 LIMIT $3)",
            Some(scope.account_id()),
            cutoff,
        )?;
        rows += trim_rollups(conn, &scope, cutoff)?;
        rows += prune_message_ids(conn, &scope, cutoff)?;
    }
    // Events still waiting for a request that never came.
    rows += delete_in_chunks(
        conn,
        "DELETE FROM message_events WHERE id IN (SELECT id FROM message_events \
         WHERE message_id IS NULL AND occurred_at < $1 LIMIT $2)",
        None,
        cutoff,
    )?;
    Ok(Pruned {
        cutoff,
        messages,
        rows,
        ..Pruned::default()
    })
}

/// Forgets the Message-ID headers a feed read before `before`: a bounce naming one of them
/// would find no message any more. One text for both backends (row values, keyed deletes).
fn prune_message_ids(
    conn: &mut DbConn,
    scope: &AccountScope,
    before: Millis,
) -> StoreResult<usize> {
    delete_in_chunks(
        conn,
        "DELETE FROM feed_message_ids WHERE (account_id, message_id, email_id) IN \
         (SELECT account_id, message_id, email_id FROM feed_message_ids \
         WHERE account_id = $1 AND seen_at < $2 LIMIT $3)",
        Some(scope.account_id()),
        before,
    )
}

/// Deletes the account's rollup counts of the hours before `before` (a UTC midnight).
fn trim_rollups(conn: &mut DbConn, scope: &AccountScope, before: Millis) -> StoreResult<usize> {
    use crate::db::schema::{status_rollup, status_rollup_daily, status_rollup_tags};
    let hours = diesel::delete(
        status_rollup::table
            .filter(status_rollup::account_id.eq(scope.account_id()))
            .filter(status_rollup::hour.lt(before.div_euclid(HOUR_MS))),
    )
    .execute(conn)?;
    let days = diesel::delete(
        status_rollup_daily::table
            .filter(status_rollup_daily::account_id.eq(scope.account_id()))
            .filter(status_rollup_daily::day.lt(before.div_euclid(DAY_MS))),
    )
    .execute(conn)?;
    // Keyed by tag first: this reads the account's part of the table, once a run.
    let tagged = diesel::delete(
        status_rollup_tags::table
            .filter(status_rollup_tags::account_id.eq(scope.account_id()))
            .filter(status_rollup_tags::hour.lt(before.div_euclid(HOUR_MS))),
    )
    .execute(conn)?;
    let providers = super::providers::trim(conn, scope, before.div_euclid(HOUR_MS))?;
    Ok(hours + days + tagged + providers)
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

fn prune_partitions(conn: &mut DbConn, cutoff: Millis) -> StoreResult<Pruned> {
    let locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<BigInt, _>(PRUNE_LOCK)
        .get_result::<Locked>(conn)?
        .locked;
    if !locked {
        return Ok(Pruned {
            cutoff,
            skipped: true,
            ..Pruned::default()
        });
    }
    let pruned = drop_old_months(conn, cutoff);
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1) AS locked")
        .bind::<BigInt, _>(PRUNE_LOCK)
        .get_result::<Locked>(conn);
    let pruned = pruned?;
    unlocked?;
    Ok(pruned)
}

fn drop_old_months(conn: &mut DbConn, cutoff: Millis) -> StoreResult<Pruned> {
    let mut listed = Vec::new();
    for table in partitions::TABLES {
        listed.push((table, partitions::list(conn, table)?));
    }
    let mut dropped = Vec::new();
    // Messages last: a run cut short leaves whole messages behind, never their contents
    // without them.
    for (table, parts) in listed.iter().rev() {
        for part in parts.iter().filter(|p| p.month.end_ms() <= cutoff) {
            if *table == "messages" {
                delete_dependents(conn, &part.name)?;
            }
            detach_and_drop(conn, table, part)?;
            dropped.push(part.name.clone());
        }
    }
    // The counts of the hours no partition holds any more. A month starts at a UTC midnight.
    let kept_from = listed
        .iter()
        .find(|(table, _)| *table == "messages")
        .and_then(|(_, parts)| parts.iter().find(|p| p.month.end_ms() > cutoff))
        .map_or(cutoff, |p| p.month.start_ms().min(cutoff));
    let mut rows = 0;
    for scope in account_scopes(conn)? {
        rows += trim_rollups(conn, &scope, kept_from)?;
        rows += prune_message_ids(conn, &scope, kept_from)?;
    }
    Ok(Pruned {
        cutoff,
        messages: 0,
        rows,
        partitions: dropped,
        skipped: false,
    })
}

/// The S+ contents and send logs of one month's messages: kept in tables of their own,
/// which no foreign key ties to the partitioned messages.
fn delete_dependents(conn: &mut DbConn, partition: &str) -> StoreResult<()> {
    for table in ["message_contents", "send_logs"] {
        diesel::sql_query(format!(
            "DELETE FROM {table} AS d USING \"{partition}\" AS m WHERE d.message_id = m.id"
        ))
        .execute(conn)?;
    }
    Ok(())
}

/// Detaches without blocking the readers and writers of the parent (PostgreSQL 14 and
/// later), then drops. A detach an earlier run left half done is finished first.
fn detach_and_drop(conn: &mut DbConn, table: &str, part: &PartitionInfo) -> StoreResult<()> {
    let how = if part.detach_pending {
        "FINALIZE"
    } else {
        "CONCURRENTLY"
    };
    diesel::sql_query(format!(
        "ALTER TABLE {table} DETACH PARTITION \"{}\" {how}",
        part.name
    ))
    .execute(conn)?;
    diesel::sql_query(format!("DROP TABLE \"{}\"", part.name)).execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_a_utc_midnight_keep_days_back() {
        // 2026-11-28 06:30 UTC, keeping 30 days: everything before 2026-10-29 00:00 UTC goes.
        let now = 1_795_847_400_000;
        assert_eq!(cutoff(30, now), 1_793_232_000_000);
        assert_eq!(cutoff(30, now) % DAY_MS, 0);
    }
}
