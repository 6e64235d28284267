//! Messages and their events as ingestion reads and writes them: a whole batch at a time, so
//! that a thousand events cost a handful of statements rather than thousands.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, SmallInt, Text};
use diesel::sqlite::Sqlite;

use super::models::{Message, MessageEvent, MessageTag, NewMessageEvent, NewTrackingEvent};
use super::{AccountScope, StoreResult};
use crate::db::schema::send_logs;
use crate::db::schema::{
    message_contents, message_events, message_tags, messages, tracking_events,
};
use crate::db::{db_run, DbConn};

/// Rows per statement: well under both backends' limits on bound parameters.
const CHUNK: usize = 1_000;

/// Splits `rows` into slices of a few fixed lengths (100, 10, then 1) and runs `$body` on each
/// as an array reference. A batch insert of an array has a static query id, so each of the
/// three statements is prepared once per connection and then reused: parsing a fresh
/// 1,000-row INSERT costs SQLite more than running it.
macro_rules! in_fixed_chunks {
    ($rows:expr, |$chunk:ident| $body:expr) => {{
        let mut rest = $rows;
        while !rest.is_empty() {
            rest = if let Some(($chunk, tail)) = fixed_chunk::<_, 100>(rest) {
                $body;
                tail
            } else if let Some(($chunk, tail)) = fixed_chunk::<_, 10>(rest) {
                $body;
                tail
            } else {
                let ($chunk, tail) = fixed_chunk::<_, 1>(rest).expect("rest is not empty");
                $body;
                tail
            };
        }
    }};
}

/// The first `N` rows as an array, and the rest; None when there are fewer than `N`.
fn fixed_chunk<T, const N: usize>(rows: &[T]) -> Option<(&[T; N], &[T])> {
    let (head, tail) = rows.split_at_checked(N)?;
    Some((head.try_into().ok()?, tail))
}

/// A message as a request creates it (the id comes from the database). Nones are bound as
/// NULL so that a batch is one multi-row statement on SQLite too (see `NewMessageEvent`).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = messages, treat_none_as_default_value = false)]
pub struct NewMessage {
    pub account_id: i64,
    pub email_id: String,
    pub recipient: String,
    pub api_user: String,
    pub mail_type: i16,
    pub tags: String,
    pub sender: String,
    pub subject: String,
    pub status: i16,
    pub reason: Option<i16>,
    pub smtp_reply: Option<String>,
    pub rule: Option<String>,
    pub requested_at: i64,
    pub updated_at: i64,
    pub provider: String,
}

/// Makes the transaction a writing one from its first statement, so that on SQLite a
/// concurrent batch waits for the lock (busy_timeout) instead of failing when this read
/// transaction later tries to write.
pub fn begin_writing(conn: &mut DbConn) -> StoreResult<()> {
    db_run!(
        &mut *conn,
        sqlite: |c| {
            use diesel::connection::SimpleConnection;
            // Ingestion rewrites the same hot pages (index edges, rollup rows) batch after
            // batch; checkpointing the WAL less often copies each of them once per
            // checkpoint, not per batch.
            c.batch_execute("PRAGMA wal_autocheckpoint = 16384")?;
            diesel::sql_query("UPDATE accounts SET id = id WHERE id = -1").execute(c)?;
        },
        postgres: |_| {},
    );
    conn.prefer_custom_plans()?;
    Ok(())
}

/// The event ids among `ids` that the account has already received.
pub fn seen_event_ids(
    conn: &mut DbConn,
    scope: &AccountScope,
    ids: &[&str],
) -> StoreResult<HashSet<String>> {
    let mut seen = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let found: Vec<Option<String>> = message_events::table
            .filter(message_events::account_id.eq(scope.account_id()))
            .filter(message_events::event_id.eq_any(chunk))
            .select(message_events::event_id)
            .load(conn)?;
        seen.extend(found.into_iter().flatten());
    }
    Ok(seen)
}

