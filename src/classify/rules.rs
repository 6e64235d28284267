//! Text rules: diagnostic phrases mapped onto reasons, kept as data (`rules.tsv`) so an
//! operator can add their own without a rebuild.
//!
//! Which rule decides when several match is not a matter of line order: every rule belongs
//! to a [`Tier`] of specificity, derived from its detail (see [`tier_of`]). The most specific
//! tier wins; within a tier the phrase said first in the diagnostic wins (servers state
//! their main reason first), then the longer pattern, and only then the line order.
//! An operator's rules form a tier of their own, above every built-in one.

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
    /// How specific the evidence is; decides between rules that match the same text.
    pub tier: Tier,
    /// The tier written in the optional fourth column.
    written_tier: Option<Tier>,
}

/// Specificity of a phrase family, most specific first. The derived order is the precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    /// An operator's own rule: it knows its mail better than we do.
    Operator,
    /// The phrase names a mechanism: a block list, SPF/DKIM/DMARC, reverse DNS, a rate
    /// limit, a full mailbox, an oversized message, a suspended or moved mailbox, relaying,
    /// a virus, a give-up after retries. Such a phrase may contradict a precise status code
    /// ("550 5.1.1 ... mailbox full" is a full mailbox).
    Mechanism,
    /// The phrase names what failed: the user, the host, the sender, the content, the
    /// receiving system. A precise status code stands against it.
    Subject,
    /// What became of the delivery without saying why: the sender's server gave up
    /// after retrying ("retry timeout exceeded", "message expired"). A cause named
    /// beside it ("connection refused", "unable to contact LDAP server") says more.
    Outcome,
    /// A generic refusal ("rejected", "denied", "policy", "service unavailable"): it only
    /// decides when nothing more specific was said.
    Generic,
}

/// The tier of a built-in rule, from its detail. Details not listed are [`Tier::Subject`].
pub(crate) fn tier_of(reason: &str, detail: Option<&str>) -> Tier {
    match detail {
        Some(
            "virus"
            | "authentication_failed"
            | "reverse_dns"
            | "blocklisted"
            | "bad_reputation"
            | "rate_limited"
            | "too_many_connections"
            | "mailbox_full"
            | "message_too_big"
            | "exceeds_limit"
            | "mailbox_disabled"
            | "mailbox_moved"
            | "relay_denied"
            | "auth_required"
            | "tls_failed"
            | "not_accepting_mail"
            | "recipient_filtered"
            | "not_list_member"
            | "not_in_directory",
        ) => Tier::Mechanism,
        Some("expired") => Tier::Outcome,
        Some("policy" | "unavailable") => Tier::Generic,
        None if reason == "sender_recipient_rejected" => Tier::Generic,
        _ => Tier::Subject,
    }
}

impl Rule {
    /// Where the pattern starts in `text` when every piece occurs there, in order.
    /// A piece that begins with a letter or digit must begin a word of the text, so
    /// "ube" (unsolicited bulk email) does not fire inside "youtube". A `*` spans a short
    /// stretch of one clause only ([`MAX_GAP`] bytes, no `:` or `;`), so "recipient * does
    /// not exist" does not join "recipients:" to another line's "domain does not exist".
    fn match_at(&self, text: &str) -> Option<usize> {
        let (first, rest) = self.pieces.split_first()?;
        let mut from = 0;
        // Try each occurrence of the first piece; the rest follow as closely as they can.
        while let Some(start) = find_word_start(text, from, first) {
            let mut end = start + first.len();
            let mut complete = true;
            for piece in rest {
                match find_word_start(text, end, piece) {
                    Some(at) if at - end <= MAX_GAP && !text[end..at].contains([':', ';']) => {
                        end = at + piece.len();
                    }
                    _ => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                return Some(start);
            }
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
        None
    }

    pub fn label(&self) -> String {
        format!("text: {} ({})", self.pattern, self.source)
    }
}

/// The most text a `*` of a pattern stands for.
const MAX_GAP: usize = 40;

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
    "too_many_connections",
    "exceeds_limit",
    "unavailable",
    "security_error",
    "mailbox_unavailable",
    "not_in_directory",
    "no_valid_recipients",
    "content_policy",
];

fn intern_detail(detail: &str) -> &'static str {
    KNOWN_DETAILS
        .iter()
        .find(|known| **known == detail)
        .copied()
        .unwrap_or_else(|| Box::leak(detail.to_string().into_boxed_str()))
}

/// Parses a rules file (format documented at the top of `rules.tsv`).
/// `origin` names the file in rule labels. Built-in rules get the tier of their detail.
pub(crate) fn parse_rules(text: &str, origin: &str) -> Result<Vec<Rule>, String> {
    let mut rules = parse_lines(text, origin)?;
    for rule in &mut rules {
        rule.tier = rule
            .written_tier
            .unwrap_or_else(|| tier_of(rule.reason, rule.detail));
    }
    Ok(rules)
}

