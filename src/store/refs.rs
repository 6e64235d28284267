//! Opaque references to an address: pages that must not show an address (masking on) link to
//! a list entry or a message by id, and the target resolves it here, in the account's scope.

use diesel::prelude::*;

use super::{AccountScope, StoreResult};
use crate::db::schema::{blacklist, bounces, spam_reports, unsubscribes};
use crate::db::DbConn;
use crate::domain::ListKind;

/// The address of one list entry of the account; None when the account has no such entry.
pub fn entry_address(
    conn: &mut DbConn,
    scope: &AccountScope,
    list: ListKind,
    id: i64,
) -> StoreResult<Option<String>> {
    let account = scope.account_id();
    match list {
        ListKind::Bounces => bounces::table
            .filter(bounces::account_id.eq(account))
            .filter(bounces::id.eq(id))
            .select(bounces::address)
            .first(conn)
            .optional(),
        ListKind::SpamReports => spam_reports::table
            .filter(spam_reports::account_id.eq(account))
            .filter(spam_reports::id.eq(id))
            .select(spam_reports::address)
            .first(conn)
            .optional(),
        ListKind::Unsubscribes => unsubscribes::table
            .filter(unsubscribes::account_id.eq(account))
            .filter(unsubscribes::id.eq(id))
            .select(unsubscribes::address)
            .first(conn)
            .optional(),
        ListKind::Blacklist => blacklist::table
            .filter(blacklist::account_id.eq(account))
            .filter(blacklist::id.eq(id))
            .select(blacklist::address)
            .first(conn)
            .optional(),
    }
}
