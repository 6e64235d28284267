//! Realistic synthetic traffic for demos and benchmarks (`mailtrail generate`, `serve --demo`):
//! a sender's status and reason mix, several API_USERs, tags, both mail types, event logs with
//! SMTP replies, opens and clicks, and the list entries those events imply.
//!
//! The steps: make room for a bulk load ([`drop_indexes`]), draw the messages oldest first
//! chunk by chunk ([`super::draw`]) and write each chunk, then the list entries and rollup
//! counts the run implies, then the indexes and statistics again.

use std::collections::HashSet;

use diesel::connection::{Connection, SimpleConnection};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::draw::{Chunk, Implied, Run, DAY_MS};
use crate::db::schema::{
    blacklist, bounces, message_events, message_tags, messages, spam_reports, tracking_events,
    unsubscribes,
};
use crate::db::{db_run, DbConn};
use crate::domain::now_ms;
use crate::store::models::*;
use crate::store::rollup::{self, BucketKey};
use crate::store::{partitions, AccountScope, StoreResult};

pub use super::content::sample_content;

/// Messages drawn and written at a time.
const CHUNK: usize = 2_000;

#[derive(Debug, Clone, Copy, Default)]
pub struct Generated {
    pub messages: u64,
    pub events: u64,
    pub tracking: u64,
    pub list_entries: u64,
}

macro_rules! batch_insert {
    ($conn:expr, $table:expr, $rows:expr) => {
        if !$rows.is_empty() {
            db_run!(&mut *$conn, |c| diesel::insert_into($table)
                .values($rows)
                .execute(c))?;
        }
    };
}

/// Generates `count` messages requested over the last `days` days into the scope's account,
/// in one transaction: all of it lands, or none.
pub fn generate(
    conn: &mut DbConn,
    scope: &AccountScope,
    count: u64,
    days: u32,
    seed: u64,
) -> StoreResult<Generated> {
    let now = now_ms();
    partitions::ensure_range(conn, now - i64::from(days.max(1)) * DAY_MS, now + DAY_MS)?;
    conn.transaction(|conn| {
        // A bulk load builds the indexes of the growing tables once at the end, which is many
        // times faster than updating them row by row; DDL is transactional on both backends.
        let rebuild = if count >= BULK_THRESHOLD {
            drop_indexes(conn)?
        } else {
            Vec::new()
        };
        let stats = generate_rows(conn, scope, count, days, seed)?;
        let bulk = !rebuild.is_empty();
        for create in rebuild {
            diesel::sql_query(create).execute(conn)?;
        }
        if bulk && db_run!(&*conn, sqlite: |_| false, postgres: |_| true) {
            // Fresh statistics, so that the first queries after a bulk load use the indexes
            // (autovacuum never analyses a partitioned parent, and its partitions only later).
            diesel::sql_query(
                "ANALYZE messages, message_tags, message_events, tracking_events, status_rollup, \
                 status_rollup_daily",
            )
            .execute(conn)?;
        }
        Ok(stats)
    })
}

/// From this many messages on, indexes are rebuilt rather than updated.
const BULK_THRESHOLD: u64 = 20_000;

#[derive(QueryableByName)]
struct IndexDef {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    sql: String,
}

/// Drops the secondary indexes of the tables that grow with mail volume and answers the
/// statements that create them again, read from the database's own catalogue.
fn drop_indexes(conn: &mut DbConn) -> StoreResult<Vec<String>> {
    let catalogue = db_run!(
        &*conn,
        sqlite: |_| "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
             AND tbl_name IN ('messages', 'message_tags', 'message_events', 'tracking_events')",
        postgres: |_| "SELECT CAST(indexname AS TEXT) AS name, indexdef AS sql FROM pg_indexes \
             WHERE schemaname = current_schema() AND indexname NOT LIKE '%_pkey' \
             AND tablename IN ('messages', 'message_tags', 'message_events', 'tracking_events')",
    );
    let indexes: Vec<IndexDef> = diesel::sql_query(catalogue).load(conn)?;
    for index in &indexes {
        diesel::sql_query(format!("DROP INDEX {}", index.name)).execute(conn)?;
    }
    // PostgreSQL describes an index of a partitioned table as `ON ONLY` the parent, which
    // would build it for no partition; built on the parent, it is built on every partition.
    Ok(indexes
        .into_iter()
        .map(|i| i.sql.replacen(" ON ONLY ", " ON ", 1))
        .collect())
}

fn generate_rows(
    conn: &mut DbConn,
    scope: &AccountScope,
    count: u64,
    days: u32,
    seed: u64,
) -> StoreResult<Generated> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = now_ms();
    let window = i64::from(days.max(1)) * DAY_MS;
    let first_id: i64 = messages::table
        .select(diesel::dsl::max(messages::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0)
        + 1;
    // Request times are drawn first and walked oldest first, so that the time-ordered indexes
    // grow at their ends instead of splitting pages all over the file. Newer days send a
    // little more, like a growing sender.
    let mut ages: Vec<i64> = (0..count)
        .map(|_| ((rng.gen::<f64>().powf(1.3) * window as f64) as i64).max(1_000))
        .collect();
    ages.sort_unstable_by(|a, b| b.cmp(a));
    let mut run = Run {
        rng,
        account: scope.account_id(),
        now,
        pool_size: (count / 3).clamp(50, 2_000_000) as usize,
        implied: Implied::default(),
    };
    // A large page cache for this one bulk load; the pool's usual size comes back after.
    sqlite_cache(conn, "PRAGMA cache_size = -1048576")?;
    let mut stats = Generated::default();
    for (i, chunk_ages) in ages.chunks(CHUNK).enumerate() {
        let mut chunk = Chunk::default();
        for (j, age) in chunk_ages.iter().enumerate() {
            run.message(first_id + (i * CHUNK + j) as i64, *age, &mut chunk);
        }
        write_chunk(conn, &chunk)?;
        stats.messages += chunk.messages.len() as u64;
        stats.events += chunk.events.len() as u64;
        stats.tracking += chunk.tracking.len() as u64;
    }
    sqlite_cache(conn, "PRAGMA cache_size = -65536")?;
    let mut implied = run.implied;
    stats.list_entries = write_lists(conn, scope, &mut implied, now - window)?;
    write_rollup(conn, scope, implied)?;
    restart_sequences(conn)?;
    Ok(stats)
}

