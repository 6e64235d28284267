//! Whole messages: DSNs, text bounces, ARF reports, auto-replies, MTA transcripts.

use super::*;

pub(super) const POSTFIX_DSN_USER_UNKNOWN: &str = "\
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

pub(super) const QMAIL_BOUNCE: &str = "\
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
    assert_outcome(&c, (Some("ip_domain_rejected"), Some("blocklisted")));
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

pub(super) const EXCHANGE_BOUNCE: &str = "\
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
    assert_outcome(&c, (Some("other"), Some("mailbox_full")));
    assert_eq!(c.status_code.as_deref(), Some("5.2.2"));
}

pub(super) const ARF_REPORT: &str = "\
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

pub(super) const AUTO_REPLY: &str = "\
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
    assert_outcome(&c, (Some("other"), Some("mailbox_full")));
    assert_eq!(c.recipient.as_deref(), Some("gina@example.com"));
}

pub(super) const DELIVERED_DSN: &str = "\
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

pub(super) const SENDMAIL_DATA_TRANSCRIPT: &str = "\
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

pub(super) const QMAIL_AFTER_MESSAGE: &str = "\
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

pub(super) const EXIM_AFTER_RCPT: &str = "\
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

pub(super) const EXIM_RETRY_TIMEOUT: &str = "\
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

pub(super) const DSN_GAVE_UP_ON_TEMPORARY: &str = "\
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
    assert_outcome(&c, (Some("server_unreachable"), Some("expired")));
    let c = classify(DSN_GAVE_UP_ON_TEMPORARY);
    assert_outcome(&c, (Some("server_unreachable"), Some("expired")));
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
    assert_outcome(&c, (Some("other"), Some("mailbox_full")));
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
