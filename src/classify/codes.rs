//! SMTP reply codes (RFC 5321) and enhanced status codes (RFC 3463 and the IANA
//! "SMTP Enhanced Status Codes" registry): finding them in text and what they mean.

/// How much an enhanced status code says on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Confidence {
    /// The code names the problem precisely (5.1.1 user unknown, 5.2.2 mailbox full):
    /// only a text rule marked as overriding may contradict it.
    Strong,
    /// The code names only an area (5.7.1 "delivery not authorized", 5.3.0): any text
    /// rule that matches the diagnostic refines it.
    Weak,
}

/// The meaning of an enhanced status code in mailtrail's vocabulary.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CodeMeaning {
    pub reason: &'static str,
    pub detail: Option<&'static str>,
    pub confidence: Confidence,
}

fn meaning(
    reason: &'static str,
    detail: Option<&'static str>,
    confidence: Confidence,
) -> Option<CodeMeaning> {
    Some(CodeMeaning {
        reason,
        detail,
        confidence,
    })
}

/// True for bytes that may sit inside a word or a dotted number, so a code found next
/// to one is part of something longer (an IP address, a version, an id).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_'
}

/// Every enhanced status code (`class.subject.detail`) in `text`, in order.
/// Dotted numbers longer than three parts (IP addresses, versions) are skipped.
pub(crate) fn find_status_codes(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_here =
            matches!(bytes[i], b'2' | b'4' | b'5') && (i == 0 || !is_word_byte(bytes[i - 1]));
        if starts_here {
            if let Some(end) = status_code_end(bytes, i) {
                found.push(text[i..end].to_string());
                i = end;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// If an enhanced status code starts at `start`, the index just past it.
fn status_code_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    for _ in 0..2 {
        if bytes.get(i) != Some(&b'.') {
            return None;
        }
        i += 1;
        let digits_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() && i - digits_start < 3 {
            i += 1;
        }
        if i == digits_start {
            return None;
        }
    }
    // A further digit, or a dot followed by a digit, means a longer dotted number.
    match bytes.get(i) {
        Some(b) if b.is_ascii_digit() || b.is_ascii_alphabetic() => None,
        Some(b'.') if bytes.get(i + 1).is_some_and(|b| b.is_ascii_digit()) => None,
        _ => Some(i),
    }
}

/// The first SMTP reply code (a three-digit number starting with 2, 4 or 5) that stands
/// as a reply would: at the start, or after a separator, followed by a space, `-` or the end.
/// `failures_only` skips 2xx codes, which in a bounce are greetings, not the answer.
pub(crate) fn find_reply_code(text: &str, failures_only: bool) -> Option<u16> {
    let bytes = text.as_bytes();
    for i in 0..bytes.len().saturating_sub(2) {
        let first = bytes[i];
        let allowed_first = if failures_only {
            matches!(first, b'4' | b'5')
        } else {
            matches!(first, b'2' | b'4' | b'5')
        };
        if !allowed_first || !bytes[i + 1].is_ascii_digit() || !bytes[i + 2].is_ascii_digit() {
            continue;
        }
        let before_ok = i == 0
            || matches!(
                bytes[i - 1],
                b' ' | b'\t'
                    | b';'
                    | b'#'
                    | b'('
                    | b'\''
                    | b'"'
                    | b':'
                    | b'<'
                    | b'>'
                    | b'['
                    | b'\n'
            );
        let after_ok = match bytes.get(i + 3) {
            None => true,
            Some(b) => matches!(
                b,
                b' ' | b'-' | b'\t' | b'\r' | b'\n' | b',' | b')' | b'\'' | b']' | b':'
            ),
        };
        if before_ok && after_ok {
            let code = (first - b'0') as u16 * 100
                + (bytes[i + 1] - b'0') as u16 * 10
                + (bytes[i + 2] - b'0') as u16;
            // The second digit of a reply is 0..5 (RFC 5321 §4.2.1); anything else is a number.
            if code % 100 / 10 <= 5 {
                return Some(code);
            }
        }
    }
    None
}

/// Splits "5.7.509" into its three numbers.
pub(crate) fn split_status(code: &str) -> Option<(u16, u16, u16)> {
    let mut parts = code.split('.').map(|p| p.parse::<u16>().ok());
    let class = parts.next()??;
    let subject = parts.next()??;
    let detail = parts.next()??;
    Some((class, subject, detail))
}

/// True for codes that say only "something failed" (x.0.0) and leave the reason to other evidence.
pub(crate) fn is_generic_status(code: &str) -> bool {
    matches!(split_status(code), Some((_, 0, 0)) | None)
}

/// Maps an enhanced status code onto a reason. The class (4 or 5) does not change the
/// reason: a DSN reports a 4.x.x code once the sender has given up retrying.
pub(crate) fn status_meaning(code: &str) -> Option<CodeMeaning> {
    use Confidence::{Strong, Weak};
    let (_, subject, detail) = split_status(code)?;
    match (subject, detail) {
        // X.1.x addressing
        (1, 1) => meaning("address_not_found", Some("user_unknown"), Strong),
        (1, 2) => meaning("server_unreachable", Some("host_unknown"), Strong),
        (1, 3) => meaning("bad_address", Some("address_syntax"), Strong),
        (1, 4) => meaning("address_not_found", Some("ambiguous_address"), Strong),
        (1, 6) => meaning("address_not_found", Some("mailbox_moved"), Strong),
        // Bad sender mailbox or sender domain: the message was refused because of its sender.
        (1, 7) | (1, 8) => meaning("sender_recipient_rejected", Some("sender_rejected"), Strong),
        // x.1.10 is "null MX" in the registry, but Microsoft answers "recipient not found"
        // with 5.1.10, so the text decides.
        (1, 10) => meaning("server_unreachable", Some("null_mx"), Weak),
        // X.2.x mailbox
        (2, 0) => meaning("other", None, Weak),
        (2, 1) => meaning("address_not_found", Some("mailbox_disabled"), Strong),
        (2, 2) => meaning("other", Some("mailbox_full"), Strong),
        (2, 3) => meaning("other", Some("message_too_big"), Strong),
        (2, 4) => meaning("other", Some("list_expansion"), Weak),
        // X.3.x mail system
        (3, 1) => meaning("service_unavailable", Some("system_full"), Strong),
        (3, 2) => meaning("service_unavailable", Some("system_not_accepting"), Weak),
        (3, 3) => meaning("other", Some("feature_unsupported"), Weak),
        (3, 4) => meaning("other", Some("message_too_big"), Strong),
        (3, 5) => meaning("service_unavailable", Some("system_error"), Strong),
        (3, _) => meaning("service_unavailable", Some("system_error"), Weak),
        // X.4.x network and routing
        (4, 3) => meaning("service_unavailable", Some("directory_failure"), Strong),
        (4, 7) => meaning("server_unreachable", Some("expired"), Strong),
        // x.4.1 "no answer from host" is also what Exchange Online answers for recipients
        // its directory rejects, so the text decides.
        (4, 0) | (4, 1) => meaning("server_unreachable", Some("network_error"), Weak),
        (4, 4) => meaning("server_unreachable", Some("no_route"), Strong),
        (4, _) => meaning("server_unreachable", Some("network_error"), Strong),
        // X.5.x protocol
        (5, 3) => meaning("ip_domain_rejected", Some("too_many_recipients"), Strong),
        (5, 0) => None,
        (5, _) => meaning("other", Some("syntax_error"), Weak),
        // X.6.x content
        (6, 0) | (6, 1) => meaning("other", Some("content_error"), Weak),
        (6, _) => meaning("other", Some("content_error"), Strong),
        // X.7.x security and policy
        (7, 1) | (7, 0) => meaning("sender_recipient_rejected", Some("not_authorized"), Weak),
        (7, 13) => meaning("address_not_found", Some("mailbox_disabled"), Strong),
        (7, 20..=24) => meaning("ip_domain_rejected", Some("authentication_failed"), Strong),
        (7, 25) => meaning("ip_domain_rejected", Some("reverse_dns"), Strong),
        (7, 26) => meaning("ip_domain_rejected", Some("authentication_failed"), Strong),
        (7, 28) => meaning("ip_domain_rejected", Some("rate_limited"), Strong),
        // Microsoft's extended codes: 5.7.509 DMARC, 5.7.606..5.7.608 banned sending IP.
        (7, 509) => meaning("ip_domain_rejected", Some("authentication_failed"), Strong),
        (7, 510 | 511) | (7, 606..=608) => {
            meaning("ip_domain_rejected", Some("blocklisted"), Strong)
        }
        // 5.7.512: "message must be RFC 5322 section 3.6.2 compliant".
        (7, 512) => meaning("other", Some("not_rfc_compliant"), Strong),
        (7, _) => meaning("sender_recipient_rejected", Some("policy"), Weak),
        (0, _) => None,
        _ => None,
    }
}

/// Maps a bare reply code onto a reason, for replies without an enhanced code or a
/// recognised text. These are RFC 5321's generic meanings, hence weak.
pub(crate) fn reply_meaning(code: u16) -> Option<CodeMeaning> {
    use Confidence::Weak;
    match code {
        421 => meaning("service_unavailable", Some("service_not_available"), Weak),
        450 => meaning("service_unavailable", Some("mailbox_busy"), Weak),
        451 => meaning("service_unavailable", Some("local_error"), Weak),
        452 => meaning("other", Some("insufficient_storage"), Weak),
        500..=504 => meaning("other", Some("syntax_error"), Weak),
        550 => meaning("address_not_found", Some("mailbox_unavailable"), Weak),
        551 => meaning("address_not_found", Some("user_not_local"), Weak),
        552 => meaning("other", Some("mailbox_full"), Weak),
        553 => meaning("bad_address", Some("mailbox_name_not_allowed"), Weak),
        554 => meaning(
            "sender_recipient_rejected",
            Some("transaction_failed"),
            Weak,
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_status_codes_but_not_ip_addresses() {
        assert_eq!(
            find_status_codes("550 5.1.1 <a@b> user unknown"),
            vec!["5.1.1"]
        );
        assert_eq!(
            find_status_codes("host [192.0.2.5]: 4.16.55.1 5.7.509"),
            vec!["5.7.509"]
        );
        assert_eq!(find_status_codes("(#4.4.1)"), vec!["4.4.1"]);
        assert!(find_status_codes("version 2.0.1b").is_empty());
    }

    #[test]
    fn finds_reply_codes() {
        assert_eq!(find_reply_code("smtp; 550 5.1.1 x", true), Some(550));
        assert_eq!(find_reply_code("said: 552-5.2.2 full", true), Some(552));
        assert_eq!(find_reply_code("at 2010 on port 25", true), None);
        assert_eq!(find_reply_code("250 2.0.0 ok", true), None);
        assert_eq!(find_reply_code("250 2.0.0 ok", false), Some(250));
    }
}
