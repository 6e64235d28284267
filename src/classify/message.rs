//! Walks a raw email and collects the facts the decision needs: delivery-status reports,
//! the human-readable bounce text (without the returned original), ARF and auto-reply
//! signals, JSON notifications, and the returned original's identifiers.

use mailparse::{MailHeader, MailHeaderMap, ParsedMail};

use super::dsn::{self, RecipientReport};

/// What a raw message says, before any decision.
#[derive(Debug, Default)]
pub(crate) struct MessageFacts {
    pub subject: String,
    pub from: String,
    /// A `message/feedback-report` part or `report-type=feedback-report` (RFC 5965).
    pub feedback_report: bool,
    /// Auto-Submitted: auto-replied, X-Autoreply, Precedence: auto_reply and the like.
    pub auto_reply_header: bool,
    /// Auto-Submitted: auto-generated, as MTAs mark their bounces.
    pub auto_generated: bool,
    pub has_delivery_status: bool,
    pub reports: Vec<RecipientReport>,
    /// Readable text of the notification, cut before the returned original.
    pub human_text: String,
    pub original_message_id: Option<String>,
    pub email_id: Option<String>,
    /// A JSON notification (Amazon SES through SNS) found in the text.
    pub json: Option<serde_json::Value>,
}

/// Parts nested deeper than this are ignored; mailparse also limits its recursion.
const MAX_DEPTH: usize = 20;

pub(crate) fn scan(raw: &[u8]) -> MessageFacts {
    let mut facts = MessageFacts::default();
    match mailparse::parse_mail(raw) {
        Ok(mail) => {
            read_top_headers(&mail.headers, &mut facts);
            let mut plain = String::new();
            let mut html = String::new();
            walk(&mail, 0, &mut facts, &mut plain, &mut html);
            let text = if plain.trim().is_empty() {
                html_to_text(&html)
            } else {
                plain
            };
            facts.human_text = text;
        }
        // Not even headers could be read: treat the bytes as text.
        Err(_) => facts.human_text = String::from_utf8_lossy(raw).into_owned(),
    }
    facts.human_text = cut_before_original(&facts.human_text);
    if !facts.feedback_report {
        facts.feedback_report = mentions_feedback_report(raw);
    }
    if facts.reports.is_empty() {
        facts.reports = inline_delivery_status(&facts.human_text);
    }
    facts.json = find_json_notification(&facts.human_text);
    facts
}

fn read_top_headers(headers: &[MailHeader], facts: &mut MessageFacts) {
    facts.subject = headers.get_first_value("Subject").unwrap_or_default();
    facts.from = headers
        .get_first_value("From")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let auto_submitted = headers
        .get_first_value("Auto-Submitted")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let precedence = headers
        .get_first_value("Precedence")
        .unwrap_or_default()
        .to_ascii_lowercase();
    facts.auto_generated = auto_submitted.starts_with("auto-generated");
    facts.auto_reply_header = auto_submitted.starts_with("auto-replied")
        || precedence.contains("auto_reply")
        || [
            "X-Autoreply",
            "X-Autorespond",
            "X-Autoresponder",
            "X-Vacation",
        ]
        .iter()
        .any(|name| headers.get_first_value(name).is_some());
}

