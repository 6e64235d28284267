//! The suppression lists of DESIGN §3 — bounce list, spam reports, unsubscribes, blacklist —
//! as ingestion fills them and as the list and address pages read them.
//!
//! An address is compared after trimming and lower-casing. A blacklist entry may name a whole
//! domain as `@example.com`. Unexpired bounce-list entries and spam reports count as blacklist
//! entries; an entry whose `expires_at` has passed never suppresses, whether or not the sweep
//! has deleted it yet.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use serde::Serialize;

use super::{AccountScope, StoreResult};
use crate::db::schema::{blacklist, bounces, spam_reports, unsubscribes};
use crate::db::{placeholders, DbConn};
use crate::domain::{bounce_backoff_ms, normalize_address, Millis, Reason, SPAM_REPORT_TTL_MS};

/// The four lists. Codes are the ones the exports and the suppression API use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListKind {
    Bounces,
    SpamReports,
    Unsubscribes,
    Blacklist,
}

impl ListKind {
    pub const ALL: &'static [ListKind] = &[
        ListKind::Bounces,
        ListKind::SpamReports,
        ListKind::Unsubscribes,
        ListKind::Blacklist,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ListKind::Bounces => "bounces",
            ListKind::SpamReports => "spam_reports",
            ListKind::Unsubscribes => "unsubscribes",
            ListKind::Blacklist => "blacklist",
        }
    }

    /// Accepts the code and the URL spelling (`spam-reports`).
    pub fn from_code(code: &str) -> Option<ListKind> {
        match code {
            "bounces" => Some(ListKind::Bounces),
            "spam_reports" | "spam-reports" => Some(ListKind::SpamReports),
            "unsubscribes" => Some(ListKind::Unsubscribes),
            "blacklist" => Some(ListKind::Blacklist),
            _ => None,
        }
    }

    pub fn label(self, lang: &str) -> &'static str {
        let zh = lang.starts_with("zh");
        match (self, zh) {
            (ListKind::Bounces, true) => "退信列表",
            (ListKind::Bounces, false) => "Bounce list",
            (ListKind::SpamReports, true) => "垃圾举报列表",
            (ListKind::SpamReports, false) => "Spam reports",
            (ListKind::Unsubscribes, true) => "取消订阅列表",
            (ListKind::Unsubscribes, false) => "Unsubscribes",
            (ListKind::Blacklist, true) => "黑名单",
            (ListKind::Blacklist, false) => "Blacklist",
        }
    }

    /// The reason a request to an address on this list gets (DESIGN §3).
    pub fn suppression_reason(self) -> Reason {
        match self {
            ListKind::Unsubscribes => Reason::Unsubscribed,
            _ => Reason::Blacklisted,
        }
    }
}

impl Serialize for ListKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
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

/// The entry that blocks a send to `address` at `now`, if any.
pub fn active_suppression(
    conn: &mut DbConn,
    scope: &AccountScope,
    address: &str,
    now: Millis,
) -> StoreResult<Option<Suppression>> {
    let entries = entries_for_addresses(conn, scope, &[address.to_string()])?;
    Ok(suppression_among(&entries, address, now))
}

/// Every entry of every list for `address` (its domain's blacklist entry included), expired
/// ones too, newest first.
pub fn entries_for_address(
    conn: &mut DbConn,
    scope: &AccountScope,
    address: &str,
) -> StoreResult<Vec<ListEntry>> {
    let mut entries = entries_for_addresses(conn, scope, &[address.to_string()])?;
    entries.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.list.cmp(&b.list)));
    Ok(entries)
}

type BounceRow = (
    i64,
    String,
    String,
    Option<String>,
    i64,
    i64,
    i32,
    Option<i64>,
);
type SpamReportRow = (i64, String, Option<String>, Option<String>, i64, i64);
type UnsubscribeRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);
type BlacklistRow = (i64, String, String, Option<String>, i64, Option<i64>);

