//! Drawing one message at a time: who it goes to, how it ends, the events on its way, the
//! opens and clicks of delivered mail, and what it implies beyond itself (list entries and
//! rollup counts), gathered for the whole run.

use std::collections::{HashMap, HashSet};

use rand::rngs::StdRng;
use rand::Rng;

use super::catalogue::{
    API_USERS, BAD_HOUR_AGO, BAD_HOUR_DOMAINS, BAD_HOUR_MIX, DOMAINS, INVALID_MIX, NAMES, SOFT_MIX,
    SUBJECTS, USER_AGENTS,
};
use crate::domain::providers::ProviderMap;
use crate::domain::{MailType, Reason, Status, TrackKind};
use crate::store::models::*;
use crate::store::providers::{ProviderBucket, ProviderDeltas};
use crate::store::rollup::{BucketKey, HOUR_MS};

pub const DAY_MS: i64 = 24 * HOUR_MS;

/// A weighted choice among `items`.
pub fn pick<'a, T>(rng: &mut StdRng, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
    let total: u32 = items.iter().map(&weight).sum();
    let mut n = rng.gen_range(0..total);
    for item in items {
        let w = weight(item);
        if n < w {
            return item;
        }
        n -= w;
    }
    &items[items.len() - 1]
}

/// The rows of one chunk of messages, written together.
#[derive(Default)]
pub struct Chunk {
    pub messages: Vec<Message>,
    pub tags: Vec<MessageTag>,
    pub events: Vec<NewMessageEvent>,
    pub tracking: Vec<NewTrackingEvent>,
}

/// What the whole run implies beyond its messages, gathered as they are drawn.
#[derive(Default)]
pub struct Implied {
    pub rollup_counts: HashMap<BucketKey, i64>,
    pub provider_counts: ProviderDeltas,
    pub tag_counts: HashMap<(BucketKey, String), i64>,
    pub bounce_list: HashMap<String, NewBounce>,
    pub unsubscribed: HashMap<String, NewUnsubscribe>,
    pub spam: HashMap<String, NewSpamReport>,
    pub blacklisted: HashSet<String>,
}

/// One run of the generator: its random source, the account, and the recipients' pool.
pub struct Run {
    pub rng: StdRng,
    pub account: i64,
    pub now: i64,
    /// Recipients come from a pool, so that an address has a history worth looking up.
    pub pool_size: usize,
    pub implied: Implied,
}

/// A message as drawn, before its rows are made.
struct Drawn {
    account: i64,
    id: i64,
    email_id: String,
    rcpt: String,
    mx: &'static str,
    /// The provider ingestion would give it: by domain, or by the MX its answer reported.
    provider: String,
    api_user: &'static str,
    mail_type: MailType,
    tag: &'static str,
    requested_at: i64,
    status: Status,
    reason: Option<Reason>,
    reply: Option<String>,
}

/// How the message's story ends: when, and by which rule.
struct Ending {
    updated_at: i64,
    rule: Option<String>,
}

impl Drawn {
    fn event(
        &self,
        kind: &str,
        at: i64,
        smtp_reply: Option<String>,
        mx: Option<&str>,
        attempt: Option<i32>,
        reason: Option<Reason>,
    ) -> NewMessageEvent {
        NewMessageEvent {
            account_id: self.account,
            message_id: Some(self.id),
            email_id: self.email_id.clone(),
            event_id: None,
            kind: kind.to_string(),
            occurred_at: at,
            smtp_reply,
            mx: mx.map(str::to_string),
            attempt,
            reason: reason.map(Reason::as_i16),
            detail: None,
            received_at: at,
        }
    }
}