fn walk(
    part: &ParsedMail,
    depth: usize,
    facts: &mut MessageFacts,
    plain: &mut String,
    html: &mut String,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let mimetype = part.ctype.mimetype.as_str();
    match mimetype {
        "message/delivery-status" | "message/global-delivery-status" => {
            facts.has_delivery_status = true;
            if let Ok(body) = part.get_body_raw() {
                facts.reports.extend(dsn::parse_delivery_status(&body));
            }
        }
        "message/feedback-report" => facts.feedback_report = true,
        "text/rfc822-headers"
        | "message/rfc822-headers"
        | "message/rfc822"
        | "message/global"
        | "message/global-headers" => {
            if let Ok(body) = part.get_body_raw() {
                read_original_headers(&body, facts);
                // A forwarded bounce carries the real report as an attached message.
                if mimetype != "text/rfc822-headers" && !facts.has_delivery_status {
                    if let Ok(inner) = mailparse::parse_mail(&body) {
                        if inner.ctype.mimetype == "multipart/report" {
                            walk(&inner, depth + 1, facts, plain, html);
                        }
                    }
                }
            }
        }
        _ if mimetype.starts_with("multipart/") => {
            let report_type = part
                .ctype
                .params
                .get("report-type")
                .map(|t| t.to_ascii_lowercase());
            if report_type.as_deref() == Some("feedback-report") {
                facts.feedback_report = true;
            }
            for sub in &part.subparts {
                walk(sub, depth + 1, facts, plain, html);
            }
            // A boundary that never occurs (broken MIME) leaves no parts: read the body as text.
            // mailparse then reports an empty body, so take the bytes after the headers.
            if part.subparts.is_empty() {
                if let Ok((_, header_len)) = mailparse::parse_headers(part.raw_bytes) {
                    plain.push_str(&String::from_utf8_lossy(&part.raw_bytes[header_len..]));
                    plain.push('\n');
                }
            }
        }
        "text/html" => {
            if let Ok(body) = part.get_body() {
                html.push_str(&body);
                html.push('\n');
            }
        }
        _ if mimetype.starts_with("text/") || mimetype.is_empty() => {
            if let Ok(body) = part.get_body() {
                plain.push_str(&body);
                plain.push('\n');
            }
        }
        _ => {}
    }
}

/// Message-ID and our own email-id header of the returned original.
fn read_original_headers(body: &[u8], facts: &mut MessageFacts) {
    let Ok((headers, _)) = mailparse::parse_headers(body) else {
        return;
    };
    if facts.original_message_id.is_none() {
        facts.original_message_id = headers
            .get_first_value("Message-ID")
            .map(|id| id.trim().trim_matches(|c| c == '<' || c == '>').to_string())
            .filter(|id| !id.is_empty());
    }
    if facts.email_id.is_none() {
        facts.email_id = email_id_header(&headers);
    }
}

/// The sending system's per-message id: X-Mailtrail-Email-Id, or SendCloud-style
/// SC-Email-Id / X-SC-Email-Id / X-Email-Id.
fn email_id_header(headers: &[MailHeader]) -> Option<String> {
    headers.iter().find_map(|h| {
        let key = h.get_key().to_ascii_lowercase();
        let ours =
            key == "x-mailtrail-email-id" || key.ends_with("sc-email-id") || key == "x-email-id";
        let value = h.get_value().trim().to_string();
        (ours && !value.is_empty()).then_some(value)
    })
}

/// Lines that start the returned original in bounce texts of common MTAs. Everything from
/// the first of them on is the sender's own message, whose words must not be read as a
/// diagnostic.
const ORIGINAL_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "this is a copy of your message",
    "original message follows",
    "unsent message follows",
    "original message as follows",
    "original mail as follows",
    "original message headers",
    "original message header",
    "headers of the original message",
    "header of the original message",
    "the original message was:",
    "------ original message",
    "----- original message",
    "--- original message",
    "message headers follow",
    "returned message follows",
];

fn cut_before_original(text: &str) -> String {
    // ASCII lowercasing keeps every byte offset, so positions found in `lower` are valid in `text`.
    let lower = text.to_ascii_lowercase();
    let cut = ORIGINAL_MARKERS.iter().filter_map(|m| lower.find(m)).min();
    match cut {
        // Keep the whole line that announced the original out of it as well.
        Some(at) => {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            text[..line_start].to_string()
        }
        None => text.to_string(),
    }
}

