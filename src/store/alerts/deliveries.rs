//! Notification deliveries: claimed under a lease, attempted, retried with backoff.

use diesel::prelude::*;

use crate::db::schema::{alert_deliveries, alert_delivery_attempts};
use crate::db::DbConn;
use crate::domain::alerts::{retry_backoff_ms, MAX_DELIVERY_ATTEMPTS};
use crate::domain::Millis;
use crate::store::lease::{Bind, Claim};
use crate::store::{AccountScope, StoreResult};

use super::*;

/// `$1` the lease's end, `$2` now.
const CLAIM_DELIVERY: Claim = Claim {
    table: "alert_deliveries",
    set: "state = 'running', attempts = attempts + 1, lease_until = $1",
    due: "(state = 'queued' AND run_after <= $2) OR (state = 'running' AND lease_until < $2)",
    order: "run_after, id",
};

/// Takes the oldest due notification: a queued one whose backoff has passed, or a running one
/// whose sender's lease ran out (its server died mid-attempt; the attempt counts).
pub fn claim_delivery(
    conn: &mut DbConn,
    now: Millis,
    lease_ms: i64,
) -> StoreResult<Option<Delivery>> {
    let claimed = CLAIM_DELIVERY.claim(conn, &[Bind::Int(now + lease_ms), Bind::Int(now)])?;
    match claimed {
        None => Ok(None),
        Some(id) => alert_deliveries::table
            .find(id)
            .select(Delivery::as_select())
            .first(conn)
            .optional(),
    }
}

/// Records one attempt in the log and settles the delivery: done, queued again after a
/// backoff, or failed after the last attempt.
pub fn record_attempt(
    conn: &mut DbConn,
    delivery: &Delivery,
    outcome: Result<Option<i32>, (Option<i32>, String)>,
    now: Millis,
) -> StoreResult<()> {
    conn.transaction(|conn| {
        let (ok, status, error) = match &outcome {
            Ok(status) => (true, *status, None),
            Err((status, e)) => (false, *status, Some(e.clone())),
        };
        diesel::insert_into(alert_delivery_attempts::table)
            .values((
                alert_delivery_attempts::account_id.eq(delivery.account_id),
                alert_delivery_attempts::delivery_id.eq(delivery.id),
                alert_delivery_attempts::attempted_at.eq(now),
                alert_delivery_attempts::ok.eq(ok),
                alert_delivery_attempts::status_code.eq(status),
                alert_delivery_attempts::error.eq(error.as_deref()),
            ))
            .execute(conn)?;
        let row = alert_deliveries::table
            .find(delivery.id)
            .filter(alert_deliveries::state.eq("running"));
        if ok {
            diesel::update(row)
                .set((
                    alert_deliveries::state.eq("succeeded"),
                    alert_deliveries::last_status.eq(status),
                    alert_deliveries::last_error.eq(None::<String>),
                    alert_deliveries::lease_until.eq(None::<i64>),
                    alert_deliveries::finished_at.eq(now),
                ))
                .execute(conn)?;
        } else if delivery.attempts >= MAX_DELIVERY_ATTEMPTS {
            diesel::update(row)
                .set((
                    alert_deliveries::state.eq("failed"),
                    alert_deliveries::last_status.eq(status),
                    alert_deliveries::last_error.eq(error.as_deref()),
                    alert_deliveries::lease_until.eq(None::<i64>),
                    alert_deliveries::finished_at.eq(now),
                ))
                .execute(conn)?;
        } else {
            diesel::update(row)
                .set((
                    alert_deliveries::state.eq("queued"),
                    alert_deliveries::last_status.eq(status),
                    alert_deliveries::last_error.eq(error.as_deref()),
                    alert_deliveries::lease_until.eq(None::<i64>),
                    alert_deliveries::run_after.eq(now + retry_backoff_ms(delivery.attempts)),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

pub fn list_deliveries(
    conn: &mut DbConn,
    scope: &AccountScope,
    limit: i64,
) -> StoreResult<Vec<Delivery>> {
    alert_deliveries::table
        .filter(alert_deliveries::account_id.eq(scope.account_id()))
        .order(alert_deliveries::id.desc())
        .limit(limit)
        .select(Delivery::as_select())
        .load(conn)
}

pub fn list_attempts(
    conn: &mut DbConn,
    scope: &AccountScope,
    limit: i64,
) -> StoreResult<Vec<DeliveryAttempt>> {
    alert_delivery_attempts::table
        .filter(alert_delivery_attempts::account_id.eq(scope.account_id()))
        .order(alert_delivery_attempts::id.desc())
        .limit(limit)
        .select(DeliveryAttempt::as_select())
        .load(conn)
}

/// Queues a failed notification again with fresh attempts (the owner's retry button).
pub fn retry_delivery(
    conn: &mut DbConn,
    scope: &AccountScope,
    id: i64,
    now: Millis,
) -> StoreResult<bool> {
    diesel::update(
        alert_deliveries::table
            .filter(alert_deliveries::account_id.eq(scope.account_id()))
            .filter(alert_deliveries::id.eq(id))
            .filter(alert_deliveries::state.eq("failed")),
    )
    .set((
        alert_deliveries::state.eq("queued"),
        alert_deliveries::attempts.eq(0),
        alert_deliveries::run_after.eq(now),
        alert_deliveries::finished_at.eq(None::<i64>),
    ))
    .execute(conn)
    .map(|n| n > 0)
}
