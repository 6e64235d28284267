//! The suppression lists of DESIGN §3 as stored: what ingestion and the address page read,
//! removal, and the sweep of expired entries. The rules themselves live in
//! [`crate::domain::lists`]; ingestion's writes are in [`record`], the list pages' queries in
//! [`pages`].

/// Deletes from `$table` the scope's entries that `$filter` picks; answers how many went.
macro_rules! delete_where {
    ($conn:expr, $account:expr, $table:ident, $filter:expr) => {
        diesel::delete(
            $table::table
                .filter($table::account_id.eq($account))
                .filter($filter),
        )
        .execute($conn)
    };
}

mod pages;
mod record;

/// The address (or `@domain`) of one entry, to name it before it is deleted.
pub use super::refs::entry_address;
pub use pages::{
    count, count_selection, delete_ids, delete_matching, delete_selection, offset_page, page,
    position, AnyOf, ListFilter, ListPosition, Selection,
};
pub use record::{
    add, record_bounces, record_spam_reports, record_unsubscribes, BounceHit, ManualEntry, SpamHit,
    UnsubscribeHit,
};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::IntoSql;

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

/// The columns of a [`ListEntry`] after its list, as each table's query selects them.
#[derive(Queryable)]
struct Stored {
    id: i64,
    address: String,
    reason: Option<String>,
    source: Option<String>,
    email_id: Option<String>,
    api_user: Option<String>,
    tag: Option<String>,
    created_at: Millis,
    expires_at: Option<Millis>,
    bounce_count: Option<i32>,
    /// Bounce list only: the address's first bounce, from when the entry is in force.
    first_at: Option<Millis>,
}

impl Stored {
    fn on(self, list: ListKind) -> ListEntry {
        ListEntry {
            list,
            id: self.id,
            address: self.address,
            reason: self.reason,
            source: self.source,
            email_id: self.email_id,
            api_user: self.api_user,
            tag: self.tag,
            created_at: self
                .first_at
                .map_or(self.created_at, |f| f.min(self.created_at)),
            expires_at: self.expires_at,
            bounce_count: self.bounce_count,
        }
    }
}

/// Every entry of every list for any of `addresses`, plus the blacklist entries of their
/// domains: four indexed queries however many addresses.
pub fn entries_for_addresses(
    conn: &mut DbConn,
    scope: &AccountScope,
    addresses: &[String],
) -> StoreResult<Vec<ListEntry>> {
    let mut wanted: Vec<String> = addresses.iter().map(|a| normalize_address(a)).collect();
    wanted.sort();
    wanted.dedup();
    let mut entries = Vec::new();
    for chunk in wanted.chunks(2_000) {
        entries.extend(entries_in(conn, scope.account_id(), chunk)?);
    }
    // Two addresses of the same domain load the domain entry twice.
    entries.sort_by_key(|e| (e.list, e.id));
    entries.dedup_by_key(|e| (e.list, e.id));
    Ok(entries)
}

/// The entries of the account's four lists for `chunk` (normalized addresses), with the
/// blacklist entries of their domains.
fn entries_in(conn: &mut DbConn, account: i64, chunk: &[String]) -> StoreResult<Vec<ListEntry>> {
    let mut with_domains: Vec<String> = chunk.to_vec();
    with_domains.extend(
        chunk
            .iter()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| format!("@{d}"))),
    );
    let mut entries = bounces_in(conn, account, chunk)?;
    entries.extend(spam_reports_in(conn, account, chunk)?);
    entries.extend(unsubscribes_in(conn, account, chunk)?);
    entries.extend(blacklisted_in(conn, account, &with_domains)?);
    Ok(entries)
}

/// A text column a list does not have.
fn no_text() -> diesel::dsl::AsExprOf<Option<String>, Nullable<Text>> {
    None::<String>.into_sql::<Nullable<Text>>()
}

