//! Evaluation of alert rules: claiming a rule under a lease, counting its window, recording
//! the outcome by compare-and-set, releasing the lease.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, SmallInt, Text};

use crate::db::schema::{alert_deliveries, alert_rules, alerts};
use crate::db::DbConn;
use crate::domain::alerts::{AlertState, Metric, Transition, WindowCounts};
use crate::domain::{Millis, Status};
use crate::store::lease::{Bind, Claim};
use crate::store::StoreResult;

use super::*;

/// `$1` the claimant's token, `$2` the lease's end, `$3` now.
const CLAIM_RULE: Claim = Claim {
    table: "alert_rules",
    set: "lease_token = $1, lease_until = $2",
    due: "enabled = TRUE AND next_eval_at <= $3 AND (lease_until IS NULL OR lease_until < $3)",
    order: "next_eval_at, id",
};

/// Takes the rule most overdue for evaluation, for `lease_ms`, under `token`; none when no
/// rule is due or every due one is held by another evaluator whose lease still runs.
pub fn claim_rule(
    conn: &mut DbConn,
    now: Millis,
    lease_ms: i64,
    token: &str,
) -> StoreResult<Option<AlertRule>> {
    let claimed = CLAIM_RULE.claim(
        conn,
        &[Bind::Text(token), Bind::Int(now + lease_ms), Bind::Int(now)],
    )?;
    match claimed {
        None => Ok(None),
        Some(id) => alert_rules::table
            .find(id)
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
