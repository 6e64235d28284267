//! Bounce and SMTP-reply classification (DESIGN §2, "Classifying an SMTP reply or a DSN").
//!
//! Evidence is gathered first (delivery-status fields, the server's reply in the human
//! text, ARF and auto-reply markers), then decided: a precise enhanced status code decides,
//! text rules (`rules.tsv`) refine vague codes, then the bare reply code, then nothing.
//! Self-contained: std, mailparse, serde and serde_json only.

mod codes;
mod dsn;
mod message;
mod rules;
#[cfg(test)]
mod tests;
mod text;

use serde::Serialize;

use codes::{CodeMeaning, Confidence};
use dsn::RecipientReport;
use rules::Rule;
use text::Stage;

/// The reason vocabulary of DESIGN §2.
pub const REASONS: &[&str] = &[
    "blacklisted",
    "unsubscribed",
    "server_unreachable",
    "bad_address",
    "ip_domain_rejected",
    "address_not_found",
    "spam",
    "sender_recipient_rejected",
    "other",
    "service_unavailable",
];

/// What kind of message or reply was classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Bounce,
    Complaint,
    AutoReply,
    Delivered,
}

/// The classifier's verdict and the evidence behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub kind: Kind,
    /// One of [`REASONS`] for bounces, None otherwise.
    pub reason: Option<&'static str>,
    /// A finer label for people: mailbox_full, message_too_big, rate_limited, ...
    pub detail: Option<&'static str>,
    pub status_code: Option<String>,
    pub reply_code: Option<u16>,
    pub recipient: Option<String>,
    /// The evidence that decided, e.g. "status 5.1.1" or "text: mailbox full (rules.tsv:42)".
    pub rule: String,
    /// Message-ID of the bounced original, when the bounce returned its headers.
    pub original_message_id: Option<String>,
    /// The sender's per-message id header (X-Mailtrail-Email-Id, SC-Email-Id) of the original.
    pub email_id: Option<String>,
}

impl Classification {
    fn new(kind: Kind, rule: impl Into<String>) -> Classification {
        Classification {
            kind,
            reason: None,
            detail: None,
            status_code: None,
            reply_code: None,
            recipient: None,
            rule: rule.into(),
            original_message_id: None,
            email_id: None,
        }
    }

    /// One line of JSON with the DESIGN keys first (kind, reason, detail, status_code,
    /// reply_code, recipient, rule), then original_message_id and email_id.
    pub fn to_json_line(&self) -> String {
        // Serializing plain strings and numbers cannot fail; the fallback keeps the contract anyway.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"kind":"bounce","reason":"other","detail":null,"status_code":null,"reply_code":null,"recipient":null,"rule":"serialization failed"}"#.to_string())
    }
}

/// The built-in text rules, as data.
const BUILTIN_RULES: &str = include_str!("rules.tsv");

/// Classifies bounces, complaints, auto-replies and SMTP replies.
#[derive(Clone, Debug)]
pub struct Classifier {
    /// Operator rules first, then the built-in ones: the first match wins.
    rules: Vec<Rule>,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new()
    }
}

/// Everything the decision looks at for one failed recipient.
#[derive(Debug, Default)]
struct Evidence {
    status: Option<String>,
    reply: Option<u16>,
    /// The receiving server's own words.
    diagnostic: String,
    /// The surrounding notification text, consulted when the diagnostic says nothing known.
    context: String,
    recipient: Option<String>,
    stage: Option<Stage>,
    /// The DSN says delivery is still being retried or was given up after retries.
    delayed: bool,
}

/// One decided reason before it becomes a [`Classification`].
struct Verdict {
    reason: &'static str,
    detail: Option<&'static str>,
    rule: String,
    /// Decided by a text rule or a precise code, not by a vague code or a fallback.
    settled: bool,
}

impl Classifier {
    /// A classifier with the built-in rules only.
    pub fn new() -> Classifier {
        // The built-in file is part of the source and checked by the tests.
        let rules =
            rules::parse_rules(BUILTIN_RULES, "rules.tsv").expect("built-in rules.tsv must parse");
        Classifier { rules }
    }

