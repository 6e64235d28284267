//! Email addresses: the one check every incoming recipient passes, normalising for comparison,
//! and masking for display (DESIGN §3, §9).

/// The longest local part RFC 5321 (§4.5.3.1.1) allows, in octets.
pub const MAX_LOCAL_OCTETS: usize = 64;
/// The longest address that fits a forward path (RFC 5321 §4.5.3.1.3), in octets.
pub const MAX_ADDRESS_OCTETS: usize = 254;

/// Why a recipient is not an address we accept; `Display` is the sentence the sender reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressProblem {
    Empty,
    NoAt,
    SeveralAt,
    EmptyLocalPart,
    LocalPartTooLong,
    TooLong,
    BadDomain,
    Whitespace,
    Control,
    /// Bidi overrides and isolates, zero-width characters, BOMs: invisible, and able to make an
    /// address read as another one.
    Invisible,
    /// `< > [ ] " ' ( ) , ; \`: the marks of a list or a display name, not of one address.
    Punctuation,
}

impl std::fmt::Display for AddressProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressProblem::Empty => "the address is empty",
            AddressProblem::NoAt => "the address has no @",
            AddressProblem::SeveralAt => "the address has more than one @",
            AddressProblem::EmptyLocalPart => "the address has nothing before the @",
            AddressProblem::LocalPartTooLong => "the part before the @ is longer than 64 octets",
            AddressProblem::TooLong => "the address is longer than 254 octets",
            AddressProblem::BadDomain => {
                "the domain must contain a dot (or be an address literal such as [192.0.2.1])"
            }
            AddressProblem::Whitespace => "the address contains whitespace",
            AddressProblem::Control => "the address contains a control character",
            AddressProblem::Invisible => {
                "the address contains an invisible character (bidi override or zero-width)"
            }
            AddressProblem::Punctuation => {
                "the address contains brackets, quotes or list separators"
            }
        })
    }
}

/// Characters that change how text is displayed without being seen.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                      // soft hyphen
        | '\u{034F}'                    // combining grapheme joiner
        | '\u{061C}'                    // Arabic letter mark
        | '\u{115F}' | '\u{1160}'       // Hangul fillers
        | '\u{180E}'                    // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}'       // zero-width space/joiners, LRM, RLM
        | '\u{202A}'..='\u{202E}'       // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'       // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'       // bidi isolates
        | '\u{206A}'..='\u{206F}'       // deprecated format characters
        | '\u{3164}' | '\u{FFA0}'       // Hangul fillers
        | '\u{FEFF}'                    // BOM / zero-width no-break space
        | '\u{FFF9}'..='\u{FFFB}'       // interlinear annotation
        | '\u{E0000}'..='\u{E007F}'     // tags
    )
}

/// A domain with a dot (`example.com`, `例子.中国`), or an address literal (`[192.0.2.1]`).
fn domain_is_valid(domain: &str) -> bool {
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return !literal.is_empty()
            && literal
                .chars()
                .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | 'v' | 'V'))
            && literal.contains(['.', ':']);
    }
    domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains(['[', ']'])
}