fn bounces_in(conn: &mut DbConn, account: i64, chunk: &[String]) -> StoreResult<Vec<ListEntry>> {
    let found: Vec<Stored> = bounces::table
        .filter(bounces::account_id.eq(account))
        .filter(bounces::address.eq_any(chunk))
        .select((
            bounces::id,
            bounces::address,
            bounces::reason_text.nullable(),
            no_text(),
            bounces::email_id,
            no_text(),
            no_text(),
            bounces::bounced_at,
            bounces::expires_at.nullable(),
            bounces::bounce_count.nullable(),
            bounces::first_bounced_at,
        ))
        .load(conn)?;
    Ok(found.into_iter().map(|e| e.on(ListKind::Bounces)).collect())
}

fn spam_reports_in(
    conn: &mut DbConn,
    account: i64,
    chunk: &[String],
) -> StoreResult<Vec<ListEntry>> {
    let found: Vec<Stored> = spam_reports::table
        .filter(spam_reports::account_id.eq(account))
        .filter(spam_reports::address.eq_any(chunk))
        .select((
            spam_reports::id,
            spam_reports::address,
            no_text(),
            no_text(),
            spam_reports::email_id,
            spam_reports::api_user,
            no_text(),
            spam_reports::reported_at,
            spam_reports::expires_at.nullable(),
            None::<i32>.into_sql::<Nullable<Integer>>(),
            None::<i64>.into_sql::<Nullable<BigInt>>(),
        ))
        .load(conn)?;
    Ok(found
        .into_iter()
        .map(|e| e.on(ListKind::SpamReports))
        .collect())
}

fn unsubscribes_in(
    conn: &mut DbConn,
    account: i64,
    chunk: &[String],
) -> StoreResult<Vec<ListEntry>> {
    let found: Vec<Stored> = unsubscribes::table
        .filter(unsubscribes::account_id.eq(account))
        .filter(unsubscribes::address.eq_any(chunk))
        .select((
            unsubscribes::id,
            unsubscribes::address,
            unsubscribes::reason.nullable(),
            unsubscribes::source.nullable(),
            unsubscribes::email_id,
            unsubscribes::api_user,
            unsubscribes::tag,
            unsubscribes::unsubscribed_at,
            None::<i64>.into_sql::<Nullable<BigInt>>(),
            None::<i32>.into_sql::<Nullable<Integer>>(),
            None::<i64>.into_sql::<Nullable<BigInt>>(),
        ))
        .load(conn)?;
    Ok(found
        .into_iter()
        .map(|e| e.on(ListKind::Unsubscribes))
        .collect())
}

/// The blacklist's entries for `addresses` (addresses and `@domain`s).
fn blacklisted_in(
    conn: &mut DbConn,
    account: i64,
    addresses: &[String],
) -> StoreResult<Vec<ListEntry>> {
    let found: Vec<Stored> = blacklist::table
        .filter(blacklist::account_id.eq(account))
        .filter(blacklist::address.eq_any(addresses))
        .select((
            blacklist::id,
            blacklist::address,
            no_text(),
            blacklist::source.nullable(),
            no_text(),
            blacklist::api_user,
            no_text(),
            blacklist::created_at,
            blacklist::expires_at,
            None::<i32>.into_sql::<Nullable<Integer>>(),
            None::<i64>.into_sql::<Nullable<BigInt>>(),
        ))
        .load(conn)?;
    Ok(found
        .into_iter()
        .map(|e| e.on(ListKind::Blacklist))
        .collect())
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
        ListKind::Bounces => delete_where!(conn, account, bounces, bounces::id.eq(id)),
        ListKind::SpamReports => {
            delete_where!(conn, account, spam_reports, spam_reports::id.eq(id))
        }
        ListKind::Unsubscribes => {
            delete_where!(conn, account, unsubscribes, unsubscribes::id.eq(id))
        }
        ListKind::Blacklist => delete_where!(conn, account, blacklist, blacklist::id.eq(id)),
    }?;
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
