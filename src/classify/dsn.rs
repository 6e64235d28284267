//! RFC 3464 delivery-status fields. mailparse does not decode a `message/delivery-status`
//! body, so its blocks are read here with repeated `parse_headers` calls: first the
//! per-message block, then one block per recipient.

use mailparse::{MailHeader, MailHeaderMap};

/// One per-recipient block of a delivery-status report (or the same facts taken from
/// another source, such as a JSON notification).
#[derive(Clone, Debug, Default)]
pub(crate) struct RecipientReport {
    pub recipient: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    /// The diagnostic's type (RFC 3464 §2.3.6): "smtp" for a remote server's reply,
    /// "x-postfix", "x-unix", ... for the reporting MTA's own words.
    pub diagnostic_type: Option<String>,
    /// PowerMTA's documented bounce category (`X-PowerMTA-BounceCategory: bad-mailbox`).
    pub category: Option<String>,
}

impl RecipientReport {
    /// True when the report says the message reached the recipient or the next hop.
    pub fn is_success(&self) -> bool {
        let success_action = self
            .action
            .as_deref()
            .is_some_and(|a| matches!(a, "delivered" | "relayed" | "expanded" | "deliverable"));
        let success_status = self.status.as_deref().is_none_or(|s| s.starts_with('2'));
        success_action && success_status
    }

    pub fn is_failure(&self) -> bool {
        let failed_action = self
            .action
            .as_deref()
            .is_some_and(|a| matches!(a, "failed" | "delayed" | "expired"));
        let failed_status = self
            .status
            .as_deref()
            .is_some_and(|s| s.starts_with('4') || s.starts_with('5'));
        failed_action || failed_status
    }
}

/// Most reports are tiny; a cap keeps a hostile part with thousands of blocks cheap.
const MAX_BLOCKS: usize = 200;

/// Reads the recipient blocks of a delivery-status body.
pub(crate) fn parse_delivery_status(body: &[u8]) -> Vec<RecipientReport> {
    let mut reports = Vec::new();
    let mut pos = 0;
    for _ in 0..MAX_BLOCKS {
        // Blocks are separated by blank lines; some MTAs add extra ones.
        while pos < body.len() && matches!(body[pos], b'\r' | b'\n' | b' ' | b'\t') {
            pos += 1;
        }
        if pos >= body.len() {
            break;
        }
        let Ok((headers, consumed)) = mailparse::parse_headers(&body[pos..]) else {
            break;
        };
        if consumed == 0 {
            break;
        }
        pos += consumed;
        if let Some(report) = recipient_block(&headers) {
            reports.push(report);
        }
    }
    reports
}

/// A recipient block, or None for the per-message block (Reporting-MTA, Arrival-Date, ...).
fn recipient_block(headers: &[MailHeader]) -> Option<RecipientReport> {
    let field = |name: &str| {
        headers
            .get_first_value(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let recipient = field("Final-Recipient")
        .or_else(|| field("Original-Recipient"))
        .or_else(|| field("X-Actual-Recipient"));
    let action = field("Action").map(|a| a.to_ascii_lowercase());
    let status = field("Status");
    let diagnostic = field("Diagnostic-Code");
    if recipient.is_none() && action.is_none() && status.is_none() && diagnostic.is_none() {
        return None;
    }
    Some(RecipientReport {
        recipient: recipient.map(|r| {
            strip_type(&r)
                .trim_matches(|c| c == '<' || c == '>')
                .to_string()
        }),
        action: action.map(|a| a.split_whitespace().next().unwrap_or("").to_string()),
        // "5.0.0 (permanent failure)": keep the code only.
        status: status.and_then(|s| super::codes::find_status_codes(&s).into_iter().next()),
        diagnostic_type: diagnostic.as_deref().and_then(diagnostic_type),
        category: field("X-PowerMTA-BounceCategory").map(|c| c.to_ascii_lowercase()),
        diagnostic: diagnostic.map(|d| strip_type(&d).trim().to_string()),
    })
}

/// Words for a bounce category that a sending system assigned (PowerMTA's bounce
/// categories, Amazon SES's bounce subtypes), read like the notification's own text: they
/// decide only when the server's reply said nothing known.
pub(crate) fn category_words(category: &str) -> Option<&'static str> {
    Some(match category.to_ascii_lowercase().as_str() {
        "bad-mailbox" | "noemail" => "mailbox does not exist",
        "bad-domain" => "domain not found",
        "inactive-mailbox" => "mailbox disabled",
        "quota-issues" | "mailboxfull" => "mailbox full",
        "messagetoolarge" => "message too large",
        "spam-related" | "contentrejected" => "spam",
        "virus-related" => "virus",
        "policy-related" => "policy",
        "routing-errors" => "unable to route",
        "message-expired" => "message expired",
        "no-answer-from-host" => "connection timed out",
        "bad-connection" => "lost connection",
        "relaying-issues" => "relay access denied",
        "content-related" => "malformed message",
        "invalid-sender" => "sender rejected",
        "protocol-errors" => "syntax error",
        _ => return None,
    })
}

/// The type word before the `;` of a Diagnostic-Code, lowercased.
pub(crate) fn diagnostic_type(value: &str) -> Option<String> {
    let stripped = strip_type(value);
    (stripped.len() != value.len()).then(|| {
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// Drops an address-type or diagnostic-type prefix: "rfc822; a@b" -> "a@b",
/// "smtp; 550 ..." -> "550 ...". Only a single word before the `;` counts as a type,
/// so a diagnostic text that itself contains `;` is left alone.
pub(crate) fn strip_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest))
            if !kind.trim().is_empty() && !kind.trim().contains(' ') && kind.len() < 40 =>
        {
            rest.trim_start()
        }
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_per_message_and_recipient_blocks() {
        let body = b"Reporting-MTA: dns; mx.example.org\r\n\r\n\
Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.1.1 (bad mailbox)\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <a@example.net>: user unknown\r\n\r\n\
Final-Recipient: rfc822; b@example.net\r\nAction: delivered\r\nStatus: 2.0.0\r\n";
        let reports = parse_delivery_status(body);
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].recipient.as_deref(), Some("a@example.net"));
        assert_eq!(reports[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(
            reports[0].diagnostic.as_deref(),
            Some("550 5.1.1 <a@example.net>: user unknown")
        );
        assert!(reports[0].is_failure());
        assert!(reports[1].is_success());
    }
}
