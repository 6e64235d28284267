//! Single SMTP replies, documented texts per reason, and the rules files.

use super::messages::ARF_REPORT;
use super::*;

#[test]
fn reply_blocked_by_spamhaus() {
    let c = reply("550 5.7.1 Service unavailable; client host blocked using Spamhaus");
    assert_eq!(c.kind, Kind::Bounce);
    assert_eq!(c.reason, Some("ip_domain_rejected"));
    assert_eq!(c.status_code.as_deref(), Some("5.7.1"));
    assert_eq!(c.reply_code, Some(550));
}

#[test]
fn reply_mailbox_full() {
    let c = reply("452 4.2.2 mailbox full");
    assert_outcome(&c, (Some("other"), Some("mailbox_full")));
    assert_eq!(c.reply_code, Some(452));
}

#[test]
fn reply_rejected_as_spam() {
    let c = reply("554 5.7.1 message rejected as spam");
    assert_eq!(c.reason, Some("spam"));
}

#[test]
fn reply_codes_without_text() {
    assert_eq!(
        reply("550 5.1.1 <a@b.example> user unknown").reason,
        Some("address_not_found")
    );
    assert_eq!(
        reply("550 5.1.1 <a@b.example> user unknown")
            .recipient
            .as_deref(),
        Some("a@b.example")
    );
    assert_eq!(reply("554 5.3.4 x").detail, Some("message_too_big"));
    assert_eq!(reply("421 4.4.7 x").reason, Some("server_unreachable"));
    assert_eq!(reply("550 5.7.26 x").reason, Some("ip_domain_rejected"));
    assert_eq!(reply("553 5.1.3 x").reason, Some("bad_address"));
    let nothing = reply("something odd");
    assert_eq!(
        (nothing.reason, nothing.rule.as_str()),
        (Some("other"), "no evidence")
    );
}

#[test]
fn reply_stage_decides_a_vague_refusal() {
    let c = reply("550 No such domain (in reply to MAIL FROM command)");
    assert_eq!(c.reason, Some("sender_recipient_rejected"));
}

#[test]
fn reply_success_is_delivered() {
    let c = reply("250 2.0.0 Ok: queued as ABC");
    assert_eq!(c.kind, Kind::Delivered);
    assert_eq!(c.reply_code, Some(250));
}

#[test]
fn classify_input_splits_replies_from_messages() {
    let classifier = Classifier::new();
    assert_eq!(
        classifier.classify_input(b"552 5.2.2 over quota\n").detail,
        Some("mailbox_full")
    );
    assert_eq!(
        classifier.classify_input(ARF_REPORT.as_bytes()).kind,
        Kind::Complaint
    );
}

