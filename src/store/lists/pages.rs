//! The list pages' queries: each list filtered and paged newest first by keyset, the
//! blacklist page's union with the unexpired bounce-list entries and spam reports that count
//! as blacklist (DESIGN §3), counts, and deletes by id or by filter.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};

use crate::db::DbConn;
use crate::domain::{normalize_address, ListEntry, ListKind, Millis};
use crate::store::{AccountScope, OffsetPage, StoreResult};

/// What a list page filters by; every part optional.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ListFilter {
    /// An address, or `@domain` (blacklist).
    pub address: Option<String>,
    pub from_ms: Option<Millis>,
    pub to_ms: Option<Millis>,
    pub api_user: Option<String>,
    pub tag: Option<String>,
}

/// A position in a list page's newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListPosition {
    pub at: Millis,
    pub rank: i32,
    pub id: i64,
}

/// A bind value of the hand-built statements below.
enum Bind {
    Int(i64),
    Text(String),
}

/// A statement built piece by piece, each bound value marked `$n` where it stands (see
/// [`crate::db::db_run`]). Diesel cannot express a `UNION ALL` of limited parts on SQLite;
/// everything else of the lists is diesel's DSL.
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    fn new() -> Sql {
        Sql {
            text: String::new(),
            binds: Vec::new(),
        }
    }
    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    fn bind(&mut self, s: &str, v: Bind) -> &mut Self {
        self.text.push_str(s);
        self.binds.push(v);
        self.text.push_str(&format!("${}", self.binds.len()));
        self
    }
    /// `s` followed by an integer's marker.
    fn int(&mut self, s: &str, v: i64) -> &mut Self {
        self.bind(s, Bind::Int(v))
    }
    /// `s` followed by a text's marker.
    fn text(&mut self, s: &str, v: &str) -> &mut Self {
        self.bind(s, Bind::Text(v.to_string()))
    }
    fn query(
        self,
    ) -> diesel::query_builder::BoxedSqlQuery<
        'static,
        crate::db::MultiBackend,
        diesel::query_builder::SqlQuery,
    > {
        let mut q = diesel::sql_query(self.text).into_boxed();
        for b in self.binds {
            q = match b {
                Bind::Int(v) => q.bind::<BigInt, _>(v),
                Bind::Text(v) => q.bind::<Text, _>(v),
            };
        }
        q
    }
}

/// How each list's table reads as one uniform row.
struct Shape {
    table: &'static str,
    time: &'static str,
    select: &'static str,
    has_api_user: bool,
    has_tag: bool,
    rank: i32,
}

fn shape(list: ListKind) -> Shape {
    match list {
        ListKind::Blacklist => Shape {
            table: "blacklist",
            time: "created_at",
            select: "'blacklist' AS list, 0 AS rank, id, address, CAST(NULL AS TEXT) AS reason, source, \
                     CAST(NULL AS TEXT) AS email_id, api_user, CAST(NULL AS TEXT) AS tag, created_at, expires_at, \
                     CAST(NULL AS INTEGER) AS bounce_count",
            has_api_user: true,
            has_tag: false,
            rank: 0,
        },
        ListKind::Bounces => Shape {
            table: "bounces",
            time: "bounced_at",
            select: "'bounces' AS list, 1 AS rank, id, address, reason_text AS reason, source, email_id, \
                     CAST(NULL AS TEXT) AS api_user, CAST(NULL AS TEXT) AS tag, bounced_at AS created_at, \
                     CAST(expires_at AS BIGINT) AS expires_at, bounce_count",
            has_api_user: false,
            has_tag: false,
            rank: 1,
        },
        ListKind::SpamReports => Shape {
            table: "spam_reports",
            time: "reported_at",
            select: "'spam_reports' AS list, 2 AS rank, id, address, CAST(NULL AS TEXT) AS reason, \
                     CAST(NULL AS TEXT) AS source, email_id, api_user, CAST(NULL AS TEXT) AS tag, \
                     reported_at AS created_at, CAST(expires_at AS BIGINT) AS expires_at, CAST(NULL AS INTEGER) AS bounce_count",
            has_api_user: true,
            has_tag: false,
            rank: 2,
        },
        ListKind::Unsubscribes => Shape {
            table: "unsubscribes",
            time: "unsubscribed_at",
            select: "'unsubscribes' AS list, 3 AS rank, id, address, reason, source, email_id, api_user, tag, \
                     unsubscribed_at AS created_at, CAST(NULL AS BIGINT) AS expires_at, CAST(NULL AS INTEGER) AS bounce_count",
            has_api_user: true,
            has_tag: true,
            rank: 3,
        },
    }
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    list: String,
    #[diesel(sql_type = Integer)]
    rank: i32,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    address: String,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    source: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    email_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    api_user: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    tag: Option<String>,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    expires_at: Option<i64>,
    #[diesel(sql_type = Nullable<Integer>)]
    bounce_count: Option<i32>,
}

