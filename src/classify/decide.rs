//! The decision for one failed recipient, in the precedence written at the top of the
//! module, and the two corrections after it: the SMTP stage and a give-up.

use super::codes::{self, CodeMeaning, Confidence};
use super::rules::{self, Rule, Tier};
use super::signs::without_quoted_headers;
use super::text::Stage;
use super::{Classification, Classifier, Kind};

/// Everything the decision looks at for one failed recipient.
#[derive(Debug, Default)]
pub(super) struct Evidence {
    pub(super) status: Option<String>,
    pub(super) reply: Option<u16>,
    /// The receiving server's own words.
    pub(super) diagnostic: String,
    /// The surrounding notification text, consulted when the diagnostic says nothing known.
    pub(super) context: String,
    pub(super) recipient: Option<String>,
    pub(super) stage: Option<Stage>,
    /// The DSN says delivery is still being retried or was given up after retries.
    pub(super) delayed: bool,
    /// The evidence comes from a bounce message (the sender's server has given up), not
    /// from a live SMTP reply.
    pub(super) in_message: bool,
}

/// One decided reason before it becomes a [`Classification`].
pub(super) struct Verdict {
    pub(super) reason: &'static str,
    pub(super) detail: Option<&'static str>,
    pub(super) rule: String,
    /// Decided by a text rule or a precise code, not by a vague code or a fallback.
    pub(super) settled: bool,
    /// Decided from the notification's own summary rather than the server's reply: the
    /// reporting system's verdict (Gmail's "Address not found"), not an SMTP answer.
    pub(super) from_notification: bool,
}

impl Classifier {
    pub(super) fn bounce(&self, evidence: Evidence) -> Classification {
        let verdict = self.decide(&evidence);
        let mut c = Classification::new(Kind::Bounce, verdict.rule);
        c.reason = Some(verdict.reason);
        c.detail = verdict.detail;
        c.status_code = evidence.status;
        c.reply_code = evidence.reply;
        c.recipient = evidence.recipient;
        c
    }

    /// The decision, in the precedence documented at the top of this module.
    fn decide(&self, ev: &Evidence) -> Verdict {
        let diagnostic = rules::normalize_text(&ev.diagnostic);
        let code = ev
            .status
            .as_deref()
            .and_then(|s| codes::status_meaning(s).map(|m| (s, m)));
        let verdict = match rules::first_match(&self.operator_rules, &diagnostic) {
            Some(rule) => weigh(rule, code),
            None => self.decide_builtin(ev, &diagnostic, code),
        };
        let verdict = adjust_for_stage(verdict, ev);
        adjust_for_give_up(verdict, ev)
    }

    fn decide_builtin(
        &self,
        ev: &Evidence,
        diagnostic: &str,
        code: Option<(&str, CodeMeaning)>,
    ) -> Verdict {
        if let Some(rule) = rules::best_match(&self.rules, diagnostic) {
            return weigh(rule, code);
        }
        match code {
            Some((status, meaning)) if meaning.confidence == Confidence::Strong => {
                return from_code(status, meaning, "status")
            }
            // A vague code still says more than the boilerplate around the diagnostic.
            Some((status, meaning)) => return from_code(status, meaning, "status"),
            None => {}
        }
        // The server's words say nothing we know and there is no code: look at the rest of
        // the notification.
        let context = rules::normalize_text(&without_quoted_headers(&ev.context));
        if let Some(rule) = rules::best_match(&self.rules, &context) {
            return Verdict {
                from_notification: true,
                ..from_rule(rule, "notification ")
            };
        }
        // A report still "delayed" means retries ran out, whatever the last reply was.
        if ev.delayed {
            return Verdict {
                reason: "server_unreachable",
                detail: Some("expired"),
                rule: "delivery delayed".into(),
                settled: false,
                from_notification: false,
            };
        }
        if let Some(reply) = ev.reply {
            if let Some(meaning) = codes::reply_meaning(reply) {
                // In a bounce message a bare permanent reply whose words we do not know says
                // only that delivery failed: RFC 5321's generic "mailbox unavailable" for any
                // 550 is too weak to put an address on the bounce list.
                if ev.in_message && reply >= 500 && meaning.reason != "other" {
                    return Verdict {
                        reason: "other",
                        detail: None,
                        rule: format!("reply {reply}, words not recognised"),
                        settled: false,
                        from_notification: false,
                    };
                }
                return from_code(&reply.to_string(), meaning, "reply");
            }
        }
        Verdict {
            reason: "other",
            detail: None,
            rule: "no evidence".into(),
            settled: false,
            from_notification: false,
        }
    }
}

/// A matching rule against the status code: a precise code stands against a rule of the
/// subject or generic tier that names another reason; a mechanism (or an operator rule
/// written with `!`) overrides it; a vague code is refined by any rule.
fn weigh(rule: &Rule, code: Option<(&str, CodeMeaning)>) -> Verdict {
    let overrides = rule.overrides_codes || rule.tier == Tier::Mechanism;
    match code {
        Some((status, meaning)) if meaning.reason == rule.reason => Verdict {
            reason: rule.reason,
            detail: rule.detail.or(meaning.detail),
            rule: format!("status {status}, {}", rule.label()),
            settled: true,
            from_notification: false,
        },
        Some((status, meaning)) if meaning.confidence == Confidence::Strong && !overrides => {
            from_code(status, meaning, "status")
        }
        _ => from_rule(rule, ""),
    }
}

