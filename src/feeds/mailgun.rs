//! Mailgun's webhooks (JSON, one event a post): `{"signature": {timestamp, token, signature},
//! "event-data": {…}}`, signed `hex(HMAC-SHA256(signing key, timestamp + token))`.
//!
//! delivered → deliver; failed with severity temporary → deferred (still requesting);
//! failed permanent → a bounce report (soft_bounce after a delivery, else invalid), except a
//! soft bounce Mailgun gave up on (reason `old`, or a 4xx code) → soft_bounce and a send Mailgun
//! refused for its own suppression lists (`suppress-…`) → invalid; opened, clicked, unsubscribed, complained → open, click, unsubscribe,
//! report_spam. Other events (accepted, stored, …) request the message and nothing more.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{email_id, request_for, seconds_to_ms};
use crate::domain::{constant_time_eq, Millis, Reason};
use crate::ingest::{Event, EventKind};

/// The signature block of a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub timestamp: String,
    pub token: String,
    pub signature: String,
}

impl Signature {
    pub fn of(post: &Value) -> Option<Signature> {
        let s = post.get("signature")?;
        let text = |k: &str| {
            s.get(k).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        Some(Signature {
            timestamp: text("timestamp")?,
            token: text("token")?,
            signature: text("signature")?,
        })
    }

    pub fn is_valid(&self, signing_key: &str) -> bool {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(signing_key.as_bytes()) else {
            return false;
        };
        mac.update(self.timestamp.as_bytes());
        mac.update(self.token.as_bytes());
        let expected = hex::encode(mac.finalize().into_bytes());
        constant_time_eq(
            expected.as_bytes(),
            self.signature.trim().to_ascii_lowercase().as_bytes(),
        )
    }

    pub fn timestamp_ms(&self) -> Option<Millis> {
        seconds_to_ms(self.timestamp.trim().parse().ok()?)
    }
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for k in path {
        v = v.get(k)?;
    }
    v.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// The events of one post's `event-data`.
pub fn events(post: &Value) -> Result<Vec<Event>, String> {
    let data = post.get("event-data").ok_or("the post has no event-data")?;
    let name = text(data, &["event"]).ok_or("event-data has no event")?;
    let at = data
        .get("timestamp")
        .and_then(Value::as_f64)
        .and_then(seconds_to_ms)
        .ok_or("event-data has no timestamp")?;
    let recipient = text(data, &["recipient"]).ok_or("event-data has no recipient")?;
    let message_id = text(data, &["message", "headers", "message-id"])
        .ok_or("event-data has no message.headers.message-id")?;
    let id = email_id(message_id, recipient);
    let tags: Vec<String> = data
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let request = request_for(
        &id,
        recipient,
        at,
        text(data, &["message", "headers", "from"]).unwrap_or(""),
        text(data, &["message", "headers", "subject"]).unwrap_or(""),
        tags,
    );
    let kind = match name {
        "delivered" => EventKind::Deliver,
        "failed" => failure_kind(data),
        "opened" => EventKind::Open,
        "clicked" => EventKind::Click,
        "unsubscribed" => EventKind::Unsubscribe,
        "complained" => EventKind::ReportSpam,
        _ => return Ok(vec![request]),
    };
    let mut e = Event::new(kind, at);
    e.email_id = Some(id);
    e.recipient = Some(recipient.to_string());
    e.event_id = text(data, &["id"]).map(|i| format!("mailgun:{i}"));
    let status = data.get("delivery-status");
    if let Some(status) = status {
        let code = status.get("code").and_then(Value::as_i64);
        let words = text(status, &["message"])
            .or(text(status, &["description"]))
            .unwrap_or("");
        let reply = match code {
            Some(code) if code > 0 && !words.starts_with(&code.to_string()) => {
                format!("{code} {words}")
            }
            _ => words.to_string(),
        };
        e.smtp_reply = Some(reply.trim().to_string()).filter(|r| !r.is_empty());
        e.mx = text(status, &["mx-host"]).map(str::to_string);
        e.attempt = status
            .get("attempt-no")
            .and_then(Value::as_i64)
            .map(|n| n as i32);
    }
    if matches!(
        kind,
        EventKind::Invalid | EventKind::SoftBounce | EventKind::Bounce
    ) {
        // Mailgun refused to send to an address on its own suppression lists.
        e.reason = match text(data, &["reason"]) {
            Some("suppress-bounce") => Some(Reason::AddressNotFound),
            Some("suppress-unsubscribe") => Some(Reason::Unsubscribed),
            Some("suppress-complaint") => Some(Reason::Blacklisted),
            _ => None,
        };
    }
    e.ip = text(data, &["ip"]).map(str::to_string);
    e.user_agent = text(data, &["client-info", "user-agent"]).map(str::to_string);
    e.url = text(data, &["url"]).map(str::to_string);
    Ok(vec![request, e])
}

fn failure_kind(data: &Value) -> EventKind {
    if text(data, &["severity"]) == Some("temporary") {
        return EventKind::Deferred;
    }
    let code = data
        .get("delivery-status")
        .and_then(|s| s.get("code"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let reason = text(data, &["reason"]).unwrap_or("");
    if reason == "old" || (400..500).contains(&code) {
        EventKind::SoftBounce
    } else if reason.starts_with("suppress-") {
        // Never sent: the address is on one of Mailgun's suppression lists.
        EventKind::Invalid
    } else {
        EventKind::Bounce
    }
}
