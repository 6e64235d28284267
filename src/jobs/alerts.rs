//! The alert worker of each server: evaluates the rules that are due and sends the queued
//! notifications (a signed webhook, e-mail through SMTP). Every server runs one; the leases
//! in `store::alerts` make sure a rule is evaluated, and a crossing notified, once.

use std::error::Error as _;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::{DbConn, Pool};
use crate::domain::alerts::{
    decide, format_bp, webhook_signature, Metric, Thresholds, Transition, DELIVERY_HEADER,
    SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use crate::domain::{now_ms, random_token, Millis, Reason};
use crate::store::alerts::{self as store, AlertRule, Delivery, Evaluation, Notification};
use crate::store::{accounts, AccountScope, StoreResult};

/// How long an evaluator or a sender holds what it claimed before another server may take it.
pub const LEASE_MS: i64 = 60_000;
/// A webhook receiver that has not answered in this long has failed this attempt.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Where a notification went, for the delivery log and the server's log: a webhook's scheme
/// and host only (a URL's path and query often hold the receiver's own secret).
pub fn target_for_people(channel: &str, target: &str) -> String {
    if channel != "webhook" {
        return target.to_string();
    }
    match url::Url::parse(target) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}/…", u.scheme()),
            (Some(h), None) => format!("{}://{h}/…", u.scheme()),
            _ => u.scheme().to_string(),
        },
        Err(_) => "?".into(),
    }
}

/// Why a webhook URL cannot be a target, or none: only absolute `http`/`https` URLs with a
/// host, no user or password in them.
pub fn webhook_url_problem(url: &str) -> Option<&'static str> {
    let Ok(u) = url::Url::parse(url.trim()) else {
        return Some("alerts.error.webhook_url");
    };
    if !matches!(u.scheme(), "http" | "https") {
        return Some("alerts.error.webhook_scheme");
    }
    if u.host_str().is_none_or(str::is_empty) || !u.username().is_empty() || u.password().is_some()
    {
        return Some("alerts.error.webhook_url");
    }
    None
}

/// Whether an address is one a webhook may reach without `MAILTRAIL_ALERT_PRIVATE_TARGETS`:
/// not loopback, private, link-local (cloud metadata), shared (CGNAT), unspecified or
/// multicast.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

type Outcome = Result<Option<i32>, (Option<i32>, String)>;

fn send_webhook(delivery: &Delivery, secret: &str, settings: &AlertSettings) -> Outcome {
    if let Some(problem) = webhook_url_problem(&delivery.target) {
        return Err((None, format!("refused URL ({problem})")));
    }
    let private_ok = settings.private_targets;
    // The addresses are checked where they are resolved, for this very connection, so that a
    // name that resolves to a private address at sending time (DNS rebinding) is refused too.
    let resolver = move |netloc: &str| -> io::Result<Vec<SocketAddr>> {
        let all: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        let allowed: Vec<SocketAddr> = all
            .iter()
            .copied()
            .filter(|a| private_ok || is_public_address(a.ip()))
            .collect();
        if allowed.is_empty() && !all.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the host resolves to a private address (MAILTRAIL_ALERT_PRIVATE_TARGETS is off)",
            ));
        }
        Ok(allowed)
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(WEBHOOK_TIMEOUT)
        .redirects(0)
        .resolver(resolver)
        .user_agent("mailtrail-alerts/1")
        .build();
    let timestamp = now_ms() / 1000;
    let body = delivery.payload.as_bytes();
    let answer = agent
        .post(&delivery.target)
        .set("Content-Type", "application/json")
        .set(TIMESTAMP_HEADER, &timestamp.to_string())
        .set(
            SIGNATURE_HEADER,
            &webhook_signature(secret, timestamp, body),
        )
        .set(DELIVERY_HEADER, &delivery.id.to_string())
        .send_bytes(body);
    match answer {
        Ok(response) if (200..300).contains(&response.status()) => {
            Ok(Some(i32::from(response.status())))
        }
        Ok(response) => Err((
            Some(i32::from(response.status())),
            format!("HTTP {}", response.status()),
        )),
        Err(ureq::Error::Status(code, _)) => Err((Some(i32::from(code)), format!("HTTP {code}"))),
        Err(ureq::Error::Transport(t)) => {
            let detail = t
                .source()
                .map(|s| s.to_string())
                .or_else(|| t.message().map(str::to_string))
                .unwrap_or_default();
            Err((None, format!("{}: {detail}", t.kind())))
        }
    }
}

