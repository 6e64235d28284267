//! Writing what a batch decided, in bulk: the new messages and their tags, the event log,
//! status changes, tracking rows, contents and send logs, list entries, the rollups, and the
//! requests that entries added by the batch now cover.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::{bucket, Batch};
use crate::db::DbConn;
use crate::domain::Millis;
use crate::ingest::phases::{add, timed, Phase};
use crate::store::events::{self as store, NewMessage};
use crate::store::lists;
use crate::store::models::{Message, MessageTag};
use crate::store::providers::{
    engaged, engagement_status, move_engagement, ProviderBucket, ProviderDeltas,
};
use crate::store::rollup::{self, BucketKey};
use crate::store::StoreResult;

/// Rollup changes: per bucket, and per (bucket, tag).
type Deltas = (Vec<(BucketKey, i64)>, Vec<((BucketKey, String), i64)>);

impl Batch<'_> {
    /// Writes everything the batch decided, in bulk.
    pub(super) fn write(&mut self, conn: &mut DbConn) -> StoreResult<()> {
        timed(Phase::Messages, || self.write_messages(conn))?;
        self.write_children(conn)?;
        let scope = self.scope;
        timed(Phase::Tracking, || -> StoreResult<()> {
            lists::record_bounces(conn, &scope, &self.bounces)?;
            lists::record_spam_reports(conn, &scope, &self.spam_reports)?;
            lists::record_unsubscribes(conn, &scope, &self.unsubscribes)
        })?;
        timed(Phase::Rollup, || -> StoreResult<()> {
            let (deltas, tag_deltas) = self.rollup_deltas();
            rollup::apply(conn, &scope, &deltas)?;
            rollup::apply_tags(conn, &scope, &tag_deltas)
        })?;
        timed(Phase::ProviderRollup, || self.write_provider_deltas(conn))?;
        timed(Phase::CatchUp, || self.catch_up(conn))
    }

    /// The provider rollup's changes: each changed message's move, the batch's first opens and
    /// clicks in their message's bucket as the batch leaves it, and the earlier ones of a
    /// message the batch re-filed (its MX named another provider) moved along with it.
    fn write_provider_deltas(&mut self, conn: &mut DbConn) -> StoreResult<()> {
        let scope = self.scope;
        let mut deltas = ProviderDeltas::default();
        let mut refiled: Vec<&str> = Vec::new();
        for t in self.messages.values().filter(|t| t.changed) {
            deltas.moved(t.provider_before.as_ref(), &t.message);
            if t.provider_before
                .as_ref()
                .is_some_and(|b| b.provider != t.message.provider)
            {
                refiled.push(&t.message.email_id);
            }
        }
        let fresh: HashSet<(String, bool)> = self.engagement.drain(..).collect();
        for (email_id, click) in &fresh {
            if let Some(t) = self.messages.get(email_id) {
                let bucket = ProviderBucket::of(&t.message);
                deltas.add(
                    ProviderBucket {
                        status: engagement_status(*click),
                        reason: 0,
                        ..bucket
                    },
                    1,
                );
            }
        }
        for (email_id, click) in engaged(conn, &scope, &refiled)? {
            let t = &self.messages[&email_id];
            if let (false, Some(before)) = (
                fresh.contains(&(email_id.clone(), click)),
                &t.provider_before,
            ) {
                move_engagement(&mut deltas, before, &t.message, click);
            }
        }
        deltas.write(conn, &scope)
    }

    /// The new messages (learning their ids) and their tag rows.
    fn write_messages(&mut self, conn: &mut DbConn) -> StoreResult<()> {
        let new_rows: Vec<NewMessage> = self
            .created
            .iter()
            .filter_map(|id| self.messages.get(id))
            .map(|t| {
                let m = &t.message;
                NewMessage {
                    account_id: m.account_id,
                    email_id: m.email_id.clone(),
                    recipient: m.recipient.clone(),
                    api_user: m.api_user.clone(),
                    mail_type: m.mail_type,
                    tags: m.tags.clone(),
                    sender: m.sender.clone(),
                    subject: m.subject.clone(),
                    status: m.status,
                    reason: m.reason,
                    smtp_reply: m.smtp_reply.clone(),
                    rule: m.rule.clone(),
                    requested_at: m.requested_at,
                    updated_at: m.updated_at,
                    provider: m.provider.clone(),
                }
            })
            .collect();
        for (id, email_id) in store::insert_messages(conn, &new_rows)? {
            if let Some(t) = self.messages.get_mut(&email_id) {
                t.message.id = id;
            }
        }
        let account_id = self.scope.account_id();
        let tags: Vec<MessageTag> = self
            .created
            .iter()
            .filter_map(|id| self.messages.get(id))
            .flat_map(|t| {
                t.message.distinct_tags().into_iter().map(|tag| MessageTag {
                    message_id: t.message.id,
                    account_id,
                    tag: tag.to_string(),
                    requested_at: t.message.requested_at,
                })
            })
            .collect();
        store::insert_tags(conn, &tags)
    }

    /// What hangs off the messages: the event log, status changes, tracking rows, contents
    /// and send logs.
    fn write_children(&mut self, conn: &mut DbConn) -> StoreResult<()> {
        let scope = self.scope;
        let events = Instant::now();
        for row in &mut self.log {
            row.message_id = self.messages.get(&row.email_id).map(|t| t.message.id);
        }
        store::insert_events(conn, &self.log)?;
        let id_of = |email_id: &str| self.messages.get(email_id).map(|t| t.message.id);
        for (email_id, ids) in &self.attach {
            if let Some(message_id) = id_of(email_id) {
                store::attach_events(conn, &scope, message_id, ids)?;
            }
        }
        add(Phase::Events, events.elapsed());
        let statuses = Instant::now();
        let changed: Vec<(&Message, bool)> = self
            .messages
            .values()
            .filter(|t| t.changed && !t.is_new)
            .map(|t| {
                let refiled = t.provider_before.as_ref().map(|b| &b.provider);
                (&t.message, refiled != Some(&t.message.provider))
            })
            .collect();
        store::update_statuses(conn, &scope, &changed)?;
        add(Phase::Statuses, statuses.elapsed());
        let tracking = Instant::now();
        for row in &mut self.tracking {
            row.message_id = self.messages.get(&row.email_id).map(|t| t.message.id);
        }
        store::insert_tracking(conn, &self.tracking)?;
        let id_of = |email_id: &str| self.messages.get(email_id).map(|t| t.message.id);
        for (email_id, raw) in &self.contents {
            if let Some(message_id) = id_of(email_id) {
                store::insert_content(conn, &scope, message_id, raw)?;
            }
        }
        for (email_id, lines) in &self.send_logs {
            if let Some(message_id) = id_of(email_id) {
                store::append_send_log(conn, &scope, message_id, lines)?;
            }
        }
        add(Phase::Tracking, tracking.elapsed());
        Ok(())
    }

    /// The rollup changes of the whole batch, folded in memory: each message that moved
    /// leaves its old bucket and enters its new one, once, whatever events moved it.
    fn rollup_deltas(&self) -> Deltas {
        let mut deltas: HashMap<BucketKey, i64> = HashMap::new();
        let mut tag_deltas: HashMap<(BucketKey, String), i64> = HashMap::new();
        for t in self.messages.values().filter(|t| t.changed) {
            let after = bucket(&t.message);
            if t.before.as_ref() == Some(&after) {
                continue;
            }
            let tags = t.message.distinct_tags();
            if let Some(before) = &t.before {
                *deltas.entry(before.clone()).or_default() -= 1;
                for tag in &tags {
                    *tag_deltas
                        .entry((before.clone(), tag.to_string()))
                        .or_default() -= 1;
                }
            }
            for tag in &tags {
                *tag_deltas
                    .entry((after.clone(), tag.to_string()))
                    .or_default() += 1;
            }
            *deltas.entry(after).or_default() += 1;
        }
        (
            deltas.into_iter().filter(|(_, d)| *d != 0).collect(),
            tag_deltas.into_iter().filter(|(_, d)| *d != 0).collect(),
        )
    }

    /// Entries this batch added may cover requests taken before them.
    fn catch_up(&self, conn: &mut DbConn) -> StoreResult<()> {
        let mut since: HashMap<String, Millis> = HashMap::new();
        let added = self
            .bounces
            .iter()
            .map(|h| (&h.address, h.at))
            .chain(self.spam_reports.iter().map(|h| (&h.address, h.at)))
            .chain(self.unsubscribes.iter().map(|h| (&h.address, h.at)));
        for (address, at) in added {
            let e = since.entry(address.clone()).or_insert(at);
            *e = (*e).min(at);
        }
        crate::ingest::suppress::catch_up(conn, &self.scope, &since, self.now)?;
        Ok(())
    }
}
