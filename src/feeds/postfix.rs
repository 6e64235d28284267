//! Postfix's mail log turned into events: classic syslog lines, rsyslog's RFC 3339 stamps and
//! `journalctl -o short`; gzip-rotated files; and a follower that keeps reading as the log
//! grows and rotates, remembering where it stopped in the database.
//!
//! A message is one recipient of one queue file: its emailId is `QUEUEID$recipient`. Its
//! request time is the delivery line's time minus Postfix's `delay` (time since arrival), so
//! every line stands on its own; `cleanup`'s Message-ID and `qmgr`'s sender are added when
//! their lines were read, and kept on the message's send log with the raw delivery lines.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use diesel::Connection;

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

/// One syslog line, taken apart.
#[derive(Debug, PartialEq)]
pub struct LogLine<'a> {
    pub at: Millis,
    pub host: &'a str,
    /// The daemon: `smtp`, `qmgr`, `cleanup`, … (the last part of `postfix/smtp`).
    pub daemon: &'a str,
    pub text: &'a str,
}

/// What one line means to us.
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    /// Not Postfix, or Postfix saying something that is not about delivery.
    Other,
    Unparseable,
    MessageId {
        queue_id: &'a str,
        message_id: &'a str,
    },
    Queued {
        queue_id: &'a str,
        from: &'a str,
    },
    Delivery(Delivery<'a>),
    /// `qmgr`: the queue file expired; every recipient without a verdict gets one.
    Expired {
        queue_id: &'a str,
        at: Millis,
    },
    Removed {
        queue_id: &'a str,
    },
}

#[derive(Debug, PartialEq)]
pub struct Delivery<'a> {
    pub at: Millis,
    pub queue_id: &'a str,
    pub recipient: &'a str,
    pub relay: Option<&'a str>,
    pub delay_ms: Millis,
    pub dsn: Option<&'a str>,
    /// sent, deferred, bounced, expired, …
    pub status: &'a str,
    /// The words in parentheses after the status: the remote server's reply, or Postfix's.
    pub text: &'a str,
}

fn token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(' ');
    if s.is_empty() {
        return None;
    }
    let end = s.find(' ').unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// The syslog header: a time (classic or RFC 3339), the host, `program[pid]:`. Classic times
/// carry no year and no zone: they are read in `zone`, in the year that puts them no later
/// than a day after `now`.
pub fn parse_header(line: &str, zone: Tz, now: Millis) -> Option<LogLine<'_>> {
    let (first, rest) = token(line)?;
    let (at, rest) = if first.len() > 10 && first.as_bytes()[4] == b'-' {
        (super::rfc3339_ms(first)?, rest)
    } else {
        let (day, rest) = token(rest)?;
        let (time, rest) = token(rest)?;
        let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(first))? as u32 + 1;
        let day: u32 = day.parse().ok()?;
        let time = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S%.f").ok()?;
        let this_year = chrono::DateTime::from_timestamp_millis(now)?.year();
        let stamp = |year: i32| {
            let date = NaiveDate::from_ymd_opt(year, month, day)?;
            zone.from_local_datetime(&date.and_time(time))
                .earliest()
                .map(|t| t.timestamp_millis())
        };
        let at = match stamp(this_year) {
            Some(at) if at <= now + 86_400_000 => at,
            _ => stamp(this_year - 1)?,
        };
        (at, rest)
    };
    let (host, rest) = token(rest)?;
    let (program, rest) = token(rest)?;
    let program = program.strip_suffix(':')?;
    let program = program.split('[').next().unwrap_or(program);
    let daemon = program.rsplit('/').next().unwrap_or(program);
    Some(LogLine {
        at,
        host,
        daemon: if program.contains("postfix") {
            daemon
        } else {
            ""
        },
        text: rest.trim_start_matches(' '),
    })
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn is_queue_id(s: &str) -> bool {
    s.len() >= 5 && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `key=value` from Postfix's comma-separated list (`to=<a@b>, relay=…, delay=…`).
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    fields.split(", ").find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

fn angle(v: &str) -> &str {
    v.trim().trim_start_matches('<').trim_end_matches('>')
}

/// Reads one line's meaning.
pub fn parse_line(line: &str, zone: Tz, now: Millis) -> Line<'_> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() || line.starts_with("-- ") {
        // journalctl's "-- Boot …" / "-- No entries --" markers.
        return Line::Other;
    }
    let Some(header) = parse_header(line, zone, now) else {
        return Line::Unparseable;
    };
    if header.daemon.is_empty() {
        return Line::Other;
    }
    let Some((queue_id, rest)) = header.text.split_once(": ") else {
        return Line::Other;
    };
    if !is_queue_id(queue_id) {
        return Line::Other;
    }
    let rest = rest.trim();
    if rest == "removed" {
        return Line::Removed { queue_id };
    }
    if let Some(id) = rest.strip_prefix("message-id=") {
        return Line::MessageId {
            queue_id,
            message_id: angle(id),
        };
    }
    if rest.starts_with("to=<") {
        return delivery(header.at, queue_id, rest);
    }
    if let Some(from) = rest.strip_prefix("from=<") {
        let from = from.split('>').next().unwrap_or("");
        if field(rest, "status").is_some_and(|s| s.starts_with("expired")) {
            return Line::Expired {
                queue_id,
                at: header.at,
            };
        }
        return Line::Queued { queue_id, from };
    }
    Line::Other
}

