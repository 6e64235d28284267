//! Alert rules, the alerts they fired, the account's notification targets and the delivery of
//! notifications. Evaluation and delivery are queues in tables, claimed by any server with a
//! lease (the export queue's discipline: `FOR UPDATE SKIP LOCKED` on PostgreSQL, a guarded
//! update on SQLite); a rule's state changes only by compare-and-set under its lease, so that
//! a crossing is recorded, and notified, once however many servers evaluate.

use diesel::prelude::*;

use super::{AccountScope, StoreResult};
use crate::db::schema::{
    alert_deliveries, alert_delivery_attempts, alert_rules, alert_targets, alerts,
};
use crate::db::{db_run, DbConn};
use crate::domain::alerts::{default_rules, AlertState, Metric, RuleSpec};
use crate::domain::{random_token, Millis};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = alert_rules)]
pub struct AlertRule {
    pub id: i64,
    pub account_id: i64,
    pub metric: String,
    pub reason: Option<i16>,
    pub provider: Option<String>,
    pub threshold_bp: i32,
    pub recover_bp: i32,
    pub window_minutes: i32,
    pub min_requests: i64,
    pub enabled: bool,
    pub state: String,
    pub last_value_bp: Option<i32>,
    pub last_requests: Option<i64>,
    pub last_evaluated_at: Option<i64>,
    pub next_eval_at: i64,
    pub lease_until: Option<i64>,
    pub lease_token: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl AlertRule {
    pub fn metric(&self) -> Option<Metric> {
        Metric::from_code(&self.metric)
    }

    pub fn state(&self) -> AlertState {
        AlertState::from_code(&self.state)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = alerts)]
pub struct Alert {
    pub id: i64,
    pub account_id: i64,
    pub rule_id: Option<i64>,
    pub kind: String,
    pub metric: String,
    pub reason: Option<i16>,
    pub provider: Option<String>,
    pub threshold_bp: i32,
    pub window_minutes: i32,
    pub value_bp: i32,
    pub requests: i64,
    pub matched: i64,
    pub occurred_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = alert_targets)]
pub struct AlertTargets {
    pub account_id: i64,
    pub webhook_url: Option<String>,
    pub webhook_secret: String,
    pub emails: String,
    pub updated_at: i64,
}

impl AlertTargets {
    pub fn email_list(&self) -> Vec<String> {
        self.emails
            .split([',', '\n', ';', ' '])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = alert_deliveries)]
pub struct Delivery {
    pub id: i64,
    pub account_id: i64,
    pub alert_id: i64,
    pub channel: String,
    pub target: String,
    pub payload: String,
    pub state: String,
    pub attempts: i32,
    pub run_after: i64,
    pub lease_until: Option<i64>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = alert_delivery_attempts)]
pub struct DeliveryAttempt {
    pub id: i64,
    pub account_id: i64,
    pub delivery_id: i64,
    pub attempted_at: i64,
    pub ok: bool,
    pub status_code: Option<i32>,
    pub error: Option<String>,
}

// ---- rules -------------------------------------------------------------------------------

/// Gives an account the default rules, off. Called when an account is created (the migration
/// that made alerts gave them to the accounts that existed).
pub fn seed_defaults(conn: &mut DbConn, scope: &AccountScope, now: Millis) -> StoreResult<()> {
    for spec in default_rules() {
        create_rule(conn, scope, &spec, false, now)?;
    }
    Ok(())
}

pub fn list_rules(conn: &mut DbConn, scope: &AccountScope) -> StoreResult<Vec<AlertRule>> {
    alert_rules::table
        .filter(alert_rules::account_id.eq(scope.account_id()))
        .order(alert_rules::id.asc())
        .select(AlertRule::as_select())
        .load(conn)
}

pub fn get_rule(
    conn: &mut DbConn,
    scope: &AccountScope,
    id: i64,
) -> StoreResult<Option<AlertRule>> {
    alert_rules::table
        .filter(alert_rules::account_id.eq(scope.account_id()))
        .filter(alert_rules::id.eq(id))
        .select(AlertRule::as_select())
        .first(conn)
        .optional()
}