/// A recipient address, trimmed and lower-cased, as the lists compare it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// The one check of an address, wherever it comes from (events API, webhooks, forms):
    /// one `@`, a local part of 1–64 octets, a domain with a dot or an address literal, at
    /// most 254 octets, and none of whitespace, control, invisible characters, brackets,
    /// quotes or list separators.
    pub fn check(input: &str) -> Result<Self, AddressProblem> {
        let normalized = normalize_address(input);
        if normalized.is_empty() {
            return Err(AddressProblem::Empty);
        }
        if normalized.chars().any(char::is_whitespace) {
            return Err(AddressProblem::Whitespace);
        }
        if normalized.chars().any(is_invisible) {
            return Err(AddressProblem::Invisible);
        }
        if normalized.chars().any(char::is_control) {
            return Err(AddressProblem::Control);
        }
        let (local, domain) = normalized.rsplit_once('@').ok_or(AddressProblem::NoAt)?;
        if local.contains('@') {
            return Err(AddressProblem::SeveralAt);
        }
        if local.is_empty() {
            return Err(AddressProblem::EmptyLocalPart);
        }
        if local.chars().any(|c| {
            matches!(
                c,
                '<' | '>' | '[' | ']' | '"' | '\'' | '(' | ')' | ',' | ';' | '\\'
            )
        }) || domain
            .chars()
            .any(|c| matches!(c, '<' | '>' | '"' | '\'' | '(' | ')' | ',' | ';' | '\\'))
        {
            return Err(AddressProblem::Punctuation);
        }
        if !domain_is_valid(domain) {
            return Err(AddressProblem::BadDomain);
        }
        if local.len() > MAX_LOCAL_OCTETS {
            return Err(AddressProblem::LocalPartTooLong);
        }
        if normalized.len() > MAX_ADDRESS_OCTETS {
            return Err(AddressProblem::TooLong);
        }
        Ok(EmailAddress(normalized))
    }

    /// [`EmailAddress::check`] when the reason does not matter.
    pub fn parse(input: &str) -> Option<Self> {
        Self::check(input).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Trims and lower-cases an address so that lists compare case-insensitively.
pub fn normalize_address(input: &str) -> String {
    input.trim().to_lowercase()
}

/// `alice@example.com` → `al***@example.com`; short local parts keep one character.
pub fn mask_address(address: &str) -> String {
    match address.rsplit_once('@') {
        // Already masked (an export masks its cells after the rows were presented masked):
        // masking again would turn `a***` into `a****`.
        Some((local, _)) if local.ends_with("***") => address.to_string(),
        Some((local, domain)) => {
            let keep: String = local
                .chars()
                .take(if local.chars().count() > 2 { 2 } else { 1 })
                .collect();
            format!("{keep}***@{domain}")
        }
        None => {
            let keep: String = address.chars().take(2).collect();
            format!("{keep}***")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_masks() {
        assert_eq!(
            EmailAddress::parse("  Alice@Example.COM ")
                .unwrap()
                .as_str(),
            "alice@example.com"
        );
        assert!(EmailAddress::parse("no-at-sign").is_none());
        assert!(EmailAddress::parse("a b@example.com").is_none());
        assert!(EmailAddress::parse("a@[192.0.2.1]").is_some());
        assert!(EmailAddress::parse("a@例子.中国").is_some());
        assert_eq!(mask_address("alice@example.com"), "al***@example.com");
        assert_eq!(mask_address("al@example.com"), "a***@example.com");
        for address in ["alice@example.com", "al@example.com", "a@example.com"] {
            let once = mask_address(address);
            assert_eq!(mask_address(&once), once, "masking {address} twice");
        }
        assert_eq!(mask_address("张三丰@例子.中国"), "张三***@例子.中国");
    }
}

#[cfg(test)]
mod checks {
    use super::*;

    #[test]
    fn hostile_addresses_are_refused_with_their_reason() {
        let cases: &[(&str, AddressProblem)] = &[
            ("", AddressProblem::Empty),
            ("alice", AddressProblem::NoAt),
            ("a@b@example.com", AddressProblem::SeveralAt),
            ("@example.com", AddressProblem::EmptyLocalPart),
            ("alice@localhost", AddressProblem::BadDomain),
            ("alice@example.", AddressProblem::BadDomain),
            ("alice@[example.com", AddressProblem::BadDomain),
            ("[alice@example.com]", AddressProblem::Punctuation),
            ("\"alice\"@example.com", AddressProblem::Punctuation),
            ("a;b@example.com", AddressProblem::Punctuation),
            ("al\u{202E}moc.evil@example.com", AddressProblem::Invisible),
            ("al\u{200B}ice@example.com", AddressProblem::Invisible),
            ("al\u{2066}ice@example.com", AddressProblem::Invisible),
            ("\u{FEFF}alice@example.com", AddressProblem::Invisible),
            ("al\u{0007}ice@example.com", AddressProblem::Control),
            ("al ice@example.com", AddressProblem::Whitespace),
        ];
        for (input, problem) in cases {
            assert_eq!(EmailAddress::check(input), Err(*problem), "{input:?}");
        }
        let local64 = "a".repeat(64);
        assert!(EmailAddress::check(&format!("{local64}@example.com")).is_ok());
        assert_eq!(
            EmailAddress::check(&format!("{local64}b@example.com")),
            Err(AddressProblem::LocalPartTooLong)
        );
        // 254 octets exactly is fine; 255 is not.
        let domain = format!("{}.com", "d".repeat(254 - 64 - 1 - 4));
        assert!(EmailAddress::check(&format!("{local64}@{domain}")).is_ok());
        assert_eq!(
            EmailAddress::check(&format!("{local64}@d{domain}")),
            Err(AddressProblem::TooLong)
        );
        // Octets, not characters: 22 three-octet characters are 66 octets.
        assert_eq!(
            EmailAddress::check(&format!("{}@example.com", "张".repeat(22))),
            Err(AddressProblem::LocalPartTooLong)
        );
    }
}
