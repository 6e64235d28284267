//! One line of Postfix's log taken apart: the syslog header (classic, RFC 3339 or
//! `journalctl -o short`) and what Postfix's daemons say about a queue file.

use chrono::{Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;

use crate::domain::Millis;

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
        (crate::feeds::rfc3339_ms(first)?, rest)
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
