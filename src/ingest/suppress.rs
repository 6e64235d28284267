//! Suppression that does not depend on the order events arrive in (DESIGN §3).
//!
//! A request at T is suppressed by the list entries in force at T: created at or before T and
//! not expired at T. Lists only grow from events (an unsubscribe keeps its earliest time, a
//! spam report its earliest report and latest expiry, a bounce-list entry its first bounce and
//! the expiry its count gives), so an entry that arrives late can only widen what it covers.
//! When it covers requests already taken, they are suppressed now, exactly as if the entry had
//! arrived first; nothing here ever lifts a suppression (only deleting an entry does that, for
//! later requests).

use std::collections::HashMap;

use super::fold;
use crate::db::DbConn;
use crate::domain::{normalize_address, suppression_among, Millis, Status};
use crate::store::events as store;
use crate::store::lists;
use crate::store::models::{Message, NewMessageEvent};
use crate::store::providers::{ProviderBucket, ProviderDeltas};
use crate::store::rollup::{self, BucketKey, HOUR_MS};
use crate::store::{suppressed, AccountScope, StoreResult};

fn bucket(m: &Message) -> BucketKey {
    BucketKey {
        hour: m.requested_at.div_euclid(HOUR_MS),
        status: m.status,
        reason: m.reason.unwrap_or(0),
        api_user: m.api_user.clone(),
        mail_type: m.mail_type,
    }
}

/// Re-checks the messages to each address requested at or after the time its new list entry
/// took effect, and suppresses those an entry in force at their request covers. Answers how
/// many messages changed.
pub fn catch_up(
    conn: &mut DbConn,
    scope: &AccountScope,
    since_by_address: &HashMap<String, Millis>,
    now: Millis,
) -> StoreResult<usize> {
    let since_by_address = earliest_by_address(since_by_address);
    let Some(since) = since_by_address.values().copied().min() else {
        return Ok(0);
    };
    let addresses: Vec<String> = since_by_address.keys().cloned().collect();
    let candidates = suppressed::messages_to(conn, scope, &addresses, since)?;
    if candidates.is_empty() {
        return Ok(0);
    }
    let entries = lists::entries_for_addresses(conn, scope, &addresses)?;
    let mut changed: Vec<Message> = Vec::new();
    let mut log: Vec<NewMessageEvent> = Vec::new();
    let mut deltas: HashMap<BucketKey, i64> = HashMap::new();
    let mut tag_deltas: HashMap<(BucketKey, String), i64> = HashMap::new();
    let mut provider_deltas = ProviderDeltas::default();
    for mut m in candidates {
        if since_by_address
            .get(&m.recipient)
            .is_none_or(|from| m.requested_at < *from)
        {
            continue;
        }
        let Some(s) = suppression_among(&entries, &m.recipient, m.requested_at) else {
            continue;
        };
        if fold::is_locked(&m) && m.reason == Some(s.reason.as_i16()) {
            continue;
        }
        let before = bucket(&m);
        let provider_before = ProviderBucket::of(&m);
        m.status = Status::Invalid.as_i16();
        m.reason = Some(s.reason.as_i16());
        m.smtp_reply = None;
        m.rule = Some(s.rule());
        m.updated_at = m.requested_at;
        let after = bucket(&m);
        provider_deltas.moved(Some(&provider_before), &m);
        if before != after {
            *deltas.entry(before.clone()).or_default() -= 1;
            *deltas.entry(after.clone()).or_default() += 1;
            for tag in m.distinct_tags() {
                *tag_deltas
                    .entry((before.clone(), tag.to_string()))
                    .or_default() -= 1;
                *tag_deltas
                    .entry((after.clone(), tag.to_string()))
                    .or_default() += 1;
            }
        }
        log.push(invalid_event(scope, &m, now));
        changed.push(m);
    }
    if changed.is_empty() {
        return Ok(0);
    }
    // Suppression changes a message's status, never its provider.
    let rows: Vec<(&Message, bool)> = changed.iter().map(|m| (m, false)).collect();
    store::update_statuses(conn, scope, &rows)?;
    store::insert_events(conn, &log)?;
    let deltas: Vec<(BucketKey, i64)> = deltas.into_iter().filter(|(_, d)| *d != 0).collect();
    rollup::apply(conn, scope, &deltas)?;
    let tag_deltas: Vec<((BucketKey, String), i64)> =
        tag_deltas.into_iter().filter(|(_, d)| *d != 0).collect();
    rollup::apply_tags(conn, scope, &tag_deltas)?;
    provider_deltas.write(conn, scope)?;
    Ok(changed.len())
}

/// The addresses (normalized, domains and empty ones left out) with the earliest time given
/// for each.
fn earliest_by_address(since_by_address: &HashMap<String, Millis>) -> HashMap<String, Millis> {
    since_by_address
        .iter()
        .map(|(a, at)| (normalize_address(a), *at))
        .filter(|(a, _)| !a.starts_with('@') && !a.is_empty())
        .fold(HashMap::new(), |mut m, (a, at)| {
            let e = m.entry(a).or_insert(at);
            *e = (*e).min(at);
            m
        })
}

/// The event that records a message suppressed after the fact.
fn invalid_event(scope: &AccountScope, m: &Message, now: Millis) -> NewMessageEvent {
    NewMessageEvent {
        account_id: scope.account_id(),
        message_id: Some(m.id),
        email_id: m.email_id.clone(),
        event_id: None,
        kind: "invalid".into(),
        occurred_at: m.requested_at,
        smtp_reply: None,
        mx: None,
        attempt: None,
        reason: m.reason,
        detail: None,
        received_at: now,
    }
}