/// An ARF report whose MIME structure hides the `message/feedback-report` part (a wrong
/// boundary, a report forwarded inline) still carries its fields: a `Feedback-Type:` line
/// (RFC 5965 §3.1) or the part's media type. Only the first 256 KiB are read.
fn mentions_feedback_report(raw: &[u8]) -> bool {
    let head = &raw[..raw.len().min(256 * 1024)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.contains("message/feedback-report")
        || text.contains("report-type=feedback-report")
        || text.contains("report-type=\"feedback-report\"")
        || text.lines().any(|line| {
            line.trim_start_matches(['>', ' '])
                .starts_with("feedback-type:")
        })
}

/// Some MTAs write the delivery-status fields into the text (or a broken MIME structure
/// hides the part). Read "Status:" / "Diagnostic-Code:" / "Action:" lines from the text.
fn inline_delivery_status(text: &str) -> Vec<RecipientReport> {
    let mut report = RecipientReport::default();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let line = line.trim_start_matches(['>', ' ', '\t']);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let mut value = value.trim().to_string();
        match name.trim().to_ascii_lowercase().as_str() {
            "final-recipient" | "original-recipient" if report.recipient.is_none() => {
                report.recipient =
                    Some(dsn::strip_type(&value).trim_matches(['<', '>']).to_string());
            }
            "action" if report.action.is_none() => {
                report.action = value.split_whitespace().next().map(str::to_ascii_lowercase);
            }
            "status" if report.status.is_none() => {
                report.status = super::codes::find_status_codes(&value).into_iter().next();
            }
            "diagnostic-code" if report.diagnostic.is_none() => {
                // Folded continuation lines belong to the diagnostic.
                while let Some(next) = lines.peek() {
                    if next.starts_with([' ', '\t']) && !next.trim().is_empty() {
                        value.push(' ');
                        value.push_str(next.trim());
                        lines.next();
                    } else {
                        break;
                    }
                }
                report.diagnostic_type = dsn::diagnostic_type(&value);
                report.diagnostic = Some(dsn::strip_type(&value).to_string());
            }
            _ => {}
        }
    }
    if report.action.is_some() && (report.status.is_some() || report.diagnostic.is_some()) {
        vec![report]
    } else {
        Vec::new()
    }
}

/// An Amazon SES notification (`notificationType` Bounce / Complaint / Delivery), bare or
/// wrapped in an SNS envelope whose `Message` is the notification as a string.
fn find_json_notification(text: &str) -> Option<serde_json::Value> {
    let start = text.find('{')?;
    let mut stream =
        serde_json::Deserializer::from_str(&text[start..]).into_iter::<serde_json::Value>();
    let value = stream.next()?.ok()?;
    if value.get("notificationType").is_some() || value.get("eventType").is_some() {
        return Some(value);
    }
    let inner = value.get("Message")?.as_str()?;
    let inner: serde_json::Value = serde_json::from_str(inner).ok()?;
    (inner.get("notificationType").is_some() || inner.get("eventType").is_some()).then_some(inner)
}

/// Crude HTML to text: drops tags, style and script contents, decodes a few entities.
/// Enough to read the diagnostic out of an HTML-only bounce.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    let bytes = html.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'<' {
            let skip_block = ["<style", "<script"]
                .iter()
                .find(|t| lower[i..].starts_with(**t));
            let end = match skip_block {
                Some(tag) => {
                    let closing = format!("</{}", &tag[1..]);
                    lower[i..]
                        .find(&closing)
                        .map(|p| i + p)
                        .unwrap_or(bytes.len())
                }
                None => i,
            };
            match lower[end..].find('>') {
                Some(p) => {
                    let tag = &lower[i..end + p];
                    if tag.starts_with("<br")
                        || tag.starts_with("<p")
                        || tag.starts_with("</p")
                        || tag.starts_with("<div")
                        || tag.starts_with("</div")
                        || tag.starts_with("<tr")
                        || tag.starts_with("</tr")
                    {
                        out.push('\n');
                    }
                    i = end + p + 1;
                }
                None => break,
            }
        } else {
            let next_tag = html[i..].find('<').map_or(html.len(), |p| i + p);
            out.push_str(&html[i..next_tag]);
            i = next_tag;
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}
