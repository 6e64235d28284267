//! SendGrid's Event Webhook: a JSON array of events a post, signed with ECDSA P-256 over
//! `timestamp + body` (headers `X-Twilio-Email-Event-Webhook-Signature`, base64 DER, and
//! `X-Twilio-Email-Event-Webhook-Timestamp`), checked with the verification key SendGrid shows
//! (base64 DER public key) that the owner pastes in the settings.
//!
//! processed → request; delivered → deliver; deferred → deferred (still requesting); bounce
//! with type `bounce` → a bounce report (soft_bounce after a delivery, else invalid), with type
//! `blocked` (a soft bounce SendGrid gave up on) → soft_bounce; dropped (never sent) → invalid
//! (its reason says which list); open, click → open, click;
//! spamreport → report_spam; unsubscribe, group_unsubscribe → unsubscribe.

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;

use super::{email_id, request_for, seconds_to_ms};
use crate::domain::Reason;
use crate::ingest::{Event, EventKind};

pub const SIGNATURE_HEADER: &str = "X-Twilio-Email-Event-Webhook-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

/// Reads the verification key as SendGrid shows it: base64 of the DER public key, or PEM.
pub fn public_key(raw: &str) -> Option<VerifyingKey> {
    let body: String = raw
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
        .split_whitespace()
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    VerifyingKey::from_public_key_der(&der).ok()
}

/// Whether `signature` (base64 DER) signs `timestamp + body` under `key`.
pub fn signature_is_valid(key: &str, signature: &str, timestamp: &str, body: &[u8]) -> bool {
    let Some(key) = public_key(key) else {
        return false;
    };
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(signature) = Signature::from_der(&der) else {
        return false;
    };
    let mut payload = timestamp.as_bytes().to_vec();
    payload.extend_from_slice(body);
    key.verify(&payload, &signature).is_ok()
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The events of one post (a JSON array); an event that cannot be read is an error naming it.
pub fn events(post: &Value) -> Result<Vec<Event>, String> {
    let list = post
        .as_array()
        .ok_or("the post is not a JSON array of events")?;
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        out.extend(one(item).map_err(|e| format!("event {i}: {e}"))?);
    }
    Ok(out)
}

fn one(item: &Value) -> Result<Vec<Event>, String> {
    let name = text(item, "event").ok_or("no event")?;
    let recipient = text(item, "email").ok_or("no email")?;
    let at = item
        .get("timestamp")
        .and_then(Value::as_f64)
        .and_then(seconds_to_ms)
        .ok_or("no timestamp")?;
    // sg_message_id is the message's X-Message-Id, then where SendGrid's filter put it.
    let message_id = text(item, "sg_message_id")
        .map(|m| m.split(".filter").next().unwrap_or(m))
        .or(text(item, "smtp-id"))
        .ok_or("no sg_message_id")?;
    let id = email_id(message_id, recipient);
    let tags: Vec<String> = match item.get("category") {
        Some(Value::String(c)) => vec![c.clone()],
        Some(Value::Array(cs)) => cs
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let request = request_for(&id, recipient, at, "", "", tags);
    let kind = match name {
        "delivered" => EventKind::Deliver,
        "deferred" => EventKind::Deferred,
        "bounce" if text(item, "type") == Some("blocked") => EventKind::SoftBounce,
        "bounce" => EventKind::Bounce,
        "dropped" => EventKind::Invalid,
        "open" => EventKind::Open,
        "click" => EventKind::Click,
        "spamreport" => EventKind::ReportSpam,
        "unsubscribe" | "group_unsubscribe" => EventKind::Unsubscribe,
        _ => return Ok(vec![request]),
    };
    let mut e = Event::new(kind, at);
    e.email_id = Some(id);
    e.recipient = Some(recipient.to_string());
    e.event_id = text(item, "sg_event_id").map(|i| format!("sendgrid:{i}"));
    let words = text(item, "response")
        .or(text(item, "reason"))
        .unwrap_or("");
    let status = text(item, "status").unwrap_or("");
    e.smtp_reply = match (words, status) {
        ("", "") => None,
        (w, s) if s.is_empty() || w.contains(s) => Some(w.to_string()),
        (w, s) => Some(format!("{s} {w}").trim().to_string()),
    };
    if name == "dropped" {
        e.reason = Some(match words {
            "Bounced Address" => Reason::AddressNotFound,
            "Unsubscribed Address" => Reason::Unsubscribed,
            "Spam Reporting Address" => Reason::Blacklisted,
            "Invalid" => Reason::BadAddress,
            _ => Reason::Other,
        });
        e.rule = Some(format!("SendGrid dropped: {words}"));
    }
    e.attempt = match item.get("attempt") {
        Some(Value::String(a)) => a.parse().ok(),
        Some(Value::Number(n)) => n.as_i64().map(|n| n as i32),
        _ => None,
    };
    e.ip = text(item, "ip").map(str::to_string);
    e.user_agent = text(item, "useragent").map(str::to_string);
    e.url = text(item, "url").map(str::to_string);
    Ok(vec![request, e])
}
