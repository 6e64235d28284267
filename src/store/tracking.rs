//! What the recipient's side (DESIGN §4) reads: whom a signed link's message went to, how the
//! account shows addresses, and whether the address is already unsubscribed. Writes go
//! through ingestion like any other event.

use diesel::prelude::*;

use super::{AccountScope, StoreResult};
use crate::db::schema::{accounts, messages, unsubscribes};
use crate::db::DbConn;
use crate::domain::Millis;

/// The recipient of one message, as the unsubscribe page shows them.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub address: String,
    /// The account's masking setting (DESIGN §9).
    pub mask_addresses: bool,
    pub time_zone: String,
    /// When the address left this account's mail, if it did.
    pub unsubscribed_at: Option<Millis>,
}

/// The recipient of the scope's message `email_id`; `None` when the account has no such
/// message (yet).
pub fn recipient(
    conn: &mut DbConn,
    scope: &AccountScope,
    email_id: &str,
) -> StoreResult<Option<Recipient>> {
    let address: Option<String> = messages::table
        .filter(messages::account_id.eq(scope.account_id()))
        .filter(messages::email_id.eq(email_id))
        .select(messages::recipient)
        .first(conn)
        .optional()?;
    let Some(address) = address else {
        return Ok(None);
    };
    let (mask_addresses, time_zone): (bool, String) = accounts::table
        .filter(accounts::id.eq(scope.account_id()))
        .select((accounts::mask_addresses, accounts::time_zone))
        .first(conn)?;
    let unsubscribed_at = unsubscribes::table
        .filter(unsubscribes::account_id.eq(scope.account_id()))
        .filter(unsubscribes::address.eq(&address))
        .select(unsubscribes::unsubscribed_at)
        .first(conn)
        .optional()?;
    Ok(Some(Recipient {
        address,
        mask_addresses,
        time_zone,
        unsubscribed_at,
    }))
}
