//! The alert worker of each server: evaluates the rules that are due and sends the queued
//! notifications (a signed webhook, e-mail through SMTP). Every server runs one; the leases
//! in `store::alerts` make sure a rule is evaluated, and a crossing notified, once.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::{DbConn, Pool};
use crate::domain::alerts::{decide, format_bp, Thresholds, Transition};
use crate::domain::{now_ms, random_token, Millis, Reason};
use crate::store::alerts::{self as store, AlertRule, Evaluation, Notification};
use crate::store::{accounts, AccountScope, StoreResult};

/// How long an evaluator or a sender holds what it claimed before another server may take it.
pub const LEASE_MS: i64 = 60_000;

/// The alert worker's settings (README, "Alerts").
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// How often the worker looks for due rules and notifications; 0 runs no worker here.
    pub poll_ms: u64,
    /// A rule is evaluated this often.
    pub eval_every_ms: i64,
    /// `MAILTRAIL_SMTP_URL`: `smtp://[user:pass@]host[:port][?tls=required]` or `smtps://…`;
    /// unset, e-mail targets are kept but nothing is sent (the delivery log says why).
    pub smtp_url: Option<String>,
    /// `MAILTRAIL_SMTP_FROM`: the sender of alert e-mail.
    pub smtp_from: String,
    /// `MAILTRAIL_ALERT_PRIVATE_TARGETS=1`: webhooks may go to loopback and private addresses.
    pub private_targets: bool,
    /// `MAILTRAIL_PUBLIC_URL`, for the link in a notification.
    pub public_url: Option<String>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            poll_ms: 15_000,
            eval_every_ms: 60_000,
            smtp_url: None,
            smtp_from: "mailtrail@localhost".into(),
            private_targets: false,
            public_url: None,
        }
    }
}

impl AlertSettings {
    /// The defaults, with what the environment sets.
    pub fn from_env() -> AlertSettings {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut s = AlertSettings {
            smtp_url: var("MAILTRAIL_SMTP_URL"),
            ..AlertSettings::default()
        };
        if let Some(from) = var("MAILTRAIL_SMTP_FROM") {
            s.smtp_from = from;
        }
        s.private_targets = var("MAILTRAIL_ALERT_PRIVATE_TARGETS")
            .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
        s.public_url = var("MAILTRAIL_PUBLIC_URL");
        if let Some(ms) = var("MAILTRAIL_ALERT_POLL_MS").and_then(|v| v.trim().parse().ok()) {
            s.poll_ms = ms;
        }
        s
    }
}

/// Starts this server's alert worker on the current actix runtime (none when `poll_ms` is 0).
pub fn start(
    pool: Pool,
    settings: AlertSettings,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) {
    if settings.poll_ms == 0 {
        return;
    }
    let poll = Duration::from_millis(settings.poll_ms);
    actix_web::rt::spawn(tasks.track_future(async move {
        while !shutdown.is_cancelled() {
            let (pool2, settings2) = (pool.clone(), settings.clone());
            let done = actix_web::web::block(move || -> StoreResult<()> {
                let mut conn = pool2.get().map_err(|e| {
                    diesel::result::Error::QueryBuilderError(format!("no connection: {e}").into())
                })?;
                evaluate_due(&mut conn, &settings2, now_ms())?;
                deliver_due(&mut conn, &settings2, now_ms())?;
                Ok(())
            })
            .await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::error!("alert worker: {e}"),
                Err(e) => log::error!("alert worker: {e}"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = actix_web::rt::time::sleep(poll) => {}
            }
        }
        log::info!("alert worker: stopped");
    }));
}

/// Evaluates every rule due at `now` that no other evaluator holds; answers how many fired or
/// recovered here.
pub fn evaluate_due(
    conn: &mut DbConn,
    settings: &AlertSettings,
    now: Millis,
) -> StoreResult<usize> {
    let token = random_token(24);
    let mut transitions = 0;
    while let Some(rule) = store::claim_rule(conn, now, LEASE_MS, &token)? {
        match evaluate(conn, settings, &rule, &token, now) {
            Ok(true) => transitions += 1,
            Ok(false) => {}
            Err(e) => {
                log::error!("alert rule {}: evaluation failed: {e}", rule.id);
                // Another evaluator may try again in a while; this loop does not.
                store::release_rule(conn, rule.id, &token, now + settings.eval_every_ms)?;
            }
        }
    }
    Ok(transitions)
}

