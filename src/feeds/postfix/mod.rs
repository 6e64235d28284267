//! Postfix's mail log turned into events: classic syslog lines, rsyslog's RFC 3339 stamps and
//! `journalctl -o short`; gzip-rotated files; and a follower that keeps reading as the log
//! grows and rotates, remembering where it stopped in the database.
//!
//! A message is one recipient of one queue file: its emailId is `QUEUEID$recipient`. Its
//! request time is the delivery line's time minus Postfix's `delay` (time since arrival), so
//! every line stands on its own; `cleanup`'s Message-ID and `qmgr`'s sender are added when
//! their lines were read, and kept on the message's send log with the raw delivery lines.
//!
//! `line` reads one line's meaning, `follow` reads files and follows them; here the lines
//! become events.

mod follow;
mod line;

use std::collections::HashMap;

use chrono_tz::Tz;
use diesel::Connection;

pub use follow::{read_files, Follower};
pub use line::{parse_header, parse_line, smtp_reply, Delivery, Line, LogLine};

use super::request_for;
use crate::db::DbConn;
use crate::domain::{normalize_address, Millis};
use crate::ingest::{ingest, Event, EventKind, Sender};
use crate::store::feeds::{self as store, LogPosition};
use crate::store::{AccountScope, StoreResult};

/// Events are applied in batches of this many.
const BATCH: usize = 500;
/// Unparseable lines logged one by one before only their count is kept.
const LOGGED_UNPARSEABLE: u64 = 20;

/// What a run read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub lines: u64,
    /// Postfix delivery lines turned into events.
    pub deliveries: u64,
    pub events: u64,
    /// Lines that look like nothing we know: counted and logged, never fatal.
    pub unparseable: u64,
    /// Events the ingestion refused (e.g. a recipient that is not an address).
    pub rejected: u64,
}

/// What the reader remembers about a queue file while its lines come in.
#[derive(Debug, Default)]
struct QueueFile {
    message_id: Option<String>,
    from: String,
    lines: Vec<String>,
    /// Per recipient: deferrals so far, and the last deferral's reply.
    attempts: HashMap<String, (i32, String)>,
}

/// Turns lines into events and applies them in batches.
pub struct Reader {
    scope: AccountScope,
    sender: Sender,
    zone: Tz,
    queue: HashMap<String, QueueFile>,
    pending: Vec<Event>,
    /// (Message-ID, emailId) of the pending events' messages, saved with them.
    message_ids: Vec<(String, String)>,
    pub stats: Stats,
}