pub fn create_rule(
    conn: &mut DbConn,
    scope: &AccountScope,
    spec: &RuleSpec,
    enabled: bool,
    now: Millis,
) -> StoreResult<()> {
    diesel::insert_into(alert_rules::table)
        .values((
            alert_rules::account_id.eq(scope.account_id()),
            alert_rules::metric.eq(spec.metric.code()),
            alert_rules::reason.eq(spec.reason.map(|r| r.as_i16())),
            alert_rules::provider.eq(spec.provider.as_deref()),
            alert_rules::threshold_bp.eq(spec.threshold_bp),
            alert_rules::recover_bp.eq(spec.recover_bp),
            alert_rules::window_minutes.eq(spec.window_minutes),
            alert_rules::min_requests.eq(spec.min_requests),
            alert_rules::enabled.eq(enabled),
            alert_rules::state.eq(AlertState::Ok.code()),
            alert_rules::next_eval_at.eq(now),
            alert_rules::created_at.eq(now),
            alert_rules::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Changes a rule's definition; it is evaluated again at once. Its state stays: a firing rule
/// recovers (and says so) by the new definition's recovery level.
pub fn update_rule(
    conn: &mut DbConn,
    scope: &AccountScope,
    id: i64,
    spec: &RuleSpec,
    now: Millis,
) -> StoreResult<bool> {
    diesel::update(
        alert_rules::table
            .filter(alert_rules::account_id.eq(scope.account_id()))
            .filter(alert_rules::id.eq(id)),
    )
    .set((
        alert_rules::metric.eq(spec.metric.code()),
        alert_rules::reason.eq(spec.reason.map(|r| r.as_i16())),
        alert_rules::provider.eq(spec.provider.as_deref()),
        alert_rules::threshold_bp.eq(spec.threshold_bp),
        alert_rules::recover_bp.eq(spec.recover_bp),
        alert_rules::window_minutes.eq(spec.window_minutes),
        alert_rules::min_requests.eq(spec.min_requests),
        alert_rules::next_eval_at.eq(now),
        alert_rules::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

/// Turns a rule on (evaluated at once) or off. A rule turned off forgets that it was firing,
/// without a notification: turned on again, it starts from `ok`.
pub fn set_enabled(
    conn: &mut DbConn,
    scope: &AccountScope,
    id: i64,
    enabled: bool,
    now: Millis,
) -> StoreResult<bool> {
    let target = alert_rules::table
        .filter(alert_rules::account_id.eq(scope.account_id()))
        .filter(alert_rules::id.eq(id));
    let n = if enabled {
        diesel::update(target)
            .set((
                alert_rules::enabled.eq(true),
                alert_rules::next_eval_at.eq(now),
                alert_rules::updated_at.eq(now),
            ))
            .execute(conn)?
    } else {
        diesel::update(target)
            .set((
                alert_rules::enabled.eq(false),
                alert_rules::state.eq(AlertState::Ok.code()),
                alert_rules::updated_at.eq(now),
            ))
            .execute(conn)?
    };
    Ok(n > 0)
}

pub fn delete_rule(conn: &mut DbConn, scope: &AccountScope, id: i64) -> StoreResult<bool> {
    diesel::delete(
        alert_rules::table
            .filter(alert_rules::account_id.eq(scope.account_id()))
            .filter(alert_rules::id.eq(id)),
    )
    .execute(conn)
    .map(|n| n > 0)
}

// ---- the alerts list ----------------------------------------------------------------------

pub fn list_alerts(conn: &mut DbConn, scope: &AccountScope, limit: i64) -> StoreResult<Vec<Alert>> {
    alerts::table
        .filter(alerts::account_id.eq(scope.account_id()))
        .order((alerts::occurred_at.desc(), alerts::id.desc()))
        .limit(limit)
        .select(Alert::as_select())
        .load(conn)
}

pub fn get_alert(conn: &mut DbConn, scope: &AccountScope, id: i64) -> StoreResult<Option<Alert>> {
    alerts::table
        .filter(alerts::account_id.eq(scope.account_id()))
        .filter(alerts::id.eq(id))
        .select(Alert::as_select())
        .first(conn)
        .optional()
}

/// The rules of the account that are firing now, for the overview.
pub fn firing_rules(conn: &mut DbConn, scope: &AccountScope) -> StoreResult<Vec<AlertRule>> {
    alert_rules::table
        .filter(alert_rules::account_id.eq(scope.account_id()))
        .filter(alert_rules::enabled.eq(true))
        .filter(alert_rules::state.eq(AlertState::Firing.code()))
        .order(alert_rules::id.asc())
        .select(AlertRule::as_select())
        .load(conn)
}

// ---- targets -----------------------------------------------------------------------------

/// The account's targets; the first call makes the row, with a signing secret of its own.
pub fn targets(conn: &mut DbConn, scope: &AccountScope, now: Millis) -> StoreResult<AlertTargets> {
    let found = alert_targets::table
        .find(scope.account_id())
        .select(AlertTargets::as_select())
        .first(conn)
        .optional()?;
    if let Some(t) = found {
        return Ok(t);
    }
    let insert = diesel::insert_into(alert_targets::table).values((
        alert_targets::account_id.eq(scope.account_id()),
        alert_targets::webhook_secret.eq(new_secret()),
        alert_targets::emails.eq(""),
        alert_targets::updated_at.eq(now),
    ));
    // Two first calls at once: one row wins, the other reads it.
    db_run!(&mut *conn,
        sqlite: |c| insert.on_conflict_do_nothing().execute(c),
        postgres: |c| insert.on_conflict_do_nothing().execute(c))?;
    alert_targets::table
        .find(scope.account_id())
        .select(AlertTargets::as_select())
        .first(conn)
}

pub fn new_secret() -> String {
    format!("whsec_{}", random_token(40))
}

pub fn save_targets(
    conn: &mut DbConn,
    scope: &AccountScope,
    webhook_url: Option<&str>,
    emails: &str,
    now: Millis,
) -> StoreResult<()> {
    targets(conn, scope, now)?;
    diesel::update(alert_targets::table.find(scope.account_id()))
        .set((
            alert_targets::webhook_url.eq(webhook_url),
            alert_targets::emails.eq(emails),
            alert_targets::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn rotate_secret(conn: &mut DbConn, scope: &AccountScope, now: Millis) -> StoreResult<String> {
    targets(conn, scope, now)?;
    let secret = new_secret();
    diesel::update(alert_targets::table.find(scope.account_id()))
        .set((
            alert_targets::webhook_secret.eq(&secret),
            alert_targets::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(secret)
}

/// The signing secret of a delivery's account, read at each attempt so that a rotated secret
/// signs the retries.
pub fn webhook_secret(conn: &mut DbConn, account_id: i64) -> StoreResult<Option<String>> {
    alert_targets::table
        .find(account_id)
        .select(alert_targets::webhook_secret)
        .first(conn)
        .optional()
}

mod deliveries;
mod evaluate;

pub use deliveries::*;
pub use evaluate::*;
