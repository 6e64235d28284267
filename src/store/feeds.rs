//! What the feeds (other ESPs' webhooks, the Postfix log follower) keep in the database: each
//! account's keys per feed, the tokens of posts seen recently, and where the follower stopped.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{AccountScope, StoreResult};
use crate::db::DbConn;
use crate::domain::Millis;

#[derive(QueryableByName)]
struct SecretRow {
    #[diesel(sql_type = Text)]
    feed: String,
    #[diesel(sql_type = Text)]
    secret: String,
}

/// The account's key for `feed`, when one is set.
pub fn secret(conn: &mut DbConn, scope: &AccountScope, feed: &str) -> StoreResult<Option<String>> {
    let sql = "SELECT feed, secret FROM feed_secrets WHERE account_id = $1 AND feed = $2";
    let rows: Vec<SecretRow> = diesel::sql_query(sql)
        .bind::<BigInt, _>(scope.account_id())
        .bind::<Text, _>(feed)
        .load(conn)?;
    Ok(rows.into_iter().next().map(|r| r.secret))
}

/// Every key the account has set, as (feed, key).
pub fn secrets(conn: &mut DbConn, scope: &AccountScope) -> StoreResult<Vec<(String, String)>> {
    let sql = "SELECT feed, secret FROM feed_secrets WHERE account_id = $1 ORDER BY feed";
    let rows: Vec<SecretRow> = diesel::sql_query(sql)
        .bind::<BigInt, _>(scope.account_id())
        .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.feed, r.secret)).collect())
}

/// Sets (or, with an empty key, removes) the account's key for `feed`.
pub fn set_secret(
    conn: &mut DbConn,
    scope: &AccountScope,
    feed: &str,
    secret: &str,
    now: Millis,
) -> StoreResult<()> {
    diesel::sql_query("DELETE FROM feed_secrets WHERE account_id = $1 AND feed = $2")
        .bind::<BigInt, _>(scope.account_id())
        .bind::<Text, _>(feed)
        .execute(conn)?;
    if !secret.is_empty() {
        diesel::sql_query("INSERT INTO feed_secrets (account_id, feed, secret, updated_at) VALUES ($1, $2, $3, $4)")
        .bind::<BigInt, _>(scope.account_id())
        .bind::<Text, _>(feed)
        .bind::<Text, _>(secret)
        .bind::<BigInt, _>(now)
        .execute(conn)?;
    }
    Ok(())
}

/// Records `token` of a `feed` post as seen at `now`; false when it was already seen within
/// `window`. One statement, so that two deliveries of the same post cannot both claim it.
pub fn claim_token(
    conn: &mut DbConn,
    scope: &AccountScope,
    feed: &str,
    token: &str,
    now: Millis,
    window: Millis,
) -> StoreResult<bool> {
    let sql =
        "INSERT INTO feed_replays (account_id, feed, token, received_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id, feed, token) DO UPDATE SET received_at = excluded.received_at \
         WHERE feed_replays.received_at < $5";
    let claimed = diesel::sql_query(sql)
        .bind::<BigInt, _>(scope.account_id())
        .bind::<Text, _>(feed)
        .bind::<Text, _>(token)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(now - window)
        .execute(conn)?;
    Ok(claimed > 0)
}

/// Where the follower stopped in one log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct LogPosition {
    #[diesel(sql_type = BigInt)]
    pub inode: i64,
    #[diesel(sql_type = BigInt)]
    pub byte_offset: i64,
}

pub fn log_position(
    conn: &mut DbConn,
    scope: &AccountScope,
    path: &str,
) -> StoreResult<Option<LogPosition>> {
    let sql =
        "SELECT inode, byte_offset FROM postfix_positions WHERE account_id = $1 AND path = $2";
    let rows: Vec<LogPosition> = diesel::sql_query(sql)
        .bind::<BigInt, _>(scope.account_id())
        .bind::<Text, _>(path)
        .load(conn)?;
    Ok(rows.into_iter().next())
}

