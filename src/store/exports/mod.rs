//! Export jobs (离线数据): a queue in a table, claimed by the workers of any server
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, a guarded update on SQLite), run outside the
//! claiming transaction, retried with backoff.

mod copy;
mod rows;

pub use copy::status_rows as copy_status_rows;
pub use rows::Presenter;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::lease::{Bind, Claim};
use super::lists::ListFilter;
use super::status::StatusFilter;
use super::tracking::TrackingFilter;
use super::{AccountScope, StoreResult};
use crate::db::schema::export_jobs;
use crate::db::DbConn;
use crate::domain::Millis;

pub const MAX_ATTEMPTS: i32 = 3;

/// What a job exports, as stored in its `filter` column (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportSpec {
    Status { filter: StatusFilter },
    List { list: String, filter: ListFilter },
    OpensClicks { filter: TrackingFilter },
}

/// The stored job description: the spec, the language of the person who asked, and a
/// one-line summary of their filter for the jobs page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobFilter {
    pub spec: ExportSpec,
    pub lang: String,
    pub summary: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = export_jobs)]
pub struct ExportJob {
    pub id: i64,
    pub account_id: i64,
    pub requested_by: Option<i64>,
    pub kind: String,
    pub filter: String,
    pub format: String,
    pub gzip: bool,
    pub state: String,
    pub rows_done: i64,
    pub rows_total: Option<i64>,
    pub file_name: Option<String>,
    pub file_size: Option<i64>,
    pub error: Option<String>,
    pub attempts: i32,
    pub run_after: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// What a new job is: who asked, what, in which format.
pub struct NewJob<'a> {
    pub requested_by: i64,
    pub kind: &'a str,
    pub filter: &'a str,
    pub format: &'a str,
    pub gzip: bool,
}

pub fn create(
    conn: &mut DbConn,
    scope: &AccountScope,
    job: &NewJob,
    now: Millis,
) -> StoreResult<i64> {
    diesel::insert_into(export_jobs::table)
        .values((
            export_jobs::account_id.eq(scope.account_id()),
            export_jobs::requested_by.eq(job.requested_by),
            export_jobs::kind.eq(job.kind),
            export_jobs::filter.eq(job.filter),
            export_jobs::format.eq(job.format),
            export_jobs::gzip.eq(job.gzip),
            export_jobs::state.eq("queued"),
            export_jobs::run_after.eq(now),
            export_jobs::created_at.eq(now),
        ))
        .execute(conn)?;
    export_jobs::table
        .filter(export_jobs::account_id.eq(scope.account_id()))
        .select(diesel::dsl::max(export_jobs::id))
        .first::<Option<i64>>(conn)
        .map(|id| id.unwrap_or(0))
}

pub fn list(conn: &mut DbConn, scope: &AccountScope, limit: i64) -> StoreResult<Vec<ExportJob>> {
    export_jobs::table
        .filter(export_jobs::account_id.eq(scope.account_id()))
        .order((export_jobs::created_at.desc(), export_jobs::id.desc()))
        .limit(limit)
        .select(ExportJob::as_select())
        .load(conn)
}

pub fn get(conn: &mut DbConn, scope: &AccountScope, id: i64) -> StoreResult<Option<ExportJob>> {
    export_jobs::table
        .filter(export_jobs::account_id.eq(scope.account_id()))
        .filter(export_jobs::id.eq(id))
        .select(ExportJob::as_select())
        .first(conn)
        .optional()
}

/// The export queue's claim: `$1` is now, `$2` the oldest heartbeat a running job may have
/// and stay its worker's.
const CLAIM: Claim = Claim {
    table: "export_jobs",
    set: "state = 'running', attempts = attempts + 1, started_at = $1, heartbeat_at = $1, \
          error = NULL",
    due: "(state = 'queued' AND run_after <= $1) \
          OR (state = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < $2))",
    order: "run_after, id",
};

/// Takes the oldest due job for this worker, or none: a queued one, or a running one whose
/// lease is older than `lease_ms` (its server died or hangs; its file was never renamed into
/// place), whose attempt then counts. Jobs other servers are running renew their lease and
/// stay theirs. Only one worker can win a job: PostgreSQL skips rows another transaction
/// holds and re-checks a locked row's lease; SQLite serialises writers and the update
/// re-checks the state.
pub fn claim(conn: &mut DbConn, now: Millis, lease_ms: i64) -> StoreResult<Option<ExportJob>> {
    let claimed = CLAIM.claim(conn, &[Bind::Int(now), Bind::Int(now - lease_ms)])?;
    match claimed {
        None => Ok(None),
        Some(id) => export_jobs::table
            .find(id)
            .select(ExportJob::as_select())
            .first(conn)
            .optional(),
    }
}

