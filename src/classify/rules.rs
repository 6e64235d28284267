//! Text rules: diagnostic phrases mapped onto reasons, kept as data (`rules.tsv`) so an
//! operator can add their own without a rebuild.

use super::REASONS;

/// One line of a rules file.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub reason: &'static str,
    pub detail: Option<&'static str>,
    /// Pieces of the pattern between `*` wildcards, each lowercase.
    pieces: Vec<String>,
    /// The pattern as written, for the rule label shown to people.
    pub pattern: String,
    /// True when the rule may contradict a precise status code (pattern written with `!`).
    pub overrides_codes: bool,
    /// Where the rule came from, e.g. "rules.tsv:42".
    pub source: String,
}

impl Rule {
    /// True when every piece occurs in `text`, in order.
    /// A piece that begins with a letter or digit must begin a word of the text, so
    /// "ube" (unsolicited bulk email) does not fire inside "youtube".
    fn matches(&self, text: &str) -> bool {
        let mut from = 0;
        for piece in &self.pieces {
            match find_word_start(text, from, piece) {
                Some(at) => from = at + piece.len(),
                None => return false,
            }
        }
        true
    }

    pub fn label(&self) -> String {
        format!("text: {} ({})", self.pattern, self.source)
    }
}

/// Details used by the built-in rules and code tables. An operator's detail that is not
/// among them is leaked once to get the `&'static str` the public type carries; rules
/// are loaded once per process, so that is bounded.
const KNOWN_DETAILS: &[&str] = &[
    "mailbox_full",
    "message_too_big",
    "rate_limited",
    "too_many_recipients",
    "expired",
    "host_unknown",
    "network_error",
    "tls_failed",
    "mailbox_disabled",
    "mailbox_moved",
    "user_unknown",
    "blocklisted",
    "bad_reputation",
    "reverse_dns",
    "authentication_failed",
    "relay_denied",
    "auth_required",
    "sender_rejected",
    "recipient_filtered",
    "policy",
    "spam",
    "virus",
    "syntax_error",
    "content_error",
    "not_rfc_compliant",
    "on_hold",
    "system_error",
    "system_full",
    "mailer_error",
    "not_accepting_mail",
];

fn intern_detail(detail: &str) -> &'static str {
    KNOWN_DETAILS
        .iter()
        .find(|known| **known == detail)
        .copied()
        .unwrap_or_else(|| Box::leak(detail.to_string().into_boxed_str()))
}

/// Parses a rules file (format documented at the top of `rules.tsv`).
/// `origin` names the file in rule labels.
pub(crate) fn parse_rules(text: &str, origin: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let columns: Vec<&str> = line
            .split('\t')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        if columns.len() != 3 {
            return Err(format!(
                "{origin}:{line_no}: expected 3 tab-separated columns (reason, detail, pattern), found {}",
                columns.len()
            ));
        }
        let reason = REASONS
            .iter()
            .find(|r| **r == columns[0])
            .copied()
            .ok_or_else(|| format!("{origin}:{line_no}: unknown reason {:?}", columns[0]))?;
        let detail = match columns[1] {
            "-" => None,
            d if d
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
            {
                Some(intern_detail(d))
            }
            d => {
                return Err(format!(
                "{origin}:{line_no}: detail {d:?} must be lowercase letters, digits and _ (or -)"
            ))
            }
        };
        let (overrides_codes, pattern) = match columns[2].strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, columns[2]),
        };
        let normalized = normalize_text(pattern);
        let pieces: Vec<String> = normalized
            .split('*')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        if pieces.is_empty() {
            return Err(format!("{origin}:{line_no}: empty pattern"));
        }
        rules.push(Rule {
            reason,
            detail,
            pieces,
            pattern: pattern.to_string(),
            overrides_codes,
            source: format!("{origin}:{line_no}"),
        });
    }
    Ok(rules)
}

/// The first occurrence of `piece` in `text` at or after `from` that starts a word
/// (when the piece itself starts with a letter or digit).
fn find_word_start(text: &str, mut from: usize, piece: &str) -> Option<usize> {
    let needs_boundary = piece.chars().next().is_some_and(char::is_alphanumeric);
    while from <= text.len() {
        let at = from + text.get(from..)?.find(piece)?;
        let at_boundary = !needs_boundary
            || text[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
        if at_boundary {
            return Some(at);
        }
        // Step past this occurrence's first character (which may be multi-byte).
        from = at + text[at..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

/// The first rule, in file order, whose pattern occurs in `normalized` (see [`normalize_text`]).
pub(crate) fn first_match<'r>(rules: &'r [Rule], normalized: &str) -> Option<&'r Rule> {
    if normalized.is_empty() {
        return None;
    }
    rules.iter().find(|rule| rule.matches(normalized))
}

/// Lowercases, folds every run of whitespace to one space and drops SMTP reply and status
/// codes, so that a rule matches a phrase however the server wrapped it: Gmail splits its
/// text over "550-5.1.1" continuation lines, Postfix folds long diagnostics.
pub(crate) fn normalize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if is_code_token(word) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        for ch in word.chars() {
            out.extend(ch.to_lowercase());
        }
    }
    out
}

/// "550", "550-", "550-5.1.1", "5.1.1", "#5.1.1", "(#5.1.1)" and the like.
fn is_code_token(word: &str) -> bool {
    let word = word
        .trim_matches(|c: char| matches!(c, '(' | ')' | '#' | '[' | ']' | ',' | ';' | '\'' | '"'));
    if word.is_empty() {
        return false;
    }
    let (reply, rest) = match word.get(..3) {
        Some(head)
            if word.len() >= 3
                && head.bytes().all(|b| b.is_ascii_digit())
                && matches!(head.as_bytes()[0], b'2' | b'4' | b'5') =>
        {
            (true, &word[3..])
        }
        _ => (false, word),
    };
    if reply && rest.is_empty() {
        return true;
    }
    let rest = if reply {
        rest.strip_prefix('-').unwrap_or(rest)
    } else {
        rest
    };
    if reply && rest.is_empty() {
        return true;
    }
    // What is left must be exactly an enhanced status code.
    super::codes::split_status(rest).is_some() && rest.split('.').count() == 3 && rest.len() <= 9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_wrapped_gmail_text() {
        let text = "550-5.1.1 The email account that you tried to reach does\n    not exist. 550-5.1.1 Please";
        assert_eq!(
            normalize_text(text),
            "the email account that you tried to reach does not exist. please"
        );
    }

    #[test]
    fn wildcard_patterns_match_in_order() {
        let rules = parse_rules("other\tmailbox_full\tmailbox * full\n", "t").unwrap();
        assert!(first_match(&rules, "the mailbox is full").is_some());
        assert!(first_match(&rules, "full mailbox").is_none());
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(parse_rules("nonsense\t-\tfoo\n", "t").is_err());
        assert!(parse_rules("other\tmailbox full\n", "t").is_err());
        assert!(parse_rules("other\tBad Detail\tfoo\n", "t").is_err());
    }
}
