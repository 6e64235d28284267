//! S+ send content: the kept raw message, read for people — headers, the text part, the
//! HTML part sanitized for a sandboxed frame, attachments listed.

use mailparse::{DispositionType, MailHeaderMap, ParsedMail};

pub struct Attachment {
    pub name: String,
    pub mime: String,
    pub size: usize,
}

pub struct ContentView {
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub has_html: bool,
    pub attachments: Vec<Attachment>,
    pub size: usize,
}

const SHOWN_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
];

fn walk<'a>(part: &'a ParsedMail<'a>, out: &mut Vec<&'a ParsedMail<'a>>) {
    out.push(part);
    for sub in &part.subparts {
        walk(sub, out);
    }
}

fn is_attachment(part: &ParsedMail) -> bool {
    let disposition = part.get_content_disposition();
    disposition.disposition == DispositionType::Attachment
        || disposition.params.contains_key("filename")
}

/// Reads a raw message; a message that does not parse is shown as plain text.
pub fn read(raw: &[u8]) -> ContentView {
    let Ok(mail) = mailparse::parse_mail(raw) else {
        return ContentView {
            headers: Vec::new(),
            text: Some(String::from_utf8_lossy(raw).into_owned()),
            has_html: false,
            attachments: Vec::new(),
            size: raw.len(),
        };
    };
    let headers = SHOWN_HEADERS
        .iter()
        .filter_map(|name| {
            mail.headers
                .get_first_value(name)
                .map(|v| (name.to_string(), v))
        })
        .collect();
    let mut parts = Vec::new();
    walk(&mail, &mut parts);
    let mut text = None;
    let mut has_html = false;
    let mut attachments = Vec::new();
    for part in parts {
        if !part.subparts.is_empty() {
            continue;
        }
        let mime = part.ctype.mimetype.to_ascii_lowercase();
        if is_attachment(part) {
            let disposition = part.get_content_disposition();
            let name = disposition
                .params
                .get("filename")
                .cloned()
                .or_else(|| part.ctype.params.get("name").cloned())
                .unwrap_or_else(|| "attachment".into());
            let size = part.get_body_raw().map(|b| b.len()).unwrap_or(0);
            attachments.push(Attachment { name, mime, size });
        } else if mime == "text/plain" && text.is_none() {
            text = part.get_body().ok();
        } else if mime == "text/html" {
            has_html = true;
        }
    }
    ContentView {
        headers,
        text,
        has_html,
        attachments,
        size: raw.len(),
    }
}

/// The HTML part, sanitized: no scripts, no event handlers, no remote loads (only `data:` and
/// `cid:` images), links kept but opened outside the frame.
pub fn sanitized_html(raw: &[u8]) -> Option<String> {
    let mail = mailparse::parse_mail(raw).ok()?;
    let mut parts = Vec::new();
    walk(&mail, &mut parts);
    let html = parts
        .into_iter()
        .find(|p| {
            p.subparts.is_empty()
                && p.ctype.mimetype.eq_ignore_ascii_case("text/html")
                && !is_attachment(p)
        })?
        .get_body()
        .ok()?;
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(
            ["http", "https", "mailto", "data", "cid"]
                .into_iter()
                .collect(),
        )
        .link_rel(Some("noopener noreferrer"))
        .set_tag_attribute_value("a", "target", "_blank")
        .attribute_filter(|element, attribute, value| {
            let scheme = value.trim_start().to_ascii_lowercase();
            let inline = scheme.starts_with("data:") || scheme.starts_with("cid:");
            if element == "img" && attribute == "src" {
                // Images may not fetch anything: tracking pixels and remote images stay silent.
                inline.then(|| value.into())
            } else if scheme.starts_with("data:") {
                // `data:` is for inline images only: a `data:` link opens a page of the
                // sender's making (HTML, script) in a new window.
                None
            } else {
                Some(value.into())
            }
        });
    Some(builder.clean(&html).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] = b"From: Shop <no-reply@shop.test>\r\nTo: alice@example.com\r\nSubject: =?UTF-8?B?5Y+M5Y2B5LiA?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Alice\r\n--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p onclick=\"x()\">Hi<script>alert(1)</script><img src=\"https://track.test/p.gif\"><a href=\"https://shop.test\">shop</a></p>\r\n--b2--\r\n--b1\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";

    #[test]
    fn reads_parts_and_attachments() {
        let view = read(RAW);
        assert!(view
            .headers
            .iter()
            .any(|(k, v)| k == "Subject" && v == "双十一"));
        assert_eq!(view.text.as_deref().map(str::trim), Some("Hello Alice"));
        assert!(view.has_html);
        assert_eq!(view.attachments.len(), 1);
        assert_eq!(view.attachments[0].name, "invoice.pdf");
    }

    #[test]
    fn html_is_sanitized_without_remote_loads() {
        let html = sanitized_html(RAW).unwrap();
        assert!(!html.contains("script"));
        assert!(!html.contains("onclick"));
        assert!(!html.contains("track.test"));
        assert!(html.contains("https://shop.test"));
    }
}