    /// A classifier whose operator rules (same format as `rules.tsv`) take precedence
    /// over the built-in ones. Errors name the offending line.
    pub fn with_extra_rules(text: &str) -> Result<Classifier, String> {
        let mut rules = rules::parse_rules(text, "extra rules")?;
        rules.extend(Classifier::new().rules);
        Ok(Classifier { rules })
    }

    /// The CLI rule of DESIGN §2: a single line is an SMTP reply, anything else a message.
    pub fn classify_input(&self, input: &[u8]) -> Classification {
        let text = String::from_utf8_lossy(input);
        let trimmed = text.trim();
        if !trimmed.is_empty() && !trimmed.contains('\n') {
            self.classify_reply(trimmed)
        } else {
            self.classify_message(input)
        }
    }

    /// Classifies one SMTP reply line, e.g. "550 5.1.1 <a@b> user unknown".
    pub fn classify_reply(&self, reply: &str) -> Classification {
        let reply = reply.trim();
        let reply_code = codes::find_reply_code(reply, false);
        let status = codes::find_status_codes(reply).into_iter().next();
        let success = reply_code.is_some_and(|c| c < 400)
            || status.as_deref().is_some_and(|s| s.starts_with('2'));
        if success {
            let mut c = Classification::new(Kind::Delivered, "reply 2xx");
            c.reply_code = reply_code;
            c.status_code = status;
            return c;
        }
        let evidence = Evidence {
            status,
            reply: reply_code,
            diagnostic: reply.to_string(),
            recipient: text::first_address(reply),
            stage: Some(text::detect_stage(reply)),
            ..Evidence::default()
        };
        self.bounce(evidence)
    }

    /// Classifies a whole raw email: a DSN, any MTA's bounce, an ARF report, an auto-reply.
    pub fn classify_message(&self, raw: &[u8]) -> Classification {
        let facts = message::scan(raw);
        let mut result = self.classify_facts(&facts);
        result.original_message_id = facts.original_message_id.clone();
        result.email_id = facts.email_id.clone();
        result
    }

    fn classify_facts(&self, facts: &message::MessageFacts) -> Classification {
        if facts.feedback_report {
            return Classification::new(Kind::Complaint, "feedback report (RFC 5965)");
        }
        if let Some(json) = &facts.json {
            if let Some(c) = self.classify_json(json) {
                return c;
            }
        }
        if let Some(failed) = facts.reports.iter().find(|r| r.is_failure()) {
            return self.bounce(self.report_evidence(failed, facts));
        }
        if let Some(ok) = facts.reports.iter().find(|r| r.is_success()) {
            let mut c = Classification::new(
                Kind::Delivered,
                format!(
                    "delivery status action {}",
                    ok.action.as_deref().unwrap_or("")
                ),
            );
            c.status_code = ok.status.clone();
            c.reply_code = ok
                .diagnostic
                .as_deref()
                .and_then(|d| codes::find_reply_code(d, false));
            c.recipient = ok.recipient.clone();
            return c;
        }
        let found = text::extract(&facts.human_text);
        if !looks_like_bounce(facts, &found) {
            if is_auto_reply(facts) {
                return Classification::new(Kind::AutoReply, "auto-reply headers or subject");
            }
            if is_provider_complaint(facts) {
                return Classification::new(Kind::Complaint, "complaint notice");
            }
        }
        // A report without a failed recipient (e.g. only the per-message block) still
        // carries the human text; decide from that.
        let evidence = Evidence {
            status: codes::find_status_codes(&found.diagnostic)
                .into_iter()
                .find(|s| !s.starts_with('2')),
            reply: codes::find_reply_code(&found.diagnostic, true),
            stage: Some(text::detect_stage(&format!(
                "{} {}",
                found.diagnostic, facts.human_text
            ))),
            diagnostic: found.diagnostic,
            context: facts.human_text.clone(),
            recipient: found.recipient,
            delayed: false,
        };
        self.bounce(evidence)
    }

