//! Alert rules, the alerts they fired, the account's notification targets and the delivery of
//! notifications. Evaluation and delivery are queues in tables, claimed by any server with a
//! lease (the export queue's discipline: `FOR UPDATE SKIP LOCKED` on PostgreSQL, a guarded
//! update on SQLite); a rule's state changes only by compare-and-set under its lease, so that
//! a crossing is recorded, and notified, once however many servers evaluate.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, SmallInt, Text};

use super::{AccountScope, StoreResult};
use crate::db::schema::{
    alert_deliveries, alert_delivery_attempts, alert_rules, alert_targets, alerts,
};
use crate::db::{db_run, DbConn};
use crate::domain::alerts::{
    default_rules, retry_backoff_ms, AlertState, Metric, RuleSpec, Transition, WindowCounts,
    MAX_DELIVERY_ATTEMPTS,
};
use crate::domain::{random_token, Millis, Status};

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

// ---- evaluation --------------------------------------------------------------------------

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// `$1` the claimant's token, `$2` the lease's end, `$3` now. (SQLite numbers `$N` markers
/// in the order they first appear, so they appear in order.)
const CLAIM_RULE_SQLITE: &str = "UPDATE alert_rules SET lease_token = $1, lease_until = $2 \
     WHERE id = (SELECT id FROM alert_rules WHERE enabled = TRUE AND next_eval_at <= $3 \
       AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_eval_at, id LIMIT 1) \
     AND enabled = TRUE AND next_eval_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
     RETURNING id";
const CLAIM_RULE_POSTGRES: &str = "UPDATE alert_rules SET lease_token = $1, lease_until = $2 \
     WHERE id = (SELECT id FROM alert_rules WHERE enabled = TRUE AND next_eval_at <= $3 \
       AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_eval_at, id LIMIT 1 \
       FOR UPDATE SKIP LOCKED) \
     AND enabled = TRUE AND next_eval_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
     RETURNING id";

