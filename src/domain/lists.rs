//! The suppression lists of DESIGN §3 — bounce list, spam reports, unsubscribes, blacklist —
//! and their rules, which need no database: which entry suppresses an address and for how long.
//!
//! An address is compared after trimming and lower-casing. A blacklist entry may name a whole
//! domain as `@example.com`. Unexpired bounce-list entries and spam reports count as blacklist
//! entries; an entry whose `expires_at` has passed never suppresses, whether or not the sweep
//! has deleted it yet.

use serde::Serialize;

use super::status::coded_enum;
use super::{normalize_address, Millis, Reason};

coded_enum!(
    /// The four lists. Codes are the ones the exports and the suppression API use; the URL
    /// spelling `spam-reports` is accepted too.
    ListKind {
        Bounces = (1, "bounces", "退信列表", "Bounce list"),
        SpamReports = (2, "spam_reports" | "spam-reports", "垃圾举报列表", "Spam reports"),
        Unsubscribes = (3, "unsubscribes", "取消订阅列表", "Unsubscribes"),
        Blacklist = (4, "blacklist", "黑名单", "Blacklist"),
    }
);

impl ListKind {
    /// The reason a request to an address on this list gets (DESIGN §3).
    pub fn suppression_reason(self) -> Reason {
        match self {
            ListKind::Unsubscribes => Reason::Unsubscribed,
            _ => Reason::Blacklisted,
        }
    }
}

coded_enum!(
    /// An open or a click; the numbers are SendCloud's `trackType` and what is stored.
    TrackKind {
        Open = (1, "open", "打开", "Opened"),
        Click = (2, "click", "点击", "Clicked"),
    }
);

/// Reads a stored kind; anything but 2 was recorded as an open.
impl From<i16> for TrackKind {
    fn from(n: i16) -> Self {
        TrackKind::from_i16(n).unwrap_or(TrackKind::Open)
    }
}

/// One entry of any list, in one shape, so that the address page can show them side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListEntry {
    pub list: ListKind,
    pub id: i64,
    /// The address, or `@domain` for a blacklisted domain.
    pub address: String,
    /// Bounce list: the MP's words; unsubscribes: the reason code; otherwise none.
    pub reason: Option<String>,
    /// `delivery`, `api`, `ui`, `recipient`, … (spam reports have none).
    pub source: Option<String>,
    pub email_id: Option<String>,
    pub api_user: Option<String>,
    pub tag: Option<String>,
    /// bounced_at, reported_at, unsubscribed_at or created_at.
    pub created_at: Millis,
    /// None: never expires (unsubscribes, blacklist entries without expiry).
    pub expires_at: Option<Millis>,
    /// Bounce list only: how many times the address bounced.
    pub bounce_count: Option<i32>,
}

impl ListEntry {
    pub fn is_active(&self, at: Millis) -> bool {
        self.expires_at.is_none_or(|until| until > at)
    }

    /// Whether the entry counts for a request at `at`: created at or before it and not yet
    /// expired, so that a request's fate never depends on what arrived after it.
    pub fn in_force(&self, at: Millis) -> bool {
        self.created_at <= at && self.is_active(at)
    }

    /// True when this entry names `address` itself or its whole domain.
    pub fn covers(&self, address: &str) -> bool {
        let address = normalize_address(address);
        if self.address == address {
            return true;
        }
        match (self.address.strip_prefix('@'), address.rsplit_once('@')) {
            (Some(domain), Some((_, address_domain))) => domain == address_domain,
            _ => false,
        }
    }
}

/// Why an address may not be sent to: the entry that blocks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    /// `blacklisted` or `unsubscribed`: the reason a request gets.
    pub reason: Reason,
    pub entry: ListEntry,
}

impl Suppression {
    pub fn since(&self) -> Millis {
        self.entry.created_at
    }

    pub fn until(&self) -> Option<Millis> {
        self.entry.expires_at
    }

    /// The evidence recorded on a suppressed message, e.g. `suppressed: blacklist @example.com`.
    pub fn rule(&self) -> String {
        format!(
            "suppressed: {} {}",
            self.entry.list.code(),
            self.entry.address
        )
    }
}