/// The tables a list page reads: the blacklist page also shows what counts as blacklist.
fn sources(list: ListKind) -> Vec<(ListKind, bool)> {
    match list {
        ListKind::Blacklist => vec![
            (ListKind::Blacklist, false),
            (ListKind::Bounces, true),
            (ListKind::SpamReports, true),
        ],
        other => vec![(other, false)],
    }
}

/// `WHERE …` for one source table; `only_active` keeps unexpired entries.
fn conditions(
    sql: &mut Sql,
    scope: &AccountScope,
    s: &Shape,
    f: &ListFilter,
    only_active: bool,
    now: Millis,
) {
    sql.int(" WHERE account_id = ", scope.account_id());
    if only_active {
        sql.int(" AND expires_at > ", now);
    }
    if let Some(a) = &f.address {
        sql.text(" AND address = ", &normalize_address(a));
    }
    if let Some(from) = f.from_ms {
        sql.int(&format!(" AND {} >= ", s.time), from);
    }
    if let Some(to) = f.to_ms {
        sql.int(&format!(" AND {} < ", s.time), to);
    }
    if let Some(api_user) = &f.api_user {
        if s.has_api_user {
            sql.text(" AND api_user = ", api_user);
        } else {
            sql.push(" AND 1 = 0");
        }
    }
    if let Some(tag) = &f.tag {
        if s.has_tag {
            sql.text(" AND tag = ", tag);
        } else {
            sql.push(" AND 1 = 0");
        }
    }
}

/// `SELECT * FROM (part UNION ALL part …) entries ORDER BY …` over the tables `list`'s page
/// reads: each part the table's rows that match the filter and `narrow`, read along its time
/// index in `dir` order and cut at `part_limit`; the union of those few rows is ordered once
/// more by time, list rank and id. The caller adds the final LIMIT.
#[allow(clippy::too_many_arguments)]
fn union_of_parts(
    sql: &mut Sql,
    scope: &AccountScope,
    list: ListKind,
    f: &ListFilter,
    now: Millis,
    dir: &str,
    part_limit: i64,
    narrow: impl Fn(&mut Sql, &Shape),
) {
    sql.push("SELECT * FROM (");
    for (i, (source, only_active)) in sources(list).into_iter().enumerate() {
        let s = shape(source);
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push(&format!(
            "SELECT * FROM (SELECT {} FROM {}",
            s.select, s.table
        ));
        conditions(sql, scope, &s, f, only_active, now);
        narrow(sql, &s);
        sql.int(
            &format!(" ORDER BY {} {dir}, id {dir} LIMIT ", s.time),
            part_limit,
        )
        .push(&format!(") part{i}"));
    }
    sql.push(&format!(
        ") entries ORDER BY created_at {dir}, rank ASC, id {dir}"
    ));
}

/// Rows after position `p` in the newest-first order (time desc, list rank, id desc).
fn after_position(sql: &mut Sql, s: &Shape, p: ListPosition) {
    if s.rank > p.rank {
        sql.int(&format!(" AND {} <= ", s.time), p.at);
    } else if s.rank < p.rank {
        sql.int(&format!(" AND {} < ", s.time), p.at);
    } else {
        sql.int(&format!(" AND ({} < ", s.time), p.at)
            .int(&format!(" OR ({} = ", s.time), p.at)
            .int(" AND id < ", p.id)
            .push("))");
    }
}

/// One page of a list, newest first, after `after` when given.
pub fn page(
    conn: &mut DbConn,
    scope: &AccountScope,
    list: ListKind,
    f: &ListFilter,
    after: Option<ListPosition>,
    limit: i64,
    now: Millis,
) -> StoreResult<Vec<ListEntry>> {
    let mut sql = Sql::new();
    union_of_parts(&mut sql, scope, list, f, now, "DESC", limit, |sql, s| {
        if let Some(p) = after {
            after_position(sql, s, p);
        }
    });
    sql.int(" LIMIT ", limit);
    let rows: Vec<Row> = sql.query().load(conn)?;
    Ok(rows.into_iter().map(entry).collect())
}

fn entry(r: Row) -> ListEntry {
    let _ = r.rank;
    ListEntry {
        list: ListKind::from_code(&r.list).unwrap_or(ListKind::Blacklist),
        id: r.id,
        address: r.address,
        reason: r.reason,
        source: r.source,
        email_id: r.email_id,
        api_user: r.api_user,
        tag: r.tag,
        created_at: r.created_at,
        expires_at: r.expires_at,
        bounce_count: r.bounce_count,
    }
}

/// The keyset position of an entry of a list page.
pub fn position(e: &ListEntry) -> ListPosition {
    ListPosition {
        at: e.created_at,
        rank: shape(e.list).rank,
        id: e.id,
    }
}