fn evaluate(
    conn: &mut DbConn,
    settings: &AlertSettings,
    rule: &AlertRule,
    token: &str,
    now: Millis,
) -> StoreResult<bool> {
    let counts = store::window_counts(conn, rule, now)?;
    let transition = decide(
        rule.state(),
        counts,
        Thresholds {
            threshold_bp: rule.threshold_bp,
            recover_bp: rule.recover_bp,
            min_requests: rule.min_requests,
        },
    );
    let scope = AccountScope::new(rule.account_id);
    let (targets, account) = if transition == Transition::Stay {
        (None, None)
    } else {
        (
            Some(store::targets(conn, &scope, now)?),
            accounts::get_account(conn, rule.account_id)?,
        )
    };
    let account_name = account.map(|a| a.name).unwrap_or_default();
    let eval = Evaluation {
        rule,
        token,
        counts,
        transition,
        now,
        next_eval_at: now + settings.eval_every_ms,
    };
    let recorded = store::record_evaluation(conn, &eval, |alert_id| {
        let Some(targets) = targets else {
            return Vec::new();
        };
        let payload = payload(settings, &account_name, rule, &eval, alert_id);
        let mut notes = Vec::new();
        if let Some(url) = targets.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            notes.push(Notification {
                channel: "webhook",
                target: url.to_string(),
                payload: payload.to_string(),
            });
        }
        for address in targets.email_list() {
            notes.push(Notification {
                channel: "email",
                target: address,
                payload: payload.to_string(),
            });
        }
        notes
    })?;
    if let Some(id) = recorded {
        log::info!(
            "alert {id}: rule {} {} at {} % of {} requests",
            rule.id,
            transition.kind().unwrap_or(""),
            format_bp(counts.value_bp()),
            counts.requests
        );
    }
    Ok(recorded.is_some())
}

fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn percent(bp: i32) -> f64 {
    f64::from(bp) / 100.0
}

/// The JSON body of a notification (README, "Alerts"): the same for every target and every
/// attempt, so that a receiver can de-duplicate by `alert.id`.
fn payload(
    settings: &AlertSettings,
    account: &str,
    rule: &AlertRule,
    eval: &Evaluation,
    alert_id: i64,
) -> serde_json::Value {
    let kind = eval.transition.kind().unwrap_or("");
    json!({
        "event": format!("alert.{kind}"),
        "account": account,
        "alert": {
            "id": alert_id,
            "kind": kind,
            "occurred_at": rfc3339(eval.now),
            "value_percent": percent(eval.counts.value_bp()),
            "requests": eval.counts.requests,
            "matched": eval.counts.matched,
        },
        "rule": {
            "id": rule.id,
            "metric": rule.metric,
            "reason": rule.reason.and_then(Reason::from_i16).map(|r| r.code()),
            "provider": rule.provider,
            "threshold_percent": percent(rule.threshold_bp),
            "recover_percent": percent(rule.recover_bp),
            "window_minutes": rule.window_minutes,
            "min_requests": rule.min_requests,
        },
        "url": settings
            .public_url
            .as_deref()
            .map(|u| format!("{}/alerts", u.trim_end_matches('/'))),
    })
}

/// Sends every notification due at `now`; answers how many were attempted.
pub fn deliver_due(conn: &mut DbConn, settings: &AlertSettings, now: Millis) -> StoreResult<usize> {
    let mut attempted = 0;
    while let Some(delivery) = store::claim_delivery(conn, now, LEASE_MS)? {
        attempted += 1;
        let outcome = match delivery.channel.as_str() {
            "webhook" => match store::webhook_secret(conn, delivery.account_id)? {
                Some(secret) => send_webhook(&delivery, &secret, settings),
                None => Err((None, "no signing secret".to_string())),
            },
            "email" => send_email(&delivery, settings),
            other => Err((None, format!("unknown channel {other}"))),
        };
        if let Err((_, e)) = &outcome {
            log::warn!(
                "alert notification {} to {} failed (attempt {}): {e}",
                delivery.id,
                target_for_people(&delivery.channel, &delivery.target),
                delivery.attempts
            );
        }
        store::record_attempt(conn, &delivery, outcome, now)?;
    }
    Ok(attempted)
}

mod send;

pub use send::{is_public_address, target_for_people, webhook_url_problem};
use send::{send_email, send_webhook};
