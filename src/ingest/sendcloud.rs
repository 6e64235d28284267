//! SendCloud's webhook posts (../shared/SENDCLOUD.md) turned into our events: event names and
//! their aliases, subStat codes, epoch timestamps in milliseconds or seconds, one message per
//! emailId of a request, the signature, and replay protection by token.

use std::collections::HashMap;

use diesel::Connection;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{ingest, Event, EventKind, Outcome, RequestFields, Sender};
use crate::db::DbConn;
use crate::domain::{constant_time_eq, Millis, Reason};
use crate::store::{webhooks, AccountScope, StoreResult};

/// A post stamped further than this from the server's clock, either way, is refused: a
/// captured post cannot be replayed after its token is forgotten.
pub const TIMESTAMP_WINDOW_MS: Millis = 10 * 60_000;

/// A token seen within this long is a replay. Any post that passes the timestamp window is
/// at most twice the window older than a post with the same token, so this must cover that.
pub const REPLAY_WINDOW_MS: Millis = 24 * 3_600_000;
const _: () = assert!(REPLAY_WINDOW_MS >= 2 * TIMESTAMP_WINDOW_MS);

/// Whether the post's `timestamp` (as signed) lies within ±[`TIMESTAMP_WINDOW_MS`] of `now`.
pub fn timestamp_is_fresh(raw: &str, now: Millis) -> bool {
    parse_timestamp(raw).is_some_and(|at| (at - now).abs() <= TIMESTAMP_WINDOW_MS)
}

/// `signature == lowercase hex(HMAC-SHA256(app_key, timestamp + token))`, compared in
/// constant time.
pub fn signature_is_valid(app_key: &str, timestamp: &str, token: &str, signature: &str) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_key.as_bytes()) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    constant_time_eq(
        expected.as_bytes(),
        signature.trim().to_ascii_lowercase().as_bytes(),
    )
}

/// What a post means for us.
#[derive(Debug)]
pub enum Meaning {
    Events(Vec<Event>),
    /// `route` (inbound mail) or an event name we do not know: acknowledged, nothing applied.
    Ignored(String),
}

/// SendCloud's event names, with the newer spellings, onto ours.
fn event_kind(name: &str) -> Option<EventKind> {
    Some(match name.trim() {
        "request" => EventKind::Request,
        "deliver" | "delivered" => EventKind::Deliver,
        "soft_bounce" | "softbounce" | "soft-bounce" => EventKind::SoftBounce,
        "invalid" | "invalid_email" => EventKind::Invalid,
        "open" => EventKind::Open,
        "click" => EventKind::Click,
        "unsubscribe" => EventKind::Unsubscribe,
        "report_spam" | "spam-report" | "spam_report" => EventKind::ReportSpam,
        _ => return None,
    })
}

/// SendCloud sends epoch milliseconds; seconds are accepted too, told apart by magnitude.
pub fn parse_timestamp(raw: &str) -> Option<Millis> {
    let n: i64 = raw.trim().parse().ok()?;
    if n <= 0 {
        return None;
    }
    Some(if n < 100_000_000_000 { n * 1000 } else { n })
}

/// A list field, however it came: a JSON array (`["a","b"]`), SendCloud's own example form
/// (`[a, b]`), values separated by `;` or `,`, or several fields (one a line). No value keeps
/// a bracket or a quote.
pub fn list(raw: &str) -> Vec<String> {
    let mut values = Vec::new();
    for part in raw.lines() {
        let part = part.trim();
        if part.starts_with('[') {
            if let Ok(array) = serde_json::from_str::<Vec<serde_json::Value>>(part) {
                values.extend(array.into_iter().map(|v| match v {
                    serde_json::Value::String(s) => s.trim().to_string(),
                    other => other.to_string(),
                }));
                continue;
            }
        }
        let inner = part.trim_start_matches('[').trim_end_matches(']');
        values.extend(inner.split([';', ',']).map(|s| {
            s.trim()
                .trim_matches(['"', '\'', '[', ']'])
                .trim()
                .to_string()
        }));
    }
    values.retain(|v| !v.is_empty());
    values
}

/// Reads one post's fields (form or JSON, already flattened to strings).
pub fn meaning(fields: &HashMap<String, String>) -> Result<Meaning, String> {
    let get = |name: &str| fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let name = get("event").ok_or("the post has no event field")?;
    let Some(kind) = event_kind(name) else {
        return Ok(Meaning::Ignored(name.to_string()));
    };
    let at = get("timestamp")
        .and_then(parse_timestamp)
        .ok_or("timestamp must be epoch milliseconds (or seconds)")?;
    let mut base = Event::new(kind, at);
    base.email_id = get("emailId").map(str::to_string);
    base.recipient = get("recipient").map(str::to_string);
    match kind {
        EventKind::Request => return Ok(Meaning::Events(requests(fields, base))),
        EventKind::SoftBounce | EventKind::Invalid => {
            let code = get("subStat").and_then(|c| c.parse::<u16>().ok());
            base.reason = code.and_then(Reason::from_sub_stat).map(|(_, r)| r);
            if let (Some(code), Some(_)) = (code, base.reason) {
                base.rule = Some(format!("subStat {code}"));
            }
            base.smtp_reply = get("cause").or(get("subStatDesc")).map(str::to_string);
        }
        EventKind::Open | EventKind::Click | EventKind::Unsubscribe => {
            base.ip = get("ip").map(str::to_string);
            let agent: Vec<&str> = ["explorerName", "explorerVer", "oSName", "oSVer"]
                .iter()
                .filter_map(|f| get(f))
                .collect();
            base.user_agent = (!agent.is_empty()).then(|| agent.join(" "));
            base.url = get("url").map(str::to_string);
        }
        _ => {}
    }
    Ok(Meaning::Events(vec![base]))
}