/// How many entries match the filter (for the delete confirmation), counted exactly.
pub fn count(
    conn: &mut DbConn,
    scope: &AccountScope,
    list: ListKind,
    f: &ListFilter,
    now: Millis,
) -> StoreResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut total = 0;
    for (source, only_active) in sources(list) {
        let s = shape(source);
        let mut sql = Sql::new();
        sql.push(&format!("SELECT COUNT(*) AS n FROM {}", s.table));
        conditions(&mut sql, scope, &s, f, only_active, now);
        total += sql.query().get_result::<N>(conn)?.n;
    }
    Ok(total)
}

/// SendCloud's `;`-separated filters (`apiUserList`, `labelIdList`): an entry matches when its
/// API_USER, or its tag, is any of the values. An empty list filters nothing; a list that a
/// table has no column for matches nothing there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnyOf {
    pub api_users: Vec<String>,
    pub tags: Vec<String>,
}

fn any_of(sql: &mut Sql, s: &Shape, any: &AnyOf) {
    for (column, values, has_column) in [
        ("api_user", &any.api_users, s.has_api_user),
        ("tag", &any.tags, s.has_tag),
    ] {
        if values.is_empty() {
            continue;
        }
        if !has_column {
            sql.push(" AND 1 = 0");
            continue;
        }
        sql.push(&format!(" AND {column} IN ("));
        for (i, v) in values.iter().enumerate() {
            sql.text(if i == 0 { "" } else { ", " }, v);
        }
        sql.push(")");
    }
}

/// One page of a list oldest first, by offset: how SendCloud's list calls page. Each part
/// reads its time index in order and stops after `start + limit` rows.
pub fn offset_page(
    conn: &mut DbConn,
    scope: &AccountScope,
    list: ListKind,
    f: &ListFilter,
    any: &AnyOf,
    page: OffsetPage,
    now: Millis,
) -> StoreResult<Vec<ListEntry>> {
    let mut sql = Sql::new();
    let part_limit = page.start.saturating_add(page.limit);
    union_of_parts(
        &mut sql,
        scope,
        list,
        f,
        now,
        "ASC",
        part_limit,
        |sql, s| any_of(sql, s, any),
    );
    sql.int(" LIMIT ", page.limit).int(" OFFSET ", page.start);
    let rows: Vec<Row> = sql.query().load(conn)?;
    Ok(rows.into_iter().map(entry).collect())
}

/// Deletes the given entries (`(list, id)`, each from its own table) of the scope's account.
pub fn delete_ids(
    conn: &mut DbConn,
    scope: &AccountScope,
    ids: &[(ListKind, i64)],
) -> StoreResult<usize> {
    let mut n = 0;
    for (list, id) in ids {
        if super::remove_entry(conn, scope, *list, *id)? {
            n += 1;
        }
    }
    Ok(n)
}

/// Deletes every entry matching the filter; on the blacklist page that includes the bounce
/// entries and spam reports it shows (deleting removes an entry from its source list).
pub fn delete_matching(
    conn: &mut DbConn,
    scope: &AccountScope,
    list: ListKind,
    f: &ListFilter,
    now: Millis,
) -> StoreResult<usize> {
    let mut n = 0;
    for (source, only_active) in sources(list) {
        let s = shape(source);
        let mut sql = Sql::new();
        sql.push(&format!("DELETE FROM {}", s.table));
        conditions(&mut sql, scope, &s, f, only_active, now);
        n += sql.query().execute(conn)?;
    }
    Ok(n)
}

/// What a delete on a list page removes: every entry matching its filter, or the chosen ones
/// (`(list, id)`, each from its own table).
#[derive(Debug, Clone)]
pub enum Selection {
    Matching(ListFilter),
    Ids(Vec<(ListKind, i64)>),
}

/// How many entries deleting `selection` from `list`'s page would remove, and how many of
/// those are spam reports (whose removal lets complaints be mailed again).
pub fn count_selection(
    conn: &mut DbConn,
    scope: &AccountScope,
    list: ListKind,
    selection: &Selection,
    now: Millis,
) -> StoreResult<(i64, i64)> {
    match selection {
        Selection::Matching(f) => {
            let n = count(conn, scope, list, f, now)?;
            let spam = match list {
                ListKind::SpamReports => n,
                ListKind::Blacklist => count(conn, scope, ListKind::SpamReports, f, now)?,
                _ => 0,
            };
            Ok((n, spam))
        }
        Selection::Ids(ids) => {
            let spam = ids.iter().filter(|(k, _)| *k == ListKind::SpamReports);
            Ok((ids.len() as i64, spam.count() as i64))
        }
    }
}

/// Deletes `selection` from `list`'s page, all or nothing; answers how many entries went.
pub fn delete_selection(
    conn: &mut DbConn,
    scope: &AccountScope,
    list: ListKind,
    selection: &Selection,
    now: Millis,
) -> StoreResult<usize> {
    conn.transaction(|conn| match selection {
        Selection::Matching(f) => delete_matching(conn, scope, list, f, now),
        Selection::Ids(ids) => delete_ids(conn, scope, ids),
    })
}
