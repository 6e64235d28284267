//! The counts per status and reason of the status table's filter: from the rollup when it
//! can answer, else counted directly up to a cap.

use diesel::prelude::*;

use super::super::rollup::{self, HOUR_MS};
use super::super::{AccountScope, StoreResult};
use super::{contains_pattern, lower, tags_of_message, StatusFilter};
use crate::db::schema::{message_tags, messages};
use crate::db::DbConn;
use crate::domain::{MailType, Reason, Status};

/// A count that may stop at a cap ("10,000+").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    pub n: i64,
    pub capped: bool,
}

pub const COUNT_CAP: i64 = 10_000;

/// Counts per status (and per reason within it) for the filter without its status: from the
/// rollup when it can answer, else counted directly up to a cap. With a reason in the filter,
/// each status's total counts only the messages with that reason.
pub fn counts(
    conn: &mut DbConn,
    scope: &AccountScope,
    f: &StatusFilter,
) -> StoreResult<Vec<(Status, Option<Reason>, Count)>> {
    if f.needs_direct_count() {
        return direct_counts(conn, scope, f);
    }
    let rows = rollup_rows(conn, scope, f)?;
    Ok(counts_from_rollup(&rows, f.reason))
}

/// Each status's messages counted one by one, up to the cap.
fn direct_counts(
    conn: &mut DbConn,
    scope: &AccountScope,
    f: &StatusFilter,
) -> StoreResult<Vec<(Status, Option<Reason>, Count)>> {
    let mut out = Vec::new();
    for &status in Status::ALL {
        let probe = StatusFilter {
            status: Some(status),
            reason: f.reason.filter(|r| status.allowed_reasons().contains(r)),
            ..f.clone()
        };
        if f.reason.is_some() && probe.reason.is_none() {
            out.push((status, None, Count::default()));
            continue;
        }
        let ids: Vec<i64> = match &probe.tag {
            None => filtered!(
                messages::table.select(messages::id).into_boxed(),
                scope,
                &probe
            )
            .filter(messages::requested_at.ge(f.from_ms))
            .filter(messages::requested_at.lt(f.to_ms))
            .limit(COUNT_CAP + 1)
            .load(conn)?,
            Some(tag) => filtered!(
                messages::table
                    .inner_join(message_tags::table.on(tags_of_message()))
                    .select(messages::id)
                    .into_boxed(),
                scope,
                &probe
            )
            .filter(message_tags::account_id.eq(scope.account_id()))
            .filter(message_tags::tag.eq(tag.clone()))
            .filter(message_tags::requested_at.ge(f.from_ms))
            .filter(message_tags::requested_at.lt(f.to_ms))
            .limit(COUNT_CAP + 1)
            .load(conn)?,
        };
        let n = ids.len() as i64;
        let count = Count {
            n: n.min(COUNT_CAP),
            capped: n > COUNT_CAP,
        };
        out.push((status, None, count));
    }
    Ok(out)
}

/// The rollup's counts per status and reason for the filter's hours: the provider rollup
/// when a provider is chosen, else the status rollup narrowed by API_USER, mail type and tag.
fn rollup_rows(
    conn: &mut DbConn,
    scope: &AccountScope,
    f: &StatusFilter,
) -> StoreResult<Vec<rollup::StatusReasonCount>> {
    let from_hour = f.from_ms.div_euclid(HOUR_MS);
    let to_hour = (f.to_ms + HOUR_MS - 1).div_euclid(HOUR_MS);
    Ok(match &f.provider {
        Some(p) => crate::store::providers::totals(conn, scope, from_hour, to_hour, Some(p))?
            .into_iter()
            .map(|r| rollup::StatusReasonCount {
                status: r.status,
                reason: r.reason,
                count: r.count,
            })
            .collect(),
        None => rollup::grouped(
            conn,
            scope,
            from_hour,
            to_hour,
            rollup::Narrowing {
                api_user: f.api_user.as_deref(),
                mail_type: f.mail_type.map(MailType::as_i16),
                tag: f.tag.as_deref(),
            },
        )?,
    })
}

/// Each status's total (of `reason` alone, when one is chosen), followed by its count per
/// reason.
fn counts_from_rollup(
    rows: &[rollup::StatusReasonCount],
    reason: Option<Reason>,
) -> Vec<(Status, Option<Reason>, Count)> {
    let mut out = Vec::new();
    for &status in Status::ALL {
        let n: i64 = rows
            .iter()
            .filter(|r| r.status == status.as_i16())
            .filter(|r| reason.is_none_or(|x| x.as_i16() == r.reason))
            .map(|r| r.count)
            .sum();
        out.push((status, None, Count { n, capped: false }));
        for r in rows
            .iter()
            .filter(|r| r.status == status.as_i16() && r.reason != 0)
        {
            if let Some(reason) = Reason::from_i16(r.reason) {
                let count = Count {
                    n: r.count,
                    capped: false,
                };
                out.push((status, Some(reason), count));
            }
        }
    }
    out
}