/// Records a running job's progress and renews its lease; false when the job is no longer
/// running (cancelled), so that one statement both reports and asks.
pub fn progress(conn: &mut DbConn, id: i64, rows_done: i64, now: Millis) -> StoreResult<bool> {
    diesel::update(
        export_jobs::table
            .find(id)
            .filter(export_jobs::state.eq("running")),
    )
    .set((
        export_jobs::rows_done.eq(rows_done),
        export_jobs::heartbeat_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

pub fn succeed(
    conn: &mut DbConn,
    id: i64,
    rows: i64,
    file_name: &str,
    size: i64,
    now: Millis,
    keep_ms: i64,
) -> StoreResult<bool> {
    diesel::update(
        export_jobs::table
            .find(id)
            .filter(export_jobs::state.eq("running")),
    )
    .set((
        export_jobs::state.eq("succeeded"),
        export_jobs::rows_done.eq(rows),
        export_jobs::rows_total.eq(rows),
        export_jobs::file_name.eq(file_name),
        export_jobs::file_size.eq(size),
        export_jobs::finished_at.eq(now),
        export_jobs::expires_at.eq(now + keep_ms),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

/// A failed attempt: queued again after a backoff, or `failed` after the last attempt.
pub fn fail(conn: &mut DbConn, id: i64, error: &str, now: Millis) -> StoreResult<()> {
    let attempts: i32 = export_jobs::table
        .find(id)
        .select(export_jobs::attempts)
        .first(conn)?;
    if attempts >= MAX_ATTEMPTS {
        diesel::update(export_jobs::table.find(id))
            .set((
                export_jobs::state.eq("failed"),
                export_jobs::error.eq(error),
                export_jobs::finished_at.eq(now),
            ))
            .execute(conn)?;
    } else {
        let backoff = 30_000i64 << attempts.max(0);
        diesel::update(export_jobs::table.find(id))
            .set((
                export_jobs::state.eq("queued"),
                export_jobs::error.eq(error),
                export_jobs::run_after.eq(now + backoff),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Renews a running job's lease.
pub fn heartbeat(conn: &mut DbConn, id: i64, now: Millis) -> StoreResult<()> {
    diesel::update(
        export_jobs::table
            .find(id)
            .filter(export_jobs::state.eq("running")),
    )
    .set(export_jobs::heartbeat_at.eq(now))
    .execute(conn)
    .map(|_| ())
}

/// A job this server stops running because it is shutting down goes back to the queue at
/// once, its attempt not counted: nothing went wrong with it.
pub fn release(conn: &mut DbConn, id: i64, now: Millis) -> StoreResult<bool> {
    diesel::update(
        export_jobs::table
            .find(id)
            .filter(export_jobs::state.eq("running")),
    )
    .set((
        export_jobs::state.eq("queued"),
        export_jobs::run_after.eq(now),
        export_jobs::attempts.eq(export_jobs::attempts - 1),
        export_jobs::rows_done.eq(0),
        export_jobs::heartbeat_at.eq(None::<i64>),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

/// Succeeded jobs whose files are due to go; answers `(id, file name)`.
pub fn due_for_expiry(conn: &mut DbConn, now: Millis) -> StoreResult<Vec<(i64, Option<String>)>> {
    export_jobs::table
        .filter(export_jobs::state.eq("succeeded"))
        .filter(export_jobs::expires_at.le(now))
        .select((export_jobs::id, export_jobs::file_name))
        .load(conn)
}

pub fn mark_expired(conn: &mut DbConn, id: i64) -> StoreResult<()> {
    diesel::update(export_jobs::table.find(id))
        .set(export_jobs::state.eq("expired"))
        .execute(conn)
        .map(|_| ())
}

/// Cancels a queued or running job of the account; false when it was neither.
pub fn cancel(conn: &mut DbConn, scope: &AccountScope, id: i64, now: Millis) -> StoreResult<bool> {
    diesel::update(
        export_jobs::table
            .filter(export_jobs::account_id.eq(scope.account_id()))
            .filter(export_jobs::id.eq(id))
            .filter(export_jobs::state.eq_any(["queued", "running"])),
    )
    .set((
        export_jobs::state.eq("cancelled"),
        export_jobs::finished_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

/// Queues a failed or cancelled job again with fresh attempts.
pub fn retry(conn: &mut DbConn, scope: &AccountScope, id: i64, now: Millis) -> StoreResult<bool> {
    diesel::update(
        export_jobs::table
            .filter(export_jobs::account_id.eq(scope.account_id()))
            .filter(export_jobs::id.eq(id))
            .filter(export_jobs::state.eq_any(["failed", "cancelled"])),
    )
    .set((
        export_jobs::state.eq("queued"),
        export_jobs::attempts.eq(0),
        export_jobs::rows_done.eq(0),
        export_jobs::error.eq(None::<String>),
        export_jobs::run_after.eq(now),
        export_jobs::finished_at.eq(None::<i64>),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

/// The expected number of rows, so that the page can show a proportion while it runs.
pub fn set_total(conn: &mut DbConn, id: i64, total: i64) -> StoreResult<()> {
    diesel::update(export_jobs::table.find(id))
        .set(export_jobs::rows_total.eq(total))
        .execute(conn)
        .map(|_| ())
}

/// How many export jobs wait and run across every account and server, for the operator's
/// metrics: counts only, no account named.
pub fn queue_depth(conn: &mut DbConn) -> StoreResult<[(&'static str, i64); 2]> {
    let mut depth = [("queued", 0), ("running", 0)];
    for (state, count) in depth.iter_mut() {
        *count = export_jobs::table
            .filter(export_jobs::state.eq(*state))
            .count()
            .get_result(conn)?;
    }
    Ok(depth)
}
