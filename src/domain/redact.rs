//! Keeping what a viewer or a log must not get out of text: secrets in request targets,
//! control characters and floods in logged input, full addresses inside free text when an
//! account masks them, and spreadsheet formulas in exported cells (DESIGN §9).

use super::mask_address;

/// Query parameters whose values are secrets, compared lower-cased on the name's letters.
const SECRET_PARAMS: &[&str] = &[
    "apikey",
    "password",
    "passwd",
    "token",
    "secret",
    "signature",
];

/// The longest query value written to a log; anything longer is cut.
const MAX_LOGGED_VALUE: usize = 64;

/// The longest request target written to a log.
const MAX_LOGGED_TARGET: usize = 512;

/// A request target (`/path?query`) as the access log may write it: secret query values
/// replaced by `[redacted]`, long values cut, control characters dropped, bounded in length.
pub fn redact_target(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut out = log_text(path, MAX_LOGGED_TARGET);
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                let key: String = name
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
                    .to_ascii_lowercase();
                let name = log_text(name, MAX_LOGGED_VALUE);
                if SECRET_PARAMS.iter().any(|s| key.contains(s)) {
                    format!("{name}=[redacted]")
                } else if pair.contains('=') {
                    format!("{name}={}", log_text(value, MAX_LOGGED_VALUE))
                } else {
                    name
                }
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    log_text(&out, MAX_LOGGED_TARGET * 2)
}

/// Text from outside as a log line may carry it: no control characters (no forged lines),
/// at most `max` characters, with how long it really was when cut.
pub fn log_text(text: &str, max: usize) -> String {
    let clean = text.chars().filter(|c| !c.is_control());
    let total = text.chars().count();
    if total <= max {
        clean.collect()
    } else {
        let head: String = clean.take(max).collect();
        format!("{head}…({} bytes)", text.len())
    }
}

/// Characters that may stand in an address's local part here; `$` is left out because
/// SendCloud's emailIds put it just before the recipient (`…$alice@example.com`).
fn local_char(c: char) -> bool {
    c.is_alphanumeric() || "._%+-!#&'*/=?^`{|}~".contains(c)
}

fn domain_char(c: char) -> bool {
    c.is_alphanumeric() || c == '.' || c == '-'
}

/// Every address inside free text (an SMTP reply, an emailId, a send log) masked as
/// [`mask_address`] masks one: `550 5.1.1 <alice@example.com>` → `550 5.1.1 <al***@example.com>`.
pub fn mask_addresses_in(text: &str) -> String {
    if !text.contains('@') {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut done = 0; // chars[..done] are in `out`
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '@' {
            i += 1;
            continue;
        }
        let mut start = i;
        while start > done && local_char(chars[start - 1]) {
            start -= 1;
        }
        let mut end = i + 1;
        while end < chars.len() && domain_char(chars[end]) {
            end += 1;
        }
        // A trailing dot ends a sentence, not the domain.
        while end > i + 1 && chars[end - 1] == '.' {
            end -= 1;
        }
        if start < i && end > i + 1 {
            out.extend(&chars[done..start]);
            let address: String = chars[start..end].iter().collect();
            out.push_str(&mask_address(&address));
            done = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out.extend(&chars[done..]);
    out
}

/// A cell value that a spreadsheet will not run: text starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return gets a leading `'`, as OWASP recommends for CSV injection.
pub fn neutralise_formula(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

/// A value as a CSV or XLSX export writes it: addresses inside it masked when the account
/// masks them, and never a formula. Every export path (online CSV, offline CSV and XLSX)
/// writes its cells through this.
pub fn export_cell(value: &str, mask: bool) -> std::borrow::Cow<'_, str> {
    if mask && value.contains('@') {
        neutralise_formula(&mask_addresses_in(value))
            .into_owned()
            .into()
    } else {
        neutralise_formula(value)
    }
}

/// A whole row through [`export_cell`], for the online CSV downloads.
pub fn export_record<S: AsRef<str>>(
    fields: impl IntoIterator<Item = S>,
    mask: bool,
) -> Vec<String> {
    fields
        .into_iter()
        .map(|f| export_cell(f.as_ref(), mask).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_floods_stay_out_of_logs() {
        let line = redact_target("/apiv2/bounce/list?apiUser=u&apiKey=sk_live_1&days=1");
        assert_eq!(
            line,
            "/apiv2/bounce/list?apiUser=u&apiKey=[redacted]&days=1"
        );
        assert!(redact_target("/x?access_token=abc").contains("[redacted]"));
        assert!(log_text(&"a".repeat(60_000), 100).len() < 200);
        assert_eq!(log_text("evil\nINFO forged", 100), "evilINFO forged");
    }

    #[test]
    fn addresses_in_text_are_masked() {
        assert_eq!(
            mask_addresses_in("550 5.1.1 <ma.3057@yahoo.com>: unknown"),
            "550 5.1.1 <ma***@yahoo.com>: unknown"
        );
        assert_eq!(
            mask_addresses_in("1617_1.sc-10_1$ma.3057@yahoo.com"),
            "1617_1.sc-10_1$ma***@yahoo.com"
        );
        assert_eq!(
            mask_addresses_in("to a@b.cn. and c@d.com"),
            "to a***@b.cn. and c***@d.com"
        );
        assert_eq!(mask_addresses_in("no address @ all"), "no address @ all");
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(
            neutralise_formula("=HYPERLINK(\"x\")"),
            "'=HYPERLINK(\"x\")"
        );
        assert_eq!(neutralise_formula("-1+2"), "'-1+2");
        assert_eq!(neutralise_formula("\tx"), "'\tx");
        assert_eq!(neutralise_formula("plain"), "plain");
    }
}