/// Every entry of every list for any of `addresses`, plus the blacklist entries of their
/// domains: four indexed queries however many addresses.
pub fn entries_for_addresses(
    conn: &mut DbConn,
    scope: &AccountScope,
    addresses: &[String],
) -> StoreResult<Vec<ListEntry>> {
    let account = scope.account_id();
    let mut entries = Vec::new();
    let mut wanted: Vec<String> = addresses.iter().map(|a| normalize_address(a)).collect();
    wanted.sort();
    wanted.dedup();
    for chunk in wanted.chunks(2_000) {
        let mut with_domains: Vec<String> = chunk.to_vec();
        with_domains.extend(
            chunk
                .iter()
                .filter_map(|a| a.rsplit_once('@').map(|(_, d)| format!("@{d}"))),
        );
        let rows: Vec<BounceRow> = bounces::table
            .filter(bounces::account_id.eq(account))
            .filter(bounces::address.eq_any(chunk))
            .select((
                bounces::id,
                bounces::address,
                bounces::reason_text,
                bounces::email_id,
                bounces::bounced_at,
                bounces::expires_at,
                bounces::bounce_count,
                bounces::first_bounced_at,
            ))
            .load(conn)?;
        // A bounce-list entry is in force from the address's first bounce.
        entries.extend(rows.into_iter().map(
            |(id, address, reason, email_id, latest, expires, count, first)| ListEntry {
                list: ListKind::Bounces,
                id,
                address,
                reason: Some(reason),
                source: None,
                email_id,
                api_user: None,
                tag: None,
                created_at: first.unwrap_or(latest).min(latest),
                expires_at: Some(expires),
                bounce_count: Some(count),
            },
        ));
        let rows: Vec<SpamReportRow> = spam_reports::table
            .filter(spam_reports::account_id.eq(account))
            .filter(spam_reports::address.eq_any(chunk))
            .select((
                spam_reports::id,
                spam_reports::address,
                spam_reports::email_id,
                spam_reports::api_user,
                spam_reports::reported_at,
                spam_reports::expires_at,
            ))
            .load(conn)?;
        entries.extend(
            rows.into_iter()
                .map(|(id, address, email_id, api_user, at, expires)| ListEntry {
                    list: ListKind::SpamReports,
                    id,
                    address,
                    reason: None,
                    source: None,
                    email_id,
                    api_user,
                    tag: None,
                    created_at: at,
                    expires_at: Some(expires),
                    bounce_count: None,
                }),
        );
        let rows: Vec<UnsubscribeRow> = unsubscribes::table
            .filter(unsubscribes::account_id.eq(account))
            .filter(unsubscribes::address.eq_any(chunk))
            .select((
                unsubscribes::id,
                unsubscribes::address,
                unsubscribes::reason,
                unsubscribes::source,
                unsubscribes::email_id,
                unsubscribes::api_user,
                unsubscribes::tag,
                unsubscribes::unsubscribed_at,
            ))
            .load(conn)?;
        entries.extend(rows.into_iter().map(
            |(id, address, reason, source, email_id, api_user, tag, at)| ListEntry {
                list: ListKind::Unsubscribes,
                id,
                address,
                reason: Some(reason),
                source: Some(source),
                email_id,
                api_user,
                tag,
                created_at: at,
                expires_at: None,
                bounce_count: None,
            },
        ));
        let rows: Vec<BlacklistRow> = blacklist::table
            .filter(blacklist::account_id.eq(account))
            .filter(blacklist::address.eq_any(&with_domains))
            .select((
                blacklist::id,
                blacklist::address,
                blacklist::source,
                blacklist::api_user,
                blacklist::created_at,
                blacklist::expires_at,
            ))
            .load(conn)?;
        entries.extend(
            rows.into_iter()
                .map(|(id, address, source, api_user, at, expires)| ListEntry {
                    list: ListKind::Blacklist,
                    id,
                    address,
                    reason: None,
                    source: Some(source),
                    email_id: None,
                    api_user,
                    tag: None,
                    created_at: at,
                    expires_at: expires,
                    bounce_count: None,
                }),
        );
    }
    // Two addresses of the same domain load the domain entry twice.
    entries.sort_by_key(|e| (e.list, e.id));
    entries.dedup_by_key(|e| (e.list, e.id));
    Ok(entries)
}

