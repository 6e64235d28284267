//! Opens and clicks: the recipient's side (DESIGN §4) reads whom a signed link's message went
//! to, how the account shows addresses, and whether the address is already unsubscribed
//! (writes go through ingestion like any other event); the opens/clicks page, its downloads
//! and SendCloud's `openOrClick` page through the recorded events.

use diesel::prelude::*;

use super::{AccountScope, OffsetPage, StoreResult};
use crate::db::schema::{accounts, messages, unsubscribes};
use crate::db::DbConn;
use crate::domain::{normalize_address, Millis, TrackKind};

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

/// What the opens/clicks page filters by. The period is required: the table grows with mail.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TrackingFilter {
    pub from_ms: Millis,
    pub to_ms: Millis,
    /// Stored in export jobs as SendCloud's `trackType` number.
    #[serde(with = "track_kind_number")]
    pub kind: Option<TrackKind>,
    pub address: Option<String>,
    pub api_user: Option<String>,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Queryable)]
pub struct TrackingRow {
    pub id: i64,
    pub message_id: Option<i64>,
    pub email_id: String,
    pub recipient: String,
    pub api_user: String,
    pub tag: Option<String>,
    #[diesel(deserialize_as = i16)]
    pub kind: TrackKind,
    pub url: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: i64,
}

/// The columns of a [`TrackingRow`].
macro_rules! tracking_columns {
    () => {{
        use crate::db::schema::tracking_events as t;
        (
            t::id,
            t::message_id,
            t::email_id,
            t::recipient,
            t::api_user,
            t::tag,
            t::kind,
            t::url,
            t::ip,
            t::user_agent,
            t::occurred_at,
        )
    }};
}

/// A boxed query of the scope's opens and clicks narrowed by a [`TrackingFilter`], up to and
/// including the instant `$last` (the period's last millisecond, or a page cursor's).
macro_rules! tracking_filtered {
    ($select:expr, $scope:expr, $f:expr, $last:expr) => {{
        use crate::db::schema::tracking_events as t;
        let f: &TrackingFilter = $f;
        let mut q = t::table
            .select($select)
            .filter(t::account_id.eq($scope.account_id()))
            .filter(t::occurred_at.ge(f.from_ms))
            .filter(t::occurred_at.le($last))
            .into_boxed();
        if let Some(k) = f.kind {
            q = q.filter(t::kind.eq(k.as_i16()));
        }
        if let Some(a) = &f.address {
            q = q.filter(t::recipient.eq(normalize_address(a)));
        }
        if let Some(a) = &f.api_user {
            q = q.filter(t::api_user.eq(a.clone()));
        }
        if let Some(tag) = &f.tag {
            q = q.filter(t::tag.eq(tag.clone()));
        }
        q
    }};
}

/// One page of opens and clicks, newest first, after `(at, id)` when given.
pub fn page(
    conn: &mut DbConn,
    scope: &AccountScope,
    f: &TrackingFilter,
    after: Option<(Millis, i64)>,
    limit: i64,
) -> StoreResult<Vec<TrackingRow>> {
    use crate::db::schema::tracking_events as t;
    // One upper bound, the period's end narrowed by the cursor: with two, SQLite may range
    // over the period's end and read every earlier page again (see `status::page`).
    let last = f.to_ms.saturating_sub(1);
    let last = after.map_or(last, |(at, _)| last.min(at));
    let mut q = tracking_filtered!(tracking_columns!(), scope, f, last);
    if let Some((at, id)) = after {
        q = q.filter(t::occurred_at.lt(at).or(t::id.lt(id)));
    }
    q.order((t::occurred_at.desc(), t::id.desc()))
        .limit(limit)
        .load(conn)
}

/// One page of opens and clicks oldest first, by offset (SendCloud's `openOrClick`), whose
/// API_USER is any of `api_users` when some are given.
pub fn offset_page(
    conn: &mut DbConn,
    scope: &AccountScope,
    f: &TrackingFilter,
    api_users: &[String],
    page: OffsetPage,
) -> StoreResult<Vec<TrackingRow>> {
    use crate::db::schema::tracking_events as t;
    let mut q = tracking_filtered!(tracking_columns!(), scope, f, f.to_ms - 1);
    if !api_users.is_empty() {
        q = q.filter(t::api_user.eq_any(api_users.to_vec()));
    }
    q.order((t::occurred_at.asc(), t::id.asc()))
        .offset(page.start)
        .limit(page.limit)
        .load(conn)
}

/// How many opens and clicks [`offset_page`] pages through, counted exactly on the
/// filter's index.
pub fn count(
    conn: &mut DbConn,
    scope: &AccountScope,
    f: &TrackingFilter,
    api_users: &[String],
) -> StoreResult<i64> {
    use crate::db::schema::tracking_events as t;
    let mut q = tracking_filtered!(diesel::dsl::count_star(), scope, f, f.to_ms - 1);
    if !api_users.is_empty() {
        q = q.filter(t::api_user.eq_any(api_users.to_vec()));
    }
    q.get_result(conn)
}

/// A [`TrackKind`] as its number (1 open, 2 click), the way export jobs have always kept it.
mod track_kind_number {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::domain::TrackKind;

    pub fn serialize<S: Serializer>(kind: &Option<TrackKind>, s: S) -> Result<S::Ok, S::Error> {
        kind.map(TrackKind::as_i16).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TrackKind>, D::Error> {
        match Option::<i16>::deserialize(d)? {
            None => Ok(None),
            Some(n) => TrackKind::from_i16(n)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown trackType {n}"))),
        }
    }
}