/// One request, many recipients: one message per emailId, paired with recipientArray by
/// position (an emailId ends in `$recipient` when the array is missing).
fn requests(fields: &HashMap<String, String>, base: Event) -> Vec<Event> {
    let get = |name: &str| fields.get(name).map(|v| v.trim()).unwrap_or("");
    let mut email_ids = list(get("emailIds"));
    if email_ids.is_empty() {
        email_ids.extend(base.email_id.clone());
    }
    let recipients = list(get("recipientArray"));
    let api_user = Some(get("apiUser"))
        .filter(|u| !u.is_empty())
        .or(Some(get("category")).filter(|u| !u.is_empty()))
        .map(str::to_string);
    let label_id = Some(get("labelId")).filter(|l| !l.is_empty() && *l != "0");
    let label_name = Some(get("labelName")).filter(|l| !l.is_empty());
    // The label's name first: it is what the lists (unsubscribes) keep and filter by.
    let tags: Vec<String> = label_name
        .into_iter()
        .chain(label_id)
        .map(str::to_string)
        .collect();
    email_ids
        .into_iter()
        .enumerate()
        .map(|(i, email_id)| {
            let mut event = base.clone();
            event.recipient = recipients
                .get(i)
                .cloned()
                .or_else(|| email_id.rsplit_once('$').map(|(_, r)| r.to_string()))
                .or_else(|| base.recipient.clone());
            event.email_id = Some(email_id);
            event.request = Some(RequestFields {
                api_user: api_user.clone(),
                tags: tags.clone(),
                ..RequestFields::default()
            });
            event
        })
        .collect()
}

/// What became of a post.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Applied(Vec<Outcome>),
    /// The token was seen within 24 h: acknowledged, not applied again.
    Replayed,
}

/// Claims the post's token and applies its events in one transaction, so a replay of a post
/// that failed half-way is applied, and a replay of one that succeeded is not.
pub fn receive(
    conn: &mut DbConn,
    scope: &AccountScope,
    sender: &Sender,
    token: &str,
    events: &[Event],
    now: Millis,
) -> StoreResult<Received> {
    conn.transaction(|conn| {
        if !webhooks::claim_token(conn, scope, token, now, REPLAY_WINDOW_MS)? {
            return Ok(Received::Replayed);
        }
        Ok(Received::Applied(ingest(conn, scope, sender, events)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signatures_and_timestamps() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000000tok");
        let sig = hex::encode(mac.finalize().into_bytes());
        assert!(signature_is_valid("key", "1700000000000", "tok", &sig));
        assert!(!signature_is_valid("key", "1700000000001", "tok", &sig));
        assert_eq!(parse_timestamp("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_timestamp("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(parse_timestamp("soon"), None);
        let now = 1_700_000_000_000;
        assert!(timestamp_is_fresh("1700000600000", now));
        assert!(timestamp_is_fresh("1699999400", now));
        assert!(!timestamp_is_fresh("1700000600001", now));
        assert!(!timestamp_is_fresh("1699999399999", now));
        assert!(!timestamp_is_fresh("", now));
    }

    #[test]
    fn list_fields_in_every_shape() {
        let want = vec!["a@x.com".to_string(), "b@y.com".to_string()];
        for raw in [
            "[a@x.com, b@y.com]",
            "[\"a@x.com\",\"b@y.com\"]",
            "a@x.com;b@y.com",
            "a@x.com\nb@y.com",
            "[\"a@x.com\"]\n[\"b@y.com\"]",
            " ['a@x.com'; 'b@y.com'] ",
            "a@x.com,b@y.com;",
        ] {
            assert_eq!(list(raw), want, "{raw:?}");
        }
        assert!(list("").is_empty());
        assert!(list("[]").is_empty());
    }

    #[test]
    fn aliases_substat_and_many_recipients() {
        let m = meaning(&fields(&[
            ("event", "invalid_email"),
            ("timestamp", "1700000000000"),
            ("emailId", "x$a@b.c"),
            ("subStat", "406"),
        ]))
        .unwrap();
        let Meaning::Events(events) = m else {
            panic!("events expected")
        };
        assert_eq!(events[0].kind, EventKind::Invalid);
        assert_eq!(events[0].reason, Some(Reason::AddressNotFound));

        let m = meaning(&fields(&[
            ("event", "request"),
            ("timestamp", "1700000000"),
            ("emailIds", "m0$a@x.com;m1$b@y.com"),
            ("apiUser", "u"),
        ]))
        .unwrap();
        let Meaning::Events(events) = m else {
            panic!("events expected")
        };
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].recipient.as_deref(), Some("b@y.com"));
        assert!(matches!(
            meaning(&fields(&[("event", "route"), ("timestamp", "1")])).unwrap(),
            Meaning::Ignored(_)
        ));
    }
}
