//! Messages (the status rows) and their event logs.

use diesel::prelude::*;

use super::models::{Message, MessageEvent};
use super::{AccountScope, StoreResult};
use crate::db::schema::{message_events, messages};
use crate::db::DbConn;

/// One message of the scope's account; another account's id finds nothing.
pub fn get(conn: &mut DbConn, scope: &AccountScope, id: i64) -> StoreResult<Option<Message>> {
    messages::table
        .filter(messages::account_id.eq(scope.account_id()))
        .filter(messages::id.eq(id))
        .select(Message::as_select())
        .first(conn)
        .optional()
}

/// The log details of a message, oldest first.
pub fn events(
    conn: &mut DbConn,
    scope: &AccountScope,
    message_id: i64,
) -> StoreResult<Vec<MessageEvent>> {
    message_events::table
        .filter(message_events::account_id.eq(scope.account_id()))
        .filter(message_events::message_id.eq(message_id))
        .order((message_events::occurred_at.asc(), message_events::id.asc()))
        .select(MessageEvent::as_select())
        .load(conn)
}

/// Which account a message belongs to. Only for staff, who then open that account's scope
/// (audited); customers never reach this.
pub fn account_of(conn: &mut DbConn, id: i64) -> StoreResult<Option<i64>> {
    messages::table
        .filter(messages::id.eq(id))
        .select(messages::account_id)
        .first(conn)
        .optional()
}

/// The newest messages of the account, for the overview's "latest" list.
pub fn latest(conn: &mut DbConn, scope: &AccountScope, limit: i64) -> StoreResult<Vec<Message>> {
    messages::table
        .filter(messages::account_id.eq(scope.account_id()))
        .order((messages::requested_at.desc(), messages::id.desc()))
        .limit(limit)
        .select(Message::as_select())
        .load(conn)
}

/// True when the account holds no messages at all.
pub fn is_empty(conn: &mut DbConn, scope: &AccountScope) -> StoreResult<bool> {
    messages::table
        .filter(messages::account_id.eq(scope.account_id()))
        .select(messages::id)
        .first::<i64>(conn)
        .optional()
        .map(|m| m.is_none())
}

/// The raw message as sent (S+ content), when it was kept.
pub fn content(
    conn: &mut DbConn,
    scope: &AccountScope,
    message_id: i64,
) -> StoreResult<Option<Vec<u8>>> {
    use crate::db::schema::message_contents;
    message_contents::table
        .filter(message_contents::account_id.eq(scope.account_id()))
        .filter(message_contents::message_id.eq(message_id))
        .select(message_contents::raw)
        .first(conn)
        .optional()
}

/// The MTA's send log lines of a message (S+ log), when they were kept.
pub fn send_log(
    conn: &mut DbConn,
    scope: &AccountScope,
    message_id: i64,
) -> StoreResult<Option<String>> {
    use crate::db::schema::send_logs;
    send_logs::table
        .filter(send_logs::account_id.eq(scope.account_id()))
        .filter(send_logs::message_id.eq(message_id))
        .select(send_logs::lines)
        .first(conn)
        .optional()
}

/// The newest messages to one recipient, any time.
pub fn for_recipient(
    conn: &mut DbConn,
    scope: &AccountScope,
    recipient: &str,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    messages::table
        .filter(messages::account_id.eq(scope.account_id()))
        .filter(messages::recipient.eq(recipient))
        .order((messages::requested_at.desc(), messages::id.desc()))
        .limit(limit)
        .select(Message::as_select())
        .load(conn)
}

/// The message with this emailId in the scope's account.
pub fn by_email_id(
    conn: &mut DbConn,
    scope: &AccountScope,
    email_id: &str,
) -> StoreResult<Option<Message>> {
    messages::table
        .filter(messages::account_id.eq(scope.account_id()))
        .filter(messages::email_id.eq(email_id))
        .select(Message::as_select())
        .first(conn)
        .optional()
}
