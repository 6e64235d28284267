//! What a message shows itself to be (a bounce, an auto-reply, a provider's complaint), and
//! the parts of its text that count as evidence.

use super::message::MessageFacts;
use super::{codes, text};

/// The notification text without lines that quote the original's headers ("Subject: Virus
/// warning", "To: ..."): the sender's own words are no evidence of why delivery failed.
pub(super) fn without_quoted_headers(text: &str) -> String {
    const QUOTED: &[&str] = &[
        "subject:",
        "from:",
        "to:",
        "cc:",
        "date:",
        "sent:",
        "message-id:",
        "reply-to:",
        "return-path:",
        "received:",
        "x-",
        "mime-version:",
        "content-",
    ];
    text.lines()
        .filter(|line| {
            let lower = line.trim_start().to_ascii_lowercase();
            !QUOTED.iter().any(|h| lower.starts_with(h))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The DSN's Status unless it is generic (5.0.0), then a code in the server's words.
pub(super) fn pick_status(reported: Option<&str>, diagnostic: &str, human: &str) -> Option<String> {
    let precise = |s: &&String| !codes::is_generic_status(s) && !s.starts_with('2');
    if let Some(s) = reported.filter(|s| !codes::is_generic_status(s)) {
        return Some(s.to_string());
    }
    let in_diagnostic = codes::find_status_codes(diagnostic);
    let in_human = codes::find_status_codes(human);
    in_diagnostic
        .iter()
        .find(|s| precise(s) && codes::status_meaning(s).is_some())
        .or_else(|| in_diagnostic.iter().find(precise))
        .or_else(|| in_human.iter().find(precise))
        .cloned()
        .or_else(|| reported.map(str::to_string))
}

/// Signs that a message reports a delivery failure (so an auto-reply header is the
/// MTA's, as Exim marks its bounces "Auto-Submitted: auto-replied").
pub(super) fn looks_like_bounce(facts: &MessageFacts, found: &text::TextDiagnostic) -> bool {
    let subject = facts.subject.to_lowercase();
    let bounce_subject = [
        "undeliver",
        "delivery status notification",
        "returned mail",
        "delivery failure",
        "failure notice",
        "mail delivery failed",
        "delivery failed",
        "non-delivery",
        "nondeliverable",
        "could not be delivered",
        "delivery has failed",
        "mail system error",
        "rejected",
        "bounce",
    ]
    .iter()
    .any(|s| subject.contains(s));
    let daemon_sender = [
        "mailer-daemon",
        "postmaster",
        "mail delivery",
        "mailer daemon",
    ]
    .iter()
    .any(|s| facts.from.contains(s));
    let has_codes = !codes::find_status_codes(&found.diagnostic).is_empty()
        && codes::find_reply_code(&found.diagnostic, true).is_some();
    facts.has_delivery_status
        || facts.auto_generated
        || bounce_subject
        || daemon_sender
        || has_codes
}

pub(super) fn is_auto_reply(facts: &MessageFacts) -> bool {
    let subject = facts.subject.to_lowercase();
    let auto_subject = [
        "auto:",
        "autoreply",
        "auto reply",
        "auto-reply",
        "automatic reply",
        "auto response",
        "autoresponse",
        "out of office",
        "out of the office",
        "vacation",
        "away from",
        "abwesenheit",
        "absence",
        "自动回复",
    ]
    .iter()
    .any(|s| subject.contains(s));
    facts.auto_reply_header || auto_subject
}

/// Provider complaint notices that are not ARF: a complaint subject from an abuse or
/// feedback-loop address.
pub(super) fn is_provider_complaint(facts: &MessageFacts) -> bool {
    let subject = facts.subject.to_lowercase();
    let complaint_subject = ["complaint", "abuse report", "spam report"]
        .iter()
        .any(|s| subject.contains(s));
    let loop_sender = ["abuse", "feedback", "fbl", "complaint"]
        .iter()
        .any(|s| facts.from.contains(s));
    complaint_subject && loop_sender
}
