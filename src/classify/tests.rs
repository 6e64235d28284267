//! Classifier tests on fixtures written for this project.

use super::*;

fn classify(raw: &str) -> Classification {
    Classifier::new().classify_message(raw.as_bytes())
}

fn reply(line: &str) -> Classification {
    Classifier::new().classify_reply(line)
}

const POSTFIX_DSN_USER_UNKNOWN: &str = "\
Return-Path: <>
From: MAILER-DAEMON@relay.example.org (Mail Delivery System)
To: sender@example.org
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary=\"B0UND.1/relay.example.org\"

This is a MIME-encapsulated message.

--B0UND.1/relay.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host relay.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@example.net>: host mx.example.net[198.51.100.7] said: 550 5.1.1
    <nobody@example.net>: Recipient address rejected: User unknown in local
    recipient table (in reply to RCPT TO command)

--B0UND.1/relay.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.org
Arrival-Date: Mon,  2 Mar 2026 10:00:00 +0000 (UTC)

Final-Recipient: rfc822; nobody@example.net
Original-Recipient: rfc822;nobody@example.net
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.net>: Recipient address
    rejected: User unknown in local recipient table

--B0UND.1/relay.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: sender@example.org
To: nobody@example.net
Subject: Spring offers
Message-ID: <offer-42@example.org>
X-Mailtrail-Email-Id: 1700000000000_42_abc

--B0UND.1/relay.example.org--
";

#[test]
fn postfix_dsn_user_unknown() {
    let c = classify(POSTFIX_DSN_USER_UNKNOWN);
    assert_eq!(c.kind, Kind::Bounce);
    assert_eq!(c.reason, Some("address_not_found"));
    assert_eq!(c.status_code.as_deref(), Some("5.1.1"));
    assert_eq!(c.reply_code, Some(550));
    assert_eq!(c.recipient.as_deref(), Some("nobody@example.net"));
    assert_eq!(
        c.original_message_id.as_deref(),
        Some("offer-42@example.org")
    );
    assert_eq!(c.email_id.as_deref(), Some("1700000000000_42_abc"));
    assert!(c.rule.contains("5.1.1"), "{}", c.rule);
}

const QMAIL_BOUNCE: &str = "\
From: MAILER-DAEMON@mail.example.org
To: sender@example.org
Subject: failure notice

Hi. This is the qmail-send program at mail.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<carol@example.com>:
198.51.100.20 does not like recipient.
Remote host said: 554 5.7.1 Service unavailable; Client host [203.0.113.9] blocked using zen.spamhaus.org
Giving up on 198.51.100.20.

--- Below this line is a copy of the message.

Return-Path: <sender@example.org>
Message-ID: <q-1@example.org>
Subject: the user unknown newsletter

Nothing to see.
";

#[test]
fn qmail_text_bounce_blocklisted() {
    let c = classify(QMAIL_BOUNCE);
    assert_eq!(c.kind, Kind::Bounce);
    assert_eq!(c.reason, Some("ip_domain_rejected"));
    assert_eq!(c.detail, Some("blocklisted"));
    assert_eq!(c.status_code.as_deref(), Some("5.7.1"));
    assert_eq!(c.reply_code, Some(554));
    assert_eq!(c.recipient.as_deref(), Some("carol@example.com"));
}

#[test]
fn qmail_status_in_parentheses() {
    let raw = "From: MAILER-DAEMON@mx.example.org\nSubject: failure notice\n\n\
Hi. This is the qmail-send program at mx.example.org.\n\n<dan@example.com>:\n\
Sorry, no mailbox here by that name. (#5.1.1)\n\n--- Below this line is a copy of the message.\n\nSubject: x\n";
    let c = classify(raw);
    assert_eq!(c.reason, Some("address_not_found"));
    assert_eq!(c.status_code.as_deref(), Some("5.1.1"));
}

const EXCHANGE_BOUNCE: &str = "\
From: Microsoft Outlook <postmaster@corp.example.com>
To: sender@example.org
Subject: Undeliverable: Quarterly report
Content-Type: multipart/alternative; boundary=\"xyz\"
MIME-Version: 1.0

--xyz
Content-Type: text/plain; charset=\"us-ascii\"
Content-Transfer-Encoding: quoted-printable

Delivery has failed to these recipients or groups:

erin@corp.example.com
The recipient's mailbox is full and can't accept messages now.

Diagnostic information for administrators:

Generating server: EX01.corp.example.com

erin@corp.example.com
Remote Server returned '554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:=
QuotaExceededException'

--xyz
Content-Type: text/html; charset=\"us-ascii\"

