//! What suppression catch-up reads: the messages to some addresses requested since a time.

use diesel::prelude::*;

use super::models::Message;
use super::{AccountScope, StoreResult};
use crate::db::schema::messages;
use crate::db::DbConn;
use crate::domain::Millis;

/// The messages to any of `recipients` (normalised) requested at or after `since`, through
/// the recipient index.
pub fn messages_to(
    conn: &mut DbConn,
    scope: &AccountScope,
    recipients: &[String],
    since: Millis,
) -> StoreResult<Vec<Message>> {
    let mut found = Vec::new();
    for chunk in recipients.chunks(1_000) {
        found.extend(
            messages::table
                .filter(messages::account_id.eq(scope.account_id()))
                .filter(messages::recipient.eq_any(chunk))
                .filter(messages::requested_at.ge(since))
                .select(Message::as_select())
                .load(conn)?,
        );
    }
    Ok(found)
}
