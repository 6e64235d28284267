//! What a batch reads before it folds its events: the messages, waiting events, list entries,
//! first deliveries and engagement its events touch, each with one `IN (…)` query.

use std::collections::HashMap;

use super::{bucket, non_empty, Batch, Tracked};
use crate::db::DbConn;
use crate::domain::{normalize_address, now_ms, ListEntry};
use crate::ingest::{Event, EventKind, Outcome, Sender};
use crate::store::events as store;
use crate::store::lists as store_lists;
use crate::store::models::MessageEvent;
use crate::store::providers::{self as provider_rollup, ProviderBucket};
use crate::store::{AccountScope, StoreResult};

impl<'a> Batch<'a> {
    pub(super) fn load(
        conn: &mut DbConn,
        scope: &AccountScope,
        sender: &'a Sender,
        events: &[Event],
    ) -> StoreResult<Batch<'a>> {
        let outcomes: Vec<Outcome> = events
            .iter()
            .map(|e| match e.problem() {
                Some(problem) => Outcome::Rejected(problem),
                None => Outcome::Applied,
            })
            .collect();
        let valid = || {
            events
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| **o == Outcome::Applied)
                .map(|(e, _)| e)
        };
        let event_ids: Vec<&str> = valid().filter_map(|e| non_empty(&e.event_id)).collect();
        let seen_event_ids = store::seen_event_ids(conn, scope, &event_ids)?;
        let messages = load_messages(conn, scope, valid())?;
        let requests: Vec<&Event> = valid()
            .filter(|e| e.kind == EventKind::Request)
            .filter(|e| non_empty(&e.email_id).is_some_and(|id| !messages.contains_key(id)))
            .collect();
        let waiting_in_log = load_waiting(conn, scope, &requests)?;
        let list_entries = load_list_entries(conn, scope, &requests)?;
        let first_delivery = crate::ingest::first_deliveries(
            conn,
            scope,
            valid(),
            messages
                .values()
                .map(|t| (t.message.email_id.as_str(), t.message.id)),
        )?;
        let engaged = provider_rollup::engaged(
            conn,
            scope,
            &valid()
                .filter(|e| matches!(e.kind, EventKind::Open | EventKind::Click))
                .filter_map(|e| non_empty(&e.email_id))
                .collect::<Vec<_>>(),
        )?;
        Ok(Batch {
            scope: *scope,
            sender,
            now: now_ms(),
            outcomes,
            seen_event_ids,
            messages,
            created: Vec::new(),
            waiting_in_log,
            waiting_in_batch: HashMap::new(),
            list_entries,
            first_delivery,
            providers: provider_rollup::map_for(conn, scope)?,
            engaged,
            engagement: Vec::new(),
            log: Vec::with_capacity(events.len()),
            attach: Vec::new(),
            tracking: Vec::new(),
            contents: Vec::new(),
            send_logs: Vec::new(),
            bounces: Vec::new(),
            spam_reports: Vec::new(),
            unsubscribes: Vec::new(),
        })
    }
}

/// The messages the events name that exist already, by email id.
fn load_messages<'e>(
    conn: &mut DbConn,
    scope: &AccountScope,
    events: impl Iterator<Item = &'e Event>,
) -> StoreResult<HashMap<String, Tracked>> {
    let mut email_ids: Vec<&str> = events.filter_map(|e| non_empty(&e.email_id)).collect();
    email_ids.sort_unstable();
    email_ids.dedup();
    Ok(store::messages_to_change(conn, scope, &email_ids)?
        .into_iter()
        .map(|m| {
            let tracked = Tracked {
                before: Some(bucket(&m)),
                provider_before: Some(ProviderBucket::of(&m)),
                message: m,
                is_new: false,
                changed: false,
            };
            (tracked.message.email_id.clone(), tracked)
        })
        .collect())
}

/// Logged events that came before the requests of this batch, by email id.
fn load_waiting(
    conn: &mut DbConn,
    scope: &AccountScope,
    requests: &[&Event],
) -> StoreResult<HashMap<String, Vec<MessageEvent>>> {
    let requested_ids: Vec<&str> = requests
        .iter()
        .filter_map(|e| non_empty(&e.email_id))
        .collect();
    let mut waiting: HashMap<String, Vec<MessageEvent>> = HashMap::new();
    for row in store::waiting_events(conn, scope, &requested_ids)? {
        waiting.entry(row.email_id.clone()).or_default().push(row);
    }
    Ok(waiting)
}

/// The list entries covering each recipient the requests of this batch name.
fn load_list_entries(
    conn: &mut DbConn,
    scope: &AccountScope,
    requests: &[&Event],
) -> StoreResult<HashMap<String, Vec<ListEntry>>> {
    let recipients: Vec<String> = requests
        .iter()
        .filter_map(|e| e.recipient.as_deref().map(normalize_address))
        .collect();
    let entries = store_lists::entries_for_addresses(conn, scope, &recipients)?;
    let mut list_entries: HashMap<String, Vec<ListEntry>> = HashMap::new();
    for address in recipients {
        let covering: Vec<ListEntry> = entries
            .iter()
            .filter(|e| e.covers(&address))
            .cloned()
            .collect();
        list_entries.entry(address).or_default().extend(covering);
    }
    Ok(list_entries)
}