/// The account's messages with any of these email ids.
pub fn messages_by_email_ids(
    conn: &mut DbConn,
    scope: &AccountScope,
    email_ids: &[&str],
) -> StoreResult<Vec<Message>> {
    let mut found = Vec::with_capacity(email_ids.len());
    for chunk in email_ids.chunks(CHUNK) {
        found.extend(
            messages::table
                .filter(messages::account_id.eq(scope.account_id()))
                .filter(messages::email_id.eq_any(chunk))
                .select(Message::as_select())
                .load(conn)?,
        );
    }
    Ok(found)
}

/// The same, for a batch about to change them: on PostgreSQL the rows are locked until the
/// batch's transaction ends (in id order, so that two batches meet in the same order), so
/// that a concurrent batch waits and then reads what this one wrote, instead of changing a
/// message from a state it no longer has. SQLite lets one writer in at a time anyway.
pub fn messages_to_change(
    conn: &mut DbConn,
    scope: &AccountScope,
    email_ids: &[&str],
) -> StoreResult<Vec<Message>> {
    let mut found = Vec::with_capacity(email_ids.len());
    for chunk in email_ids.chunks(CHUNK) {
        let rows: Vec<Message> = db_run!(
            &mut *conn,
            sqlite: |c| messages::table
                .filter(messages::account_id.eq(scope.account_id()))
                .filter(messages::email_id.eq_any(chunk))
                .select(Message::as_select())
                .load(c)?,
            postgres: |c| messages::table
                .filter(messages::account_id.eq(scope.account_id()))
                .filter(messages::email_id.eq_any(chunk))
                .order(messages::id)
                .select(Message::as_select())
                .for_update()
                .load(c)?,
        );
        found.extend(rows);
    }
    Ok(found)
}

/// The newest message sent to `recipient`, for a bounce that names nothing else.
pub fn latest_message_to(
    conn: &mut DbConn,
    scope: &AccountScope,
    recipient: &str,
) -> StoreResult<Option<Message>> {
    messages::table
        .filter(messages::account_id.eq(scope.account_id()))
        .filter(messages::recipient.eq(crate::domain::normalize_address(recipient)))
        .order((messages::requested_at.desc(), messages::id.desc()))
        .select(Message::as_select())
        .first(conn)
        .optional()
}

/// Events that arrived before their request (no message yet), for these email ids.
pub fn waiting_events(
    conn: &mut DbConn,
    scope: &AccountScope,
    email_ids: &[&str],
) -> StoreResult<Vec<MessageEvent>> {
    let mut found = Vec::new();
    for chunk in email_ids.chunks(CHUNK) {
        found.extend(
            message_events::table
                .filter(message_events::account_id.eq(scope.account_id()))
                .filter(message_events::email_id.eq_any(chunk))
                .filter(message_events::message_id.is_null())
                .order((message_events::occurred_at.asc(), message_events::id.asc()))
                .select(MessageEvent::as_select())
                .load(conn)?,
        );
    }
    Ok(found)
}

/// The earliest logged delivery of each of these messages that has one (message id → time):
/// what decides whether a bounce report finds its message delivered (`ingest::fold`).
pub fn first_deliveries(
    conn: &mut DbConn,
    scope: &AccountScope,
    message_ids: &[i64],
) -> StoreResult<Vec<(i64, i64)>> {
    let mut found = Vec::new();
    for chunk in message_ids.chunks(CHUNK) {
        let rows: Vec<(Option<i64>, Option<i64>)> = message_events::table
            .filter(message_events::account_id.eq(scope.account_id()))
            .filter(message_events::message_id.eq_any(chunk))
            .filter(message_events::kind.eq("deliver"))
            .group_by(message_events::message_id)
            .select((
                message_events::message_id,
                diesel::dsl::min(message_events::occurred_at),
            ))
            .load(conn)?;
        found.extend(rows.into_iter().filter_map(|(id, at)| Some((id?, at?))));
    }
    Ok(found)
}

