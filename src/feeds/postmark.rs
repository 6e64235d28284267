//! Postmark's webhooks (JSON, one record a post, told apart by `RecordType`). Postmark signs
//! nothing: its docs advise basic auth or a secret in the URL, both checked by the receiver.
//!
//! Delivery → deliver; Bounce by `TypeCode` (hard bounces, blocks, DMARC → a bounce report:
//! soft_bounce after a Delivery, else invalid; bad addresses and deactivated recipients, which
//! Postmark never sent to → invalid; soft bounces, transient and DNS errors Postmark gave up on → soft_bounce; Unsubscribe →
//! unsubscribe; auto-replies → logged only); SpamComplaint → report_spam; Open, Click → open,
//! click; SubscriptionChange with SuppressSending → unsubscribe (spam complaints → report_spam).

use serde_json::Value;

use super::{email_id, request_for, rfc3339_ms};
use crate::domain::{Reason, UnsubscribeReason};
use crate::ingest::{Event, EventKind};

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// What a bounce's `TypeCode` means for the message (Postmark's bounce types).
fn bounce(type_code: i64) -> Option<(EventKind, Option<Reason>)> {
    use EventKind::*;
    Some(match type_code {
        1 => (Bounce, Some(Reason::AddressNotFound)), // HardBounce
        2 | 256 | 4096 => (SoftBounce, None),         // Transient, DnsError, SoftBounce
        16 => (Unsubscribe, None),                    // Unsubscribe
        64 | 128 | 16384 => (AutoReply, None), // AutoResponder, AddressChange, ChallengeVerification
        512 => (Bounce, Some(Reason::Spam)),   // SpamNotification
        100000 => (Invalid, Some(Reason::BadAddress)), // BadEmailAddress
        100001 => (ReportSpam, None),          // SpamComplaint
        100002 => (Invalid, Some(Reason::Blacklisted)), // ManuallyDeactivated
        100006 | 100009 => (Bounce, Some(Reason::IpDomainRejected)), // Blocked, DMARCPolicy
        32 | 1024 | 100008 => return None,     // Subscribe, OpenRelayTest, InboundError
        _ => (Bounce, None), // Unknown, VirusNotification, Unconfirmed, SMTPApiError, …
    })
}

/// The events of one post.
pub fn events(post: &Value) -> Result<Vec<Event>, String> {
    let record = text(post, "RecordType").ok_or("the post has no RecordType")?;
    let message_id = text(post, "MessageID").ok_or("the post has no MessageID")?;
    let recipient = text(post, "Recipient")
        .or(text(post, "Email"))
        .ok_or("the post has no Recipient or Email")?;
    let time_field = match record {
        "Delivery" => "DeliveredAt",
        "Bounce" | "SpamComplaint" => "BouncedAt",
        "SubscriptionChange" => "ChangedAt",
        _ => "ReceivedAt",
    };
    let at = text(post, time_field)
        .and_then(rfc3339_ms)
        .ok_or(format!("the post has no {time_field} time"))?;
    let id = email_id(message_id, recipient);
    let tags: Vec<String> = text(post, "Tag").map(str::to_string).into_iter().collect();
    let request = request_for(
        &id,
        recipient,
        at,
        text(post, "From").unwrap_or(""),
        text(post, "Subject").unwrap_or(""),
        tags,
    );
    let mut e = match record {
        "Delivery" => Event::new(EventKind::Deliver, at),
        "Bounce" => {
            let code = post.get("TypeCode").and_then(Value::as_i64).unwrap_or(2048);
            let Some((kind, reason)) = bounce(code) else {
                return Ok(vec![request]);
            };
            let mut e = Event::new(kind, at);
            e.reason = reason;
            if let (Some(_), Some(kind)) = (reason, text(post, "Type")) {
                e.rule = Some(format!("Postmark bounce type {kind} ({code})"));
            }
            e
        }
        "SpamComplaint" => Event::new(EventKind::ReportSpam, at),
        "Open" => Event::new(EventKind::Open, at),
        "Click" => {
            let mut e = Event::new(EventKind::Click, at);
            e.url = text(post, "OriginalLink").map(str::to_string);
            e
        }
        "SubscriptionChange" => {
            if post.get("SuppressSending").and_then(Value::as_bool) != Some(true) {
                return Ok(vec![request]);
            }
            match text(post, "SuppressionReason") {
                Some("SpamComplaint") => Event::new(EventKind::ReportSpam, at),
                // A hard bounce arrives as its own Bounce record.
                Some("HardBounce") => return Ok(vec![request]),
                _ => {
                    let mut e = Event::new(EventKind::Unsubscribe, at);
                    e.unsubscribe_reason = Some(UnsubscribeReason::NotWanted);
                    e
                }
            }
        }
        _ => return Ok(vec![request]),
    };
    e.email_id = Some(id);
    e.recipient = Some(recipient.to_string());
    e.event_id = Some(format!(
        "postmark:{record}:{}:{message_id}:{recipient}:{at}",
        post.get("ID").map(Value::to_string).unwrap_or_default()
    ));
    e.smtp_reply = text(post, "Details")
        .or(text(post, "Description"))
        .filter(|_| record == "Bounce" || record == "Delivery")
        .map(str::to_string);
    e.ip = post
        .get("Geo")
        .and_then(|g| text(g, "IP"))
        .map(str::to_string);
    e.user_agent = text(post, "UserAgent").map(str::to_string);
    Ok(vec![request, e])
}