/// Deletes one entry of the scope's account; false when there was none.
pub fn remove_entry(
    conn: &mut DbConn,
    scope: &AccountScope,
    list: ListKind,
    id: i64,
) -> StoreResult<bool> {
    let account = scope.account_id();
    let deleted = match list {
        ListKind::Bounces => diesel::delete(
            bounces::table
                .filter(bounces::account_id.eq(account))
                .filter(bounces::id.eq(id)),
        )
        .execute(conn)?,
        ListKind::SpamReports => diesel::delete(
            spam_reports::table
                .filter(spam_reports::account_id.eq(account))
                .filter(spam_reports::id.eq(id)),
        )
        .execute(conn)?,
        ListKind::Unsubscribes => diesel::delete(
            unsubscribes::table
                .filter(unsubscribes::account_id.eq(account))
                .filter(unsubscribes::id.eq(id)),
        )
        .execute(conn)?,
        ListKind::Blacklist => diesel::delete(
            blacklist::table
                .filter(blacklist::account_id.eq(account))
                .filter(blacklist::id.eq(id)),
        )
        .execute(conn)?,
    };
    Ok(deleted > 0)
}

/// An `address_not_found` result for an address.
#[derive(Debug, Clone)]
pub struct BounceHit {
    pub address: String,
    pub reason_text: String,
    pub email_id: Option<String>,
    pub at: Millis,
}

/// Adds bounces to the bounce list: each one raises the address's count and pushes its expiry
/// out by the backoff of the new count, from the latest bounce.
pub fn record_bounces(
    conn: &mut DbConn,
    scope: &AccountScope,
    hits: &[BounceHit],
) -> StoreResult<()> {
    if hits.is_empty() {
        return Ok(());
    }
    let addresses: Vec<String> = hits.iter().map(|h| normalize_address(&h.address)).collect();
    // Per address: the count, the first bounce, and the latest bounce (its words and emailId).
    let mut merged: HashMap<String, (i32, Millis, BounceHit)> = HashMap::new();
    for chunk in addresses.chunks(2_000) {
        type Existing = (String, i32, i64, String, Option<String>, Option<i64>);
        let existing: Vec<Existing> = bounces::table
            .filter(bounces::account_id.eq(scope.account_id()))
            .filter(bounces::address.eq_any(chunk))
            .select((
                bounces::address,
                bounces::bounce_count,
                bounces::bounced_at,
                bounces::reason_text,
                bounces::email_id,
                bounces::first_bounced_at,
            ))
            .load(conn)?;
        for (address, count, at, reason_text, email_id, first) in existing {
            let hit = BounceHit {
                address: address.clone(),
                reason_text,
                email_id,
                at,
            };
            merged.insert(address, (count, first.unwrap_or(at).min(at), hit));
        }
    }
    for hit in hits {
        let address = normalize_address(&hit.address);
        let entry = merged.entry(address.clone()).or_insert_with(|| {
            let mut first = hit.clone();
            first.address = address.clone();
            (0, hit.at, first)
        });
        entry.0 += 1;
        entry.1 = entry.1.min(hit.at);
        // The latest bounce's words; at the same instant, the larger text, so that the
        // result does not depend on arrival order.
        let later = (hit.at, &hit.reason_text, &hit.email_id)
            > (entry.2.at, &entry.2.reason_text, &entry.2.email_id);
        if later {
            entry.2 = BounceHit {
                address,
                ..hit.clone()
            };
        }
    }
    let sql = placeholders(
        "INSERT INTO bounces (account_id, address, reason_text, source, email_id, bounced_at, bounce_count, expires_at, first_bounced_at) \
         VALUES (?, ?, ?, 'delivery', ?, ?, ?, ?, ?) \
         ON CONFLICT (account_id, address) DO UPDATE SET reason_text = excluded.reason_text, \
         email_id = excluded.email_id, bounced_at = excluded.bounced_at, \
         bounce_count = excluded.bounce_count, expires_at = excluded.expires_at, \
         first_bounced_at = excluded.first_bounced_at",
        !conn.is_sqlite(),
    );
    let mut touched: Vec<&(i32, Millis, BounceHit)> = merged.values().collect();
    touched.sort_by(|a, b| a.2.address.cmp(&b.2.address));
    for (count, first, hit) in touched {
        diesel::sql_query(&sql)
            .bind::<BigInt, _>(scope.account_id())
            .bind::<Text, _>(&hit.address)
            .bind::<Text, _>(&hit.reason_text)
            .bind::<Nullable<Text>, _>(hit.email_id.as_deref())
            .bind::<BigInt, _>(hit.at)
            .bind::<Integer, _>(*count)
            .bind::<BigInt, _>(hit.at + bounce_backoff_ms(*count))
            .bind::<BigInt, _>(*first)
            .execute(conn)?;
    }
    Ok(())
}

