//! Alert rules (issue #20, part 4), with no I/O: what a rule measures, how it is checked, the
//! decision with hysteresis, and the signature of a webhook notification.
//!
//! Rates are kept in basis points (1 % = 100 bp) so that thresholds compare exactly.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::status::Reason;

/// What a rule measures over its window, of the messages requested in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Share of the window's messages that are `invalid`.
    InvalidRate,
    /// Share that are `soft_bounce`.
    SoftBounceRate,
    /// Share that failed (soft bounce or invalid) with one reason.
    ReasonShare,
}

impl Metric {
    pub const ALL: &'static [Metric] = &[
        Metric::InvalidRate,
        Metric::SoftBounceRate,
        Metric::ReasonShare,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Metric::InvalidRate => "invalid_rate",
            Metric::SoftBounceRate => "soft_bounce_rate",
            Metric::ReasonShare => "reason_share",
        }
    }

    pub fn from_code(code: &str) -> Option<Metric> {
        Metric::ALL.iter().copied().find(|m| m.code() == code)
    }

    /// The locale key of its label.
    pub fn label_key(self) -> &'static str {
        match self {
            Metric::InvalidRate => "alerts.metric.invalid_rate",
            Metric::SoftBounceRate => "alerts.metric.soft_bounce_rate",
            Metric::ReasonShare => "alerts.metric.reason_share",
        }
    }
}

/// A rule's state between evaluations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Ok,
    Firing,
}

impl AlertState {
    pub fn code(self) -> &'static str {
        match self {
            AlertState::Ok => "ok",
            AlertState::Firing => "firing",
        }
    }

    pub fn from_code(code: &str) -> AlertState {
        if code == "firing" {
            AlertState::Firing
        } else {
            AlertState::Ok
        }
    }
}

/// What one evaluation decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The rate crossed the threshold: the rule fires (recorded and notified once).
    Fire,
    /// A firing rule's rate fell below its recovery level: it recovers (recorded and notified once).
    Recover,
    /// Nothing to say: below the threshold, still above the recovery level, or too few requests.
    Stay,
}

impl Transition {
    /// The alert kind recorded for it.
    pub fn kind(self) -> Option<&'static str> {
        match self {
            Transition::Fire => Some("fired"),
            Transition::Recover => Some("recovered"),
            Transition::Stay => None,
        }
    }
}

/// The counts of a rule's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowCounts {
    /// Messages requested in the window (for a provider: to that provider).
    pub requests: i64,
    /// Of them, those the metric counts.
    pub matched: i64,
}

impl WindowCounts {
    /// The rate in basis points, rounded down; 0 without requests.
    pub fn value_bp(self) -> i32 {
        if self.requests <= 0 {
            return 0;
        }
        ((self.matched.max(0) as i128 * 10_000) / self.requests as i128).min(10_000) as i32
    }
}

/// The thresholds of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Fires at or above this rate.
    pub threshold_bp: i32,
    /// A firing rule recovers strictly below this rate (lower than the threshold: hysteresis,
    /// so that a rate wavering around the threshold does not fire again and again).
    pub recover_bp: i32,
    /// Fewer requests in the window than this decide nothing: a rule keeps its state.
    pub min_requests: i64,
}

/// The decision of one evaluation. A window with too few requests changes nothing (a firing
/// rule stays firing until there is enough mail to say it is better).
pub fn decide(state: AlertState, counts: WindowCounts, t: Thresholds) -> Transition {
    if counts.requests < t.min_requests.max(1) {
        return Transition::Stay;
    }
    let value = counts.value_bp();
    match state {
        AlertState::Ok if value >= t.threshold_bp => Transition::Fire,
        AlertState::Firing if value < t.recover_bp => Transition::Recover,
        _ => Transition::Stay,
    }
}

/// Limits of what an owner may set.
pub const MIN_WINDOW_MINUTES: i32 = 5;
pub const MAX_WINDOW_MINUTES: i32 = 1_440;
pub const MAX_MIN_REQUESTS: i64 = 10_000_000;

/// A rule as an owner submits it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub metric: Metric,
    pub reason: Option<Reason>,
    /// A provider id as in the provider mapping (`netease`, `qq`, a bare domain), or `None`
    /// for all mail.
    pub provider: Option<String>,
    pub threshold_bp: i32,
    pub recover_bp: i32,
    pub window_minutes: i32,
    pub min_requests: i64,
}

/// Why a submitted rule is refused: the form field and the locale key of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub field: &'static str,
    pub key: &'static str,
}

fn refuse(field: &'static str, key: &'static str) -> RuleError {
    RuleError { field, key }
}

