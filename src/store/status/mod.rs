//! The mail-status table (邮件状态): messages matching a filter, newest first, by keyset
//! pagination, and the counts per status for the same filter.

use diesel::prelude::*;

use super::models::StatusRow;
use super::{AccountScope, StoreResult};
use crate::db::schema::{message_contents, message_tags, messages, send_logs};
use crate::db::DbConn;
use crate::domain::{MailType, Reason, Status};

/// A filter of the status table; `from_ms..to_ms` is half-open.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusFilter {
    pub from_ms: i64,
    pub to_ms: i64,
    pub recipient: Option<String>,
    pub email_id: Option<String>,
    pub mail_type: Option<MailType>,
    pub tag: Option<String>,
    pub api_user: Option<String>,
    pub status: Option<Status>,
    pub reason: Option<Reason>,
    /// Part of the subject, any case.
    #[serde(default)]
    pub subject: Option<String>,
    /// Part of the sender address, any case.
    #[serde(default)]
    pub sender: Option<String>,
    /// The recipient's mailbox provider (`crate::domain::providers`).
    #[serde(default)]
    pub provider: Option<String>,
}

impl StatusFilter {
    /// Filters the rollup cannot answer select few rows; they are counted directly.
    fn needs_direct_count(&self) -> bool {
        self.recipient.is_some()
            || self.email_id.is_some()
            || self.subject.is_some()
            || self.sender.is_some()
            // The provider rollup has neither API_USER, mail type nor tag.
            || (self.provider.is_some()
                && (self.api_user.is_some() || self.mail_type.is_some() || self.tag.is_some()))
    }
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// `%part%` for LIKE, lower-cased, with LIKE's own wildcards in `part` taken literally.
pub(in crate::store) fn contains_pattern(part: &str) -> String {
    let mut out = String::from("%");
    for c in part.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A position in the newest-first order: the (request time, id) of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub at: i64,
    pub id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Rows after the position in newest-first order (the next page).
    Older,
    /// Rows before it (the previous page).
    Newer,
}

pub struct Page {
    pub rows: Vec<StatusRow>,
    /// Where the next (older) page starts, when there is one.
    pub older: Option<Position>,
    /// Where the previous (newer) page ends, when there is one.
    pub newer: Option<Position>,
}

macro_rules! filtered {
    ($query:expr, $scope:expr, $f:expr) => {{
        let f = $f;
        let mut q = $query.filter(messages::account_id.eq($scope.account_id()));
        if let Some(r) = &f.recipient {
            q = q.filter(messages::recipient.eq(r.clone()));
        }
        if let Some(e) = &f.email_id {
            q = q.filter(messages::email_id.eq(e.clone()));
        }
        if let Some(m) = f.mail_type {
            q = q.filter(messages::mail_type.eq(m.as_i16()));
        }
        if let Some(a) = &f.api_user {
            q = q.filter(messages::api_user.eq(a.clone()));
        }
        if let Some(p) = &f.provider {
            q = q.filter(messages::provider.eq(p.clone()));
        }
        if let Some(s) = f.status {
            q = q.filter(messages::status.eq(s.as_i16()));
        }
        if let Some(r) = f.reason {
            q = q.filter(messages::reason.eq(r.as_i16()));
        }
        if let Some(part) = &f.subject {
            q = q.filter(
                lower(messages::subject)
                    .like(contains_pattern(part))
                    .escape('\\'),
            );
        }
        if let Some(part) = &f.sender {
            q = q.filter(
                lower(messages::sender)
                    .like(contains_pattern(part))
                    .escape('\\'),
            );
        }
        q
    }};
}

/// The request times a page may hold, both inclusive: the filter's period narrowed by the
/// cursor into one range. SQLite reads an index by one bound on each side of a column; given
/// the period's end and the cursor as two upper bounds it took the period's end, so that each
/// step of a deep walk (every export) read all the rows of the steps before it again.
fn time_bounds(f: &StatusFilter, from: Option<(Position, Direction)>) -> (i64, i64) {
    let (first, last) = (f.from_ms, f.to_ms.saturating_sub(1));
    match from {
        Some((p, Direction::Older)) => (first, last.min(p.at)),
        Some((p, Direction::Newer)) => (first.max(p.at), last),
        None => (first, last),
    }
}

/// A message's tag rows. The request time is part of the join so that PostgreSQL reads each
/// message from the one month partition that holds it.
type TagsOfMessage = diesel::dsl::And<
    diesel::dsl::Eq<message_tags::message_id, messages::id>,
    diesel::dsl::Eq<message_tags::requested_at, messages::requested_at>,
>;

fn tags_of_message() -> TagsOfMessage {
    message_tags::message_id
        .eq(messages::id)
        .and(message_tags::requested_at.eq(messages::requested_at))
}

/// One page of the filter's rows from `from` onwards in `direction`, newest first.
pub fn page(
    conn: &mut DbConn,
    scope: &AccountScope,
    f: &StatusFilter,
    from: Option<(Position, Direction)>,
    limit: i64,
) -> StoreResult<Page> {
    let direction = from.map(|(_, d)| d).unwrap_or(Direction::Older);
    let bounds = time_bounds(f, from);
    let rows = match &f.tag {
        None => rows_by_time(conn, scope, f, from, bounds, limit + 1)?,
        Some(tag) => rows_by_tag(conn, scope, f, tag, from, bounds, limit + 1)?,
    };
    Ok(paged(rows, limit, direction, from.is_some()))
}

/// Up to `limit` rows from `from` on, read in the order of the message table's own index: the
/// time and keyset bounds are on the indexed columns themselves, so that each filter's index is
/// read in order and stops early.
fn rows_by_time(
    conn: &mut DbConn,
    scope: &AccountScope,
    f: &StatusFilter,
    from: Option<(Position, Direction)>,
    (first, last): (i64, i64),
    limit: i64,
) -> StoreResult<Vec<StatusRow>> {
    let mut q = filtered!(
        messages::table.select(StatusRow::as_select()).into_boxed(),
        scope,
        f
    )
    .filter(messages::requested_at.ge(first))
    .filter(messages::requested_at.le(last));
    match from {
        Some((p, Direction::Older)) => {
            q = q.filter(messages::requested_at.lt(p.at).or(messages::id.lt(p.id)))
        }
        Some((p, Direction::Newer)) => {
            q = q.filter(messages::requested_at.gt(p.at).or(messages::id.gt(p.id)))
        }
        None => {}
    }
    q = match from.map(|(_, d)| d).unwrap_or(Direction::Older) {
        Direction::Older => q.order((messages::requested_at.desc(), messages::id.desc())),
        Direction::Newer => q.order((messages::requested_at.asc(), messages::id.asc())),
    };
    q.limit(limit).load(conn)
}

/// Up to `limit` rows of one tag from `from` on: the tag's own index leads; the message row
/// supplies the other filters.
fn rows_by_tag(
    conn: &mut DbConn,
    scope: &AccountScope,
    f: &StatusFilter,
    tag: &str,
    from: Option<(Position, Direction)>,
    (first, last): (i64, i64),
    limit: i64,
) -> StoreResult<Vec<StatusRow>> {
    let base = messages::table
        .inner_join(message_tags::table.on(tags_of_message()))
        .select(StatusRow::as_select())
        .into_boxed();
    let mut q = filtered!(base, scope, f)
        .filter(message_tags::account_id.eq(scope.account_id()))
        .filter(message_tags::tag.eq(tag.to_string()))
        .filter(message_tags::requested_at.ge(first))
        .filter(message_tags::requested_at.le(last));
    match from {
        Some((p, Direction::Older)) => {
            q = q.filter(
                message_tags::requested_at
                    .lt(p.at)
                    .or(message_tags::message_id.lt(p.id)),
            )
        }
        Some((p, Direction::Newer)) => {
            q = q.filter(
                message_tags::requested_at
                    .gt(p.at)
                    .or(message_tags::message_id.gt(p.id)),
            )
        }
        None => {}
    }
    q = match from.map(|(_, d)| d).unwrap_or(Direction::Older) {
        Direction::Older => q.order((
            message_tags::requested_at.desc(),
            message_tags::message_id.desc(),
        )),
        Direction::Newer => q.order((
            message_tags::requested_at.asc(),
            message_tags::message_id.asc(),
        )),
    };
    conn.with_index_order(|conn| q.limit(limit).load(conn))
}

/// The page of `rows` (read with one extra, which says there is more) newest first, with
/// the positions the older and newer pages start from.
fn paged(
    mut rows: Vec<StatusRow>,
    limit: i64,
    direction: Direction,
    came_from_cursor: bool,
) -> Page {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if direction == Direction::Newer {
        rows.reverse();
    }
    let position = |m: &StatusRow| Position {
        at: m.requested_at,
        id: m.id,
    };
    let first = rows.first().map(position);
    let last = rows.last().map(position);
    let (older, newer) = match direction {
        Direction::Older => (last.filter(|_| more), first.filter(|_| came_from_cursor)),
        Direction::Newer => (last, first.filter(|_| more)),
    };
    Page { rows, older, newer }
}

/// What the status table shows beside its narrow rows, for one page of them: each message's
/// subject, and which of them have a stored send log and stored content.
#[derive(Debug, Default)]
pub struct PageExtras {
    pub subjects: std::collections::HashMap<i64, String>,
    pub with_send_log: std::collections::HashSet<i64>,
    pub with_content: std::collections::HashSet<i64>,
}

pub fn page_extras(
    conn: &mut DbConn,
    scope: &AccountScope,
    rows: &[StatusRow],
) -> StoreResult<PageExtras> {
    let mut out = PageExtras::default();
    if rows.is_empty() {
        return Ok(out);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let first = rows.iter().map(|r| r.requested_at).min().unwrap_or(0);
    let last = rows.iter().map(|r| r.requested_at).max().unwrap_or(0);
    // The time bounds keep PostgreSQL in the partitions that hold the page.
    let subjects: Vec<(i64, String)> = messages::table
        .filter(messages::account_id.eq(scope.account_id()))
        .filter(messages::requested_at.ge(first))
        .filter(messages::requested_at.le(last))
        .filter(messages::id.eq_any(ids.clone()))
        .select((messages::id, messages::subject))
        .load(conn)?;
    out.subjects = subjects.into_iter().collect();
    out.with_send_log = send_logs::table
        .filter(send_logs::account_id.eq(scope.account_id()))
        .filter(send_logs::message_id.eq_any(ids.clone()))
        .select(send_logs::message_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    out.with_content = message_contents::table
        .filter(message_contents::account_id.eq(scope.account_id()))
        .filter(message_contents::message_id.eq_any(ids))
        .select(message_contents::message_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    Ok(out)
}

mod counts;
mod selection;
pub use counts::{counts, Count, COUNT_CAP};
pub use selection::{offset_page, total, StatusSelection};

/// Distinct messages (by emailId) opened and clicked with events in `[from_ms, to_ms)`.
pub fn engagement(
    conn: &mut DbConn,
    scope: &AccountScope,
    from_ms: i64,
    to_ms: i64,
) -> StoreResult<(i64, i64)> {
    use crate::db::schema::tracking_events as t;
    let rows: Vec<(i16, i64)> = t::table
        .filter(t::account_id.eq(scope.account_id()))
        .filter(t::occurred_at.ge(from_ms))
        .filter(t::occurred_at.lt(to_ms))
        .group_by(t::kind)
        .select((
            t::kind,
            diesel::dsl::count(t::email_id).aggregate_distinct(),
        ))
        .load(conn)?;
    let of = |kind: i16| {
        rows.iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    Ok((of(1), of(2)))
}

/// An open or a click of one message, as the message's page lists it.
#[derive(Debug, Clone, Queryable)]
pub struct Engagement {
    pub kind: i16,
    pub url: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: i64,
}

/// The opens and clicks recorded for one message (its emailId and recipient), oldest first.
pub fn engagement_of(
    conn: &mut DbConn,
    scope: &AccountScope,
    email_id: &str,
    recipient: &str,
    limit: i64,
) -> StoreResult<Vec<Engagement>> {
    use crate::db::schema::tracking_events as t;
    t::table
        .filter(t::account_id.eq(scope.account_id()))
        .filter(t::email_id.eq(email_id))
        .filter(t::recipient.eq(recipient))
        .order((t::occurred_at.asc(), t::id.asc()))
        .limit(limit)
        .select((t::kind, t::url, t::ip, t::user_agent, t::occurred_at))
        .load(conn)
}
