//! The status table as SendCloud's API v2 selects it (`emailStatus`): several emailIds and
//! API_USERs, subStatus pairs, offset paging, and the total of the selection.

use diesel::prelude::*;

use super::super::rollup::{self, HOUR_MS};
use super::super::{AccountScope, OffsetPage, StoreResult};
use super::{contains_pattern, lower, tags_of_message, StatusFilter};
use crate::db::schema::{message_tags, messages};
use crate::db::DbConn;
use crate::domain::{MailType, Reason, Status};
use crate::store::models::Message;

/// The status table as SendCloud's `emailStatus` selects it: a [`StatusFilter`] plus any of
/// several emailIds and API_USERs (its `;`-separated lists). Empty lists filter nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusSelection {
    pub filter: StatusFilter,
    pub email_ids: Vec<String>,
    pub api_users: Vec<String>,
    /// Any of these (status, reason) pairs: SendCloud's `subStatus=406;506`.
    pub outcomes: Vec<(Status, Reason)>,
}

/// `(status, reason) IN (…)` as one SQL condition over small integers we produced ourselves.
fn outcomes_condition(outcomes: &[(Status, Reason)]) -> String {
    let codes: Vec<String> = outcomes
        .iter()
        .map(|(s, r)| (i64::from(s.as_i16()) * 100 + i64::from(r.as_i16())).to_string())
        .collect();
    format!(
        "(messages.status * 100 + COALESCE(messages.reason, 0)) IN ({})",
        codes.join(", ")
    )
}

impl StatusSelection {
    /// Only the rollup's dimensions narrow it, so the rollup can count it.
    fn rollup_counts(&self) -> bool {
        !self.filter.needs_direct_count()
            && self.filter.provider.is_none()
            && self.email_ids.is_empty()
    }
}

macro_rules! selected {
    ($query:expr, $scope:expr, $sel:expr) => {{
        let sel = $sel;
        let mut q = filtered!($query, $scope, &sel.filter);
        if !sel.email_ids.is_empty() {
            q = q.filter(messages::email_id.eq_any(sel.email_ids.clone()));
        }
        if !sel.api_users.is_empty() {
            q = q.filter(messages::api_user.eq_any(sel.api_users.clone()));
        }
        if !sel.outcomes.is_empty() {
            q = q.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                &outcomes_condition(&sel.outcomes),
            ));
        }
        q
    }};
}

/// One page of the selection's messages oldest first: SendCloud pages by offset, and oldest
/// first keeps the earlier pages still while today's messages keep arriving.
pub fn offset_page(
    conn: &mut DbConn,
    scope: &AccountScope,
    sel: &StatusSelection,
    page: OffsetPage,
) -> StoreResult<Vec<Message>> {
    let f = &sel.filter;
    match &f.tag {
        None => selected!(
            messages::table.select(Message::as_select()).into_boxed(),
            scope,
            sel
        )
        .filter(messages::requested_at.ge(f.from_ms))
        .filter(messages::requested_at.lt(f.to_ms))
        .order((messages::requested_at.asc(), messages::id.asc()))
        .offset(page.start)
        .limit(page.limit)
        .load(conn),
        Some(tag) => {
            let q = selected!(
                messages::table
                    .inner_join(message_tags::table.on(tags_of_message()))
                    .select(Message::as_select())
                    .into_boxed(),
                scope,
                sel
            )
            .filter(message_tags::account_id.eq(scope.account_id()))
            .filter(message_tags::tag.eq(tag.clone()))
            .filter(message_tags::requested_at.ge(f.from_ms))
            .filter(message_tags::requested_at.lt(f.to_ms))
            .order((
                message_tags::requested_at.asc(),
                message_tags::message_id.asc(),
            ))
            .offset(page.start)
            .limit(page.limit);
            conn.with_index_order(|conn| q.load(conn))
        }
    }
}

/// How many messages the selection holds: from the rollup (as `/status` counts) when only the
/// window, API_USERs, mail type, status and reason narrow it, else counted exactly on the
/// narrowing index.
pub fn total(conn: &mut DbConn, scope: &AccountScope, sel: &StatusSelection) -> StoreResult<i64> {
    let f = &sel.filter;
    if sel.rollup_counts() {
        let from_hour = f.from_ms.div_euclid(HOUR_MS);
        let to_hour = (f.to_ms + HOUR_MS - 1).div_euclid(HOUR_MS);
        let api_users: Vec<Option<&str>> = if sel.api_users.is_empty() {
            vec![f.api_user.as_deref()]
        } else {
            let mut names: Vec<&str> = sel
                .api_users
                .iter()
                .map(String::as_str)
                .filter(|a| f.api_user.as_deref().is_none_or(|only| only == *a))
                .collect();
            names.sort_unstable();
            names.dedup();
            names.into_iter().map(Some).collect()
        };
        let mut n = 0;
        for api_user in api_users {
            let rows = rollup::grouped(
                conn,
                scope,
                from_hour,
                to_hour,
                rollup::Narrowing {
                    api_user,
                    mail_type: f.mail_type.map(MailType::as_i16),
                    tag: f.tag.as_deref(),
                },
            )?;
            n += rows
                .iter()
                .filter(|r| f.status.is_none_or(|s| s.as_i16() == r.status))
                .filter(|r| f.reason.is_none_or(|x| x.as_i16() == r.reason))
                .filter(|r| {
                    sel.outcomes.is_empty()
                        || sel
                            .outcomes
                            .iter()
                            .any(|(s, x)| s.as_i16() == r.status && x.as_i16() == r.reason)
                })
                .map(|r| r.count)
                .sum::<i64>();
        }
        return Ok(n);
    }
    match &f.tag {
        None => selected!(
            messages::table
                .select(diesel::dsl::count_star())
                .into_boxed(),
            scope,
            sel
        )
        .filter(messages::requested_at.ge(f.from_ms))
        .filter(messages::requested_at.lt(f.to_ms))
        .get_result(conn),
        Some(tag) => selected!(
            messages::table
                .inner_join(message_tags::table.on(tags_of_message()))
                .select(diesel::dsl::count_star())
                .into_boxed(),
            scope,
            sel
        )
        .filter(message_tags::account_id.eq(scope.account_id()))
        .filter(message_tags::tag.eq(tag.clone()))
        .filter(message_tags::requested_at.ge(f.from_ms))
        .filter(message_tags::requested_at.lt(f.to_ms))
        .get_result(conn),
    }
}