pub fn save_log_position(
    conn: &mut DbConn,
    scope: &AccountScope,
    path: &str,
    position: LogPosition,
    now: Millis,
) -> StoreResult<()> {
    let sql = "INSERT INTO postfix_positions (account_id, path, inode, byte_offset, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, path) DO UPDATE SET \
         inode = excluded.inode, byte_offset = excluded.byte_offset, updated_at = excluded.updated_at";
    diesel::sql_query(sql)
        .bind::<BigInt, _>(scope.account_id())
        .bind::<Text, _>(path)
        .bind::<BigInt, _>(position.inode)
        .bind::<BigInt, _>(position.byte_offset)
        .bind::<BigInt, _>(now)
        .execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct EmailIdRow {
    #[diesel(sql_type = Text)]
    email_id: String,
}

/// The emailIds starting with `prefix` (letters, digits and `$` only) whose messages are still
/// requesting: the recipients of a Postfix queue file that expired with no verdict of their own.
pub fn requesting_with_prefix(
    conn: &mut DbConn,
    scope: &AccountScope,
    prefix: &str,
) -> StoreResult<Vec<String>> {
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '$')
    {
        return Ok(Vec::new());
    }
    let sql =
        "SELECT email_id FROM messages WHERE account_id = $1 AND email_id LIKE $2 AND status = $3 \
         ORDER BY email_id";
    let rows: Vec<EmailIdRow> = diesel::sql_query(sql)
        .bind::<BigInt, _>(scope.account_id())
        .bind::<Text, _>(format!("{prefix}%"))
        .bind::<diesel::sql_types::SmallInt, _>(crate::domain::Status::Requesting.as_i16())
        .load(conn)?;
    // SQLite's LIKE ignores case; queue ids do not.
    Ok(rows
        .into_iter()
        .map(|r| r.email_id)
        .filter(|id| id.starts_with(prefix))
        .collect())
}

#[derive(QueryableByName)]
struct DeferralRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    smtp_reply: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    attempt: Option<i32>,
}

/// The latest deferral logged for a message: its reply and attempt number.
pub fn last_deferral(
    conn: &mut DbConn,
    scope: &AccountScope,
    email_id: &str,
) -> StoreResult<Option<(Option<String>, Option<i32>)>> {
    let sql =
        "SELECT smtp_reply, attempt FROM message_events WHERE account_id = $1 AND email_id = $2 \
         AND kind = 'deferred' ORDER BY occurred_at DESC LIMIT 1";
    let rows: Vec<DeferralRow> = diesel::sql_query(sql)
        .bind::<BigInt, _>(scope.account_id())
        .bind::<Text, _>(email_id)
        .load(conn)?;
    Ok(rows.into_iter().next().map(|r| (r.smtp_reply, r.attempt)))
}

/// Remembers that the mail with this Message-ID header went to these emailIds.
pub fn record_message_ids(
    conn: &mut DbConn,
    scope: &AccountScope,
    pairs: &[(String, String)],
    now: Millis,
) -> StoreResult<()> {
    let sql = "INSERT INTO feed_message_ids (account_id, message_id, email_id, seen_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, message_id, email_id) DO NOTHING";
    for (message_id, email_id) in pairs {
        diesel::sql_query(sql)
            .bind::<BigInt, _>(scope.account_id())
            .bind::<Text, _>(message_id)
            .bind::<Text, _>(email_id)
            .bind::<BigInt, _>(now)
            .execute(conn)?;
    }
    Ok(())
}

/// The emailIds of the mail a feed read with this Message-ID header (without angle brackets).
pub fn email_ids_for_message_id(
    conn: &mut DbConn,
    scope: &AccountScope,
    message_id: &str,
) -> StoreResult<Vec<String>> {
    let sql = "SELECT email_id FROM feed_message_ids WHERE account_id = $1 AND message_id = $2 \
         ORDER BY email_id LIMIT 1000";
    let rows: Vec<EmailIdRow> = diesel::sql_query(sql)
        .bind::<BigInt, _>(scope.account_id())
        .bind::<Text, _>(message_id)
        .load(conn)?;
    Ok(rows.into_iter().map(|r| r.email_id).collect())
}