/// Inserts new messages and answers their ids with their email ids.
pub fn insert_messages(conn: &mut DbConn, rows: &[NewMessage]) -> StoreResult<Vec<(i64, String)>> {
    let mut ids = Vec::with_capacity(rows.len());
    in_fixed_chunks!(rows, |chunk| {
        let inserted: Vec<(i64, String)> =
            db_run!(&mut *conn, |c| diesel::insert_into(messages::table)
                .values(chunk)
                .returning((messages::id, messages::email_id))
                .get_results(c)?);
        ids.extend(inserted);
    });
    Ok(ids)
}

pub fn insert_tags(conn: &mut DbConn, rows: &[MessageTag]) -> StoreResult<()> {
    in_fixed_chunks!(rows, |chunk| db_run!(&mut *conn, |c| {
        diesel::insert_into(message_tags::table)
            .values(chunk)
            .execute(c)?
    }));
    Ok(())
}

pub fn insert_events(conn: &mut DbConn, rows: &[NewMessageEvent]) -> StoreResult<()> {
    in_fixed_chunks!(rows, |chunk| db_run!(&mut *conn, |c| {
        diesel::insert_into(message_events::table)
            .values(chunk)
            .execute(c)?
    }));
    Ok(())
}

/// Opens and clicks; the same one twice (same message, kind, instant and URL) is kept once.
pub fn insert_tracking(conn: &mut DbConn, rows: &[NewTrackingEvent]) -> StoreResult<()> {
    in_fixed_chunks!(rows, |chunk| db_run!(&mut *conn, |c| {
        diesel::insert_into(tracking_events::table)
            .values(chunk)
            .on_conflict_do_nothing()
            .execute(c)?
    }));
    Ok(())
}

/// Ties events that waited for their request to the message it created.
pub fn attach_events(
    conn: &mut DbConn,
    scope: &AccountScope,
    message_id: i64,
    event_ids: &[i64],
) -> StoreResult<()> {
    diesel::update(
        message_events::table
            .filter(message_events::account_id.eq(scope.account_id()))
            .filter(message_events::id.eq_any(event_ids)),
    )
    .set(message_events::message_id.eq(message_id))
    .execute(conn)?;
    Ok(())
}

/// Writes the status columns of changed messages, each with whether its provider changed.
/// SQLite runs one prepared statement per message (in process, a run costs less than parsing
/// a fresh multi-row statement), leaving the provider column and its index alone where it did
/// not change; PostgreSQL gets a multi-row UPDATE per chunk, since there every statement is a
/// round trip; the request time lets it look in the one partition that holds each message.
pub fn update_statuses(
    conn: &mut DbConn,
    scope: &AccountScope,
    rows: &[(&Message, bool)],
) -> StoreResult<()> {
    let account_id = scope.account_id();
    db_run!(
        conn,
        sqlite: |c| {
            for (m, refiled) in rows {
                if *refiled {
                    SetStatus::<true> { m, account_id }.execute(c)?;
                } else {
                    SetStatus::<false> { m, account_id }.execute(c)?;
                }
            }
            Ok(())
        },
        postgres: |c| {
            let rows: Vec<&Message> = rows.iter().map(|(m, _)| *m).collect();
            update_statuses_in_chunks(c, scope, &rows)
        },
    )
}

/// One message's status columns (and its provider when `PROVIDER`), as a statement SQLite
/// prepares once per connection: diesel never caches the prepared statement of an UPDATE,
/// and parsing it cost more than running it.
struct SetStatus<'a, const PROVIDER: bool> {
    m: &'a Message,
    account_id: i64,
}

/// The query id of [`SetStatus`].
pub struct SetStatusId<const PROVIDER: bool>;

