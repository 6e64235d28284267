//! Feeds from the rest of the world, translated into our events and applied through the one
//! ingestion path ([`crate::ingest::ingest`]): Postfix's mail log, and the event webhooks of
//! Mailgun, Postmark, SendGrid and Amazon SES (through SNS). No HTTP here: `web::feeds` reads the posts, `main` runs the
//! log reader.
//!
//! These senders post no `request` of their own, so each message is requested by its first
//! event (a request for a message that exists already is a duplicate and changes nothing).

pub mod mailgun;
pub mod postfix;
pub mod postmark;
pub mod sendgrid;
pub mod ses;

use diesel::Connection;

use crate::db::DbConn;
use crate::domain::{normalize_address, Millis};
use crate::ingest::{ingest, Event, EventKind, RequestFields, Sender};
use crate::store::{feeds as store, AccountScope, StoreResult};

/// Timestamps further than this from our clock are refused, as for SendCloud's webhook.
pub const TIMESTAMP_WINDOW_MS: Millis = 10 * 60_000;
/// Tokens are remembered for twice the window: a replay inside it is refused by its token,
/// one outside it by its timestamp.
pub const REPLAY_WINDOW_MS: Millis = 2 * TIMESTAMP_WINDOW_MS;

/// The feeds whose keys an account keeps (the path segment under `/webhooks/`).
pub const WEBHOOK_FEEDS: [&str; 4] = ["mailgun", "postmark", "sendgrid", "ses"];
/// Where the SubscribeURL of SNS's last SubscriptionConfirmation is kept, for the owner to visit.
pub const SES_SUBSCRIBE_URL: &str = "ses-subscribe-url";
/// Where the topic of the last SNS subscription this server confirmed itself is kept.
pub const SES_SUBSCRIBED: &str = "ses-subscribed";

/// Whether `timestamp_ms` is within the window around `now`.
pub fn timestamp_is_fresh(timestamp_ms: Millis, now: Millis) -> bool {
    (timestamp_ms - now).abs() <= TIMESTAMP_WINDOW_MS
}

/// The emailId of one recipient of a message the feed names by its own id.
pub fn email_id(message_id: &str, recipient: &str) -> String {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    format!("{id}${}", normalize_address(recipient))
}

/// The request that makes the message an event is about, for feeds that post none.
pub fn request_for(
    email_id: &str,
    recipient: &str,
    at: Millis,
    from: &str,
    subject: &str,
    tags: Vec<String>,
) -> Event {
    // A millisecond before the event it is made for: the message's own bounce or complaint,
    // stamped with the event's time, then comes after its request, as it does on the wire,
    // and never counts as in force at it (DESIGN §3).
    let mut e = Event::new(EventKind::Request, at - 1);
    e.email_id = Some(email_id.to_string());
    e.recipient = Some(recipient.to_string());
    e.request = Some(RequestFields {
        from: from.to_string(),
        subject: subject.to_string(),
        tags,
        ..RequestFields::default()
    });
    e
}

/// What became of one webhook post, as for SendCloud's webhook (each with its own replay
/// window).
pub use crate::ingest::sendcloud::Received;

/// Claims the post's token (when it has one) and applies its events in one transaction.
pub fn receive(
    conn: &mut DbConn,
    scope: &AccountScope,
    sender: &Sender,
    feed: &str,
    token: Option<&str>,
    events: &[Event],
    now: Millis,
) -> StoreResult<Received> {
    conn.transaction(|conn| {
        if let Some(token) = token {
            if !store::claim_token(conn, scope, feed, token, now, REPLAY_WINDOW_MS)? {
                return Ok(Received::Replayed);
            }
        }
        Ok(Received::Applied(ingest(conn, scope, sender, events)?))
    })
}

/// Epoch seconds (possibly fractional) as milliseconds.
pub fn seconds_to_ms(seconds: f64) -> Option<Millis> {
    (seconds.is_finite() && seconds > 0.0).then(|| (seconds * 1000.0).round() as Millis)
}

/// An RFC 3339 time as milliseconds.
pub fn rfc3339_ms(raw: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}
