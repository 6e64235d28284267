//! The periodic sweep: expired sessions, expired list entries (they already stopped
//! suppressing on their own; this only keeps the tables small) and webhook tokens past the
//! 24-hour replay window.

use std::time::Duration;

use diesel::prelude::*;

use crate::db::schema::{blacklist, bounces, spam_reports, webhook_tokens};
use crate::db::{DbConn, Pool};
use crate::domain::now_ms;
use crate::store::{sessions, StoreResult};

const DAY_MS: i64 = 24 * 3_600_000;

/// Deletes what has expired; answers how many rows went.
pub fn sweep(conn: &mut DbConn) -> StoreResult<usize> {
    let now = now_ms();
    let mut n = sessions::purge_expired(conn)?;
    n += diesel::delete(bounces::table.filter(bounces::expires_at.le(now))).execute(conn)?;
    n += diesel::delete(spam_reports::table.filter(spam_reports::expires_at.le(now)))
        .execute(conn)?;
    n += diesel::delete(blacklist::table.filter(blacklist::expires_at.le(now))).execute(conn)?;
    n += diesel::delete(webhook_tokens::table.filter(webhook_tokens::received_at.le(now - DAY_MS)))
        .execute(conn)?;
    Ok(n)
}

/// Runs the sweep every `every` on the current actix runtime.
pub fn start(pool: Pool, every: Duration) {
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(every).await;
            let pool = pool.clone();
            let swept = actix_web::web::block(move || -> Result<usize, String> {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                sweep(&mut conn).map_err(|e| e.to_string())
            })
            .await;
            match swept {
                Ok(Ok(n)) if n > 0 => log::info!("maintenance: {n} expired rows deleted"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("maintenance: {e}"),
                Err(e) => log::warn!("maintenance: {e}"),
            }
        }
    });
}