fn delivery<'a>(at: Millis, queue_id: &'a str, rest: &'a str) -> Line<'a> {
    let Some((fields, status)) = rest.split_once(", status=") else {
        return Line::Unparseable;
    };
    let (status, text) = match status.split_once(' ') {
        Some((s, text)) => (s, text.trim()),
        None => (status, ""),
    };
    let text = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(text);
    let Some(recipient) = field(fields, "to").map(angle).filter(|r| !r.is_empty()) else {
        return Line::Unparseable;
    };
    let delay_ms = field(fields, "delay")
        .and_then(|d| d.parse::<f64>().ok())
        .map(|d| (d * 1000.0).round() as Millis)
        .unwrap_or(0);
    Line::Delivery(Delivery {
        at,
        queue_id,
        recipient,
        relay: field(fields, "relay").filter(|r| *r != "none"),
        delay_ms,
        dsn: field(fields, "dsn"),
        status,
        text,
    })
}

/// The remote server's words for the classifier: `host X said:` dropped, the SMTP stage
/// (`(in reply to RCPT TO command)`) kept, Postfix's DSN code in front when the text has none.
pub fn smtp_reply(dsn: Option<&str>, text: &str) -> String {
    let words = match text.split_once(" said: ") {
        Some((host, said)) if host.starts_with("host ") => said,
        _ => text,
    };
    let starts_with_code = words.len() >= 3 && words.as_bytes()[..3].iter().all(u8::is_ascii_digit);
    match dsn {
        Some(dsn) if !starts_with_code && !words.contains(dsn) => format!("{dsn} {words}"),
        _ => words.to_string(),
    }
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

/// Reads whole files (plain or `.gz`, or `-` for standard input) once, from the start.
pub fn read_files(conn: &mut DbConn, reader: &mut Reader, paths: &[PathBuf]) -> anyhow::Result<()> {
    for path in paths {
        let input: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            let file = File::open(path)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
            if is_gzip(path) {
                Box::new(flate2::read::MultiGzDecoder::new(file))
            } else {
                Box::new(file)
            }
        };
        let mut lines = BufReader::new(input);
        let mut buf = Vec::new();
        let mut n = 0u64;
        loop {
            buf.clear();
            if lines.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            n += 1;
            let line = String::from_utf8_lossy(&buf);
            reader.line(conn, &line, &|| format!("{}:{n}", path.display()))?;
        }
        reader.flush(conn)?;
    }
    Ok(())
}

fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino() as i64
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> i64 {
    0
}

/// Follows one log file as it grows and rotates. Call [`Follower::poll`] repeatedly: each call
/// applies the complete lines written since the last one and saves the position with them.
pub struct Follower {
    path: PathBuf,
    key: String,
    file: Option<(BufReader<File>, LogPosition)>,
}