<html><body><p>Delivery has failed</p></body></html>
--xyz--
";

#[test]
fn exchange_bounce_mailbox_full() {
    let c = classify(EXCHANGE_BOUNCE);
    assert_eq!(c.kind, Kind::Bounce);
    assert_eq!(c.reason, Some("other"));
    assert_eq!(c.detail, Some("mailbox_full"));
    assert_eq!(c.status_code.as_deref(), Some("5.2.2"));
}

const ARF_REPORT: &str = "\
From: Feedback Loop <fbl@isp.example.net>
To: abuse@example.org
Subject: FW: offers
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"

--arf
Content-Type: text/plain

This is an email abuse report for a message received from IP 192.0.2.1.

--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1

--arf
Content-Type: message/rfc822

From: sender@example.org
Message-ID: <complained-1@example.org>
Subject: offers

Buy now
--arf--
";

#[test]
fn arf_report_is_a_complaint() {
    let c = classify(ARF_REPORT);
    assert_eq!(c.kind, Kind::Complaint);
    assert_eq!(c.reason, None);
    assert_eq!(
        c.original_message_id.as_deref(),
        Some("complained-1@example.org")
    );
}

const AUTO_REPLY: &str = "\
From: Frank <frank@example.com>
To: sender@example.org
Subject: Out of Office: Spring offers
Auto-Submitted: auto-replied
Content-Type: text/plain

I am out of the office until Monday and will reply when I am back.
";

#[test]
fn auto_reply_is_recognised() {
    let c = classify(AUTO_REPLY);
    assert_eq!(c.kind, Kind::AutoReply);
    assert_eq!(c.reason, None);
}

#[test]
fn exim_bounce_marked_auto_replied_is_still_a_bounce() {
    let raw = "From: Mail Delivery System <Mailer-Daemon@mx.example.org>\n\
Subject: Mail delivery failed: returning message to sender\nAuto-Submitted: auto-replied\n\n\
This message was created automatically by mail delivery software.\n\n\
A message that you sent could not be delivered to one or more of its\n\
recipients. This is a permanent error. The following address(es) failed:\n\n  gina@example.com\n\
    host mx.example.com [192.0.2.3]\n    SMTP error from remote mail server after RCPT TO:<gina@example.com>:\n\
    550 5.2.2 <gina@example.com>: mailbox is full\n\n------ This is a copy of the message, including all the headers. ------\n\nSubject: hi\n";
    let c = classify(raw);
    assert_eq!(c.kind, Kind::Bounce);
    assert_eq!(c.reason, Some("other"));
    assert_eq!(c.detail, Some("mailbox_full"));
    assert_eq!(c.recipient.as_deref(), Some("gina@example.com"));
}

const DELIVERED_DSN: &str = "\
From: MAILER-DAEMON@relay.example.org
Subject: Successful Mail Delivery Report
Content-Type: multipart/report; report-type=delivery-status; boundary=\"ok\"

--ok
Content-Type: text/plain

Your message was successfully delivered to the destination(s) listed below.

--ok
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.org

Final-Recipient: rfc822; hank@example.net
Action: delivered
Status: 2.0.0
Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 1234

--ok--
";

#[test]
fn delivered_dsn() {
    let c = classify(DELIVERED_DSN);
    assert_eq!(c.kind, Kind::Delivered);
    assert_eq!(c.reason, None);
    assert_eq!(c.status_code.as_deref(), Some("2.0.0"));
    assert_eq!(c.reply_code, Some(250));
    assert_eq!(c.recipient.as_deref(), Some("hank@example.net"));
}

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
    assert_eq!(c.reason, Some("other"));
    assert_eq!(c.detail, Some("mailbox_full"));
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

/// xorshift64: deterministic pseudo-random bytes without a dependency.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn never_panics_on_garbage() {
    let classifier = Classifier::new();
    let mut rng = Prng(0x9e37_79b9_7f4a_7c15);
    // Mostly-random bytes, with mail-ish fragments mixed in so the parsers get past their first checks.
    let fragments: [&[u8]; 14] = [
        "Éé® 日本語 ".as_bytes(),
        b"Subject: Out of office\r\n",
        b"Content-Type: multipart/report; boundary=\"b\"\r\n",
        b"--b\r\n",
        b"Content-Type: message/delivery-status\r\n\r\n",
        b"Status: 5.1.1\r\nAction: failed\r\n",
        b"Diagnostic-Code: smtp; 550 ",
        b"\r\n\r\n",
        b"<a@b>",
        b"{\"notificationType\":\"Bounce\",\"bounce\":{",
        b"=?utf-8?B?AAAA?=",
        b"\xff\xfe\xc3",
        b"said: 5",
        b"<html><style",
    ];
    for _ in 0..5000 {
        let len = (rng.next() % 600) as usize;
        let mut input = Vec::with_capacity(len);
        while input.len() < len {
            let r = rng.next();
            if r.is_multiple_of(4) {
                input.extend_from_slice(fragments[(r >> 8) as usize % fragments.len()]);
            } else {
                input.push((r >> 16) as u8);
            }
        }
        let c = classifier.classify_input(&input);
        assert!(c.kind != Kind::Bounce || c.reason.is_some());
        let _ = c.to_json_line();
    }
}