/// A complaint (report_spam, or an unsubscribe for spam or fraud).
#[derive(Debug, Clone)]
pub struct SpamHit {
    pub address: String,
    pub email_id: Option<String>,
    pub api_user: Option<String>,
    pub at: Millis,
}

/// Adds spam reports; a second report of an address renews its 180 days. The entry keeps the
/// first report (its time, emailId and API_USER) and the latest expiry, whatever order the
/// reports arrive in.
pub fn record_spam_reports(
    conn: &mut DbConn,
    scope: &AccountScope,
    hits: &[SpamHit],
) -> StoreResult<()> {
    let sql = placeholders(
        "INSERT INTO spam_reports (account_id, address, email_id, api_user, reported_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (account_id, address) DO UPDATE SET \
         email_id = CASE WHEN excluded.reported_at < spam_reports.reported_at \
           THEN excluded.email_id ELSE spam_reports.email_id END, \
         api_user = CASE WHEN excluded.reported_at < spam_reports.reported_at \
           THEN excluded.api_user ELSE spam_reports.api_user END, \
         reported_at = CASE WHEN excluded.reported_at < spam_reports.reported_at \
           THEN excluded.reported_at ELSE spam_reports.reported_at END, \
         expires_at = CASE WHEN excluded.expires_at > spam_reports.expires_at \
           THEN excluded.expires_at ELSE spam_reports.expires_at END",
        !conn.is_sqlite(),
    );
    for hit in hits {
        diesel::sql_query(&sql)
            .bind::<BigInt, _>(scope.account_id())
            .bind::<Text, _>(normalize_address(&hit.address))
            .bind::<Nullable<Text>, _>(hit.email_id.as_deref())
            .bind::<Nullable<Text>, _>(hit.api_user.as_deref())
            .bind::<BigInt, _>(hit.at)
            .bind::<BigInt, _>(hit.at + SPAM_REPORT_TTL_MS)
            .execute(conn)?;
    }
    Ok(())
}

/// An unsubscribe, from an event, the public page or the API.
#[derive(Debug, Clone)]
pub struct UnsubscribeHit {
    pub address: String,
    /// An [`crate::domain::UnsubscribeReason`] code.
    pub reason: String,
    pub source: String,
    pub email_id: Option<String>,
    pub api_user: Option<String>,
    pub tag: Option<String>,
    pub at: Millis,
}

/// Adds unsubscribes. The first unsubscribe of an address is kept (its time, reason and
/// source): from then on the address is unsubscribed, whatever order the events arrive in.
pub fn record_unsubscribes(
    conn: &mut DbConn,
    scope: &AccountScope,
    hits: &[UnsubscribeHit],
) -> StoreResult<()> {
    let sql = placeholders(
        "INSERT INTO unsubscribes (account_id, address, reason, source, email_id, api_user, tag, unsubscribed_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (account_id, address) DO UPDATE SET reason = excluded.reason, \
         source = excluded.source, email_id = excluded.email_id, api_user = excluded.api_user, \
         tag = excluded.tag, unsubscribed_at = excluded.unsubscribed_at \
         WHERE excluded.unsubscribed_at < unsubscribes.unsubscribed_at",
        !conn.is_sqlite(),
    );
    for hit in hits {
        diesel::sql_query(&sql)
            .bind::<BigInt, _>(scope.account_id())
            .bind::<Text, _>(normalize_address(&hit.address))
            .bind::<Text, _>(&hit.reason)
            .bind::<Text, _>(&hit.source)
            .bind::<Nullable<Text>, _>(hit.email_id.as_deref())
            .bind::<Nullable<Text>, _>(hit.api_user.as_deref())
            .bind::<Nullable<Text>, _>(hit.tag.as_deref())
            .bind::<BigInt, _>(hit.at)
            .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