/// Parses a percentage as typed ("5", "2.5", "0.25 %") into basis points.
pub fn parse_percent_bp(text: &str) -> Option<i32> {
    let t = text.trim().trim_end_matches('%').trim();
    if t.is_empty() || t.starts_with('-') || t.starts_with('+') {
        return None;
    }
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
        || whole.len() > 3
    {
        return None;
    }
    let whole: i32 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i32 = format!("{frac:0<2}").parse().ok()?;
    let bp = whole * 100 + frac;
    (bp <= 10_000).then_some(bp)
}

/// Basis points as a percentage for people and forms: `5`, `2.5`, `0.25`.
pub fn format_bp(bp: i32) -> String {
    let (whole, frac) = (bp / 100, bp % 100);
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

/// A provider id as the mapping writes them: lower-case letters, digits, dots and dashes.
pub fn provider_id_is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 253
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
}

/// The form of a rule, as strings.
pub struct RuleForm<'a> {
    pub metric: &'a str,
    pub reason: &'a str,
    pub provider: &'a str,
    pub threshold: &'a str,
    pub recover: &'a str,
    pub window_minutes: &'a str,
    pub min_requests: &'a str,
}

impl RuleForm<'_> {
    /// Checks every field against the list's providers alone.
    pub fn check(&self) -> Result<RuleSpec, RuleError> {
        self.check_with(&super::providers::ProviderMap::builtin())
    }

    /// Checks every field; a typed domain becomes its provider by `map` (the account's own
    /// domains, then the list). The first problem found is returned with its field.
    pub fn check_with(&self, map: &super::providers::ProviderMap) -> Result<RuleSpec, RuleError> {
        let metric = Metric::from_code(self.metric.trim())
            .ok_or_else(|| refuse("metric", "alerts.error.metric"))?;
        let reason = match (metric, self.reason.trim()) {
            (Metric::ReasonShare, "") => return Err(refuse("reason", "alerts.error.reason")),
            (Metric::ReasonShare, code) => Some(
                Reason::from_code(code).ok_or_else(|| refuse("reason", "alerts.error.reason"))?,
            ),
            _ => None,
        };
        let provider = self.provider.trim().to_ascii_lowercase();
        let provider = if provider.is_empty() || provider == "all" {
            None
        } else if provider.contains('.') && super::providers::is_domain(&provider) {
            // A domain of a listed provider means that provider (163.com is NetEase's), as
            // does a domain the account maps to a provider of its own.
            Some(map.provider_of(&provider))
        } else if provider_id_is_valid(&provider) {
            Some(provider)
        } else {
            return Err(refuse("provider", "alerts.error.provider"));
        };
        let threshold_bp = parse_percent_bp(self.threshold)
            .filter(|bp| *bp > 0)
            .ok_or_else(|| refuse("threshold", "alerts.error.threshold"))?;
        let recover_bp = if self.recover.trim().is_empty() {
            threshold_bp * 3 / 5
        } else {
            parse_percent_bp(self.recover)
                .filter(|bp| *bp < threshold_bp)
                .ok_or_else(|| refuse("recover", "alerts.error.recover"))?
        };
        let window_minutes = self
            .window_minutes
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|m| (MIN_WINDOW_MINUTES..=MAX_WINDOW_MINUTES).contains(m))
            .ok_or_else(|| refuse("window_minutes", "alerts.error.window"))?;
        let min_requests = self
            .min_requests
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|m| (1..=MAX_MIN_REQUESTS).contains(m))
            .ok_or_else(|| refuse("min_requests", "alerts.error.min_requests"))?;
        Ok(RuleSpec {
            metric,
            reason,
            provider,
            threshold_bp,
            recover_bp,
            window_minutes,
            min_requests,
        })
    }
}

/// The rules a new account starts with, all off until its owner turns them on: the account's
/// invalid and soft-bounce rates, its share of spam rejections, and the invalid rate of the
/// three providers most senders to Chinese and global inboxes watch.
pub fn default_rules() -> Vec<RuleSpec> {
    let rule = |metric, reason, provider: Option<&str>, t, r, w, m| RuleSpec {
        metric,
        reason,
        provider: provider.map(str::to_string),
        threshold_bp: t,
        recover_bp: r,
        window_minutes: w,
        min_requests: m,
    };
    vec![
        rule(Metric::InvalidRate, None, None, 500, 300, 60, 200),
        rule(Metric::SoftBounceRate, None, None, 500, 300, 60, 200),
        rule(
            Metric::ReasonShare,
            Some(Reason::Spam),
            None,
            100,
            50,
            60,
            500,
        ),
        rule(
            Metric::InvalidRate,
            None,
            Some("netease"),
            1000,
            600,
            30,
            100,
        ),
        rule(Metric::InvalidRate, None, Some("qq"), 1000, 600, 30, 100),
        rule(Metric::InvalidRate, None, Some("gmail"), 1000, 600, 30, 100),
    ]
}