#[test]
fn never_panics_on_truncated_messages() {
    let classifier = Classifier::new();
    for fixture in [
        POSTFIX_DSN_USER_UNKNOWN,
        QMAIL_BOUNCE,
        EXCHANGE_BOUNCE,
        ARF_REPORT,
        AUTO_REPLY,
        DELIVERED_DSN,
    ] {
        let bytes = fixture.as_bytes();
        for end in 0..=bytes.len() {
            let _ = classifier.classify_message(&bytes[..end]);
            let _ = classifier.classify_input(&bytes[..end]);
        }
    }
}

#[test]
fn never_panics_on_deep_nesting() {
    let mut raw = String::new();
    for depth in 0..300 {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{depth}\"\n\n--b{depth}\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\n\n550 5.1.1 user unknown\n");
    let _ = classify(&raw);
    let _ = classify(&"a".repeat(200_000));
    let _ = classify(&"550 ".repeat(50_000));
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
    assert_eq!(
        (c.reason, c.detail),
        (Some("other"), Some("mailbox_full")),
        "{}",
        c.rule
    );
    // A suspended mailbox is not "refused".
    let c = reply("554 delivery error: This account has been suspended and refused");
    assert_eq!(c.reason, Some("address_not_found"), "{}", c.rule);
}

#[test]
fn the_smtp_stage_decides_what_user_unknown_means() {
    let words = "550 5.7.1 <ann@example.net>: Recipient address rejected: User unknown";
    let at_rcpt = reply(&format!("{words} (in reply to RCPT TO command)"));
    assert_eq!(
        at_rcpt.reason,
        Some("address_not_found"),
        "{}",
        at_rcpt.rule
    );
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

const SENDMAIL_DATA_TRANSCRIPT: &str = "\
From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.org>
To: sender@example.org
Subject: Returned mail: see transcript for details
Auto-Submitted: auto-generated (failure)
Content-Type: text/plain

The original message was received at Mon, 2 Mar 2026 10:00:00 +0000
from client.example.org [192.0.2.50]

   ----- The following addresses had permanent fatal errors -----
<kim@example.net>
    (reason: 550 User unknown)

   ----- Transcript of session follows -----
... while talking to mx.example.net.:
>>> DATA
<<< 550 User unknown
554 5.0.0 Service unavailable
";

const QMAIL_AFTER_MESSAGE: &str = "\
From: MAILER-DAEMON@mail.example.org
Subject: failure notice

Hi. This is the qmail-send program at mail.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<lee@example.net>:
198.51.100.20 failed after I sent the message.
Remote host said: 550 No such user

--- Below this line is a copy of the message.

Subject: hello
";

const EXIM_AFTER_RCPT: &str = "\
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
Subject: Mail delivery failed: returning message to sender
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  max@example.net
    host mx.example.net [192.0.2.3]
    SMTP error from remote mail server after RCPT TO:<max@example.net>:
    550 No such user here

------ This is a copy of the message, including all the headers. ------

Subject: hi
";

#[test]
fn the_stage_is_read_from_mta_transcripts() {
    let c = classify(SENDMAIL_DATA_TRANSCRIPT);
    assert_eq!(
        (c.reason, c.detail),
        (
            Some("sender_recipient_rejected"),
            Some("recipient_filtered")
        ),
        "{}",
        c.rule
    );
    let c = classify(QMAIL_AFTER_MESSAGE);
    assert_eq!(c.reason, Some("sender_recipient_rejected"), "{}", c.rule);
    let c = classify(EXIM_AFTER_RCPT);
    assert_eq!(c.reason, Some("address_not_found"), "{}", c.rule);
    assert_eq!(c.recipient.as_deref(), Some("max@example.net"));
}

const EXIM_RETRY_TIMEOUT: &str = "\
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  pat@example.net
    retry timeout exceeded

------ This is a copy of the message, including all the headers. ------

Subject: hi
";

const DSN_GAVE_UP_ON_TEMPORARY: &str = "\
From: MAILER-DAEMON@relay.example.org
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary=\"gu\"

--gu
Content-Type: text/plain

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--gu
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.org

Final-Recipient: rfc822; quinn@example.net
Action: failed
Status: 4.0.0
Diagnostic-Code: smtp; 421 Please come back later

--gu--
";

#[test]
fn give_up_notices_are_unreachable_servers() {
    let c = classify(EXIM_RETRY_TIMEOUT);
    assert_eq!(
        (c.reason, c.detail),
        (Some("server_unreachable"), Some("expired")),
        "{}",
        c.rule
    );
    let c = classify(DSN_GAVE_UP_ON_TEMPORARY);
    assert_eq!(
        (c.reason, c.detail),
        (Some("server_unreachable"), Some("expired")),
        "{}",
        c.rule
    );
    // The same temporary reply on its own is a live answer, not a give-up.
    let live = reply("421 4.3.2 Service not available, closing transmission channel");
    assert_eq!(live.reason, Some("service_unavailable"), "{}", live.rule);
}

#[test]
fn an_arf_report_without_its_mime_part_is_still_a_complaint() {
    let raw = "From: Feedback Loop <fbl@isp.example.net>\nSubject: Re: offers\n\
Auto-Submitted: auto-replied\nContent-Type: text/plain\n\n\
This is an email abuse report.\n\nFeedback-Type: abuse\nUser-Agent: Generator/2.0\nVersion: 1\n\
Original-Mail-From: <sender@example.org>\n";
    assert_eq!(classify(raw).kind, Kind::Complaint);
}

#[test]
fn operator_rules_keep_their_file_order() {
    let classifier =
        Classifier::with_extra_rules("other\t-\tacme\nspam\t-\tacme says spam\n").unwrap();
    let c = classifier.classify_reply("550 acme says spam");
    assert_eq!(c.reason, Some("other"), "{}", c.rule);
}

#[test]
fn sending_systems_categories_decide_when_the_reply_says_nothing_known() {
    let pmta = "From: MAILER-DAEMON@pmta.example.org\nSubject: Delivery report\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"pm\"\n\n--pm\n\
Content-Type: text/plain\n\nThe message could not be delivered.\n\n--pm\n\
Content-Type: message/delivery-status\n\nReporting-MTA: dns; pmta.example.org\n\n\
Final-Recipient: rfc822; rae@example.net\nAction: failed\nStatus: 5.0.0\n\
Diagnostic-Code: smtp; 552 sorry, try another day\nX-PowerMTA-BounceCategory: quota-issues\n\n--pm--\n";
    let c = classify(pmta);
    assert_eq!(
        (c.reason, c.detail),
        (Some("other"), Some("mailbox_full")),
        "{}",
        c.rule
    );
    let ses = "From: no-reply@sns.example.com\nSubject: AWS Notification Message\n\n\
{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\",\"bounceSubType\":\"NoEmail\",\
\"bouncedRecipients\":[{\"emailAddress\":\"sam@example.net\",\"diagnosticCode\":\"smtp; 550 sorry\"}]}}\n";
    assert_eq!(classify(ses).reason, Some("address_not_found"));
}

#[test]
fn provider_response_codes_name_the_case() {
    // Facebook's postmaster codes: RCP-P2 is the recipient's preferences, not a missing user.
    let c = reply(
        "550 5.1.1 RCP-P2 http://postmaster.facebook.com/response_codes?ip=192.0.2.9#rcp Refused due to recipient preferences",
    );
    assert_eq!(
        (c.reason, c.detail),
        (
            Some("sender_recipient_rejected"),
            Some("recipient_filtered")
        ),
        "{}",
        c.rule
    );
    let c = reply("550 5.1.1 RCP-P1 The attempted recipient address does not exist");
    assert_eq!(c.reason, Some("address_not_found"), "{}", c.rule);
}

#[test]
fn a_bare_permanent_reply_in_a_bounce_is_not_a_missing_mailbox() {
    let raw = "From: MAILER-DAEMON@mail.example.org\nSubject: failure notice\n\n\
Hi. This is the qmail-send program at mail.example.org.\n\n<uma@example.net>:\n\
Remote host said: 550 computer says no\n\n--- Below this line is a copy of the message.\n\nSubject: x\n";
    let c = classify(raw);
    assert_eq!(
        (c.reason, c.reply_code),
        (Some("other"), Some(550)),
        "{}",
        c.rule
    );
    // The same reply on its own keeps RFC 5321's generic meaning.
    assert_eq!(
        reply("550 computer says no").reason,
        Some("address_not_found")
    );
}