/// Which entry among `entries` suppresses `address` at time `at`: among those in force at
/// `at`, any blacklist-like entry first (the one that lasts longest), then the unsubscribe list.
pub fn suppression_among(entries: &[ListEntry], address: &str, at: Millis) -> Option<Suppression> {
    let active = |list_is_blacklist: bool| {
        entries
            .iter()
            .filter(move |e| (e.list != ListKind::Unsubscribes) == list_is_blacklist)
            .filter(move |e| e.in_force(at) && e.covers(address))
    };
    let blocking = active(true)
        .max_by_key(|e| e.expires_at.unwrap_or(Millis::MAX))
        .or_else(|| active(false).next())?;
    Some(Suppression {
        reason: blocking.list.suppression_reason(),
        entry: blocking.clone(),
    })
}

const HOUR_MS: Millis = 3_600_000;
const DAY_MS: Millis = 24 * HOUR_MS;

/// How long the n-th bounce of an address suppresses it: 1 h, 4 h, 8 h, 1 d, then 2^(n-1)
/// days, at most 180 days.
pub fn bounce_backoff_ms(n: i32) -> Millis {
    match n {
        i32::MIN..=1 => HOUR_MS,
        2 => 4 * HOUR_MS,
        3 => 8 * HOUR_MS,
        4 => DAY_MS,
        n => {
            let days = 1i64
                .checked_shl((n - 1) as u32)
                .unwrap_or(i64::MAX)
                .min(180);
            days * DAY_MS
        }
    }
}

/// A spam report suppresses for 180 days.
pub const SPAM_REPORT_TTL_MS: Millis = 180 * DAY_MS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(bounce_backoff_ms(1), HOUR_MS);
        assert_eq!(bounce_backoff_ms(2), 4 * HOUR_MS);
        assert_eq!(bounce_backoff_ms(3), 8 * HOUR_MS);
        assert_eq!(bounce_backoff_ms(4), DAY_MS);
        assert_eq!(bounce_backoff_ms(5), 16 * DAY_MS);
        assert_eq!(bounce_backoff_ms(9), 180 * DAY_MS);
        assert_eq!(bounce_backoff_ms(500), 180 * DAY_MS);
    }

    fn entry(list: ListKind, address: &str, expires_at: Option<Millis>) -> ListEntry {
        ListEntry {
            list,
            id: 1,
            address: address.into(),
            reason: None,
            source: None,
            email_id: None,
            api_user: None,
            tag: None,
            created_at: 0,
            expires_at,
            bounce_count: None,
        }
    }

    #[test]
    fn blacklist_beats_unsubscribe_and_expiry_ends_suppression() {
        let entries = vec![
            entry(ListKind::Unsubscribes, "a@x.com", None),
            entry(ListKind::Blacklist, "@x.com", Some(100)),
        ];
        let s = suppression_among(&entries, " A@X.com", 50).unwrap();
        assert_eq!(s.reason, Reason::Blacklisted);
        assert_eq!(s.entry.address, "@x.com");
        let s = suppression_among(&entries, "a@x.com", 100).unwrap();
        assert_eq!(s.reason, Reason::Unsubscribed);
        assert!(suppression_among(&entries, "b@x.com", 100).is_none());
        assert!(suppression_among(&entries, "b@y.x.com", 10).is_none());
        let bounce = vec![entry(ListKind::Bounces, "a@x.com", Some(10))];
        assert_eq!(
            suppression_among(&bounce, "a@x.com", 9).map(|s| s.reason),
            Some(Reason::Blacklisted)
        );
        assert!(suppression_among(&bounce, "a@x.com", 10).is_none());
        // Only entries in force at the request count: one created later does not reach back.
        let mut later = entry(ListKind::Unsubscribes, "a@x.com", None);
        later.created_at = 50;
        assert!(suppression_among(&[later.clone()], "a@x.com", 49).is_none());
        assert!(suppression_among(&[later], "a@x.com", 50).is_some());
    }
}