impl<const PROVIDER: bool> QueryId for SetStatus<'_, PROVIDER> {
    type QueryId = SetStatusId<PROVIDER>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const PROVIDER: bool> QueryFragment<Sqlite> for SetStatus<'_, PROVIDER> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        let m = self.m;
        out.push_sql("UPDATE messages SET status = ");
        out.push_bind_param::<SmallInt, i16>(&m.status)?;
        out.push_sql(", reason = ");
        out.push_bind_param::<Nullable<SmallInt>, Option<i16>>(&m.reason)?;
        out.push_sql(", smtp_reply = ");
        out.push_bind_param::<Nullable<Text>, Option<String>>(&m.smtp_reply)?;
        out.push_sql(", rule = ");
        out.push_bind_param::<Nullable<Text>, Option<String>>(&m.rule)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<BigInt, i64>(&m.updated_at)?;
        if PROVIDER {
            out.push_sql(", provider = ");
            out.push_bind_param::<Text, String>(&m.provider)?;
        }
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<BigInt, i64>(&m.id)?;
        out.push_sql(" AND account_id = ");
        out.push_bind_param::<BigInt, i64>(&self.account_id)?;
        Ok(())
    }
}

impl<const PROVIDER: bool, Conn> RunQueryDsl<Conn> for SetStatus<'_, PROVIDER> {}

fn update_statuses_in_chunks(
    conn: &mut PgConnection,
    scope: &AccountScope,
    rows: &[&Message],
) -> StoreResult<()> {
    for chunk in rows.chunks(500) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let n = i * 8;
                format!(
                    "(CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS SMALLINT), \
                     CAST(${} AS SMALLINT), CAST(${} AS TEXT), CAST(${} AS TEXT), CAST(${} AS BIGINT), \
                     CAST(${} AS TEXT))",
                    n + 1, n + 2, n + 3, n + 4, n + 5, n + 6, n + 7, n + 8
                )
            })
            .collect();
        let sql = format!(
            "WITH v (id, requested_at, status, reason, smtp_reply, rule, updated_at, provider) \
             AS (VALUES {}) \
             UPDATE messages SET status = v.status, reason = v.reason, \
             smtp_reply = v.smtp_reply, rule = v.rule, updated_at = v.updated_at, \
             provider = v.provider \
             FROM v WHERE messages.id = v.id AND messages.requested_at = v.requested_at \
             AND messages.account_id = ${}",
            values.join(", "),
            chunk.len() * 8 + 1
        );
        let mut query = diesel::sql_query(&sql).into_boxed::<diesel::pg::Pg>();
        for m in chunk {
            query = query
                .bind::<BigInt, _>(m.id)
                .bind::<BigInt, _>(m.requested_at)
                .bind::<SmallInt, _>(m.status)
                .bind::<Nullable<SmallInt>, _>(m.reason)
                .bind::<Nullable<Text>, _>(m.smtp_reply.as_deref())
                .bind::<Nullable<Text>, _>(m.rule.as_deref())
                .bind::<BigInt, _>(m.updated_at)
                .bind::<Text, _>(&m.provider);
        }
        query.bind::<BigInt, _>(scope.account_id()).execute(conn)?;
    }
    Ok(())
}

/// Keeps a request's raw message (S+ content).
pub fn insert_content(
    conn: &mut DbConn,
    scope: &AccountScope,
    message_id: i64,
    raw: &[u8],
) -> StoreResult<()> {
    diesel::insert_into(message_contents::table)
        .values((
            message_contents::message_id.eq(message_id),
            message_contents::account_id.eq(scope.account_id()),
            message_contents::raw.eq(raw),
            message_contents::size.eq(raw.len() as i64),
        ))
        .execute(conn)?;
    Ok(())
}

/// Appends lines to a message's send log (S+), creating it on the first lines.
pub fn append_send_log(
    conn: &mut DbConn,
    scope: &AccountScope,
    message_id: i64,
    lines: &[String],
) -> StoreResult<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let text = lines.join("\n");
    let row = (
        send_logs::message_id.eq(message_id),
        send_logs::account_id.eq(scope.account_id()),
        send_logs::lines.eq(&text),
    );
    let more = send_logs::lines.concat(format!("\n{text}"));
    db_run!(conn, |c| diesel::insert_into(send_logs::table)
        .values(row)
        .on_conflict(send_logs::message_id)
        .do_update()
        .set(send_logs::lines.eq(more))
        .execute(c))?;
    Ok(())
}