fn from_code(code: &str, meaning: CodeMeaning, what: &str) -> Verdict {
    Verdict {
        reason: meaning.reason,
        detail: meaning.detail,
        rule: format!("{what} {code}"),
        settled: meaning.confidence == Confidence::Strong,
        from_notification: false,
    }
}

fn from_rule(rule: &Rule, where_: &str) -> Verdict {
    Verdict {
        reason: rule.reason,
        detail: rule.detail,
        rule: format!("{where_}{}", rule.label()),
        // "Service unavailable, try again later" explains nothing a give-up would not.
        settled: rule.tier < Tier::Generic,
        from_notification: false,
    }
}

/// The stage of the SMTP dialogue says whose problem a refusal is: before MAIL FROM only
/// the sending host is known, at MAIL FROM only the sender; an "unknown user" answered to
/// RCPT TO is a missing mailbox, but the same words after the content was sent (DATA) are
/// a content filter speaking: the mailbox was accepted a moment before. A bounce message
/// that relays such words without saying they answered RCPT TO (and without an X.1.1 code)
/// is read as a filter too; a live reply of unknown stage keeps its plain meaning.
fn adjust_for_stage(verdict: Verdict, ev: &Evidence) -> Verdict {
    let stage = ev.stage.unwrap_or(Stage::Unknown);
    let settled = verdict.settled;
    let with = |reason, detail, why: &str| Verdict {
        reason,
        detail: Some(detail),
        rule: format!("{}, {why}", verdict.rule),
        settled,
        from_notification: verdict.from_notification,
    };
    match stage {
        Stage::Connect
            if matches!(
                verdict.reason,
                "sender_recipient_rejected" | "address_not_found" | "other"
            ) && !matches!(verdict.detail, Some("mailbox_full" | "message_too_big")) =>
        {
            with("ip_domain_rejected", "blocklisted", "refused at connection")
        }
        Stage::MailFrom
            if matches!(
                verdict.reason,
                "address_not_found" | "server_unreachable" | "bad_address"
            ) || (verdict.reason == "other" && !settled) =>
        {
            with(
                "sender_recipient_rejected",
                "sender_rejected",
                "refused at MAIL FROM",
            )
        }
        Stage::Data | Stage::Unknown
            if verdict.reason == "address_not_found"
                && is_unknown_user(verdict.detail)
                && !names_a_bad_mailbox(ev)
                && (stage == Stage::Data || (ev.in_message && !verdict.from_notification)) =>
        {
            let why = if stage == Stage::Data {
                "refused after DATA"
            } else {
                "not said in reply to RCPT TO"
            };
            with("sender_recipient_rejected", "recipient_filtered", why)
        }
        // After DATA the recipient was already accepted: a vague refusal now is a filter.
        Stage::Data if verdict.reason == "other" && !settled => with(
            "sender_recipient_rejected",
            "recipient_filtered",
            "refused after DATA",
        ),
        _ => verdict,
    }
}

/// Details of the "no such user" family, whose meaning depends on the SMTP stage.
fn is_unknown_user(detail: Option<&str>) -> bool {
    matches!(detail, Some("user_unknown" | "mailbox_unavailable") | None)
}

/// An enhanced status code that names the mailbox itself anywhere in the evidence: X.1.1
/// "bad destination mailbox address", X.1.10 (Microsoft's "recipient not found"), X.2.1
/// "mailbox disabled". The server said the mailbox is missing, whatever the stage.
fn names_a_bad_mailbox(ev: &Evidence) -> bool {
    ev.status
        .iter()
        .cloned()
        .chain(codes::find_status_codes(&ev.diagnostic))
        .any(|s| {
            matches!(
                codes::split_status(&s),
                Some((4 | 5, 1, 1 | 10) | (4 | 5, 2, 1))
            )
        })
}

/// In a bounce message a temporary failure (4xx, 4.x.x) that nothing more specific explains
/// means the sending server retried until it gave up: the delivery expired.
fn adjust_for_give_up(verdict: Verdict, ev: &Evidence) -> Verdict {
    if !ev.in_message || verdict.settled {
        return verdict;
    }
    let temporary = ev.reply.is_some_and(|r| (400..500).contains(&r))
        || ev.status.as_deref().is_some_and(|s| s.starts_with('4'));
    let unexplained = matches!(
        verdict.reason,
        "service_unavailable" | "other" | "server_unreachable"
    ) && !matches!(verdict.detail, Some("mailbox_full" | "message_too_big"));
    if temporary && unexplained {
        return Verdict {
            reason: "server_unreachable",
            detail: Some("expired"),
            rule: format!("{}, temporary failure retried out", verdict.rule),
            settled: false,
            from_notification: false,
        };
    }
    verdict
}