impl Follower {
    /// Opens `path` where the last follower of this account stopped: at its saved offset when
    /// the file is the same (same inode, not shorter), after finishing the rotated file
    /// (`path.1`, `path-*`) when it was rotated meanwhile, else at the start.
    pub fn open(conn: &mut DbConn, reader: &mut Reader, path: &Path) -> anyhow::Result<Follower> {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let key = path.display().to_string();
        let mut follower = Follower {
            path,
            key,
            file: None,
        };
        let saved = store::log_position(conn, &reader.scope, &follower.key)?;
        let current = std::fs::metadata(&follower.path)
            .ok()
            .map(|m| (inode(&m), m.len() as i64));
        match (saved, current) {
            (Some(saved), Some((ino, len))) if saved.inode == ino && saved.byte_offset <= len => {
                follower.open_at(saved)?;
            }
            (Some(saved), _) => {
                match follower.rotated_sibling(saved.inode) {
                    Some(old) => {
                        log::info!(
                            "{}: rotated while stopped; finishing {} first",
                            follower.key,
                            old.display()
                        );
                        let mut file = BufReader::new(File::open(&old)?);
                        file.seek(SeekFrom::Start(saved.byte_offset.max(0) as u64))?;
                        follower.file = Some((file, saved));
                        follower.drain(conn, reader, true)?;
                    }
                    None => log::warn!(
                        "{}: the file read last time is gone; reading the current one from its start",
                        follower.key
                    ),
                }
                follower.file = None;
                follower.reopen_current()?;
            }
            (None, _) => follower.reopen_current()?,
        }
        Ok(follower)
    }

    fn open_at(&mut self, position: LogPosition) -> anyhow::Result<()> {
        let mut file = BufReader::new(File::open(&self.path)?);
        file.seek(SeekFrom::Start(position.byte_offset.max(0) as u64))?;
        self.file = Some((file, position));
        Ok(())
    }

    fn reopen_current(&mut self) -> anyhow::Result<()> {
        match std::fs::metadata(&self.path) {
            Ok(meta) => self.open_at(LogPosition {
                inode: inode(&meta),
                byte_offset: 0,
            }),
            // Between a rotation's rename and the new file's creation: try again next poll.
            Err(_) => {
                self.file = None;
                Ok(())
            }
        }
    }

