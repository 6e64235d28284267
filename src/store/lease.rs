//! Claiming one due row of a work queue under a lease, for the export queue, alert rule
//! evaluation and alert notifications alike: the oldest row that is due (queued and ready, or
//! held under a lease that ran out) is updated to be this worker's in one statement. Only one
//! worker can win a row: PostgreSQL skips rows another transaction holds
//! (`FOR UPDATE SKIP LOCKED`) and re-checks a locked row; SQLite serialises writers and the
//! update re-checks that the row is still due.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::db::{db_run, DbConn};
use crate::store::StoreResult;

/// A queue's claim, as SQL pieces. The `$N` markers of `set` come first, then those of `due`
/// (SQLite numbers them by first appearance, so they must appear in order).
pub struct Claim {
    pub table: &'static str,
    /// What a claim sets, e.g. `state = 'running', lease_until = $1`.
    pub set: &'static str,
    /// When a row may be claimed, e.g. `state = 'queued' AND run_after <= $2`.
    pub due: &'static str,
    /// Which due row goes first, e.g. `run_after, id`.
    pub order: &'static str,
}

/// A value bound to a claim's `$N` marker, in order.
pub enum Bind<'a> {
    Int(i64),
    Text(&'a str),
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

impl Claim {
    /// The statement on one backend.
    fn sql(&self, skip_locked: bool) -> String {
        format!(
            "UPDATE {t} SET {set} WHERE id = (SELECT id FROM {t} WHERE {due} ORDER BY {order} \
             LIMIT 1{lock}) AND ({due}) RETURNING id",
            t = self.table,
            set = self.set,
            due = self.due,
            order = self.order,
            lock = if skip_locked {
                " FOR UPDATE SKIP LOCKED"
            } else {
                ""
            },
        )
    }

    /// Claims the first due row; answers its id, or none when no row is due or every due one
    /// is held by another worker.
    pub fn claim(&self, conn: &mut DbConn, binds: &[Bind]) -> StoreResult<Option<i64>> {
        let sql = self.sql(db_run!(&*conn, sqlite: |_| false, postgres: |_| true));
        let claimed: Option<Claimed> = db_run!(conn, |c| {
            let mut q = diesel::sql_query(sql.as_str()).into_boxed();
            for b in binds {
                q = match b {
                    Bind::Int(v) => q.bind::<BigInt, _>(*v),
                    Bind::Text(s) => q.bind::<Text, _>(*s),
                };
            }
            q.get_result(c).optional()
        })?;
        Ok(claimed.map(|c| c.id))
    }
}
