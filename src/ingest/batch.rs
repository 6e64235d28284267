//! One batch of events in one transaction: read what the batch touches with a few `IN (…)`
//! queries, fold every event in memory, write the results back in bulk (`batch/write.rs`).

mod lists;
mod load;
mod step;
mod write;

use std::collections::{HashMap, HashSet};

use diesel::Connection;

use self::step::Step;
use super::fold::{self, StatusStep};
use super::phases::{self, Phase};
use super::{Event, EventKind, Outcome, Sender};
use crate::db::DbConn;
use crate::domain::{normalize_address, Millis, Reason, Status};
use crate::domain::{suppression_among, ListEntry, TrackKind};
use crate::store::events as store;
use crate::store::lists::{BounceHit, SpamHit, UnsubscribeHit};
use crate::store::models::{Message, MessageEvent, NewMessageEvent, NewTrackingEvent};
use crate::store::providers::ProviderBucket;
use crate::store::rollup::{BucketKey, HOUR_MS};
use crate::store::{AccountScope, StoreResult};

/// Applies `events` for the scope's account, all or nothing, and answers each one's outcome
/// in order. Events that make no sense are rejected one by one; the others still apply.
pub fn ingest(
    conn: &mut DbConn,
    scope: &AccountScope,
    sender: &Sender,
    events: &[Event],
) -> StoreResult<Vec<Outcome>> {
    let started = std::time::Instant::now();
    let _writer = conn.sqlite_writer_turn();
    let held = std::time::Instant::now();
    // PostgreSQL: the months these rows fall in must have their partitions; made outside the
    // batch's transaction so that no one waits on its locks. Usually they exist already.
    crate::store::partitions::ensure_months(
        conn,
        events
            .iter()
            .map(|e| e.occurred_at)
            .filter(|at| Event::plausible_time(*at)),
    )?;
    phases::add(Phase::Partitions, held.elapsed());
    let mut attempt = 1;
    loop {
        let mut written = None;
        let applied = conn.transaction(|conn| {
            let mut batch = phases::timed(Phase::Load, || {
                store::begin_writing(conn)?;
                Batch::load(conn, scope, sender, events)
            })?;
            phases::timed(Phase::Fold, || {
                for (index, event) in events.iter().enumerate() {
                    batch.take(index, event);
                }
            });
            batch.write(conn)?;
            written = Some(std::time::Instant::now());
            Ok(batch.outcomes)
        });
        if let Some(written) = written {
            phases::add(Phase::Commit, written.elapsed());
        }
        match applied {
            // Concurrent batches on PostgreSQL may create the same message (one emailId from
            // two clients, or a client's retry racing its first try) or lock the same rows in
            // opposite orders. The loser rolled back whole; run it again, and it sees what the
            // winner wrote.
            Err(e) if attempt < MAX_ATTEMPTS && lost_a_race(&e) => {
                log::info!("ingest: batch retried after a concurrent write ({e})");
                attempt += 1;
            }
            Ok(outcomes) => {
                phases::batch_done(held.elapsed());
                count(events, &outcomes, started);
                return Ok(outcomes);
            }
            other => return other,
        }
    }
}

/// The batch's figures for `GET /metrics`.
fn count(events: &[Event], outcomes: &[Outcome], started: std::time::Instant) {
    let pairs = events.iter().zip(outcomes).map(|(e, o)| {
        let outcome = match o {
            Outcome::Applied => "applied",
            Outcome::Waiting => "waiting",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected(_) => "rejected",
        };
        (e.kind.code(), outcome)
    });
    crate::web::metrics::ingested(pairs, events.len(), started.elapsed());
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
    /// The earliest delivery of each message a bounce report of the batch is about.
    first_delivery: HashMap<String, Millis>,
    providers: crate::domain::providers::ProviderMap,
    /// (emailId, is a click) of the messages already opened or clicked.
    engaged: HashSet<(String, bool)>,
    /// First opens and clicks this batch records, (emailId, is a click): they count in their
    /// message's provider bucket as the batch leaves it.
    engagement: Vec<(String, bool)>,
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

impl Batch<'_> {
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

    /// The message a request creates, before any event applies to it.
    fn new_message(&self, event: &Event, email_id: &str, recipient: String) -> Message {
        let none = super::RequestFields::default();
        let fields = event.request.as_ref().unwrap_or(&none);
        let at = event.occurred_at;
        let tags: Vec<String> = fields
            .tags
            .iter()
            .map(|t| t.trim().replace(',', " "))
            .filter(|t| !t.is_empty())
            .collect();
        Message {
            id: 0,
            account_id: self.scope.account_id(),
            email_id: email_id.to_string(),
            provider: self.providers.provider_of_address(&recipient),
            recipient,
            api_user: fields
                .api_user
                .clone()
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| self.sender.api_user.clone()),
            mail_type: fields.mail_type.unwrap_or(self.sender.mail_type).as_i16(),
            tags: tags.join(","),
            sender: fields.from.clone(),
            subject: fields.subject.clone(),
            status: Status::Requesting.as_i16(),
            reason: None,
            smtp_reply: None,
            rule: None,
            requested_at: at,
            updated_at: at,
        }
    }

    fn request(&mut self, event: &Event, email_id: String) {
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
        let message = self.new_message(event, &email_id, recipient);
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
        if let Some(raw) = event.request.as_ref().and_then(|f| f.content.clone()) {
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
                bounce_report: step.kind == EventKind::Bounce,
            };
            if step.kind == EventKind::Deliver {
                let first = self
                    .first_delivery
                    .entry(email_id.to_string())
                    .or_insert(step.at);
                *first = (*first).min(step.at);
            }
            let first_delivery = self.first_delivery.get(email_id).copied();
            if fold::apply(message, &status_step, first_delivery) {
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
        match step.kind {
            EventKind::Open | EventKind::Click => {
                let click = step.kind == EventKind::Click;
                self.track(email_id, click, recipient, api_user, tag, &step);
            }
            EventKind::Unsubscribe | EventKind::ReportSpam => {
                self.list_effects(&recipient, Some(email_id), Some(api_user), tag, &step);
            }
            _ => {}
        }
    }

    /// Records an open or a click: the provider rollup's engagement once per message and kind,
    /// and the tracking event.
    #[allow(clippy::too_many_arguments)]
    fn track(
        &mut self,
        email_id: &str,
        click: bool,
        recipient: String,
        api_user: String,
        tag: Option<String>,
        step: &Step,
    ) {
        if self.engaged.insert((email_id.to_string(), click)) {
            self.engagement.push((email_id.to_string(), click));
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
}

/// The suppression note logged under a request carries no event id of its own.
fn event_without_id() -> &'static Event {
    static NONE: std::sync::OnceLock<Event> = std::sync::OnceLock::new();
    NONE.get_or_init(|| Event::new(EventKind::Invalid, 0))
}
