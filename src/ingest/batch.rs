//! One batch of events in one transaction: read what the batch touches with a few `IN (…)`
//! queries, fold every event in memory, write the results back in bulk.

use std::collections::{HashMap, HashSet};

use diesel::Connection;

use super::fold::{self, StatusStep};
use super::{classifier, Event, EventKind, Outcome, Sender};
use crate::db::DbConn;
use crate::domain::{
    bounce_backoff_ms, normalize_address, now_ms, Millis, Reason, Status, UnsubscribeReason,
    SPAM_REPORT_TTL_MS,
};
use crate::domain::{suppression_among, ListEntry, ListKind, TrackKind};
use crate::store::events::{self as store, NewMessage};
use crate::store::lists::{self, BounceHit, SpamHit, UnsubscribeHit};
use crate::store::models::{Message, MessageEvent, MessageTag, NewMessageEvent, NewTrackingEvent};
use crate::store::providers::{self as provider_rollup, ProviderBucket, ProviderDeltas};
use crate::store::rollup::{self, BucketKey, HOUR_MS};
use crate::store::{AccountScope, StoreResult};

/// Applies `events` for the scope's account, all or nothing, and answers each one's outcome
/// in order. Events that make no sense are rejected one by one; the others still apply.
pub fn ingest(
    conn: &mut DbConn,
    scope: &AccountScope,
    sender: &Sender,
    events: &[Event],
) -> StoreResult<Vec<Outcome>> {
    let _writer = conn.sqlite_writer_turn();
    // PostgreSQL: the months these rows fall in must have their partitions; made outside the
    // batch's transaction so that no one waits on its locks. Usually they exist already.
    crate::store::partitions::ensure_months(
        conn,
        events
            .iter()
            .map(|e| e.occurred_at)
            .filter(|at| Event::plausible_time(*at)),
    )?;
    let mut attempt = 1;
    loop {
        let applied = conn.transaction(|conn| {
            store::begin_writing(conn)?;
            let mut batch = Batch::load(conn, scope, sender, events)?;
            for (index, event) in events.iter().enumerate() {
                batch.take(index, event);
            }
            batch.write(conn)?;
            Ok(batch.outcomes)
        });
        match applied {
            // Concurrent batches on PostgreSQL may create the same message (one emailId from
            // two clients, or a client's retry racing its first try) or lock the same rows in
            // opposite orders. The loser rolled back whole; run it again, and it sees what the
            // winner wrote.
            Err(e) if attempt < MAX_ATTEMPTS && lost_a_race(&e) => {
                log::info!("ingest: batch retried after a concurrent write ({e})");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// How often a batch that lost a race with another one is run.
const MAX_ATTEMPTS: u32 = 4;

fn lost_a_race(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure,
            _,
        ) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// An event as the log keeps it, which is also all that applying it needs — so that events
/// that waited in the log for their request apply exactly like fresh ones.
#[derive(Debug, Clone)]
struct Step {
    kind: EventKind,
    at: Millis,
    smtp_reply: Option<String>,
    reason: Option<Reason>,
    /// Failures: the classifier's detail; clicks: the URL; unsubscribes: the reason code.
    detail: Option<String>,
    rule: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    send_log: Vec<String>,
    /// The MX host the MTA spoke to, when reported.
    mx: Option<String>,
}

impl Step {
    fn of(event: &Event) -> Step {
        let mut step = Step {
            kind: event.kind,
            at: event.occurred_at,
            smtp_reply: event.smtp_reply.clone().filter(|r| !r.trim().is_empty()),
            reason: event.reason,
            detail: event.detail.clone(),
            rule: event.rule.clone(),
            ip: event.ip.clone(),
            user_agent: event.user_agent.clone(),
            send_log: event.send_log.clone(),
            mx: event.mx.clone(),
        };
        match event.kind {
            EventKind::SoftBounce | EventKind::Invalid => step.resolve_reason(),
            EventKind::Click => step.detail = event.url.clone(),
            EventKind::Unsubscribe => {
                let reason = event
                    .unsubscribe_reason
                    .unwrap_or(UnsubscribeReason::NotWanted);
                step.detail = Some(reason.code().to_string());
            }
            _ => {}
        }
        step
    }

    /// A failure without a reason gets the classifier's verdict on its SMTP reply.
    fn resolve_reason(&mut self) {
        if let Some(reason) = self.reason {
            self.rule
                .get_or_insert_with(|| format!("reason given: {}", reason.code()));
            return;
        }
        match &self.smtp_reply {
            Some(reply) => {
                let verdict = classifier().classify_reply(reply);
                self.reason = Some(
                    verdict
                        .reason
                        .and_then(Reason::from_code)
                        .unwrap_or(Reason::Other),
                );
                if self.detail.is_none() {
                    self.detail = verdict.detail.map(str::to_string);
                }
                self.rule.get_or_insert(verdict.rule);
            }
            None => {
                self.reason = Some(Reason::Other);
                self.rule
                    .get_or_insert_with(|| "no SMTP reply or reason given".to_string());
            }
        }
    }

    fn of_log(row: &MessageEvent) -> Option<Step> {
        let kind = EventKind::from_code(&row.kind)?;
        let reason = row.reason.and_then(Reason::from_i16);
        Some(Step {
            kind,
            at: row.occurred_at,
            smtp_reply: row.smtp_reply.clone(),
            reason,
            detail: row.detail.clone(),
            rule: reason.map(|r| format!("reason: {}", r.code())),
            ip: None,
            user_agent: None,
            send_log: Vec::new(),
            mx: row.mx.clone(),
        })
    }

    fn status(&self) -> Option<Status> {
        match self.kind {
            EventKind::Deliver => Some(Status::Delivered),
            EventKind::SoftBounce => Some(Status::SoftBounce),
            EventKind::Invalid => Some(Status::Invalid),
            _ => None,
        }
    }
}

/// A message the batch touches, with the rollup bucket it was in before.
struct Tracked {
    message: Message,
    is_new: bool,
    before: Option<BucketKey>,
    provider_before: Option<ProviderBucket>,
    changed: bool,
}

fn bucket(m: &Message) -> BucketKey {
    BucketKey {
        hour: m.requested_at.div_euclid(HOUR_MS),
        status: m.status,
        reason: m.reason.unwrap_or(0),
        api_user: m.api_user.clone(),
        mail_type: m.mail_type,
    }
}

struct Batch<'a> {
    scope: AccountScope,
    sender: &'a Sender,
    now: Millis,
    outcomes: Vec<Outcome>,
    seen_event_ids: HashSet<String>,
    messages: HashMap<String, Tracked>,
    /// New messages in the order their requests came.
    created: Vec<String>,
    /// Logged events that arrived before their request, by email id.
    waiting_in_log: HashMap<String, Vec<MessageEvent>>,
    /// This batch's events that came before their request, by email id.
    waiting_in_batch: HashMap<String, Vec<Step>>,
    /// List entries covering each address the batch checks, kept current as the batch adds.
    list_entries: HashMap<String, Vec<ListEntry>>,
    providers: crate::domain::providers::ProviderMap,
    /// (emailId, is a click) of the messages already opened or clicked.
    engaged: HashSet<(String, bool)>,
    /// First opens and clicks this batch records, in their message's provider bucket.
    engagement: Vec<ProviderBucket>,
    log: Vec<NewMessageEvent>,
    attach: Vec<(String, Vec<i64>)>,
    tracking: Vec<NewTrackingEvent>,
    contents: Vec<(String, Vec<u8>)>,
    send_logs: Vec<(String, Vec<String>)>,
    bounces: Vec<BounceHit>,
    spam_reports: Vec<SpamHit>,
    unsubscribes: Vec<UnsubscribeHit>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl<'a> Batch<'a> {
    fn load(
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

        let mut email_ids: Vec<&str> = valid().filter_map(|e| non_empty(&e.email_id)).collect();
        email_ids.sort_unstable();
        email_ids.dedup();
        let messages: HashMap<String, Tracked> =
            store::messages_by_email_ids(conn, scope, &email_ids)?
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
                .collect();

        let requests: Vec<&Event> = valid()
            .filter(|e| e.kind == EventKind::Request)
            .filter(|e| non_empty(&e.email_id).is_some_and(|id| !messages.contains_key(id)))
            .collect();
        let requested_ids: Vec<&str> = requests
            .iter()
            .filter_map(|e| non_empty(&e.email_id))
            .collect();
        let mut waiting_in_log: HashMap<String, Vec<MessageEvent>> = HashMap::new();
        for row in store::waiting_events(conn, scope, &requested_ids)? {
            waiting_in_log
                .entry(row.email_id.clone())
                .or_default()
                .push(row);
        }

        let recipients: Vec<String> = requests
            .iter()
            .filter_map(|e| e.recipient.as_deref().map(normalize_address))
            .collect();
        let entries = lists::entries_for_addresses(conn, scope, &recipients)?;
        let mut list_entries: HashMap<String, Vec<ListEntry>> = HashMap::new();
        for address in recipients {
            let covering: Vec<ListEntry> = entries
                .iter()
                .filter(|e| e.covers(&address))
                .cloned()
                .collect();
            list_entries.entry(address).or_default().extend(covering);
        }

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

    /// Takes one event in arrival order.
    fn take(&mut self, index: usize, event: &Event) {
        if self.outcomes[index] != Outcome::Applied {
            return;
        }
        if let Some(id) = non_empty(&event.event_id) {
            if !self.seen_event_ids.insert(id.to_string()) {
                self.outcomes[index] = Outcome::Duplicate;
                return;
            }
        }
        let email_id = non_empty(&event.email_id).map(str::to_string);
        match (event.kind, email_id) {
            (EventKind::Request, Some(email_id)) => {
                if self.messages.contains_key(&email_id) {
                    self.outcomes[index] = Outcome::Duplicate;
                } else {
                    self.request(event, email_id);
                }
            }
            (_, Some(email_id)) => {
                let step = Step::of(event);
                self.log_step(&step, &email_id, event);
                if self.messages.contains_key(&email_id) {
                    self.apply(&email_id, step);
                } else {
                    self.waiting_in_batch
                        .entry(email_id)
                        .or_default()
                        .push(step);
                    self.outcomes[index] = Outcome::Waiting;
                }
            }
            (_, None) => {
                // An unsubscribe or complaint naming only the recipient: no message needed.
                let step = Step::of(event);
                self.log_step(&step, "", event);
                let address = normalize_address(event.recipient.as_deref().unwrap_or(""));
                self.list_effects(&address, None, None, None, &step);
            }
        }
    }

    fn request(&mut self, event: &Event, email_id: String) {
        let fields = event.request.clone().unwrap_or_default();
        let recipient = normalize_address(event.recipient.as_deref().unwrap_or(""));
        let at = event.occurred_at;
        let suppression = suppression_among(
            self.list_entries
                .get(&recipient)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            &recipient,
            at,
        );
        let tags: Vec<String> = fields
            .tags
            .iter()
            .map(|t| t.trim().replace(',', " "))
            .filter(|t| !t.is_empty())
            .collect();
        let message = Message {
            id: 0,
            account_id: self.scope.account_id(),
            email_id: email_id.clone(),
            provider: self.providers.provider_of_address(&recipient),
            recipient,
            api_user: fields
                .api_user
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| self.sender.api_user.clone()),
            mail_type: fields.mail_type.unwrap_or(self.sender.mail_type).as_i16(),
            tags: tags.join(","),
            sender: fields.from,
            subject: fields.subject,
            status: Status::Requesting.as_i16(),
            reason: None,
            smtp_reply: None,
            rule: None,
            requested_at: at,
            updated_at: at,
        };
        self.messages.insert(
            email_id.clone(),
            Tracked {
                message,
                is_new: true,
                before: None,
                provider_before: None,
                changed: true,
            },
        );
        self.created.push(email_id.clone());
        let mut step = Step::of(event);
        step.send_log.clear();
        self.log_step(&step, &email_id, event);
        if let Some(raw) = fields.content {
            self.contents.push((email_id.clone(), raw));
        }
        if !event.send_log.is_empty() {
            self.send_logs
                .push((email_id.clone(), event.send_log.clone()));
        }
        if let Some(suppression) = suppression {
            // The send never happens; the log says which entry stopped it.
            let step = Step {
                kind: EventKind::Invalid,
                at,
                smtp_reply: None,
                reason: Some(suppression.reason),
                detail: None,
                rule: Some(suppression.rule()),
                ip: None,
                user_agent: None,
                send_log: Vec::new(),
                mx: None,
            };
            self.log_step(&step, &email_id, event_without_id());
            self.apply(&email_id, step);
        }
        if let Some(rows) = self.waiting_in_log.remove(&email_id) {
            let ids = rows.iter().map(|r| r.id).collect();
            for step in rows.iter().filter_map(Step::of_log) {
                self.apply(&email_id, step);
            }
            self.attach.push((email_id.clone(), ids));
        }
        if let Some(steps) = self.waiting_in_batch.remove(&email_id) {
            for step in steps {
                self.apply(&email_id, step);
            }
        }
    }

    /// Applies one event to an existing (or just requested) message.
    fn apply(&mut self, email_id: &str, step: Step) {
        if !self.messages.contains_key(email_id) {
            return;
        }
        if !step.send_log.is_empty() {
            self.send_logs
                .push((email_id.to_string(), step.send_log.clone()));
        }
        let Some(tracked) = self.messages.get_mut(email_id) else {
            return;
        };
        let message = &mut tracked.message;
        let recipient = message.recipient.clone();
        let api_user = message.api_user.clone();
        let tag = message.tag_list().first().map(|t| t.to_string());
        if let Some(status) = step.status() {
            let status_step = StatusStep {
                status,
                reason: step.reason,
                smtp_reply: step.smtp_reply.clone(),
                rule: step.rule.clone(),
                at: step.at,
            };
            if fold::apply(message, &status_step) {
                tracked.changed = true;
            }
            let provider = self
                .providers
                .provider_with_mx(&recipient, step.mx.as_deref());
            if step.mx.is_some() && provider != message.provider {
                message.provider = provider;
                tracked.changed = true;
            }
            // The provider's word on the address counts whatever became of this message, so
            // that the bounce list does not depend on the order events arrive in.
            let not_found = status != Status::Delivered
                && step.reason.map(|r| r.project(status)) == Some(Reason::AddressNotFound);
            if not_found {
                self.add_bounce(&recipient, email_id, &step);
            }
            return;
        }
        let engaged = ProviderBucket::of(message);
        match step.kind {
            EventKind::Open | EventKind::Click => {
                let click = step.kind == EventKind::Click;
                if self.engaged.insert((email_id.to_string(), click)) {
                    self.engagement.push(ProviderBucket {
                        status: provider_rollup::engagement_status(click),
                        reason: 0,
                        ..engaged
                    });
                }
                self.tracking.push(NewTrackingEvent {
                    account_id: self.scope.account_id(),
                    message_id: None,
                    email_id: email_id.to_string(),
                    recipient,
                    api_user,
                    tag,
                    kind: if click {
                        TrackKind::Click
                    } else {
                        TrackKind::Open
                    }
                    .as_i16(),
                    url: if click {
                        step.detail.clone().unwrap_or_default()
                    } else {
                        String::new()
                    },
                    ip: step.ip.clone(),
                    user_agent: step.user_agent.clone(),
                    occurred_at: step.at,
                });
            }
            EventKind::Unsubscribe | EventKind::ReportSpam => {
                self.list_effects(&recipient, Some(email_id), Some(api_user), tag, &step);
            }
            _ => {}
        }
    }

    fn add_bounce(&mut self, address: &str, email_id: &str, step: &Step) {
        let entries = self.list_entries.entry(address.to_string()).or_default();
        let count = entries
            .iter()
            .filter(|e| e.list == ListKind::Bounces)
            .filter_map(|e| e.bounce_count)
            .max()
            .unwrap_or(0)
            + 1;
        entries.push(ListEntry {
            list: ListKind::Bounces,
            id: 0,
            address: address.to_string(),
            reason: step.smtp_reply.clone(),
            source: Some("delivery".into()),
            email_id: Some(email_id.to_string()),
            api_user: None,
            tag: None,
            created_at: step.at,
            expires_at: Some(step.at + bounce_backoff_ms(count)),
            bounce_count: Some(count),
        });
        self.bounces.push(BounceHit {
            address: address.to_string(),
            reason_text: step
                .smtp_reply
                .clone()
                .unwrap_or_else(|| Reason::AddressNotFound.label("en").to_string()),
            email_id: Some(email_id.to_string()),
            at: step.at,
        });
    }

    /// Unsubscribes and complaints fill their lists, with or without a message.
    fn list_effects(
        &mut self,
        address: &str,
        email_id: Option<&str>,
        api_user: Option<String>,
        tag: Option<String>,
        step: &Step,
    ) {
        let mut complaint = step.kind == EventKind::ReportSpam;
        if step.kind == EventKind::Unsubscribe {
            let reason = step
                .detail
                .as_deref()
                .and_then(UnsubscribeReason::from_code)
                .unwrap_or(UnsubscribeReason::NotWanted);
            complaint = reason.is_complaint();
            self.unsubscribes.push(UnsubscribeHit {
                address: address.to_string(),
                reason: reason.code().to_string(),
                source: "recipient".into(),
                email_id: email_id.map(str::to_string),
                api_user: api_user.clone(),
                tag,
                at: step.at,
            });
            self.remember(address, ListKind::Unsubscribes, step.at, None);
        }
        if complaint {
            self.spam_reports.push(SpamHit {
                address: address.to_string(),
                email_id: email_id.map(str::to_string),
                api_user,
                at: step.at,
            });
            let until = step.at + SPAM_REPORT_TTL_MS;
            self.remember(address, ListKind::SpamReports, step.at, Some(until));
        }
    }

    /// Keeps a list entry this batch adds, so a later request in the same batch sees it.
    fn remember(&mut self, address: &str, list: ListKind, at: Millis, until: Option<Millis>) {
        self.list_entries
            .entry(address.to_string())
            .or_default()
            .push(ListEntry {
                list,
                id: 0,
                address: address.to_string(),
                reason: None,
                source: None,
                email_id: None,
                api_user: None,
                tag: None,
                created_at: at,
                expires_at: until,
                bounce_count: None,
            });
    }

    fn log_step(&mut self, step: &Step, email_id: &str, event: &Event) {
        self.log.push(NewMessageEvent {
            account_id: self.scope.account_id(),
            message_id: None,
            email_id: email_id.to_string(),
            event_id: non_empty(&event.event_id).map(str::to_string),
            kind: step.kind.code().to_string(),
            occurred_at: step.at,
            smtp_reply: step.smtp_reply.clone(),
            mx: event.mx.clone(),
            attempt: event.attempt,
            reason: step.reason.map(Reason::as_i16),
            detail: step.detail.clone(),
            received_at: self.now,
        });
    }

    /// Writes everything the batch decided, in bulk.
    fn write(&mut self, conn: &mut DbConn) -> StoreResult<()> {
        let scope = self.scope;
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
        let id_of = |email_id: &str| self.messages.get(email_id).map(|t| t.message.id);

        let tags: Vec<MessageTag> = self
            .created
            .iter()
            .filter_map(|id| self.messages.get(id))
            .flat_map(|t| {
                t.message.distinct_tags().into_iter().map(|tag| MessageTag {
                    message_id: t.message.id,
                    account_id: scope.account_id(),
                    tag: tag.to_string(),
                    requested_at: t.message.requested_at,
                })
            })
            .collect();
        store::insert_tags(conn, &tags)?;

        for row in &mut self.log {
            row.message_id = self.messages.get(&row.email_id).map(|t| t.message.id);
        }
        store::insert_events(conn, &self.log)?;
        for (email_id, ids) in &self.attach {
            if let Some(message_id) = id_of(email_id) {
                store::attach_events(conn, &scope, message_id, ids)?;
            }
        }

        let changed: Vec<&Message> = self
            .messages
            .values()
            .filter(|t| t.changed && !t.is_new)
            .map(|t| &t.message)
            .collect();
        store::update_statuses(conn, &scope, &changed)?;

        for row in &mut self.tracking {
            row.message_id = self.messages.get(&row.email_id).map(|t| t.message.id);
        }
        store::insert_tracking(conn, &self.tracking)?;
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

        lists::record_bounces(conn, &scope, &self.bounces)?;
        lists::record_spam_reports(conn, &scope, &self.spam_reports)?;
        lists::record_unsubscribes(conn, &scope, &self.unsubscribes)?;

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
        let deltas: Vec<(BucketKey, i64)> = deltas.into_iter().filter(|(_, d)| *d != 0).collect();
        rollup::apply(conn, &scope, &deltas)?;
        let tag_deltas: Vec<((BucketKey, String), i64)> =
            tag_deltas.into_iter().filter(|(_, d)| *d != 0).collect();
        rollup::apply_tags(conn, &scope, &tag_deltas)?;
        let mut provider_deltas = ProviderDeltas::default();
        for t in self.messages.values().filter(|t| t.changed) {
            provider_deltas.moved(t.provider_before.as_ref(), &t.message);
        }
        for bucket in self.engagement.drain(..) {
            provider_deltas.add(bucket, 1);
        }
        provider_deltas.write(conn, &scope)?;

        // Entries this batch added may cover requests taken before them.
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
        super::suppress::catch_up(conn, &scope, &since, self.now)?;
        Ok(())
    }
}

/// The suppression note logged under a request carries no event id of its own.
fn event_without_id() -> &'static Event {
    static NONE: std::sync::OnceLock<Event> = std::sync::OnceLock::new();
    NONE.get_or_init(|| Event::new(EventKind::Invalid, 0))
}
