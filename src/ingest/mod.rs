//! The rules of the product applied to incoming events (DESIGN §2, §3): status transitions,
//! suppression at request time, the list side effects, the rollup. No HTTP here: the events
//! API, the SendCloud webhook and the bounce-message endpoint all end in [`ingest`].

mod batch;
pub mod bounce;
pub mod fold;
pub mod phases;
pub mod sendcloud;
pub mod suppress;

use std::sync::OnceLock;

use crate::classify::Classifier;
use crate::domain::{MailType, Millis, Reason, UnsubscribeReason};

pub use batch::ingest;

/// The event types of `POST /api/v1/events`, plus the auto-reply a bounce message may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Request,
    Deliver,
    SoftBounce,
    Invalid,
    Open,
    Click,
    Unsubscribe,
    ReportSpam,
    /// An auto-reply posted as a bounce message: logged on the message, nothing else.
    AutoReply,
    /// A temporary failure the sender will retry (Postfix `status=deferred`, SendGrid
    /// `deferred`, …): the attempt is logged and the message stays requesting (DESIGN §2).
    Deferred,
    /// A bounce reported for the message by someone who does not say whether it had been
    /// accepted (an ESP's bounce notice): `soft_bounce` when the message was delivered at or
    /// before it, else `invalid` (DESIGN §2; decided in [`fold`], whatever the arrival order).
    Bounce,
}

impl EventKind {
    /// The code stored in the event log and used by the API.
    pub fn code(self) -> &'static str {
        match self {
            EventKind::Request => "request",
            EventKind::Deliver => "deliver",
            EventKind::SoftBounce => "soft_bounce",
            EventKind::Invalid => "invalid",
            EventKind::Open => "open",
            EventKind::Click => "click",
            EventKind::Unsubscribe => "unsubscribe",
            EventKind::ReportSpam => "report_spam",
            EventKind::AutoReply => "auto_reply",
            EventKind::Deferred => "deferred",
            EventKind::Bounce => "bounce",
        }
    }

    pub fn from_code(code: &str) -> Option<EventKind> {
        [
            EventKind::Request,
            EventKind::Deliver,
            EventKind::SoftBounce,
            EventKind::Invalid,
            EventKind::Open,
            EventKind::Click,
            EventKind::Unsubscribe,
            EventKind::ReportSpam,
            EventKind::AutoReply,
            EventKind::Deferred,
            EventKind::Bounce,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }

    /// Events about the recipient rather than the delivery: they may name a recipient
    /// instead of a message.
    pub fn may_name_recipient_only(self) -> bool {
        matches!(self, EventKind::Unsubscribe | EventKind::ReportSpam)
    }
}

/// What a `request` carries beyond the common fields.
#[derive(Debug, Clone, Default)]
pub struct RequestFields {
    /// Defaults to the posting key's own API_USER.
    pub api_user: Option<String>,
    pub mail_type: Option<MailType>,
    pub tags: Vec<String>,
    pub from: String,
    pub subject: String,
    /// The raw message, kept as the S+ send content.
    pub content: Option<Vec<u8>>,
}

/// One incoming event, already decoded from whichever wire format it came in.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    /// The sender's id for this event: a second event with the same id is not applied again.
    pub event_id: Option<String>,
    pub email_id: Option<String>,
    pub recipient: Option<String>,
    pub occurred_at: Millis,
    pub request: Option<RequestFields>,
    pub smtp_reply: Option<String>,
    pub mx: Option<String>,
    pub attempt: Option<i32>,
    /// A failure's reason when the MTA already knows it; else the classifier decides.
    pub reason: Option<Reason>,
    /// A finer label for people (mailbox_full, …) when the classifier already ran.
    pub detail: Option<String>,
    /// The evidence for the reason, when the caller already knows it.
    pub rule: Option<String>,
    pub send_log: Vec<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub url: Option<String>,
    pub unsubscribe_reason: Option<UnsubscribeReason>,
}

impl Event {
    pub fn new(kind: EventKind, occurred_at: Millis) -> Event {
        Event {
            kind,
            event_id: None,
            email_id: None,
            recipient: None,
            occurred_at,
            request: None,
            smtp_reply: None,
            mx: None,
            attempt: None,
            reason: None,
            detail: None,
            rule: None,
            send_log: Vec::new(),
            ip: None,
            user_agent: None,
            url: None,
            unsubscribe_reason: None,
        }
    }