fn send_email(delivery: &Delivery, settings: &AlertSettings) -> Outcome {
    use lettre::message::header::ContentType;
    use lettre::{Message, SmtpTransport, Transport};
    let Some(url) = settings.smtp_url.as_deref() else {
        return Err((None, "MAILTRAIL_SMTP_URL is not set".into()));
    };
    let payload: serde_json::Value =
        serde_json::from_str(&delivery.payload).map_err(|e| (None, e.to_string()))?;
    let (subject, text) = email_text(&payload);
    let from = settings
        .smtp_from
        .parse()
        .map_err(|e| (None, format!("MAILTRAIL_SMTP_FROM: {e}")))?;
    let to = delivery
        .target
        .parse()
        .map_err(|e| (None, format!("recipient: {e}")))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| (None, e.to_string()))?;
    let transport = SmtpTransport::from_url(url)
        .map_err(|e| (None, format!("MAILTRAIL_SMTP_URL: {e}")))?
        .timeout(Some(WEBHOOK_TIMEOUT))
        .build();
    match transport.send(&message) {
        Ok(response) => Ok(Some(i32::from(u16::from(response.code())))),
        Err(e) => Err((e.status().map(|c| i32::from(u16::from(c))), e.to_string())),
    }
}

/// An alert e-mail's subject and text, in Chinese and English (an account has no language of
/// its own; its people read either).
fn email_text(p: &serde_json::Value) -> (String, String) {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let alert = &p["alert"];
    let rule = &p["rule"];
    let fired = alert["kind"] == "fired";
    let metric = Metric::from_code(rule["metric"].as_str().unwrap_or(""));
    let reason = rule["reason"].as_str().and_then(Reason::from_code);
    let (zh_metric, en_metric) = match (metric, reason) {
        (Some(Metric::InvalidRate), _) => ("无效邮件率".to_string(), "Invalid rate".to_string()),
        (Some(Metric::SoftBounceRate), _) => {
            ("软退信率".to_string(), "Soft-bounce rate".to_string())
        }
        (_, Some(r)) => (
            format!("“{}”占比", r.label("zh")),
            format!("Share of “{}”", r.label("en")),
        ),
        _ => (s(&rule["metric"]), s(&rule["metric"])),
    };
    let provider = rule["provider"].as_str();
    let (zh_scope, en_scope) = match provider {
        Some(p) => (p.to_string(), p.to_string()),
        None => ("全部邮件".to_string(), "all mail".to_string()),
    };
    let value = &alert["value_percent"];
    let subject = if fired {
        format!("[mailtrail] 告警 Alert: {en_metric} {value} % ({en_scope})")
    } else {
        format!("[mailtrail] 已恢复 Recovered: {en_metric} {value} % ({en_scope})")
    };
    let zh = format!(
        "{}：{zh_scope} 的{zh_metric}在最近 {} 分钟为 {value} %（{} / {} 封），{} {} %。",
        if fired { "告警" } else { "已恢复" },
        rule["window_minutes"],
        alert["matched"],
        alert["requests"],
        if fired { "阈值" } else { "恢复线" },
        if fired {
            &rule["threshold_percent"]
        } else {
            &rule["recover_percent"]
        },
    );
    let en = format!(
        "{}: the {} of {en_scope} over the last {} minutes is {value} % ({} of {} messages); {} {} %.",
        if fired { "Alert" } else { "Recovered" },
        en_metric.to_lowercase(),
        rule["window_minutes"],
        alert["matched"],
        alert["requests"],
        if fired { "threshold" } else { "recovery level" },
        if fired {
            &rule["threshold_percent"]
        } else {
            &rule["recover_percent"]
        },
    );
    let link = p["url"]
        .as_str()
        .map(|u| format!("\n\n{u}"))
        .unwrap_or_default();
    let account = s(&p["account"]);
    (
        subject,
        format!(
            "{zh}\n{en}\n\n账户 Account: {account}\n时间 Time (UTC): {}{link}\n",
            s(&alert["occurred_at"])
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_targets() {
        assert_eq!(webhook_url_problem("https://hooks.example.com/x?y=1"), None);
        assert_eq!(webhook_url_problem("http://10.0.0.1:8080/"), None);
        assert_eq!(
            webhook_url_problem("ftp://example.com/"),
            Some("alerts.error.webhook_scheme")
        );
        assert_eq!(
            webhook_url_problem("file:///etc/passwd"),
            Some("alerts.error.webhook_scheme")
        );
        assert_eq!(
            webhook_url_problem("gopher://x/"),
            Some("alerts.error.webhook_scheme")
        );
        assert_eq!(
            webhook_url_problem("not a url"),
            Some("alerts.error.webhook_url")
        );
        assert_eq!(
            webhook_url_problem("https://user:pw@example.com/"),
            Some("alerts.error.webhook_url")
        );
    }

    #[test]
    fn private_addresses_are_told_apart() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public_address(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "203.0.114.1", "2606:4700::1111"] {
            assert!(is_public_address(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn the_log_shows_a_webhook_by_its_host() {
        assert_eq!(
            target_for_people("webhook", "https://hooks.example.com/T0/B1/secret"),
            "https://hooks.example.com/…"
        );
        assert_eq!(
            target_for_people("email", "ops@example.com"),
            "ops@example.com"
        );
    }
}