impl Run {
    /// Draws the message `id`, requested `age` ms ago, into `chunk`.
    pub fn message(&mut self, id: i64, age: i64, chunk: &mut Chunk) {
        let d = self.draw(id, age);
        chunk
            .events
            .push(d.event("request", d.requested_at, None, None, None, None));
        let ending = self.story(&d, &mut chunk.events);
        self.list_entries(&d, ending.updated_at);
        if d.status == Status::Delivered {
            self.opens_and_clicks(&d, ending.updated_at, chunk);
        }
        self.count(&d);
        chunk.tags.push(MessageTag {
            message_id: id,
            account_id: self.account,
            tag: d.tag.to_string(),
            requested_at: d.requested_at,
        });
        let subject = SUBJECTS[self.rng.gen_range(0..SUBJECTS.len())].to_string();
        chunk.messages.push(Message {
            id,
            account_id: self.account,
            email_id: d.email_id,
            recipient: d.rcpt,
            api_user: d.api_user.to_string(),
            mail_type: d.mail_type.as_i16(),
            tags: d.tag.to_string(),
            sender: format!("no-reply@{}.example.cn", d.api_user.replace('_', "-")),
            subject,
            status: d.status.as_i16(),
            reason: d.reason.map(Reason::as_i16),
            smtp_reply: d.reply,
            rule: ending.rule,
            requested_at: d.requested_at,
            updated_at: ending.updated_at,
            provider: d.provider.clone(),
        });
    }

    fn recipient(&mut self) -> (String, &'static str, &'static str) {
        let n = self.rng.gen_range(0..self.pool_size);
        let (domain, mx, _) = DOMAINS[n % DOMAINS.len()];
        let domain_pick = pick(&mut self.rng, DOMAINS, |d| d.2);
        let (domain, mx) = if n % 3 == 0 {
            (domain, mx)
        } else {
            (domain_pick.0, domain_pick.1)
        };
        let name = NAMES[n % NAMES.len()];
        (format!("{name}.{n}@{domain}"), domain, mx)
    }

    /// Who, from which API_USER with which tag, and the status it ends in.
    fn draw(&mut self, id: i64, age: i64) -> Drawn {
        let requested_at = self.now - age;
        let (rcpt, domain, mx) = self.recipient();
        let rng = &mut self.rng;
        let &(api_user, mail_type, tag_choices) = &API_USERS[rng.gen_range(0..API_USERS.len())];
        let tag = tag_choices[rng.gen_range(0..tag_choices.len())];
        let email_id = format!("{requested_at}_{}_{id}.mt-gen0${rcpt}", self.account);
        let recent = age < 10 * 60_000;
        let roll = rng.gen_range(0..1000);
        let bad_hour = BAD_HOUR_DOMAINS.contains(&domain)
            && (self.now - requested_at).div_euclid(HOUR_MS) == BAD_HOUR_AGO;
        let bad = if bad_hour {
            let bad_pick = rng.gen_range(0..100u32);
            BAD_HOUR_MIX
                .iter()
                .scan(0, |sum, m| {
                    *sum += m.2;
                    Some((*sum, m))
                })
                .find(|(sum, _)| bad_pick < *sum)
                .map(|(_, m)| m)
        } else {
            None
        };
        let (status, reason, reply) = if let Some(&(invalid, r, _, reply)) = bad {
            let status = if invalid {
                Status::Invalid
            } else {
                Status::SoftBounce
            };
            (status, Some(r), Some(reply))
        } else if recent && roll < 300 {
            (Status::Requesting, None, None)
        } else if roll < 925 {
            (Status::Delivered, None, None)
        } else if roll < 950 {
            let (r, _, reply) = *pick(rng, SOFT_MIX, |m| m.1);
            (Status::SoftBounce, Some(r), Some(reply))
        } else {
            let (r, _, reply) = *pick(rng, INVALID_MIX, |m| m.1);
            (Status::Invalid, Some(r), Some(reply))
        };
        let reply = reply.map(|r| {
            r.replace("{rcpt}", &rcpt)
                .replace("{domain}", domain)
                .replace("{id}", &format!("{:X}", requested_at % 0xFFFF_FFFF))
        });
        let answered = (status != Status::Requesting).then_some(mx);
        let provider = ProviderMap::builtin().provider_with_mx(&rcpt, answered);
        Drawn {
            provider,
            account: self.account,
            id,
            email_id,
            rcpt,
            mx,
            api_user,
            mail_type,
            tag,
            requested_at,
            status,
            reason,
            reply: reply.filter(|r| !r.is_empty()),
        }
    }

