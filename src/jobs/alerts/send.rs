//! Sending a notification: the webhook's and the e-mail's transport, the checks on a webhook's
//! target, the e-mail's text.

use std::error::Error as _;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::domain::alerts::{
    webhook_signature, Metric, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use crate::domain::{now_ms, Reason};
use crate::store::alerts::Delivery;

use super::AlertSettings;

/// A webhook receiver that has not answered in this long has failed this attempt.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

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

pub(super) type Outcome = Result<Option<i32>, (Option<i32>, String)>;

pub(super) fn send_webhook(delivery: &Delivery, secret: &str, settings: &AlertSettings) -> Outcome {
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

pub(super) fn send_email(delivery: &Delivery, settings: &AlertSettings) -> Outcome {
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