#[test]
fn json_line_has_the_design_keys_in_order() {
    let line = reply("550 5.1.1 user unknown").to_json_line();
    assert!(!line.contains('\n'));
    let keys = [
        "\"kind\"",
        "\"reason\"",
        "\"detail\"",
        "\"status_code\"",
        "\"reply_code\"",
        "\"recipient\"",
        "\"rule\"",
    ];
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            line.find(k)
                .unwrap_or_else(|| panic!("{k} missing in {line}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
    assert!(
        line.starts_with("{\"kind\":\"bounce\",\"reason\":\"address_not_found\""),
        "{line}"
    );
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["reply_code"], 550);
    assert!(Classification::new(Kind::AutoReply, "x")
        .to_json_line()
        .contains("\"kind\":\"auto_reply\""));
}

#[test]
fn operator_rules_take_precedence() {
    let classifier =
        Classifier::with_extra_rules("# ours\nspam\t-\t!acme filter said no\n").unwrap();
    let c = classifier.classify_reply("550 5.1.1 user unknown, acme filter said no");
    assert_eq!(c.reason, Some("spam"));
    assert!(c.rule.contains("extra rules:2"), "{}", c.rule);
    // Without the operator rule the built-in rules decide.
    assert_eq!(
        Classifier::new()
            .classify_reply("550 5.1.1 user unknown, acme filter said no")
            .reason,
        Some("address_not_found")
    );
    let err = Classifier::with_extra_rules("spam\tno pattern\n").unwrap_err();
    assert!(err.contains("extra rules:1"), "{err}");
}

#[test]
fn builtin_rules_parse_and_use_known_reasons() {
    let rules = rules::parse_rules(BUILTIN_RULES, "rules.tsv").unwrap();
    assert!(rules.len() > 100);
    assert!(rules.iter().all(|r| REASONS.contains(&r.reason)));
}

/// A rule's own words must be decided by that rule's reason and detail: a shorter pattern of a more
/// specific tier hidden inside a longer one ("timeout" in "retry timeout exceeded") would
/// silently take over.
#[test]
fn no_builtin_rule_is_shadowed_by_another() {
    let rules = rules::parse_rules(BUILTIN_RULES, "rules.tsv").unwrap();
    let mut shadowed = Vec::new();
    for rule in &rules {
        let words = rules::normalize_text(&rule.pattern.replace('*', " "));
        let winner = rules::best_match(&rules, &words).expect("a rule matches its own words");
        if (winner.reason, winner.detail) != (rule.reason, rule.detail) {
            shadowed.push(format!("{} -> {}", rule.label(), winner.label()));
        }
    }
    assert!(shadowed.is_empty(), "{}", shadowed.join("\n"));
}

#[test]
fn broken_boundary_is_read_as_text() {
    let raw = "From: MAILER-DAEMON@example.org\nSubject: Undelivered Mail Returned to Sender\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"declared\"\n\n\
--actual\nContent-Type: text/plain\n\n<ivy@example.net>: host mx said: 550 5.1.1 no such user\n\n\
--actual\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; ivy@example.net\nAction: failed\nStatus: 5.1.1\n\n--actual--\n";
    let c = classify(raw);
    assert_eq!(c.reason, Some("address_not_found"));
    assert_eq!(c.recipient.as_deref(), Some("ivy@example.net"));
}

#[test]
fn ses_json_notifications() {
    let bounce = "From: no-reply@sns.example.com\nSubject: AWS Notification Message\n\n\
{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\",\"bounceSubType\":\"General\",\
\"bouncedRecipients\":[{\"emailAddress\":\"jo@example.net\",\"status\":\"5.1.1\",\"diagnosticCode\":\"smtp; 550 5.1.1 unknown\"}]}}\n";
    let c = classify(bounce);
    assert_eq!(
        (c.kind, c.reason),
        (Kind::Bounce, Some("address_not_found"))
    );
    assert_eq!(c.recipient.as_deref(), Some("jo@example.net"));
    let complaint = "From: no-reply@sns.example.com\nSubject: AWS Notification Message\n\n{\"notificationType\":\"Complaint\",\"complaint\":{}}\n";
    assert_eq!(classify(complaint).kind, Kind::Complaint);
}

#[test]
fn a_message_with_no_evidence_is_other() {
    let c = classify("From: someone@example.com\nSubject: hello\n\nJust a note.\n");
    assert_eq!(
        (c.kind, c.reason, c.rule.as_str()),
        (Kind::Bounce, Some("other"), "no evidence")
    );
}

// ---------------------------------------------------------------------------------------
// Documented reply texts, one per reason. Each line paraphrases the reply an MTA or a
// mail provider documents for the case (Postfix, Exim, Sendmail and qmail manuals, the
// Gmail, Yahoo, Outlook.com and Microsoft 365 error references, RFC 3463 / 7372 / 7505).

/// (reply, reason, detail) for single SMTP replies.
const DOCUMENTED_REPLIES: &[(&str, &str, Option<&str>)] = &[
    // address_not_found
    (
        "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos",
        "address_not_found",
        Some("user_unknown"),
    ),
    (
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        "address_not_found",
        Some("not_in_directory"),
    ),
    (
        "550 5.2.1 The email account that you tried to reach is disabled.",
        "address_not_found",
        Some("mailbox_disabled"),
    ),
    (
        "551 5.1.6 User has moved; please try <new@example.net>",
        "address_not_found",
        Some("mailbox_moved"),
    ),
    // bad_address
    ("553 5.1.3 Bad recipient address syntax", "bad_address", Some("address_syntax")),
    // server_unreachable
    (
        "553 5.1.2 We weren't able to find the recipient domain. Please check for any spelling errors",
        "server_unreachable",
        Some("host_unknown"),
    ),
    (
        "556 5.1.10 Recipient address has null MX",
        "server_unreachable",
        Some("not_accepting_mail"),
    ),
    (
        "421 4.4.7 Message expired: unable to deliver in 840 minutes",
        "server_unreachable",
        Some("expired"),
    ),
    (
        "530 5.7.0 Must issue a STARTTLS command first",
        "server_unreachable",
        Some("tls_failed"),
    ),
    // service_unavailable
    (
        "452 4.3.1 Insufficient system storage",
        "service_unavailable",
        Some("system_full"),
    ),
    (
        "451 4.3.0 Error: queue file write error, local error in processing",
        "service_unavailable",
        Some("system_error"),
    ),
    // ip_domain_rejected
    (
        "554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org",
        "ip_domain_rejected",
        Some("blocklisted"),
    ),
    (
        "550-5.7.26 Unauthenticated email from example.org is not accepted due to domain's DMARC policy",
        "ip_domain_rejected",
        Some("authentication_failed"),
    ),
    (
        "550-5.7.25 The IP address sending this message does not have a PTR record setup",
        "ip_domain_rejected",
        Some("reverse_dns"),
    ),
    (
        "421 4.7.0 [TSS04] Messages from 192.0.2.7 temporarily deferred due to unexpected volume or user complaints",
        "ip_domain_rejected",
        Some("bad_reputation"),
    ),
    (
        "421 4.7.0 Too many concurrent SMTP connections from this IP address; please try again later",
        "ip_domain_rejected",
        Some("too_many_connections"),
    ),
    (
        "550 5.7.606 Access denied, banned sending IP [192.0.2.7]",
        "ip_domain_rejected",
        Some("blocklisted"),
    ),
    // spam
    (
        "550-5.7.1 Our system has detected that this message is likely unsolicited mail",
        "spam",
        Some("spam"),
    ),
    (
        "554 5.7.1 The message was rejected because it contains a virus",
        "spam",
        Some("virus"),
    ),
    // sender_recipient_rejected
    (
        "554 5.7.1 <bob@example.net>: Relay access denied",
        "sender_recipient_rejected",
        Some("relay_denied"),
    ),
    (
        "553 5.7.1 <me@example.org>: Sender address rejected: not owned by user",
        "sender_recipient_rejected",
        Some("sender_rejected"),
    ),
    (
        "550 5.7.1 Delivery not authorized, message refused",
        "sender_recipient_rejected",
        Some("policy"),
    ),
    // other
    (
        "552-5.2.2 The email account that you tried to reach is over quota",
        "other",
        Some("mailbox_full"),
    ),
    (
        "552 5.3.4 Message size exceeds fixed limit",
        "other",
        Some("message_too_big"),
    ),
    (
        "554 5.6.0 Mail message is malformed. Not accepted",
        "other",
        Some("content_error"),
    ),
];

#[test]
fn documented_replies_get_their_reason_and_detail() {
    let mut wrong = Vec::new();
    for (line, reason, detail) in DOCUMENTED_REPLIES {
        let c = reply(line);
        if c.reason != Some(*reason) || c.detail != *detail {
            wrong.push(format!(
                "{line}\n  want {reason} {detail:?}, got {:?} {:?} ({})",
                c.reason, c.detail, c.rule
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every reason a bounce can be given is covered, except `unsubscribed` (an event, never
    // a bounce) and `blacklisted` (our own suppression, see the SES test).
    for reason in REASONS {
        if !matches!(*reason, "unsubscribed" | "blacklisted") {
            assert!(
                DOCUMENTED_REPLIES.iter().any(|(_, r, _)| r == reason),
                "no documented reply for {reason}"
            );
        }
    }
}

#[test]
fn specific_words_beat_generic_ones_whatever_comes_first() {
    // A generic "rejected" before a user-unknown phrase (Postfix's wording at RCPT TO).
    let c = reply(
        "550 5.7.1 <ann@example.net>: Recipient address rejected: User unknown (in reply to RCPT TO command)",
    );
    assert_eq!(c.reason, Some("address_not_found"), "{}", c.rule);
    // "Access denied" said before the block list that explains it.
    let c = reply("550 5.7.1 Access denied: 192.0.2.7 is listed in bl.spamcop.net");
    assert_eq!(c.reason, Some("ip_domain_rejected"), "{}", c.rule);
    // A mechanism overrides even a precise code that says otherwise.
    let c = reply("550 5.1.1 <ann@example.net>: mailbox is full");
    assert_outcome(&c, (Some("other"), Some("mailbox_full")));
    // A suspended mailbox is not "refused".
    let c = reply("554 delivery error: This account has been suspended and refused");
    assert_eq!(c.reason, Some("address_not_found"), "{}", c.rule);
}

#[test]
fn the_smtp_stage_decides_what_user_unknown_means() {
    let words = "550 5.7.1 <ann@example.net>: Recipient address rejected: User unknown";
    let at_rcpt = reply(&format!("{words} (in reply to RCPT TO command)"));
    assert_reason(&at_rcpt, Some("address_not_found"));
    let after_data = reply(&format!("{words} (in reply to end of DATA command)"));
    assert_eq!(
        (after_data.reason, after_data.detail),
        (
            Some("sender_recipient_rejected"),
            Some("recipient_filtered")
        ),
        "{}",
        after_data.rule
    );
    assert!(
        after_data.rule.contains("after DATA"),
        "{}",
        after_data.rule
    );
    // The server's own X.1.1 code says the mailbox is missing, whatever the stage.
    let coded =
        reply("550 5.1.1 <ann@example.net>: User unknown (in reply to end of DATA command)");
    assert_eq!(coded.reason, Some("address_not_found"), "{}", coded.rule);
    // At MAIL FROM only the sender is known; before it only the sending host.
    let sender = reply("550 5.1.0 <me@example.org>: User unknown (in reply to MAIL FROM command)");
    assert_eq!(sender.reason, Some("sender_recipient_rejected"));
    let greeting = reply("554 5.7.1 Rejected (in reply to initial greeting)");
    assert_eq!(greeting.reason, Some("ip_domain_rejected"));
}