/// The header names of a webhook notification (README, "Alerts").
pub const TIMESTAMP_HEADER: &str = "X-Mailtrail-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Mailtrail-Signature";
pub const DELIVERY_HEADER: &str = "X-Mailtrail-Delivery";

/// `v1=` and the lower-case hex of HMAC-SHA256(secret, timestamp + "." + body), where the
/// timestamp is the decimal Unix time in seconds sent in [`TIMESTAMP_HEADER`].
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Backoff before delivery attempt `attempts + 1`, after `attempts` failed ones: 30 s, 1 min,
/// 2 min, 4 min, 8 min, 16 min.
pub fn retry_backoff_ms(attempts: i32) -> i64 {
    30_000i64 << (attempts.clamp(1, 6) - 1)
}

/// A notification is given up after this many attempts (about half an hour of trying).
pub const MAX_DELIVERY_ATTEMPTS: i32 = 7;

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        threshold_bp: 1000,
        recover_bp: 600,
        min_requests: 100,
    };

    fn counts(requests: i64, matched: i64) -> WindowCounts {
        WindowCounts { requests, matched }
    }

    #[test]
    fn fires_once_and_recovers_once_with_hysteresis() {
        let mut state = AlertState::Ok;
        let mut seen = Vec::new();
        // 12 %, 9 % (between recovery and threshold), 11 %, 5 %, 9 %, 12 %
        for (r, m) in [
            (100, 12),
            (100, 9),
            (100, 11),
            (100, 5),
            (100, 9),
            (100, 12),
        ] {
            let t = decide(state, counts(r, m), T);
            match t {
                Transition::Fire => state = AlertState::Firing,
                Transition::Recover => state = AlertState::Ok,
                Transition::Stay => {}
            }
            seen.push(t);
        }
        use Transition::*;
        assert_eq!(seen, [Fire, Stay, Stay, Recover, Stay, Fire]);
    }

    #[test]
    fn too_few_requests_decide_nothing() {
        assert_eq!(decide(AlertState::Ok, counts(99, 99), T), Transition::Stay);
        assert_eq!(
            decide(AlertState::Firing, counts(99, 0), T),
            Transition::Stay
        );
        assert_eq!(decide(AlertState::Ok, counts(100, 10), T), Transition::Fire);
    }

    #[test]
    fn percentages_parse_exactly() {
        assert_eq!(parse_percent_bp("5"), Some(500));
        assert_eq!(parse_percent_bp("2.5 %"), Some(250));
        assert_eq!(parse_percent_bp("0.25"), Some(25));
        assert_eq!(parse_percent_bp(".5"), Some(50));
        assert_eq!(parse_percent_bp("100"), Some(10_000));
        for bad in ["", "-1", "101", "1.234", "abc", "1e3", "."] {
            assert_eq!(parse_percent_bp(bad), None, "{bad}");
        }
        assert_eq!(format_bp(250), "2.5");
        assert_eq!(format_bp(25), "0.25");
        assert_eq!(format_bp(1000), "10");
    }

    #[test]
    fn a_form_is_checked_field_by_field() {
        let form = RuleForm {
            metric: "reason_share",
            reason: "",
            provider: "NetEase",
            threshold: "5",
            recover: "",
            window_minutes: "30",
            min_requests: "100",
        };
        assert_eq!(form.check().unwrap_err().field, "reason");
        let form = RuleForm {
            reason: "spam",
            ..form
        };
        let spec = form.check().unwrap();
        assert_eq!(spec.provider.as_deref(), Some("netease"));
        let by_domain = RuleForm {
            provider: "163.com",
            ..form
        };
        assert_eq!(
            by_domain.check().unwrap().provider.as_deref(),
            Some("netease")
        );
        assert_eq!((spec.threshold_bp, spec.recover_bp), (500, 300));
        let form = RuleForm {
            recover: "6",
            ..form
        };
        assert_eq!(form.check().unwrap_err().field, "recover");
        let form = RuleForm {
            recover: "",
            window_minutes: "2",
            ..form
        };
        assert_eq!(form.check().unwrap_err().field, "window_minutes");
    }

    #[test]
    fn the_signature_is_hmac_over_timestamp_dot_body() {
        let sig = webhook_signature("secret", 1_700_000_000, b"{}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            sig,
            format!("v1={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_eq!(retry_backoff_ms(1), 30_000);
        assert_eq!(retry_backoff_ms(3), 120_000);
    }
}