/// Parses an operator's rules file: every rule is in [`Tier::Operator`].
pub(crate) fn parse_operator_rules(text: &str, origin: &str) -> Result<Vec<Rule>, String> {
    parse_lines(text, origin)
}

fn parse_lines(text: &str, origin: &str) -> Result<Vec<Rule>, String> {
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
        if !(3..=4).contains(&columns.len()) {
            return Err(format!(
                "{origin}:{line_no}: expected 3 tab-separated columns (reason, detail, pattern) and an optional tier, found {}",
                columns.len()
            ));
        }
        let written_tier = match columns.get(3) {
            None => None,
            Some(&"mechanism") => Some(Tier::Mechanism),
            Some(&"subject") => Some(Tier::Subject),
            Some(&"outcome") => Some(Tier::Outcome),
            Some(&"generic") => Some(Tier::Generic),
            Some(other) => {
                return Err(format!(
                "{origin}:{line_no}: tier {other:?} must be mechanism, subject, outcome or generic"
            ))
            }
        };
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
            tier: Tier::Operator,
            written_tier,
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

/// The first rule, in file order, whose pattern occurs in `normalized`: how an operator's
/// own rules are read.
pub(crate) fn first_match<'r>(rules: &'r [Rule], normalized: &str) -> Option<&'r Rule> {
    if normalized.is_empty() {
        return None;
    }
    rules
        .iter()
        .find(|rule| rule.match_at(normalized).is_some())
}

/// The rule that decides for `normalized` (see [`normalize_text`]): the most specific
/// [`Tier`], then the phrase found earliest in the text, then the longer pattern, then the
/// earlier line.
pub(crate) fn best_match<'r>(rules: &'r [Rule], normalized: &str) -> Option<&'r Rule> {
    if normalized.is_empty() {
        return None;
    }
    rules
        .iter()
        .enumerate()
        .filter_map(|(line, rule)| {
            rule.match_at(normalized)
                .map(|at| ((rule.tier, at, usize::MAX - rule.pattern.len(), line), rule))
        })
        .min_by_key(|(key, _)| *key)
        .map(|(_, rule)| rule)
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
        assert!(best_match(&rules, "the mailbox is full").is_some());
        assert!(best_match(&rules, "full mailbox").is_none());
    }

    #[test]
    fn wildcards_stay_within_a_clause() {
        let rules = parse_rules("address_not_found\t-\tmailbox * does not exist\n", "t").unwrap();
        assert!(best_match(&rules, "mailbox <ann@example.net> does not exist").is_some());
        assert!(best_match(&rules, "mailbox ann: domain does not exist").is_none());
        let far = format!("mailbox {} does not exist", "x".repeat(60));
        assert!(best_match(&rules, &far).is_none());
        // A later occurrence of the first piece may still complete the pattern.
        assert!(best_match(&rules, "mailbox: the mailbox bob does not exist").is_some());
    }

    #[test]
    fn specific_evidence_beats_generic_whatever_the_line_order() {
        let text = "recipient address rejected: user unknown in local recipient table";
        let generic_first = "sender_recipient_rejected\tpolicy\trejected\n\
address_not_found\tuser_unknown\tuser unknown\n";
        let rules = parse_rules(generic_first, "t").unwrap();
        assert_eq!(
            best_match(&rules, text).unwrap().reason,
            "address_not_found"
        );
        // Same tier: the phrase the server said first wins.
        let rules = parse_rules(
            "other\tmessage_too_big\ttoo large\nother\tmailbox_full\tmailbox is full\n",
            "t",
        )
        .unwrap();
        let found = best_match(&rules, "mailbox is full: message too large").unwrap();
        assert_eq!(found.detail, Some("mailbox_full"));
        // A give-up yields to the cause named beside it.
        let rules = parse_rules(
            "server_unreachable\texpired\tnot going to try again\nservice_unavailable\tsystem_error\tldap\n",
            "t",
        )
        .unwrap();
        let found = best_match(
            &rules,
            "i'm not going to try again; unable to contact ldap server",
        )
        .unwrap();
        assert_eq!(found.detail, Some("system_error"));
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(parse_rules("nonsense\t-\tfoo\n", "t").is_err());
        assert!(parse_rules("other\tmailbox full\n", "t").is_err());
        assert!(parse_rules("other\tBad Detail\tfoo\n", "t").is_err());
        assert!(parse_rules("other\t-\tfoo\tsometimes\n", "t").is_err());
        let written = parse_rules("other\t-\tfoo\tgeneric\n", "t").unwrap();
        assert_eq!(written[0].tier, Tier::Generic);
    }
}
