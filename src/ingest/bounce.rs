//! A raw bounce message (DSN, an MTA's bounce mail, an ARF complaint, an auto-reply) posted
//! to `POST /api/v1/bounce-messages`: classify it, find its message, apply it (DESIGN §2).

use serde::Serialize;

use super::{classifier, ingest, Event, EventKind, Sender};
use crate::classify::{Classification, Kind};
use crate::db::DbConn;
use crate::domain::{now_ms, Reason, Status};
use crate::store::events as store;
use crate::store::lists::ListKind;
use crate::store::models::Message;
use crate::store::{AccountScope, StoreResult};

/// How the message a bounce is about was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The original's emailId header (X-Mailtrail-Email-Id, SC-Email-Id).
    EmailId,
    /// The original's Message-ID, which for our senders is the emailId or its prefix.
    MessageId,
    /// Neither: the newest message to the bounced recipient.
    Recipient,
}

/// What a bounce message was and what it changed.
#[derive(Debug, Clone, Serialize)]
pub struct BounceResult {
    pub classification: Classification,
    pub matched_by: Option<MatchedBy>,
    pub email_id: Option<String>,
    pub status_before: Option<Status>,
    pub status_after: Option<Status>,
    pub reason_after: Option<Reason>,
    /// The lists this bounce added the recipient to.
    pub lists: Vec<ListKind>,
}

pub fn apply_bounce_message(
    conn: &mut DbConn,
    scope: &AccountScope,
    sender: &Sender,
    raw: &[u8],
) -> StoreResult<BounceResult> {
    let mut classification = classifier().classify_message(raw);
    // Auto-replies and some bounces return no original, but answer it: In-Reply-To names our
    // Message-ID and From is the recipient.
    if let Ok((headers, _)) = mailparse::parse_headers(raw) {
        use mailparse::MailHeaderMap;
        if classification.original_message_id.is_none() {
            classification.original_message_id = headers
                .get_first_value("In-Reply-To")
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty());
        }
        if classification.recipient.is_none() && classification.kind == Kind::AutoReply {
            classification.recipient = headers
                .get_first_value("From")
                .and_then(|from| mailparse::addrparse(&from).ok())
                .and_then(|list| match list.first() {
                    Some(mailparse::MailAddr::Single(s)) => Some(s.addr.clone()),
                    _ => None,
                });
        }
    }
    let (message, matched_by) = find_message(conn, scope, &classification)?;
    let mut result = BounceResult {
        matched_by,
        email_id: message.as_ref().map(|m| m.email_id.clone()),
        status_before: message.as_ref().map(Message::status),
        status_after: None,
        reason_after: None,
        lists: Vec::new(),
        classification,
    };
    let c = &result.classification;
    let now = now_ms();
    let event = match (c.kind, &message) {
        (Kind::Bounce, Some(m)) => {
            // DESIGN §2: a bounce after delivery is a soft bounce; before it, invalid.
            let kind = if m.status() == Status::Delivered {
                EventKind::SoftBounce
            } else {
                EventKind::Invalid
            };
            let mut e = Event::new(kind, now);
            e.reason = Some(
                c.reason
                    .and_then(Reason::from_code)
                    .unwrap_or(Reason::Other),
            );
            e.detail = c.detail.map(str::to_string);
            e.rule = Some(format!("bounce message: {}", c.rule));
            e.smtp_reply = reply_summary(c);
            Some(e)
        }
        (Kind::Complaint, _) => {
            let mut e = Event::new(EventKind::ReportSpam, now);
            e.recipient = c.recipient.clone();
            Some(e)
        }
        (Kind::AutoReply, Some(_)) => Some(Event::new(EventKind::AutoReply, now)),
        _ => None,
    };
    if let Some(mut event) = event {
        event.email_id = message.as_ref().map(|m| m.email_id.clone());
        if event.problem().is_none() {
            ingest(conn, scope, sender, &[event.clone()])?;
            if event.kind == EventKind::ReportSpam {
                result.lists.push(ListKind::SpamReports);
            }
            if let Some(status) = [EventKind::SoftBounce, EventKind::Invalid]
                .contains(&event.kind)
                .then_some(if event.kind == EventKind::SoftBounce {
                    Status::SoftBounce
                } else {
                    Status::Invalid
                })
            {
                if event.reason.map(|r| r.project(status)) == Some(Reason::AddressNotFound) {
                    result.lists.push(ListKind::Bounces);
                }
            }
        }
    }
    if let Some(m) = &message {
        let after = store::messages_by_email_ids(conn, scope, &[m.email_id.as_str()])?;
        result.status_after = after.first().map(Message::status);
        result.reason_after = after.first().and_then(Message::reason);
    }
    Ok(result)
}

/// The reply and status codes as one line for the message's log, e.g. `550 5.1.1`. The
/// classifier's detail is kept apart, in the event's own `detail`.
fn reply_summary(c: &Classification) -> Option<String> {
    let parts: Vec<String> = c
        .reply_code
        .map(|r| r.to_string())
        .into_iter()
        .chain(c.status_code.clone())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The bounced message: by its emailId header, else its Message-ID, else the newest message
/// to its recipient.
fn find_message(
    conn: &mut DbConn,
    scope: &AccountScope,
    c: &Classification,
) -> StoreResult<(Option<Message>, Option<MatchedBy>)> {
    if let Some(email_id) = c.email_id.as_deref().map(str::trim) {
        if let Some(m) = store::messages_by_email_ids(conn, scope, &[email_id])?.pop() {
            return Ok((Some(m), Some(MatchedBy::EmailId)));
        }
    }
    if let Some(message_id) = &c.original_message_id {
        let bare = message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        let local = bare.split('@').next().unwrap_or(bare);
        let mut candidates = vec![bare.to_string(), local.to_string()];
        if let Some(rcpt) = &c.recipient {
            let rcpt = crate::domain::normalize_address(rcpt);
            candidates.push(format!("{bare}${rcpt}"));
            candidates.push(format!("{local}${rcpt}"));
        }
        let refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
        let found = store::messages_by_email_ids(conn, scope, &refs)?;
        let wanted_recipient = c.recipient.as_deref().map(crate::domain::normalize_address);
        let best = found
            .iter()
            .find(|m| Some(&m.recipient) == wanted_recipient.as_ref())
            .or(found.first());
        if let Some(m) = best {
            return Ok((Some(m.clone()), Some(MatchedBy::MessageId)));
        }
    }
    if let Some(rcpt) = &c.recipient {
        if let Some(m) = store::latest_message_to(conn, scope, rcpt)? {
            return Ok((Some(m), Some(MatchedBy::Recipient)));
        }
    }
    Ok((None, None))
}