    /// Evidence for one failed recipient of a delivery-status report, completed from the
    /// human text where the report is thin (no Diagnostic-Code, a generic Status).
    fn report_evidence(&self, report: &RecipientReport, facts: &message::MessageFacts) -> Evidence {
        let found = text::extract(&facts.human_text);
        let diagnostic = report
            .diagnostic
            .clone()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| found.diagnostic.clone());
        let status = pick_status(report.status.as_deref(), &diagnostic, &found.diagnostic);
        let reply = codes::find_reply_code(&diagnostic, true)
            .or_else(|| codes::find_reply_code(&found.diagnostic, true));
        let stage = text::detect_stage(&format!(
            "{} {} {}",
            diagnostic, found.diagnostic, facts.human_text
        ));
        Evidence {
            status,
            reply,
            diagnostic,
            context: facts.human_text.clone(),
            recipient: report.recipient.clone().or(found.recipient),
            stage: Some(stage),
            delayed: matches!(report.action.as_deref(), Some("delayed" | "expired")),
        }
    }

    /// Amazon SES notifications: Bounce, Complaint, Delivery.
    fn classify_json(&self, json: &serde_json::Value) -> Option<Classification> {
        let kind = json
            .get("notificationType")
            .or_else(|| json.get("eventType"))?
            .as_str()?;
        match kind {
            "Complaint" => Some(Classification::new(
                Kind::Complaint,
                "SES complaint notification",
            )),
            "Delivery" => Some(Classification::new(
                Kind::Delivered,
                "SES delivery notification",
            )),
            "Bounce" => {
                let bounce = json.get("bounce")?;
                let recipient = bounce.get("bouncedRecipients").and_then(|r| r.get(0));
                let field = |name: &str| {
                    recipient
                        .and_then(|r| r.get(name))
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                };
                let diagnostic = field("diagnosticCode")
                    .map(|d| dsn::strip_type(&d).to_string())
                    .unwrap_or_default();
                let sub_type = bounce
                    .get("bounceSubType")
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                // SES suppresses addresses itself; that is our blacklist, not the recipient's answer.
                if sub_type == "Suppressed" || sub_type == "OnAccountSuppressionList" {
                    let mut c =
                        Classification::new(Kind::Bounce, format!("SES bounce subtype {sub_type}"));
                    c.reason = Some("blacklisted");
                    c.recipient = field("emailAddress");
                    return Some(c);
                }
                let evidence = Evidence {
                    status: pick_status(field("status").as_deref(), &diagnostic, ""),
                    reply: codes::find_reply_code(&diagnostic, true),
                    stage: Some(text::detect_stage(&diagnostic)),
                    diagnostic,
                    recipient: field("emailAddress"),
                    ..Evidence::default()
                };
                Some(self.bounce(evidence))
            }
            _ => None,
        }
    }

    fn bounce(&self, evidence: Evidence) -> Classification {
        let verdict = self.decide(&evidence);
        let mut c = Classification::new(Kind::Bounce, verdict.rule);
        c.reason = Some(verdict.reason);
        c.detail = verdict.detail;
        c.status_code = evidence.status;
        c.reply_code = evidence.reply;
        c.recipient = evidence.recipient;
        c
    }

    /// Codes decide first, text refines (DESIGN §2).
    fn decide(&self, ev: &Evidence) -> Verdict {
        let verdict = self.decide_from_codes_and_text(ev);
        adjust_for_stage(verdict, ev)
    }

    fn decide_from_codes_and_text(&self, ev: &Evidence) -> Verdict {
        let text_rule = rules::first_match(&self.rules, &rules::normalize_text(&ev.diagnostic));
        let code = ev
            .status
            .as_deref()
            .and_then(|s| codes::status_meaning(s).map(|m| (s, m)));
        match (text_rule, code) {
            // A precise code stands unless the rule is allowed to contradict it.
            (Some(rule), Some((status, meaning)))
                if meaning.confidence == Confidence::Strong
                    && meaning.reason != rule.reason
                    && !rule.overrides_codes =>
            {
                from_code(status, meaning, "status")
            }
            (Some(rule), Some((status, meaning))) if meaning.reason == rule.reason => Verdict {
                reason: rule.reason,
                detail: rule.detail.or(meaning.detail),
                rule: format!("status {status}, {}", rule.label()),
                settled: true,
            },
            (Some(rule), _) => from_rule(rule, ""),
            (None, Some((status, meaning))) if meaning.confidence == Confidence::Strong => {
                from_code(status, meaning, "status")
            }
            (None, weak_code) => {
                // Vague or no code, and the server's words say nothing we know: look at the
                // rest of the notification, then at the weak code, then at the reply code.
                if let Some((status, meaning)) = weak_code {
                    return from_code(status, meaning, "status");
                }
                if let Some(rule) =
                    rules::first_match(&self.rules, &rules::normalize_text(&ev.context))
                {
                    return from_rule(rule, "notification ");
                }
                // A report still "delayed" means retries ran out, whatever the last reply was.
                if ev.delayed {
                    return Verdict {
                        reason: "server_unreachable",
                        detail: Some("expired"),
                        rule: "delivery delayed".into(),
                        settled: false,
                    };
                }
                if let Some(reply) = ev.reply {
                    if let Some(meaning) = codes::reply_meaning(reply) {
                        return from_code(&reply.to_string(), meaning, "reply");
                    }
                }
                if ev.status.as_deref().is_some_and(|s| s.starts_with('4')) {
                    return Verdict {
                        reason: "server_unreachable",
                        detail: Some("expired"),
                        rule: "temporary failure retried out".into(),
                        settled: false,
                    };
                }
                Verdict {
                    reason: "other",
                    detail: None,
                    rule: "no evidence".into(),
                    settled: false,
                }
            }
        }
    }
}