    /// Whether `at` can be the time of a mail event: from 2000 to 2099 (UTC). Anything else is
    /// a unit mistake (seconds or microseconds for milliseconds), not mail.
    pub fn plausible_time(at: Millis) -> bool {
        const YEAR_2000: Millis = 946_684_800_000;
        const YEAR_2100: Millis = 4_102_444_800_000;
        (YEAR_2000..YEAR_2100).contains(&at)
    }

    /// What is missing for this event to make sense, in a sentence for the sender.
    pub fn problem(&self) -> Option<String> {
        if !Event::plausible_time(self.occurred_at) {
            return Some(format!(
                "timestamp {} is not a time between the years 2000 and 2099 (epoch milliseconds)",
                self.occurred_at
            ));
        }
        let has = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
        if let Some(id) = self.email_id.as_deref().filter(|id| !id.trim().is_empty()) {
            // A list that was not split (`["a","b"]`) must not become one message's id.
            let bad =
                |c: char| matches!(c, '[' | ']' | '"' | '\'' | '<' | '>' | ';') || c.is_control();
            if id.chars().any(bad) || id.len() > 512 {
                let shown: String = id.chars().take(80).collect();
                return Some(format!(
                    "email_id {shown:?} contains brackets, quotes, separators or control characters (or is over 512 octets)"
                ));
            }
        }
        if self.kind == EventKind::Request {
            if !has(&self.email_id) {
                return Some("a request needs email_id".into());
            }
            return match &self.recipient {
                None => Some("a request needs recipient".into()),
                Some(r) => recipient_problem(r),
            };
        }
        if has(&self.email_id) {
            return None;
        }
        if self.kind.may_name_recipient_only() {
            return match &self.recipient {
                Some(r) => recipient_problem(r),
                None => Some(format!("{} needs email_id or recipient", self.kind.code())),
            };
        }
        Some(format!("{} needs email_id", self.kind.code()))
    }
}

/// Why `recipient` is refused, in a sentence that quotes it safely (escaped, length-capped).
fn recipient_problem(recipient: &str) -> Option<String> {
    let problem = crate::domain::EmailAddress::check(recipient).err()?;
    let shown: String = recipient.chars().take(80).collect();
    let more = if shown.len() < recipient.len() {
        "…"
    } else {
        ""
    };
    Some(format!(
        "recipient {:?}{more} is not an email address: {problem}",
        shown
    ))
}

/// Who is posting: the API_USER a request belongs to when it names none.
#[derive(Debug, Clone)]
pub struct Sender {
    pub api_user: String,
    pub mail_type: MailType,
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Its message has not been requested yet: kept, and applied when the request arrives.
    Waiting,
    /// Its event_id (or its message's request) was seen before: acknowledged, not applied again.
    Duplicate,
    Rejected(String),
}

/// The earliest logged delivery of each existing message (`known`: emailId, message id) that a
/// bounce report among `events` is about, by emailId. One query, and only for such batches.
fn first_deliveries<'e, 'm>(
    conn: &mut crate::db::DbConn,
    scope: &crate::store::AccountScope,
    events: impl Iterator<Item = &'e Event>,
    known: impl Iterator<Item = (&'m str, i64)>,
) -> crate::store::StoreResult<std::collections::HashMap<String, Millis>> {
    let reported: std::collections::HashSet<&str> = events
        .filter(|e| e.kind == EventKind::Bounce)
        .filter_map(|e| e.email_id.as_deref().map(str::trim))
        .collect();
    if reported.is_empty() {
        return Ok(Default::default());
    }
    let ids: std::collections::HashMap<i64, &str> = known
        .filter(|(email_id, _)| reported.contains(email_id))
        .map(|(email_id, id)| (id, email_id))
        .collect();
    let message_ids: Vec<i64> = ids.keys().copied().collect();
    Ok(
        crate::store::events::first_deliveries(conn, scope, &message_ids)?
            .into_iter()
            .filter_map(|(id, at)| Some((ids.get(&id)?.to_string(), at)))
            .collect(),
    )
}

/// The one classifier, built once: its rules are parsed from the embedded table.
pub fn classifier() -> &'static Classifier {
    static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
    CLASSIFIER.get_or_init(Classifier::new)
}