impl Reader {
    pub fn new(scope: AccountScope, sender: Sender, zone: Tz) -> Reader {
        Reader {
            scope,
            sender,
            zone,
            queue: HashMap::new(),
            pending: Vec::new(),
            message_ids: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Reads one line; `origin` names it in the log when it cannot be read.
    pub fn line(
        &mut self,
        conn: &mut DbConn,
        line: &str,
        origin: &dyn Fn() -> String,
    ) -> StoreResult<()> {
        self.stats.lines += 1;
        let now = crate::domain::now_ms();
        match parse_line(line, self.zone, now) {
            Line::Other => {}
            Line::Unparseable => {
                self.stats.unparseable += 1;
                if self.stats.unparseable <= LOGGED_UNPARSEABLE {
                    log::warn!(
                        "{}: not a Postfix log line we can read: {}",
                        origin(),
                        line.trim_end()
                    );
                }
            }
            Line::MessageId {
                queue_id,
                message_id,
            } => {
                let q = self.queue.entry(queue_id.to_string()).or_default();
                q.message_id = Some(message_id.to_string());
                q.lines.push(line.trim_end().to_string());
            }
            Line::Queued { queue_id, from } => {
                let q = self.queue.entry(queue_id.to_string()).or_default();
                q.from = from.to_string();
                q.lines.push(line.trim_end().to_string());
            }
            Line::Removed { queue_id } => {
                self.queue.remove(queue_id);
            }
            Line::Delivery(d) => self.delivery(&d, line.trim_end()),
            Line::Expired { queue_id, at } => self.expired(conn, queue_id, at, line.trim_end())?,
        }
        if self.pending.len() >= BATCH {
            self.flush(conn)?;
        }
        Ok(())
    }

    fn delivery(&mut self, d: &Delivery<'_>, raw: &str) {
        let kind = match d.status {
            "sent" => EventKind::Deliver,
            "bounced" | "expired" => EventKind::Invalid,
            "deferred" | "SOFTBOUNCE" => EventKind::Deferred,
            // Address verification probes and the like say nothing about a sent mail.
            _ => return,
        };
        self.stats.deliveries += 1;
        let recipient = normalize_address(d.recipient);
        let email_id = format!("{}${recipient}", d.queue_id);
        let q = self.queue.entry(d.queue_id.to_string()).or_default();
        let mut request_log = q.lines.clone();
        if let Some(id) = &q.message_id {
            request_log.insert(0, format!("message-id=<{id}>"));
            self.message_ids.push((id.clone(), email_id.clone()));
        }
        let mut request = request_for(
            &email_id,
            &recipient,
            d.at - d.delay_ms,
            &q.from,
            "",
            Vec::new(),
        );
        request.send_log = request_log;
        let reply = smtp_reply(d.dsn, d.text);
        let mut event = Event::new(kind, d.at);
        event.email_id = Some(email_id);
        event.event_id = Some(format!(
            "postfix:{}:{recipient}:{}:{}",
            d.queue_id, d.status, d.at
        ));
        event.mx = d.relay.map(str::to_string);
        event.smtp_reply = Some(reply.clone()).filter(|r| !r.is_empty());
        event.send_log = vec![raw.to_string()];
        let entry = q.attempts.entry(recipient).or_insert((0, String::new()));
        if kind == EventKind::Deferred {
            entry.0 += 1;
            entry.1 = reply;
            event.attempt = Some(entry.0);
        } else {
            event.attempt = Some(entry.0 + 1);
        }
        self.pending.push(request);
        self.pending.push(event);
    }

    /// Every recipient of the queue file still requesting becomes invalid, with its last
    /// deferral's reply as the evidence when it was read.
    fn expired(
        &mut self,
        conn: &mut DbConn,
        queue_id: &str,
        at: Millis,
        raw: &str,
    ) -> StoreResult<()> {
        self.flush(conn)?;
        let prefix = format!("{queue_id}$");
        let open = store::requesting_with_prefix(conn, &self.scope, &prefix)?;
        for email_id in open {
            let recipient = email_id[prefix.len()..].to_string();
            // The last deferral's words say why; read from the log when this run did not see it.
            let seen = self
                .queue
                .get(queue_id)
                .and_then(|q| q.attempts.get(&recipient))
                .map(|(n, reply)| (Some(reply.clone()), Some(*n)));
            let last = match seen {
                Some(last) => Some(last),
                None => store::last_deferral(conn, &self.scope, &email_id)?,
            };
            let (reply, attempts) = last.unwrap_or((None, None));
            let mut event = Event::new(EventKind::Invalid, at);
            event.event_id = Some(format!("postfix:{queue_id}:{recipient}:expired:{at}"));
            event.smtp_reply = Some(
                reply
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "4.4.7 message expired in the queue".to_string()),
            );
            event.attempt = attempts.map(|n| n + 1);
            event.send_log = vec![raw.to_string()];
            event.email_id = Some(email_id);
            self.stats.deliveries += 1;
            self.pending.push(event);
        }
        Ok(())
    }

    /// Applies what is pending; `position` is saved in the same transaction, so that a restart
    /// resumes exactly after the lines applied.
    pub fn flush_at(
        &mut self,
        conn: &mut DbConn,
        position: Option<(&str, LogPosition)>,
    ) -> StoreResult<()> {
        let events = std::mem::take(&mut self.pending);
        let message_ids = std::mem::take(&mut self.message_ids);
        let scope = self.scope;
        let sender = self.sender.clone();
        let outcomes = conn.transaction(|conn| {
            let outcomes = if events.is_empty() {
                Vec::new()
            } else {
                ingest(conn, &scope, &sender, &events)?
            };
            let now = crate::domain::now_ms();
            store::record_message_ids(conn, &scope, &message_ids, now)?;
            if let Some((path, position)) = position {
                store::save_log_position(conn, &scope, path, position, crate::domain::now_ms())?;
            }
            Ok::<_, diesel::result::Error>(outcomes)
        })?;
        self.stats.events += events.len() as u64;
        for (event, outcome) in events.iter().zip(outcomes) {
            if let crate::ingest::Outcome::Rejected(why) = outcome {
                self.stats.rejected += 1;
                log::warn!("postfix: event for {:?} refused: {why}", event.email_id);
            }
        }
        Ok(())
    }

    pub fn flush(&mut self, conn: &mut DbConn) -> StoreResult<()> {
        self.flush_at(conn, None)
    }
}
