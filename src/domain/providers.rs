//! Mailbox providers: which provider receives mail for a recipient domain (DESIGN §2, issue 20).
//!
//! The list is data, in `providers.tsv` beside this file, compiled in. A domain it lists maps
//! to its provider's id (`qq`, `netease`, `gmail`, …); any other domain is its own provider, its
//! id the bare domain (`example-corp.cn`), unless an MX host reported for the message ends in
//! a listed suffix (a company on Tencent Exmail is `exmail`). An account may map its own large
//! domains on top ([`ProviderMap::with_account_domains`]).

use std::collections::HashMap;
use std::sync::OnceLock;

/// The id of a provider: a known provider's id (no dot) or a bare domain (always a dot).
pub type ProviderId = String;

/// The id given to a recipient without a domain.
pub const UNKNOWN_PROVIDER: &str = "unknown";

/// Longest provider id or domain kept.
const MAX_ID_LEN: usize = 190;

/// A provider of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: &'static str,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    pub domains: Vec<&'static str>,
    pub mx_suffixes: Vec<&'static str>,
}

impl Provider {
    /// The provider's name in `lang` ("zh-CN" or "en").
    pub fn name(&self, lang: &str) -> &'static str {
        if lang.starts_with("zh") {
            self.name_zh
        } else {
            self.name_en
        }
    }
}

struct Catalogue {
    providers: Vec<Provider>,
    by_domain: HashMap<&'static str, usize>,
    /// MX suffixes with their provider, longest first.
    mx: Vec<(&'static str, usize)>,
}

const DATA: &str = include_str!("providers.tsv");

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| parse(DATA).expect("providers.tsv is checked by its tests"))
}

fn list(field: &'static str) -> Vec<&'static str> {
    field
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse(data: &'static str) -> Result<Catalogue, String> {
    let mut providers = Vec::new();
    let mut by_domain = HashMap::new();
    let mut mx = Vec::new();
    for (n, line) in data.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != 5 {
            return Err(format!("line {}: 5 fields expected", n + 1));
        }
        let id = fields[0];
        if !is_provider_name(id) || id == UNKNOWN_PROVIDER {
            return Err(format!("line {}: bad id {id:?}", n + 1));
        }
        if providers.iter().any(|p: &Provider| p.id == id) {
            return Err(format!("line {}: id {id} twice", n + 1));
        }
        let index = providers.len();
        let provider = Provider {
            id,
            name_zh: fields[1],
            name_en: fields[2],
            domains: list(fields[3]),
            mx_suffixes: list(fields[4]),
        };
        for d in &provider.domains {
            if by_domain.insert(*d, index).is_some() || !d.contains('.') {
                return Err(format!("line {}: domain {d} twice or bare", n + 1));
            }
        }
        for s in &provider.mx_suffixes {
            mx.push((*s, index));
        }
        providers.push(provider);
    }
    mx.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    Ok(Catalogue {
        providers,
        by_domain,
        mx,
    })
}

/// Every provider of the list, in the list's order.
pub fn known_providers() -> &'static [Provider] {
    &catalogue().providers
}

/// The listed provider with this id.
pub fn known_provider(id: &str) -> Option<&'static Provider> {
    catalogue().providers.iter().find(|p| p.id == id)
}

/// A name a person may give a provider of their own: lowercase letters, digits, `_`, `-`.
pub fn is_provider_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A domain as the map keys it: lowercase, no trailing dot, no surrounding space.
pub fn normalize_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A plausible mail domain: labels of letters, digits and `-` (or non-ASCII), with a dot.
pub fn is_domain(s: &str) -> bool {
    s.len() <= MAX_ID_LEN
        && s.contains('.')
        && s.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || !c.is_ascii())
        })
}

/// Whether `s` can be a provider id: a provider's name or a bare domain. What the
/// `provider` filter of `/status` accepts.
pub fn is_provider_id(s: &str) -> bool {
    is_provider_name(s) || is_domain(s)
}

/// The domain of an address (after its last `@`), normalized; empty without one.
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| normalize_domain(d))
        .unwrap_or_default()
}

/// The provider of a recipient domain by the list alone: a listed domain's provider, else
/// the domain itself.
pub fn provider_of(domain: &str) -> ProviderId {
    ProviderMap::builtin().provider_of(domain)
}

/// The listed provider whose MX suffix is the longest one `mx_host` ends in.
pub fn provider_of_mx(mx_host: &str) -> Option<&'static str> {
    let host = normalize_domain(mx_host);
    let host = host.trim_start_matches('[');
    catalogue()
        .mx
        .iter()
        .find(|(suffix, _)| {
            host == *suffix
                || host
                    .strip_suffix(suffix)
                    .is_some_and(|head| head.ends_with('.'))
        })
        .map(|(_, i)| catalogue().providers[*i].id)
}

/// The map an account's ingestion uses: the list, with the account's own domains on top.
#[derive(Debug, Clone, Default)]
pub struct ProviderMap {
    account_domains: HashMap<String, String>,
}

impl ProviderMap {
    /// The list alone.
    pub fn builtin() -> ProviderMap {
        ProviderMap::default()
    }

    /// The list with an account's own `(domain, provider id)` pairs, which win over it.
    pub fn with_account_domains(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        ProviderMap {
            account_domains: pairs
                .into_iter()
                .map(|(d, p)| (normalize_domain(&d), p))
                .collect(),
        }
    }

