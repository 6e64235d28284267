//! Re-filing the mail already stored when an owner maps one of the account's domains to a
//! provider, or removes the mapping: each message of the domain gets the provider the
//! account's map now gives it (with the MX host its delivery reported, as ingestion does), and
//! the provider rollup moves with it, its first open and click included. The work goes in
//! batches of a bounded size, each its own transaction, so that no lock is held for long.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::{engaged, engagement_status, map_for, ProviderBucket, ProviderDeltas};
use crate::db::schema::{message_events, messages};
use crate::db::DbConn;
use crate::domain::providers::{domain_of, known_providers, normalize_domain, ProviderMap};
use crate::store::models::Message;
use crate::store::{AccountScope, StoreResult};

/// Messages read per batch.
pub const REFILE_BATCH: i64 = 2_000;

/// The providers a message of `domain` may be filed under before and after a change of the
/// account's mapping of it, `mapped`: the domain itself, the list's provider of it, the mapped
/// one(s), and every provider an MX host can name.
fn candidates(domain: &str, mapped: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = vec![
        domain.to_string(),
        ProviderMap::builtin().provider_of(domain),
    ];
    out.extend(mapped.iter().map(|p| p.to_string()));
    out.extend(
        known_providers()
            .iter()
            .filter(|p| !p.mx_suffixes.is_empty())
            .map(|p| p.id.to_string()),
    );
    let mut seen = HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// Re-files the account's messages of `domain` under its current map; `mapped` names the
/// providers the domain was or now is mapped to. Answers the messages that moved.
pub fn refile_domain(
    conn: &mut DbConn,
    scope: &AccountScope,
    domain: &str,
    mapped: &[&str],
) -> StoreResult<i64> {
    let domain = normalize_domain(domain);
    let mut moved = 0;
    for provider in candidates(&domain, mapped) {
        // Newest first on the provider's index; `after` is the last (requested_at, id) read.
        let mut after: Option<(i64, i64)> = None;
        loop {
            let _writer = conn.sqlite_writer_turn();
            let (n, next) = conn.transaction(|conn| {
                crate::store::events::begin_writing(conn)?;
                refile_batch(conn, scope, &domain, &provider, after)
            })?;
            moved += n;
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(moved)
}

/// One batch: up to [`REFILE_BATCH`] messages of `provider` older than `after`, of which those
/// of `domain` are re-filed. Answers the moved count and where the next batch starts (none at
/// the end).
fn refile_batch(
    conn: &mut DbConn,
    scope: &AccountScope,
    domain: &str,
    provider: &str,
    after: Option<(i64, i64)>,
) -> StoreResult<(i64, Option<(i64, i64)>)> {
    use messages as m;
    let mut q = m::table
        .filter(m::account_id.eq(scope.account_id()))
        .filter(m::provider.eq(provider))
        .into_boxed();
    if let Some((at, id)) = after {
        q = q.filter(
            m::requested_at
                .lt(at)
                .or(m::requested_at.eq(at).and(m::id.lt(id))),
        );
    }
    let rows: Vec<Message> = q
        .order((m::requested_at.desc(), m::id.desc()))
        .limit(REFILE_BATCH)
        .select(Message::as_select())
        .load(conn)?;
    let next = (rows.len() as i64 == REFILE_BATCH)
        .then(|| rows.last().map(|r| (r.requested_at, r.id)))
        .flatten();
    let ids: Vec<&str> = rows
        .iter()
        .filter(|r| domain_of(&r.recipient) == domain)
        .map(|r| r.email_id.as_str())
        .collect();
    // Read again, locked, as ingestion reads what it changes: a batch changing one of them
    // meanwhile is waited for, and its status is the one moved between buckets.
    let ours = crate::store::events::messages_to_change(conn, scope, &ids)?;
    if ours.is_empty() {
        return Ok((0, next));
    }
    let map = map_for(conn, scope)?;
    let mx = last_mx(conn, scope, &ours)?;
    let mut deltas = ProviderDeltas::default();
    let mut changed: Vec<(Message, ProviderBucket)> = Vec::new();
    for mut message in ours {
        let now = map.provider_with_mx(&message.recipient, mx.get(&message.id).map(|s| &**s));
        if now == message.provider {
            continue;
        }
        let before = ProviderBucket::of(&message);
        message.provider = now;
        deltas.moved(Some(&before), &message);
        changed.push((message, before));
    }
    let index: HashMap<&str, usize> = changed
        .iter()
        .enumerate()
        .map(|(i, (m, _))| (m.email_id.as_str(), i))
        .collect();
    let ids: Vec<&str> = index.keys().copied().collect();
    for (email_id, click) in engaged(conn, scope, &ids)? {
        if let Some(&i) = index.get(email_id.as_str()) {
            let (m, before) = &changed[i];
            move_engagement(&mut deltas, before, m, click);
        }
    }
    for (message, _) in &changed {
        diesel::update(
            m::table
                .filter(m::account_id.eq(scope.account_id()))
                .filter(m::id.eq(message.id)),
        )
        .set(m::provider.eq(&message.provider))
        .execute(conn)?;
    }
    deltas.write(conn, scope)?;
    Ok((changed.len() as i64, next))
}

/// Moves a message's first open (or click) from its bucket `before` to its bucket now.
pub fn move_engagement(
    deltas: &mut ProviderDeltas,
    before: &ProviderBucket,
    now: &Message,
    click: bool,
) {
    let status = engagement_status(click);
    let from = ProviderBucket {
        status,
        reason: 0,
        ..before.clone()
    };
    let to = ProviderBucket {
        status,
        reason: 0,
        ..ProviderBucket::of(now)
    };
    if from != to {
        deltas.add(from, -1);
        deltas.add(to, 1);
    }
}

/// The MX host each message's newest delivery report named, by message id.
fn last_mx(
    conn: &mut DbConn,
    scope: &AccountScope,
    messages: &[Message],
) -> StoreResult<HashMap<i64, String>> {
    use message_events as e;
    let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
    let mut out: HashMap<i64, (i64, String)> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(Option<i64>, i64, Option<String>)> = e::table
            .filter(e::account_id.eq(scope.account_id()))
            .filter(e::message_id.eq_any(chunk))
            .filter(e::mx.is_not_null())
            .select((e::message_id, e::occurred_at, e::mx))
            .load(conn)?;
        for (id, at, mx) in rows {
            let (Some(id), Some(mx)) = (id, mx) else {
                continue;
            };
            let slot = out.entry(id).or_insert((at, mx.clone()));
            if at >= slot.0 {
                *slot = (at, mx);
            }
        }
    }
    Ok(out.into_iter().map(|(id, (_, mx))| (id, mx)).collect())
}