fn from_code(code: &str, meaning: CodeMeaning, what: &str) -> Verdict {
    Verdict {
        reason: meaning.reason,
        detail: meaning.detail,
        rule: format!("{what} {code}"),
        settled: meaning.confidence == Confidence::Strong,
    }
}

fn from_rule(rule: &Rule, where_: &str) -> Verdict {
    Verdict {
        reason: rule.reason,
        detail: rule.detail,
        rule: format!("{where_}{}", rule.label()),
        settled: true,
    }
}

/// The stage of the SMTP dialogue says whose problem a refusal is: before MAIL FROM only
/// the sending host is known, at MAIL FROM only the sender, and an "unknown user" after
/// the content was sent is a content filter speaking, not a missing mailbox.
fn adjust_for_stage(verdict: Verdict, ev: &Evidence) -> Verdict {
    let Some(stage) = ev.stage else {
        return verdict;
    };
    let status_is_precise = ev
        .status
        .as_deref()
        .and_then(codes::status_meaning)
        .is_some_and(|m| m.confidence == Confidence::Strong);
    let settled = verdict.settled;
    match stage {
        Stage::Connect
            if matches!(
                verdict.reason,
                "sender_recipient_rejected" | "address_not_found" | "other"
            ) =>
        {
            Verdict {
                reason: "ip_domain_rejected",
                detail: Some("blocklisted"),
                rule: format!("{}, refused at connection", verdict.rule),
                settled,
            }
        }
        Stage::MailFrom
            if matches!(
                verdict.reason,
                "address_not_found" | "server_unreachable" | "bad_address" | "other"
            ) =>
        {
            Verdict {
                reason: "sender_recipient_rejected",
                detail: Some("sender_rejected"),
                rule: format!("{}, refused at MAIL FROM", verdict.rule),
                settled,
            }
        }
        // After DATA the recipient was already accepted: a vague refusal now is a filter.
        Stage::Data
            if (verdict.reason == "address_not_found" && !status_is_precise)
                || (verdict.reason == "other" && !settled) =>
        {
            Verdict {
                reason: "sender_recipient_rejected",
                detail: Some("recipient_filtered"),
                rule: format!("{}, refused after DATA", verdict.rule),
                settled,
            }
        }
        _ => verdict,
    }
}

/// The DSN's Status unless it is generic (5.0.0), then a code in the server's words.
fn pick_status(reported: Option<&str>, diagnostic: &str, human: &str) -> Option<String> {
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
fn looks_like_bounce(facts: &message::MessageFacts, found: &text::TextDiagnostic) -> bool {
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

fn is_auto_reply(facts: &message::MessageFacts) -> bool {
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
fn is_provider_complaint(facts: &message::MessageFacts) -> bool {
    let subject = facts.subject.to_lowercase();
    let complaint_subject = ["complaint", "abuse report", "spam report"]
        .iter()
        .any(|s| subject.contains(s));
    let loop_sender = ["abuse", "feedback", "fbl", "complaint"]
        .iter()
        .any(|s| facts.from.contains(s));
    complaint_subject && loop_sender
}