    /// The provider of a recipient domain (see the module's text).
    pub fn provider_of(&self, domain: &str) -> ProviderId {
        let domain = normalize_domain(domain);
        if let Some(p) = self.account_domains.get(&domain) {
            return p.clone();
        }
        if let Some(i) = catalogue().by_domain.get(domain.as_str()) {
            return catalogue().providers[*i].id.to_string();
        }
        if domain.is_empty() || !is_domain(&domain) {
            return UNKNOWN_PROVIDER.to_string();
        }
        domain
    }

    /// The provider of a recipient address.
    pub fn provider_of_address(&self, address: &str) -> ProviderId {
        self.provider_of(&domain_of(address))
    }

    /// The provider of a recipient once an MX host of its domain is known: the MX's provider
    /// when the domain is neither listed nor one of the account's, else as without it.
    pub fn provider_with_mx(&self, address: &str, mx_host: Option<&str>) -> ProviderId {
        let by_domain = self.provider_of_address(address);
        let listed = !by_domain.contains('.');
        match mx_host.filter(|_| !listed).and_then(provider_of_mx) {
            Some(p) => p.to_string(),
            None => by_domain,
        }
    }
}

/// The name of a provider id to show in `lang`: the list's name, else the id (a domain, or
/// an account's own name).
pub fn provider_name(id: &str, lang: &str) -> String {
    match known_provider(id) {
        Some(p) => p.name(lang).to_string(),
        None => id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_parses_and_names_the_big_providers() {
        let c = catalogue();
        assert!(c.providers.len() >= 15);
        for (domain, id) in [
            ("qq.com", "qq"),
            ("foxmail.com", "qq"),
            ("vip.qq.com", "qq"),
            ("163.com", "netease"),
            ("126.com", "netease"),
            ("yeah.net", "netease"),
            ("vip.163.com", "netease"),
            ("sina.com", "sina"),
            ("sohu.com", "sohu"),
            ("aliyun.com", "aliyun"),
            ("gmail.com", "gmail"),
            ("hotmail.com", "outlook"),
            ("live.com", "outlook"),
            ("outlook.com", "outlook"),
            ("yahoo.com", "yahoo"),
            ("icloud.com", "icloud"),
        ] {
            assert_eq!(provider_of(domain), id, "{domain}");
        }
    }

    #[test]
    fn other_domains_are_their_own_provider() {
        assert_eq!(provider_of("Example-Corp.CN."), "example-corp.cn");
        assert_eq!(provider_of(""), UNKNOWN_PROVIDER);
        assert_eq!(provider_of("no_dots"), UNKNOWN_PROVIDER);
        assert_eq!(
            ProviderMap::builtin().provider_of_address("A@Sub.QQ.com"),
            "sub.qq.com"
        );
        assert_eq!(
            ProviderMap::builtin().provider_of_address("nobody"),
            "unknown"
        );
    }

    #[test]
    fn an_mx_host_names_the_host_of_an_unlisted_domain() {
        let map = ProviderMap::builtin();
        assert_eq!(provider_of_mx("mxbiz1.qq.com"), Some("exmail"));
        assert_eq!(provider_of_mx("mx3.qq.com"), Some("qq"));
        assert_eq!(
            provider_of_mx("ASPMX.L.GOOGLE.COM."),
            Some("google_workspace")
        );
        assert_eq!(
            provider_of_mx("alt1.aspmx.l.google.com"),
            Some("google_workspace")
        );
        assert_eq!(
            provider_of_mx("acme-cn.mail.protection.outlook.com"),
            Some("microsoft365")
        );
        assert_eq!(
            provider_of_mx("hotmail-com.olc.protection.outlook.com"),
            Some("outlook")
        );
        assert_eq!(provider_of_mx("notqq.com"), None);
        assert_eq!(provider_of_mx("mx.example-corp.cn"), None);
        assert_eq!(
            map.provider_with_mx("a@acme.com.cn", Some("mxbiz1.qq.com")),
            "exmail"
        );
        assert_eq!(
            map.provider_with_mx("a@acme.com.cn", Some("mx.acme.com.cn")),
            "acme.com.cn"
        );
        // A listed domain keeps its provider whatever MX is reported.
        assert_eq!(
            map.provider_with_mx("a@qq.com", Some("mxbiz1.qq.com")),
            "qq"
        );
    }

    #[test]
    fn an_accounts_domains_win_over_the_list() {
        let map = ProviderMap::with_account_domains([
            ("BigCorp.cn".to_string(), "bigcorp".to_string()),
            ("qq.com".to_string(), "exmail".to_string()),
        ]);
        assert_eq!(map.provider_of_address("x@bigcorp.cn"), "bigcorp");
        assert_eq!(map.provider_of("qq.com"), "exmail");
        assert_eq!(map.provider_of("163.com"), "netease");
        assert_eq!(
            map.provider_with_mx("x@bigcorp.cn", Some("mxbiz1.qq.com")),
            "bigcorp"
        );
    }

    #[test]
    fn ids_and_names() {
        assert!(is_provider_id("netease"));
        assert!(is_provider_id("example-corp.cn"));
        assert!(!is_provider_id("Bad Id"));
        assert!(!is_provider_id(""));
        assert!(!is_provider_id("a..b"));
        assert_eq!(provider_name("netease", "zh-CN"), "网易邮箱");
        assert_eq!(provider_name("netease", "en"), "NetEase Mail");
        assert_eq!(provider_name("acme.cn", "en"), "acme.cn");
        assert!(known_providers().iter().all(|p| !p.name_zh.is_empty()));
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(parse("x\ta\tb\tx.com\t\n").is_ok());
        assert!(parse("x\ta\tb\n").is_err());
        assert!(parse("X\ta\tb\tx.com\t\n").is_err());
        assert!(parse("x\ta\tb\tx.com\t\ny\ta\tb\tx.com\t\n").is_err());
    }
}