    /// The rotated copy of the file with this inode, when it is still next to it.
    fn rotated_sibling(&self, ino: i64) -> Option<PathBuf> {
        let dir = self.path.parent()?;
        let name = self.path.file_name()?.to_str()?.to_string();
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n != name && n.starts_with(&name) && !n.ends_with(".gz"))
            })
            .find(|p| std::fs::metadata(p).is_ok_and(|m| inode(&m) == ino))
    }

    /// Applies the complete lines after the position (and, at `to_end`, a last line without
    /// its newline: a rotated file grows no more).
    fn drain(
        &mut self,
        conn: &mut DbConn,
        reader: &mut Reader,
        to_end: bool,
    ) -> anyhow::Result<()> {
        let key = self.key.clone();
        let Some((file, position)) = self.file.as_mut() else {
            return Ok(());
        };
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = file.read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            if !buf.ends_with(b"\n") && !to_end {
                // A line still being written: read it whole next time.
                file.seek(SeekFrom::Current(-(n as i64)))?;
                break;
            }
            position.byte_offset += n as i64;
            let line = String::from_utf8_lossy(&buf).into_owned();
            let at = position.byte_offset;
            reader.line(conn, &line, &|| format!("{key} at byte {at}"))?;
            if reader.pending.len() >= BATCH - 1 {
                let p = *position;
                reader.flush_at(conn, Some((&key, p)))?;
            }
        }
        let p = *position;
        reader.flush_at(conn, Some((&key, p)))?;
        Ok(())
    }

    /// Reads what was written since the last poll; follows a rotation (a new file at the path)
    /// after finishing the old one. Answers whether anything was read.
    pub fn poll(&mut self, conn: &mut DbConn, reader: &mut Reader) -> anyhow::Result<bool> {
        let before = reader.stats.lines;
        if self.file.is_none() {
            self.reopen_current()?;
        }
        self.drain(conn, reader, false)?;
        let current = std::fs::metadata(&self.path).ok();
        if let (Some(meta), Some((_, position))) = (current.as_ref(), self.file.as_ref()) {
            let rotated = inode(meta) != position.inode;
            let truncated = !rotated && (meta.len() as i64) < position.byte_offset;
            if rotated {
                self.drain(conn, reader, true)?;
                self.reopen_current()?;
                self.drain(conn, reader, false)?;
            } else if truncated {
                log::warn!("{}: truncated; reading it again from its start", self.key);
                self.reopen_current()?;
                self.drain(conn, reader, false)?;
            }
        }
        Ok(reader.stats.lines > before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_772_400_000_000; // 2026-03-01T21:20:00Z

    #[test]
    fn headers_of_syslog_rsyslog_and_journalctl() {
        let l = parse_header(
            "Mar  1 12:00:01 mx1 postfix/smtp[4242]: 3F2A1C0D12: to=<a@b.c>",
            chrono_tz::UTC,
            NOW,
        )
        .unwrap();
        assert_eq!((l.host, l.daemon), ("mx1", "smtp"));
        assert_eq!(l.at, 1_772_366_401_000);
        let j = parse_header(
            "Mar 01 12:00:01 mx1 postfix/submission/smtpd[77]: x",
            chrono_tz::UTC,
            NOW,
        )
        .unwrap();
        assert_eq!((j.at, j.daemon), (l.at, "smtpd"));
        let r = parse_header(
            "2026-03-01T12:00:01.000000+00:00 mx1 postfix/qmgr[9]: y",
            chrono_tz::UTC,
            NOW,
        )
        .unwrap();
        assert_eq!(r.at, l.at);
        // December's lines read in March belong to last year.
        let d = parse_header("Dec 31 23:00:00 h postfix/qmgr[1]: z", chrono_tz::UTC, NOW).unwrap();
        assert!(d.at < NOW && d.at > NOW - 100 * 86_400_000);
        assert_eq!(parse_header("garbage", chrono_tz::UTC, NOW), None);
    }

    #[test]
    fn delivery_lines() {
        let line = "Mar  1 12:00:05 mx1 postfix/smtp[4242]: 3F2A1C0D12: to=<Bob@Example.com>, \
            relay=mx.example.com[192.0.2.7]:25, delay=2.5, delays=0.1/0/0.4/2, dsn=5.1.1, \
            status=bounced (host mx.example.com[192.0.2.7] said: 550 5.1.1 <bob@example.com>: \
            Recipient address rejected: User unknown (in reply to RCPT TO command))";
        let Line::Delivery(d) = parse_line(line, chrono_tz::UTC, NOW) else {
            panic!("a delivery")
        };
        assert_eq!(d.recipient, "Bob@Example.com");
        assert_eq!(d.relay, Some("mx.example.com[192.0.2.7]:25"));
        assert_eq!(
            (d.delay_ms, d.status, d.dsn),
            (2500, "bounced", Some("5.1.1"))
        );
        assert_eq!(
            smtp_reply(d.dsn, d.text),
            "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown (in reply to RCPT TO command)"
        );
        assert_eq!(
            smtp_reply(
                Some("4.4.1"),
                "connect to mx.example.net[192.0.2.9]:25: Connection timed out"
            ),
            "4.4.1 connect to mx.example.net[192.0.2.9]:25: Connection timed out"
        );
        assert_eq!(
            parse_line(
                "Mar  1 12:00:05 mx1 postfix/smtp[1]: 3F2A1C0D12: to=<a@b.c>, relay=x",
                chrono_tz::UTC,
                NOW
            ),
            Line::Unparseable
        );
        assert_eq!(
            parse_line(
                "Mar  1 12:00:05 mx1 sshd[1]: Accepted key",
                chrono_tz::UTC,
                NOW
            ),
            Line::Other
        );
        assert!(matches!(
            parse_line(
                "Mar  6 12:00:00 mx1 postfix/qmgr[1]: 3F2A1C0D12: from=<news@shop.example>, status=expired, returned to sender",
                chrono_tz::UTC,
                NOW
            ),
            Line::Expired { queue_id: "3F2A1C0D12", .. }
        ));
    }
}
