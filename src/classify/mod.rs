//! Bounce and SMTP-reply classification (DESIGN §2, "Classifying an SMTP reply or a DSN").
//!
//! Evidence is gathered first (delivery-status fields, the server's reply in the human
//! text, the SMTP command it answered, ARF and auto-reply markers), then decided by
//! specificity, not by the order in which rules happen to be written. Self-contained:
//! std, mailparse, serde and serde_json only.
//!
//! # Precedence
//!
//! 1. **What the message is**: an ARF feedback report (RFC 5965) is a complaint, a
//!    delivery-status report whose recipients were all delivered is a delivery, an
//!    auto-reply (RFC 3834 headers, a vacation subject) is an auto-reply. Everything else
//!    is a bounce, decided from the evidence of its first failed recipient.
//! 2. **An operator's own rules** (`with_extra_rules`), in their file's order.
//! 3. **Mechanism phrases** in the server's words ([`rules::Tier::Mechanism`]): a block
//!    list, SPF/DKIM/DMARC, reverse DNS, a rate or connection limit, a full mailbox, an
//!    oversized message, a suspended or moved mailbox, relaying, a virus, a give-up after
//!    retries. These name the cause more precisely than any status code, so they override
//!    even a precise one ("550 5.1.1 ... mailbox full" is a full mailbox).
//! 4. **A precise enhanced status code** (RFC 3463: 5.1.1, 5.2.2, 4.4.7, 5.7.26, ...).
//! 5. **Subject phrases** ([`rules::Tier::Subject`]): the user, the host, the sender, the
//!    content or the receiving system named as what failed ("user unknown", "host not
//!    found", "sender address rejected"). They refine a vague code and yield to a
//!    precise one that says otherwise.
//! 6. **Outcome phrases** ([`rules::Tier::Outcome`]): the sender's server gave up after
//!    retrying ("retry timeout exceeded", "message expired", "could not be delivered for
//!    5 days"): `server_unreachable`, detail `expired`, unless a cause was named beside.
//! 7. **Generic phrases** ([`rules::Tier::Generic`]): "rejected", "denied", "policy",
//!    "service unavailable" decide only when nothing above did.
//! 8. **A vague status code** (5.7.1, 5.0.0 classes), then a phrase found elsewhere in the
//!    notification (same tiers), then an RFC 3464 `Action: delayed`, then the bare reply
//!    code (RFC 5321 meanings; in a bounce message a bare 5xx is only `other`: "550" alone
//!    does not prove a missing mailbox), then nothing: `other` with the rule "no evidence".
//!
//! Two corrections follow the decision:
//!
//! - **The SMTP stage** ([`text::Stage`]) the reply answered: a refusal at connection or
//!   greeting is about the sending host (`ip_domain_rejected`), at MAIL FROM about the
//!   sender (`sender_recipient_rejected`); a "no such user" answered after DATA is a
//!   filter (`sender_recipient_rejected`, detail `recipient_filtered`) unless the server
//!   gave the code X.1.1 (or X.2.1, X.1.10) itself; answered to RCPT TO it is a missing
//!   mailbox. A bounce message that relays such a reply without naming its command is read
//!   as a filter as well (gateways accept first and relay their inner server's refusal),
//!   unless the words are the reporting system's own summary or a local delivery agent's.
//! - **A give-up**: in a bounce message a temporary failure (4xx, 4.x.x) that nothing more
//!   specific explains means the sender's server retried until it gave up
//!   (`server_unreachable`, detail `expired`).
//!
//! The `rule` of the result names the evidence that decided and every correction applied.

mod codes;
mod decide;
mod dsn;
mod message;
mod rules;
mod signs;
#[cfg(test)]
mod tests;
mod text;

use serde::Serialize;

use decide::Evidence;
use dsn::RecipientReport;
use rules::Rule;
use signs::{is_auto_reply, is_provider_complaint, looks_like_bounce, pick_status};
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
    /// An operator's own rules, consulted before the built-in ones.
    operator_rules: Vec<Rule>,
    /// The built-in rules (`rules.tsv`).
    rules: Vec<Rule>,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new()
    }
}

impl Classifier {
    /// A classifier with the built-in rules only.
    pub fn new() -> Classifier {
        // The built-in file is part of the source and checked by the tests.
        let rules =
            rules::parse_rules(BUILTIN_RULES, "rules.tsv").expect("built-in rules.tsv must parse");
        Classifier {
            operator_rules: Vec::new(),
            rules,
        }
    }

    /// A classifier whose operator rules (same format as `rules.tsv`) take precedence
    /// over the built-in ones. Errors name the offending line.
    pub fn with_extra_rules(text: &str) -> Result<Classifier, String> {
        let operator_rules = rules::parse_operator_rules(text, "extra rules")?;
        Ok(Classifier {
            operator_rules,
            ..Classifier::new()
        })
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
            in_message: true,
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
        let mut stage = text::detect_stage(&format!(
            "{} {} {}",
            diagnostic, found.diagnostic, facts.human_text
        ));
        // A diagnostic typed other than "smtp" (X-Postfix, X-Unix, ...) without a reply code
        // in it is the reporting server's own local delivery speaking, not a relayed reply.
        let own_words = report
            .diagnostic_type
            .as_deref()
            .is_some_and(|t| t != "smtp")
            && codes::find_reply_code(&diagnostic, true).is_none();
        if stage == Stage::Unknown && own_words {
            stage = Stage::Local;
        }
        let category = report.category.as_deref().and_then(dsn::category_words);
        Evidence {
            status,
            reply,
            diagnostic,
            context: match category {
                Some(words) => format!("{words}\n{}", facts.human_text),
                None => facts.human_text.clone(),
            },
            recipient: report.recipient.clone().or(found.recipient),
            stage: Some(stage),
            delayed: matches!(report.action.as_deref(), Some("delayed" | "expired")),
            in_message: true,
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
                    context: dsn::category_words(sub_type).unwrap_or("").to_string(),
                    status: pick_status(field("status").as_deref(), &diagnostic, ""),
                    reply: codes::find_reply_code(&diagnostic, true),
                    stage: Some(text::detect_stage(&diagnostic)),
                    diagnostic,
                    recipient: field("emailAddress"),
                    in_message: true,
                    ..Evidence::default()
                };
                Some(self.bounce(evidence))
            }
            _ => None,
        }
    }
}
