//! Email addresses: normalising for comparison and masking for display (DESIGN §3, §9).

/// A recipient address, trimmed and lower-cased, as the lists compare it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Accepts `local@domain` with a non-empty local part and a dotted-or-not domain.
    pub fn parse(input: &str) -> Option<Self> {
        let normalized = normalize_address(input);
        let (local, domain) = normalized.rsplit_once('@')?;
        let valid = !local.is_empty()
            && !domain.is_empty()
            && !normalized
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            && !domain.contains('@');
        valid.then_some(EmailAddress(normalized))
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
        assert_eq!(mask_address("alice@example.com"), "al***@example.com");
        assert_eq!(mask_address("al@example.com"), "a***@example.com");
        assert_eq!(mask_address("张三丰@例子.中国"), "张三***@例子.中国");
    }
}
