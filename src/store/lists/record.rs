//! Writes to the lists: what ingestion records (bounces, spam reports and unsubscribes, each
//! an upsert on `(account_id, address)`), and manual adds through the UI or the API.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::pages::{page, ListFilter};
use crate::db::schema::{bounces, spam_reports, unsubscribes};
use crate::db::{db_run, DbConn};
use crate::domain::{
    bounce_backoff_ms, normalize_address, ListEntry, ListKind, Millis, SPAM_REPORT_TTL_MS,
};
use crate::store::{AccountScope, StoreResult};

/// The upsert of an ingestion record: `row` into the list `$table`, or, where the account
/// already has the address, its `$col`s set to the new row's.
macro_rules! upsert_address {
    ($table:ident, $row:expr, [$($col:ident),+ $(,)?]) => {
        diesel::insert_into($table::table)
            .values($row)
            .on_conflict(($table::account_id, $table::address))
            .do_update()
            .set(($($table::$col.eq(excluded($table::$col)),)+))
    };
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
/// out by the backoff of the new count, from the latest bounce. The entry also keeps the first
/// bounce, from which it is in force, so that it does not depend on arrival order.
pub fn record_bounces(
    conn: &mut DbConn,
    scope: &AccountScope,
    hits: &[BounceHit],
) -> StoreResult<()> {
    if hits.is_empty() {
        return Ok(());
    }
    let mut merged = existing_bounces(conn, scope, hits)?;
    merge_bounces(&mut merged, hits);
    let mut touched: Vec<&MergedBounce> = merged.values().collect();
    touched.sort_by(|a, b| a.2.address.cmp(&b.2.address));
    for bounce in touched {
        upsert_bounce(conn, scope, bounce)?;
    }
    Ok(())
}

/// Per address: the count, the first bounce, and the latest bounce (its words and emailId).
type MergedBounce = (i32, Millis, BounceHit);

/// `load` run over the addresses of `addresses`, normalised, a few thousand at a time (a
/// query's parameters are limited).
fn by_address_chunks<T>(
    addresses: impl Iterator<Item = String>,
    mut load: impl FnMut(&[String]) -> StoreResult<Vec<T>>,
) -> StoreResult<Vec<T>> {
    let addresses: Vec<String> = addresses.map(|a| normalize_address(&a)).collect();
    let mut out = Vec::new();
    for chunk in addresses.chunks(2_000) {
        out.extend(load(chunk)?);
    }
    Ok(out)
}

/// The bounce list's entries for the hits' addresses, as they stand.
fn existing_bounces(
    conn: &mut DbConn,
    scope: &AccountScope,
    hits: &[BounceHit],
) -> StoreResult<HashMap<String, MergedBounce>> {
    type Existing = (String, i32, i64, String, Option<String>, Option<i64>);
    let existing: Vec<Existing> =
        by_address_chunks(hits.iter().map(|h| h.address.clone()), |chunk| {
            bounces::table
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
                .load(conn)
        })?;
    let mut merged = HashMap::new();
    for (address, count, at, reason_text, email_id, first) in existing {
        let hit = BounceHit {
            address: address.clone(),
            reason_text,
            email_id,
            at,
        };
        merged.insert(address, (count, first.unwrap_or(at).min(at), hit));
    }
    Ok(merged)
}

/// Counts each hit into its address's entry.
fn merge_bounces(merged: &mut HashMap<String, MergedBounce>, hits: &[BounceHit]) {
    for hit in hits {
        let address = normalize_address(&hit.address);
        let entry = merged.entry(address.clone()).or_insert_with(|| {
            let mut first = hit.clone();
            first.address = address.clone();
            (0, hit.at, first)
        });
        entry.0 += 1;
        entry.1 = entry.1.min(hit.at);
        // The latest bounce's words; at the same instant the larger text, so that the result
        // does not depend on arrival order.
        let later = (hit.at, &hit.reason_text, &hit.email_id)
            > (entry.2.at, &entry.2.reason_text, &entry.2.email_id);
        if later {
            entry.2 = BounceHit {
                address,
                ..hit.clone()
            };
        }
    }
}

fn upsert_bounce(
    conn: &mut DbConn,
    scope: &AccountScope,
    (count, first, hit): &MergedBounce,
) -> StoreResult<()> {
    let row = (
        bounces::account_id.eq(scope.account_id()),
        bounces::address.eq(&hit.address),
        bounces::reason_text.eq(&hit.reason_text),
        bounces::source.eq("delivery"),
        bounces::email_id.eq(hit.email_id.as_deref()),
        bounces::bounced_at.eq(hit.at),
        bounces::bounce_count.eq(*count),
        bounces::expires_at.eq(hit.at + bounce_backoff_ms(*count)),
        bounces::first_bounced_at.eq(Some(*first)),
    );
    let upsert = upsert_address!(
        bounces,
        row,
        [
            reason_text,
            email_id,
            bounced_at,
            bounce_count,
            expires_at,
            first_bounced_at
        ]
    );
    db_run!(&mut *conn, |c| upsert.execute(c))?;
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
    if hits.is_empty() {
        return Ok(());
    }
    type Existing = (String, Option<String>, Option<String>, i64, i64);
    let existing: Vec<Existing> =
        by_address_chunks(hits.iter().map(|h| h.address.clone()), |chunk| {
            spam_reports::table
                .filter(spam_reports::account_id.eq(scope.account_id()))
                .filter(spam_reports::address.eq_any(chunk))
                .select((
                    spam_reports::address,
                    spam_reports::email_id,
                    spam_reports::api_user,
                    spam_reports::reported_at,
                    spam_reports::expires_at,
                ))
                .load(conn)
        })?;
    let mut merged: HashMap<String, (SpamHit, Millis)> = HashMap::new();
    for (address, email_id, api_user, at, expires) in existing {
        let hit = SpamHit {
            address: address.clone(),
            email_id,
            api_user,
            at,
        };
        merged.insert(address, (hit, expires));
    }
    for hit in hits {
        let address = normalize_address(&hit.address);
        let hit = SpamHit {
            address: address.clone(),
            ..hit.clone()
        };
        let until = hit.at + SPAM_REPORT_TTL_MS;
        let entry = merged
            .entry(address)
            .or_insert_with(|| (hit.clone(), until));
        if (hit.at, &hit.email_id) < (entry.0.at, &entry.0.email_id) {
            entry.0 = hit;
        }
        entry.1 = entry.1.max(until);
    }
    let mut touched: Vec<&(SpamHit, Millis)> = merged.values().collect();
    touched.sort_by(|a, b| a.0.address.cmp(&b.0.address));
    for (hit, until) in touched {
        let row = (
            spam_reports::account_id.eq(scope.account_id()),
            spam_reports::address.eq(&hit.address),
            spam_reports::email_id.eq(hit.email_id.as_deref()),
            spam_reports::api_user.eq(hit.api_user.as_deref()),
            spam_reports::reported_at.eq(hit.at),
            spam_reports::expires_at.eq(*until),
        );
        let upsert = upsert_address!(
            spam_reports,
            row,
            [email_id, api_user, reported_at, expires_at]
        );
        db_run!(&mut *conn, |c| upsert.execute(c))?;
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
    for hit in hits {
        let row = (
            unsubscribes::account_id.eq(scope.account_id()),
            unsubscribes::address.eq(normalize_address(&hit.address)),
            unsubscribes::reason.eq(&hit.reason),
            unsubscribes::source.eq(&hit.source),
            unsubscribes::email_id.eq(hit.email_id.as_deref()),
            unsubscribes::api_user.eq(hit.api_user.as_deref()),
            unsubscribes::tag.eq(hit.tag.as_deref()),
            unsubscribes::unsubscribed_at.eq(hit.at),
        );
        // Only an unsubscribe earlier than the one kept replaces it.
        let newer = excluded(unsubscribes::unsubscribed_at).lt(unsubscribes::unsubscribed_at);
        let upsert = upsert_address!(
            unsubscribes,
            row,
            [reason, source, email_id, api_user, tag, unsubscribed_at]
        );
        let upsert = diesel::query_dsl::methods::FilterDsl::filter(upsert, newer);
        db_run!(&mut *conn, |c| upsert.execute(c))?;
    }
    Ok(())
}

/// A manual add through the UI or the API.
#[derive(Debug, Clone)]
pub struct ManualEntry {
    pub list: ListKind,
    /// An address; `@domain` on the blacklist.
    pub address: String,
    /// Bounce list: the reason text; unsubscribes: the reason code.
    pub reason: Option<String>,
    pub expires_at: Option<Millis>,
    pub api_user: Option<String>,
    /// `ui` or `api`.
    pub source: &'static str,
}

/// Adds (or renews) an entry; answers the entry as stored.
pub fn add(
    conn: &mut DbConn,
    scope: &AccountScope,
    e: &ManualEntry,
    now: Millis,
) -> StoreResult<Option<ListEntry>> {
    let address = normalize_address(&e.address);
    conn.transaction(|conn| {
        write_entry(conn, scope, e, &address, now)?;
        let f = ListFilter {
            address: Some(address.clone()),
            ..ListFilter::default()
        };
        let mut found = page(conn, scope, e.list, &f, None, 5, now)?;
        found.retain(|x| x.list == e.list);
        Ok(found.into_iter().next())
    })
}

/// A bounce added by hand counts as one more bounce of the address.
fn add_bounce(
    conn: &mut DbConn,
    scope: &AccountScope,
    e: &ManualEntry,
    address: &str,
    now: Millis,
) -> StoreResult<()> {
    use crate::db::schema::bounces;
    let account = scope.account_id();
    let of_address = bounces::table
        .filter(bounces::account_id.eq(account))
        .filter(bounces::address.eq(address));
    let count: Option<i32> = of_address
        .select(bounces::bounce_count)
        .first(conn)
        .optional()?;
    let n = count.unwrap_or(0) + 1;
    let expires = e.expires_at.unwrap_or(now + bounce_backoff_ms(n));
    let reason = e.reason.clone().unwrap_or_default();
    if count.is_some() {
        diesel::update(of_address)
            .set((
                bounces::bounce_count.eq(n),
                bounces::bounced_at.eq(now),
                bounces::expires_at.eq(expires),
                bounces::reason_text.eq(reason),
                bounces::source.eq(e.source),
            ))
            .execute(conn)?;
    } else {
        diesel::insert_into(bounces::table)
            .values((
                bounces::account_id.eq(account),
                bounces::address.eq(address),
                bounces::reason_text.eq(reason),
                bounces::source.eq(e.source),
                bounces::bounced_at.eq(now),
                bounces::bounce_count.eq(1),
                bounces::expires_at.eq(expires),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Writes a manual entry: a bounce counts as one more; on the other lists the address's entry
/// is replaced by the new one.
fn write_entry(
    conn: &mut DbConn,
    scope: &AccountScope,
    e: &ManualEntry,
    address: &str,
    now: Millis,
) -> StoreResult<()> {
    use crate::db::schema::{blacklist, spam_reports, unsubscribes};
    let account = scope.account_id();
    match e.list {
        ListKind::Bounces => add_bounce(conn, scope, e, address, now)?,
        ListKind::SpamReports => {
            delete_where!(
                conn,
                account,
                spam_reports,
                spam_reports::address.eq(address)
            )?;
            diesel::insert_into(spam_reports::table)
                .values((
                    spam_reports::account_id.eq(account),
                    spam_reports::address.eq(address),
                    spam_reports::api_user.eq(&e.api_user),
                    spam_reports::reported_at.eq(now),
                    spam_reports::expires_at.eq(e.expires_at.unwrap_or(now + SPAM_REPORT_TTL_MS)),
                ))
                .execute(conn)?;
        }
        ListKind::Unsubscribes => {
            delete_where!(
                conn,
                account,
                unsubscribes,
                unsubscribes::address.eq(address)
            )?;
            let reason = e.reason.clone().unwrap_or_else(|| "not_wanted".into());
            diesel::insert_into(unsubscribes::table)
                .values((
                    unsubscribes::account_id.eq(account),
                    unsubscribes::address.eq(address),
                    unsubscribes::reason.eq(reason),
                    unsubscribes::source.eq(e.source),
                    unsubscribes::api_user.eq(&e.api_user),
                    unsubscribes::unsubscribed_at.eq(now),
                ))
                .execute(conn)?;
        }
        ListKind::Blacklist => {
            delete_where!(conn, account, blacklist, blacklist::address.eq(address))?;
            diesel::insert_into(blacklist::table)
                .values((
                    blacklist::account_id.eq(account),
                    blacklist::address.eq(address),
                    blacklist::source.eq(e.source),
                    blacklist::api_user.eq(&e.api_user),
                    blacklist::created_at.eq(now),
                    blacklist::expires_at.eq(e.expires_at),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}