/// SQLite: sets the connection's page cache; PostgreSQL keeps its cache in the server.
fn sqlite_cache(conn: &mut DbConn, pragma: &str) -> StoreResult<()> {
    db_run!(conn, sqlite: |c| c.batch_execute(pragma), postgres: |_| Ok(()))
}

fn write_chunk(conn: &mut DbConn, chunk: &Chunk) -> StoreResult<()> {
    for rows in chunk.messages.chunks(1_000) {
        batch_insert!(conn, messages::table, rows);
    }
    for rows in chunk.tags.chunks(1_000) {
        batch_insert!(conn, message_tags::table, rows);
    }
    for rows in chunk.events.chunks(1_000) {
        batch_insert!(conn, message_events::table, rows);
    }
    for rows in chunk.tracking.chunks(1_000) {
        batch_insert!(conn, tracking_events::table, rows);
    }
    Ok(())
}

/// The addresses of `$table` that the account already has.
macro_rules! listed {
    ($conn:expr, $account:expr, $table:ident) => {
        $table::table
            .filter($table::account_id.eq($account))
            .select($table::address)
            .load::<String>($conn)?
            .into_iter()
            .collect::<HashSet<String>>()
    };
}

/// Adds the list entries the run implies, but for addresses already on the list; answers
/// how many were added.
fn write_lists(
    conn: &mut DbConn,
    scope: &AccountScope,
    implied: &mut Implied,
    blacklisted_at: i64,
) -> StoreResult<u64> {
    let account = scope.account_id();
    let existing = listed!(conn, account, bounces);
    let bounce_rows: Vec<NewBounce> = std::mem::take(&mut implied.bounce_list)
        .into_values()
        .filter(|b| !existing.contains(&b.address))
        .map(|b| NewBounce {
            expires_at: b.bounced_at + crate::domain::bounce_backoff_ms(b.bounce_count),
            ..b
        })
        .collect();
    let existing = listed!(conn, account, unsubscribes);
    let unsub_rows: Vec<NewUnsubscribe> = std::mem::take(&mut implied.unsubscribed)
        .into_values()
        .filter(|u| !existing.contains(&u.address))
        .collect();
    let existing = listed!(conn, account, spam_reports);
    let spam_rows: Vec<NewSpamReport> = std::mem::take(&mut implied.spam)
        .into_values()
        .filter(|s| !existing.contains(&s.address))
        .collect();
    let existing = listed!(conn, account, blacklist);
    let black_rows: Vec<NewBlacklistEntry> = std::mem::take(&mut implied.blacklisted)
        .into_iter()
        .filter(|a| !existing.contains(a))
        .map(|address| NewBlacklistEntry {
            account_id: account,
            address,
            source: "ui".into(),
            api_user: None,
            created_at: blacklisted_at,
            expires_at: None,
        })
        .collect();
    for rows in bounce_rows.chunks(1_000) {
        batch_insert!(conn, bounces::table, rows);
    }
    for rows in unsub_rows.chunks(1_000) {
        batch_insert!(conn, unsubscribes::table, rows);
    }
    for rows in spam_rows.chunks(1_000) {
        batch_insert!(conn, spam_reports::table, rows);
    }
    for rows in black_rows.chunks(1_000) {
        batch_insert!(conn, blacklist::table, rows);
    }
    Ok((bounce_rows.len() + unsub_rows.len() + spam_rows.len() + black_rows.len()) as u64)
}

fn write_rollup(conn: &mut DbConn, scope: &AccountScope, implied: Implied) -> StoreResult<()> {
    let changes: Vec<(BucketKey, i64)> = implied.rollup_counts.into_iter().collect();
    rollup::apply(conn, scope, &changes)?;
    implied.provider_counts.write(conn, scope)?;
    let changes: Vec<((BucketKey, String), i64)> = implied.tag_counts.into_iter().collect();
    rollup::apply_tags(conn, scope, &changes)
}

/// PostgreSQL: the id sequences continue after the ids the generator chose itself.
fn restart_sequences(conn: &mut DbConn) -> StoreResult<()> {
    if db_run!(&*conn, sqlite: |_| true, postgres: |_| false) {
        return Ok(());
    }
    for table in [
        "messages",
        "message_events",
        "tracking_events",
        "bounces",
        "unsubscribes",
        "spam_reports",
        "blacklist",
    ] {
        diesel::sql_query(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 1))"
        ))
        .execute(conn)?;
    }
    Ok(())
}

/// A scope for the generator's callers that already resolved the account.
pub fn scope_for(account: &Account) -> AccountScope {
    AccountScope::new(account.id)
}
