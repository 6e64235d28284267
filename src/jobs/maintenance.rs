//! The periodic sweep: expired sessions, expired list entries (they already stopped
//! suppressing on their own; this only keeps the tables small) and webhook tokens past the
//! 24-hour replay window; on PostgreSQL the month partitions ahead; and, when a retention is
//! set, the mail data older than it.

use std::time::Duration;

use crate::db::{DbConn, Pool};
use crate::domain::now_ms;
use crate::store::{lists, partitions, retention, sessions, webhooks, StoreResult};

const DAY_MS: i64 = 24 * 3_600_000;

/// Deletes what has expired; answers how many rows went.
pub fn sweep(conn: &mut DbConn) -> StoreResult<usize> {
    let now = now_ms();
    let mut n = sessions::purge_expired(conn)?;
    n += lists::sweep_expired(conn, now)?;
    n += webhooks::purge_tokens(conn, now - DAY_MS)?;
    Ok(n)
}

/// One round of maintenance; each part runs even when another failed.
pub fn run_once(conn: &mut DbConn, retention_days: Option<u32>) {
    match sweep(conn) {
        Ok(n) if n > 0 => log::info!("maintenance: {n} expired rows deleted"),
        Ok(_) => {}
        Err(e) => log::warn!("maintenance: sweep: {e}"),
    }
    if let Err(e) = partitions::ensure_ahead(conn, now_ms()) {
        log::warn!("maintenance: creating the partitions ahead: {e}");
    }
    if let Some(days) = retention_days {
        match retention::prune(conn, days, now_ms()) {
            Ok(p) if p.messages + p.rows > 0 || !p.partitions.is_empty() => log::info!(
                "retention ({days} days): {} messages and {} other rows deleted, \
                 partitions dropped: {}",
                p.messages,
                p.rows,
                if p.partitions.is_empty() {
                    "none".to_string()
                } else {
                    p.partitions.join(", ")
                }
            ),
            Ok(_) => {}
            Err(e) => log::warn!("maintenance: retention: {e}"),
        }
    }
}

/// Runs the maintenance every `every` on the current actix runtime.
pub fn start(pool: Pool, every: Duration, retention_days: Option<u32>) {
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(every).await;
            let pool = pool.clone();
            let ran = actix_web::web::block(move || match pool.get() {
                Ok(mut conn) => run_once(&mut conn, retention_days),
                Err(e) => log::warn!("maintenance: {e}"),
            })
            .await;
            if let Err(e) = ran {
                log::warn!("maintenance: {e}");
            }
        }
    });
}
