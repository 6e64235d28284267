//! A raw bounce message (DSN, an MTA's bounce mail, an ARF complaint, an auto-reply) posted
//! to `POST /api/v1/bounce-messages`: classify it, find its message, apply it (DESIGN §2).

use serde::Serialize;

use super::{classifier, ingest, Event, EventKind, Sender};
use crate::classify::{Classification, Kind};
use crate::db::DbConn;
use crate::domain::ListKind;
use crate::domain::{now_ms, Reason, Status};
use crate::store::events as store;
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
    fill_from_headers(&mut classification, raw);
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
            // The provider's own words when the DSN has them; the reason code and the rule
            // that decided stay beside them.
            e.smtp_reply =
                diagnostic_text(raw, c.recipient.as_deref()).or_else(|| reply_summary(c));
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

/// Completes a classification from the message's own headers: the original's Message-ID
/// from In-Reply-To, the recipient from an ARF report or an auto-reply's From.
fn fill_from_headers(classification: &mut Classification, raw: &[u8]) {
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
        // An ARF report names the complained-about recipient in its feedback part
        // (Original-Rcpt-To, RFC 5965) or in the returned original's To.
        if classification.recipient.is_none() && classification.kind == Kind::Complaint {
            classification.recipient = complained_recipient(raw);
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
}

/// Every leaf part of a raw message, with its MIME type and its (transfer-decoded) body.
fn leaf_parts(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    fn walk(part: &mailparse::ParsedMail, out: &mut Vec<(String, Vec<u8>)>, depth: usize) {
        if part.subparts.is_empty() || depth > 8 {
            let body = part.get_body_raw().unwrap_or_default();
            out.push((part.ctype.mimetype.to_ascii_lowercase(), body));
            return;
        }
        for sub in &part.subparts {
            walk(sub, out, depth + 1);
        }
    }
    let mut out = Vec::new();
    if let Ok(mail) = mailparse::parse_mail(raw) {
        walk(&mail, &mut out, 0);
    }
    out
}

/// Header blocks one after another (a delivery-status body: the per-message block, then one
/// block per recipient), read with `parse_headers` until the body runs out.
fn header_blocks(body: &[u8]) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut rest = body;
    while !rest.iter().all(|b| b.is_ascii_whitespace()) && blocks.len() < 1_000 {
        let start = rest
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .unwrap_or(rest.len());
        rest = &rest[start..];
        let Ok((headers, used)) = mailparse::parse_headers(rest) else {
            break;
        };
        if used == 0 {
            break;
        }
        blocks.push(
            headers
                .iter()
                .map(|h| (h.get_key().to_ascii_lowercase(), h.get_value()))
                .collect(),
        );
        rest = &rest[used.min(rest.len())..];
    }
    blocks
}

/// `rfc822; a@b` → `a@b`; `smtp; 550 …` → `550 …`.
fn without_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.trim().is_empty() && !kind.contains(' ') => rest.trim(),
        _ => value.trim(),
    }
}

/// The `Diagnostic-Code` of a DSN as the reporting MTA wrote it, for `recipient` when given
/// (else the first recipient that has one); whitespace of folded lines collapsed.
pub fn diagnostic_text(raw: &[u8], recipient: Option<&str>) -> Option<String> {
    let wanted = recipient.map(crate::domain::normalize_address);
    let mut first = None;
    for (mime, body) in leaf_parts(raw) {
        if mime != "message/delivery-status" && mime != "message/global-delivery-status" {
            continue;
        }
        for block in header_blocks(&body) {
            let field = |name: &str| block.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            let Some(diagnostic) = field("diagnostic-code") else {
                continue;
            };
            let text = without_type(diagnostic)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if text.is_empty() {
                continue;
            }
            let text: String = text.chars().take(1_000).collect();
            let rcpt = field("final-recipient")
                .or(field("original-recipient"))
                .map(|r| crate::domain::normalize_address(without_type(r)));
            if wanted.is_some() && rcpt == wanted {
                return Some(text);
            }
            first.get_or_insert(text);
        }
    }
    first
}

/// The recipient an ARF complaint is about: `Original-Rcpt-To` of its feedback part, else the
/// `To` of the original it returns.
pub fn complained_recipient(raw: &[u8]) -> Option<String> {
    let parts = leaf_parts(raw);
    let from_report = parts
        .iter()
        .filter(|(mime, _)| mime == "message/feedback-report")
        .flat_map(|(_, body)| header_blocks(body))
        .flatten()
        .find(|(k, _)| k == "original-rcpt-to")
        .map(|(_, v)| without_type(&v).to_string());
    let from_original = || {
        parts
            .iter()
            .filter(|(mime, _)| mime == "message/rfc822" || mime == "text/rfc822-headers")
            .filter_map(|(_, body)| {
                let (headers, _) = mailparse::parse_headers(body).ok()?;
                use mailparse::MailHeaderMap;
                let to = headers.get_first_value("To")?;
                match mailparse::addrparse(&to).ok()?.first()? {
                    mailparse::MailAddr::Single(s) => Some(s.addr.clone()),
                    _ => None,
                }
            })
            .next()
    };
    from_report
        .or_else(from_original)
        .map(|a| a.trim().trim_matches(['<', '>']).to_string())
        .filter(|a| crate::domain::EmailAddress::parse(a).is_some())
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
        // Mail a feed read (Postfix) has emailIds of its own; the feed kept its Message-ID.
        let ids = crate::store::feeds::email_ids_for_message_id(conn, scope, bare)?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let found = store::messages_by_email_ids(conn, scope, &refs)?;
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