    /// The events between the request and the status the message ends in.
    fn story(&mut self, d: &Drawn, events: &mut Vec<NewMessageEvent>) -> Ending {
        let first = events.len();
        let mut ending = self.story_untimed(d, events);
        // A story that would reach past now ends now: demo data has no future.
        for e in &mut events[first..] {
            e.occurred_at = e.occurred_at.min(self.now);
        }
        ending.updated_at = ending.updated_at.min(self.now);
        ending
    }

    fn story_untimed(&mut self, d: &Drawn, events: &mut Vec<NewMessageEvent>) -> Ending {
        let (mx, requested_at) = (Some(d.mx), d.requested_at);
        let rng = &mut self.rng;
        let mut ending = Ending {
            updated_at: requested_at,
            rule: None,
        };
        match d.status {
            Status::Requesting => {
                if rng.gen_bool(0.3) {
                    ending.updated_at = requested_at + rng.gen_range(2_000..60_000);
                    let greylisted = Some("451 4.7.1 Greylisted, please try again later".into());
                    events.push(d.event(
                        "deferred",
                        ending.updated_at,
                        greylisted,
                        mx,
                        Some(1),
                        None,
                    ));
                }
            }
            Status::Delivered => {
                ending.updated_at = requested_at + rng.gen_range(800..20_000);
                let queue_id: u64 = rng.gen();
                let ok = Some(format!("250 2.0.0 Ok: queued as {queue_id:X}"));
                events.push(d.event("deliver", ending.updated_at, ok, mx, Some(1), None));
            }
            Status::SoftBounce => {
                let delivered = requested_at + rng.gen_range(800..20_000);
                let ok = Some("250 2.0.0 OK".into());
                events.push(d.event("deliver", delivered, ok, mx, Some(1), None));
                ending.updated_at = delivered + rng.gen_range(30_000..3_600_000);
                ending.rule = Some("generated".to_string());
                events.push(d.event(
                    "soft_bounce",
                    ending.updated_at,
                    d.reply.clone(),
                    mx,
                    None,
                    d.reason,
                ));
            }
            Status::Invalid => self.invalid(d, events, &mut ending),
        }
        ending
    }

    fn invalid(&mut self, d: &Drawn, events: &mut Vec<NewMessageEvent>, ending: &mut Ending) {
        let requested_at = d.requested_at;
        let r = d.reason.unwrap_or(Reason::Other);
        if matches!(r, Reason::Blacklisted | Reason::Unsubscribed) {
            let list = match r {
                Reason::Blacklisted => "blacklist",
                _ => "unsubscribe list",
            };
            ending.rule = Some(format!("suppressed: {list}"));
            events.push(d.event("invalid", requested_at, None, None, None, d.reason));
            return;
        }
        let unreachable = r == Reason::ServerUnreachable;
        if unreachable {
            let dns = Some("451 4.4.0 DNS lookup failed, will retry".into());
            events.push(d.event("deferred", requested_at + 5_000, dns, None, Some(1), None));
        }
        ending.updated_at = requested_at + self.rng.gen_range(2_000..600_000);
        ending.rule = Some("generated".to_string());
        let attempt = Some(if unreachable { 2 } else { 1 });
        events.push(d.event(
            "invalid",
            ending.updated_at,
            d.reply.clone(),
            Some(d.mx),
            attempt,
            d.reason,
        ));
    }

    /// The list entries the message's outcome implies.
    fn list_entries(&mut self, d: &Drawn, updated_at: i64) {
        let account = self.account;
        match (d.status, d.reason) {
            (_, Some(Reason::AddressNotFound)) => {
                let entry = self
                    .implied
                    .bounce_list
                    .entry(d.rcpt.clone())
                    .or_insert_with(|| NewBounce {
                        account_id: account,
                        address: d.rcpt.clone(),
                        reason_text: d.reply.clone().unwrap_or_default(),
                        source: "delivery".into(),
                        email_id: Some(d.email_id.clone()),
                        bounced_at: updated_at,
                        bounce_count: 0,
                        expires_at: 0,
                    });
                entry.bounce_count += 1;
                entry.bounced_at = entry.bounced_at.max(updated_at);
            }
            (Status::Invalid, Some(Reason::Blacklisted)) => {
                self.implied.blacklisted.insert(d.rcpt.clone());
            }
            (Status::Invalid, Some(Reason::Unsubscribed)) => {
                let rng = &mut self.rng;
                self.implied
                    .unsubscribed
                    .entry(d.rcpt.clone())
                    .or_insert_with(|| NewUnsubscribe {
                        account_id: account,
                        address: d.rcpt.clone(),
                        reason: ["not_wanted", "not_subscribed", "not_wanted", "spam"]
                            [rng.gen_range(0..4)]
                        .into(),
                        source: "recipient".into(),
                        email_id: None,
                        api_user: Some(d.api_user.into()),
                        tag: Some(d.tag.into()),
                        unsubscribed_at: d.requested_at - rng.gen_range(DAY_MS..30 * DAY_MS),
                    });
            }
            _ => {}
        }
    }