/// Takes the rule most overdue for evaluation, for `lease_ms`, under `token`; none when no
/// rule is due or every due one is held by another evaluator whose lease still runs.
pub fn claim_rule(
    conn: &mut DbConn,
    now: Millis,
    lease_ms: i64,
    token: &str,
) -> StoreResult<Option<AlertRule>> {
    let sql = db_run!(&*conn, sqlite: |_| CLAIM_RULE_SQLITE, postgres: |_| CLAIM_RULE_POSTGRES);
    let claimed: Option<Claimed> = diesel::sql_query(sql)
        .bind::<Text, _>(token)
        .bind::<BigInt, _>(now + lease_ms)
        .bind::<BigInt, _>(now)
        .get_result(conn)
        .optional()?;
    match claimed {
        None => Ok(None),
        Some(c) => alert_rules::table
            .find(c.id)
            .select(AlertRule::as_select())
            .first(conn)
            .optional(),
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The counts of a rule's window: messages of the rule's account (and provider) requested in
/// `(now - window, now]`, and those its metric counts. Each count is one range of an index
/// that leads with the account and the status (or of the account's request time).
pub fn window_counts(
    conn: &mut DbConn,
    rule: &AlertRule,
    now: Millis,
) -> StoreResult<WindowCounts> {
    let from = now - i64::from(rule.window_minutes) * 60_000;
    // `$1..$3` the account and the window; then the provider when the rule has one; then the
    // statuses (and reason) the metric counts.
    let count = |conn: &mut DbConn, statuses: &[i16], reason: Option<i16>| {
        let mut sql = String::from(
            "SELECT COUNT(*) AS n FROM messages WHERE account_id = $1 AND requested_at > $2 \
             AND requested_at <= $3",
        );
        let mut n = 3;
        let mut next = || {
            n += 1;
            n
        };
        if rule.provider.is_some() {
            sql.push_str(&format!(" AND provider = ${}", next()));
        }
        if !statuses.is_empty() {
            let marks: Vec<String> = statuses.iter().map(|_| format!("${}", next())).collect();
            sql.push_str(&format!(" AND status IN ({})", marks.join(", ")));
        }
        if reason.is_some() {
            sql.push_str(&format!(" AND reason = ${}", next()));
        }
        let mut query = diesel::sql_query(sql)
            .into_boxed::<crate::db::MultiBackend>()
            .bind::<BigInt, _>(rule.account_id)
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(now);
        if let Some(p) = &rule.provider {
            query = query.bind::<Text, _>(p.clone());
        }
        for s in statuses {
            query = query.bind::<SmallInt, _>(*s);
        }
        if let Some(r) = reason {
            query = query.bind::<SmallInt, _>(r);
        }
        query.get_result::<Count>(conn).map(|c| c.n)
    };
    let invalid = Status::Invalid.as_i16();
    let soft = Status::SoftBounce.as_i16();
    let requests = count(conn, &[], None)?;
    let matched = match rule.metric() {
        Some(Metric::InvalidRate) => count(conn, &[invalid], None)?,
        Some(Metric::SoftBounceRate) => count(conn, &[soft], None)?,
        Some(Metric::ReasonShare) => match rule.reason {
            Some(r) => count(conn, &[soft, invalid], Some(r))?,
            None => 0,
        },
        None => 0,
    };
    Ok(WindowCounts { requests, matched })
}

/// What an evaluation found, to be recorded under the evaluator's lease.
pub struct Evaluation<'a> {
    pub rule: &'a AlertRule,
    pub token: &'a str,
    pub counts: WindowCounts,
    pub transition: Transition,
    pub now: Millis,
    pub next_eval_at: Millis,
}

/// A notification to queue with a new alert.
pub struct Notification {
    pub channel: &'static str,
    pub target: String,
    pub payload: String,
}

/// Records an evaluation and releases the lease. A transition is recorded only when this
/// evaluator still holds the rule's lease and the rule is still in the state the decision was
/// made from (compare-and-set), in one transaction with the alert and its notifications.
/// Answers the new alert's id, or none (no transition, or another evaluator got there first).
pub fn record_evaluation(
    conn: &mut DbConn,
    eval: &Evaluation,
    notify: impl FnOnce(i64) -> Vec<Notification>,
) -> StoreResult<Option<i64>> {
    let rule = eval.rule;
    let old_state = rule.state();
    let new_state = match eval.transition {
        Transition::Fire => AlertState::Firing,
        Transition::Recover => AlertState::Ok,
        Transition::Stay => old_state,
    };
    conn.transaction(|conn| {
        let n = diesel::update(
            alert_rules::table
                .filter(alert_rules::id.eq(rule.id))
                .filter(alert_rules::lease_token.eq(eval.token))
                .filter(alert_rules::state.eq(old_state.code())),
        )
        .set((
            alert_rules::state.eq(new_state.code()),
            alert_rules::last_value_bp.eq(eval.counts.value_bp()),
            alert_rules::last_requests.eq(eval.counts.requests),
            alert_rules::last_evaluated_at.eq(eval.now),
            alert_rules::next_eval_at.eq(eval.next_eval_at),
            alert_rules::lease_until.eq(None::<i64>),
            alert_rules::lease_token.eq(None::<String>),
        ))
        .execute(conn)?;
        let Some(kind) = eval.transition.kind() else {
            return Ok(None);
        };
        if n == 0 {
            return Ok(None);
        }
        diesel::insert_into(alerts::table)
            .values((
                alerts::account_id.eq(rule.account_id),
                alerts::rule_id.eq(rule.id),
                alerts::kind.eq(kind),
                alerts::metric.eq(&rule.metric),
                alerts::reason.eq(rule.reason),
                alerts::provider.eq(rule.provider.as_deref()),
                alerts::threshold_bp.eq(if eval.transition == Transition::Recover {
                    rule.recover_bp
                } else {
                    rule.threshold_bp
                }),
                alerts::window_minutes.eq(rule.window_minutes),
                alerts::value_bp.eq(eval.counts.value_bp()),
                alerts::requests.eq(eval.counts.requests),
                alerts::matched.eq(eval.counts.matched),
                alerts::occurred_at.eq(eval.now),
            ))
            .execute(conn)?;
        let alert_id: i64 = alerts::table
            .filter(alerts::account_id.eq(rule.account_id))
            .filter(alerts::rule_id.eq(rule.id))
            .select(diesel::dsl::max(alerts::id))
            .first::<Option<i64>>(conn)?
            .unwrap_or(0);
        for note in notify(alert_id) {
            diesel::insert_into(alert_deliveries::table)
                .values((
                    alert_deliveries::account_id.eq(rule.account_id),
                    alert_deliveries::alert_id.eq(alert_id),
                    alert_deliveries::channel.eq(note.channel),
                    alert_deliveries::target.eq(&note.target),
                    alert_deliveries::payload.eq(&note.payload),
                    alert_deliveries::state.eq("queued"),
                    alert_deliveries::run_after.eq(eval.now),
                    alert_deliveries::created_at.eq(eval.now),
                ))
                .execute(conn)?;
        }
        Ok(Some(alert_id))
    })
}

/// Gives a rule back without recording anything (its evaluation failed): due again at once
/// for another try, by whichever evaluator comes next.
pub fn release_rule(conn: &mut DbConn, id: i64, token: &str, retry_at: Millis) -> StoreResult<()> {
    diesel::update(
        alert_rules::table
            .filter(alert_rules::id.eq(id))
            .filter(alert_rules::lease_token.eq(token)),
    )
    .set((
        alert_rules::lease_until.eq(None::<i64>),
        alert_rules::lease_token.eq(None::<String>),
        alert_rules::next_eval_at.eq(retry_at),
    ))
    .execute(conn)
    .map(|_| ())
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

// ---- deliveries --------------------------------------------------------------------------

/// `$1` the lease's end, `$2` now.
const CLAIM_DELIVERY_SQLITE: &str = "UPDATE alert_deliveries SET state = 'running', \
     attempts = attempts + 1, lease_until = $1 \
     WHERE id = (SELECT id FROM alert_deliveries WHERE (state = 'queued' AND run_after <= $2) \
       OR (state = 'running' AND lease_until < $2) ORDER BY run_after, id LIMIT 1) \
     AND (state = 'queued' OR (state = 'running' AND lease_until < $2)) RETURNING id";
const CLAIM_DELIVERY_POSTGRES: &str = "UPDATE alert_deliveries SET state = 'running', \
     attempts = attempts + 1, lease_until = $1 \
     WHERE id = (SELECT id FROM alert_deliveries WHERE (state = 'queued' AND run_after <= $2) \
       OR (state = 'running' AND lease_until < $2) ORDER BY run_after, id LIMIT 1 \
       FOR UPDATE SKIP LOCKED) \
     AND (state = 'queued' OR (state = 'running' AND lease_until < $2)) RETURNING id";

/// Takes the oldest due notification: a queued one whose backoff has passed, or a running one
/// whose sender's lease ran out (its server died mid-attempt; the attempt counts).
pub fn claim_delivery(
    conn: &mut DbConn,
    now: Millis,
    lease_ms: i64,
) -> StoreResult<Option<Delivery>> {
    let sql =
        db_run!(&*conn, sqlite: |_| CLAIM_DELIVERY_SQLITE, postgres: |_| CLAIM_DELIVERY_POSTGRES);
    let claimed: Option<Claimed> = diesel::sql_query(sql)
        .bind::<BigInt, _>(now + lease_ms)
        .bind::<BigInt, _>(now)
        .get_result(conn)
        .optional()?;
    match claimed {
        None => Ok(None),
        Some(c) => alert_deliveries::table
            .find(c.id)
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
