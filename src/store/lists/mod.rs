//! The suppression lists of DESIGN §3 as stored: what ingestion and the address page read,
//! removal, and the sweep of expired entries. The rules themselves live in
//! [`crate::domain::lists`]; ingestion's writes are in [`record`], the list pages' queries in
//! [`pages`].

mod pages;
mod record;

pub use pages::{
    add, count, count_selection, delete_ids, delete_matching, delete_selection, offset_page, page,
    position, AnyOf, ListFilter, ListPosition, ManualEntry, Selection,
};
pub use record::{
    record_bounces, record_spam_reports, record_unsubscribes, BounceHit, SpamHit, UnsubscribeHit,
};

use diesel::prelude::*;

use super::{AccountScope, StoreResult};
use crate::db::schema::{blacklist, bounces, spam_reports, unsubscribes};
use crate::db::DbConn;
use crate::domain::{
    normalize_address, suppression_among, ListEntry, ListKind, Millis, Suppression,
};

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

/// Deletes the expired entries of every account: they stopped suppressing on their own; this
/// only keeps the tables small. Answers how many went.
pub fn sweep_expired(conn: &mut DbConn, now: Millis) -> StoreResult<usize> {
    let mut n = diesel::delete(bounces::table.filter(bounces::expires_at.le(now))).execute(conn)?;
    n += diesel::delete(spam_reports::table.filter(spam_reports::expires_at.le(now)))
        .execute(conn)?;
    n += diesel::delete(blacklist::table.filter(blacklist::expires_at.le(now))).execute(conn)?;
    Ok(n)
}