    /// Opens and clicks of delivered mail (and, rarely, a complaint).
    fn opens_and_clicks(&mut self, d: &Drawn, delivered_at: i64, chunk: &mut Chunk) {
        let engaged = match d.mail_type {
            MailType::Trigger => 0.35,
            _ => 0.18,
        };
        if !self.rng.gen_bool(engaged) {
            return;
        }
        let opens = self.rng.gen_range(1..=3);
        let mut at = delivered_at;
        for _ in 0..opens {
            at += self.rng.gen_range(60_000..6 * HOUR_MS);
            if at >= self.now {
                break;
            }
            self.track(d, TrackKind::Open, at, String::new(), chunk);
        }
        if self.rng.gen_bool(0.25) && at + 5_000 < self.now {
            let url = format!("https://shop.example.cn/{}?utm_source=email", d.tag);
            self.track(d, TrackKind::Click, at + 5_000, url, chunk);
        }
        if self.rng.gen_bool(0.002) {
            let reported_at = at + 60_000;
            let e = d.event("report_spam", reported_at, None, None, None, None);
            chunk.events.push(e);
            let account = self.account;
            self.implied
                .spam
                .entry(d.rcpt.clone())
                .or_insert_with(|| NewSpamReport {
                    account_id: account,
                    address: d.rcpt.clone(),
                    email_id: Some(d.email_id.clone()),
                    api_user: Some(d.api_user.into()),
                    reported_at,
                    expires_at: reported_at + 180 * DAY_MS,
                });
        }
    }

    /// One open or click: its event and its tracking row.
    fn track(&mut self, d: &Drawn, kind: TrackKind, at: i64, url: String, chunk: &mut Chunk) {
        chunk
            .events
            .push(d.event(kind.code(), at, None, None, None, None));
        chunk.tracking.push(NewTrackingEvent {
            account_id: self.account,
            message_id: Some(d.id),
            email_id: d.email_id.clone(),
            recipient: d.rcpt.clone(),
            api_user: d.api_user.into(),
            tag: Some(d.tag.into()),
            kind: kind.as_i16(),
            url,
            ip: Some(format!("203.0.113.{}", self.rng.gen_range(1..255))),
            user_agent: Some(USER_AGENTS[self.rng.gen_range(0..USER_AGENTS.len())].into()),
            occurred_at: at,
        });
    }

    /// The message in the rollup, once overall and once under its tag.
    fn count(&mut self, d: &Drawn) {
        let key = BucketKey {
            hour: d.requested_at.div_euclid(HOUR_MS),
            status: d.status.as_i16(),
            reason: d.reason.map(Reason::as_i16).unwrap_or(0),
            api_user: d.api_user.to_string(),
            mail_type: d.mail_type.as_i16(),
        };
        let implied = &mut self.implied;
        *implied
            .tag_counts
            .entry((key.clone(), d.tag.to_string()))
            .or_insert(0) += 1;
        *implied.rollup_counts.entry(key).or_insert(0) += 1;
        implied.provider_counts.add(
            ProviderBucket {
                provider: d.provider.clone(),
                hour: d.requested_at.div_euclid(HOUR_MS),
                status: d.status.as_i16(),
                reason: d.reason.map(Reason::as_i16).unwrap_or(0),
            },
            1,
        );
    }
}
