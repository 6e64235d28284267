//! Realistic synthetic traffic for demos and benchmarks (`mailtrail generate`, `serve --demo`):
//! a sender's status and reason mix, several API_USERs, tags, both mail types, event logs with
//! SMTP replies, opens and clicks, and the list entries those events imply.

use std::collections::{HashMap, HashSet};

use diesel::connection::{Connection, SimpleConnection};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::models::*;
use super::rollup::{self, BucketKey, HOUR_MS};
use super::{AccountScope, StoreResult};
use crate::db::schema::{
    blacklist, bounces, message_events, message_tags, messages, spam_reports, tracking_events,
    unsubscribes,
};
use crate::db::DbConn;
use crate::domain::{now_ms, MailType, Reason, Status};

const CHUNK: usize = 2_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// (API_USER, mail type, tags it sends with)
const API_USERS: &[(&str, MailType, &[&str])] = &[
    (
        "notify_trigger",
        MailType::Trigger,
        &["welcome", "password_reset", "login_alert"],
    ),
    ("billing", MailType::Trigger, &["invoice", "receipt"]),
    (
        "marketing_batch",
        MailType::Batch,
        &["promo_1111", "spring_sale", "new_arrivals"],
    ),
    (
        "newsletter",
        MailType::Batch,
        &["weekly_digest", "monthly_report"],
    ),
];

/// (domain, MX host, weight)
const DOMAINS: &[(&str, &str, u32)] = &[
    ("qq.com", "mx3.qq.com", 30),
    ("163.com", "163mx01.mxmail.netease.com", 18),
    ("126.com", "126mx01.mxmail.netease.com", 8),
    ("gmail.com", "gmail-smtp-in.l.google.com", 12),
    ("outlook.com", "outlook-com.olc.protection.outlook.com", 8),
    ("sina.com", "freemx1.sinamail.sina.com.cn", 5),
    ("foxmail.com", "mx1.qq.com", 5),
    ("yahoo.com", "mta5.am0.yahoodns.net", 4),
    ("example-corp.cn", "mx.example-corp.cn", 5),
    ("acme.com.cn", "mxbiz1.qq.com", 5),
];

const NAMES: &[&str] = &[
    "zhang", "wang", "li", "zhao", "chen", "liu", "yang", "huang", "wu", "zhou", "xu", "sun", "ma",
    "zhu", "hu", "guo", "he", "lin", "luo", "gao", "alice", "bob", "carol", "david", "emma",
    "frank", "grace", "henry", "ivy", "jack", "kate", "leo", "mia", "nina", "oscar",
];

const SUBJECTS: &[&str] = &[
    "欢迎加入！请验证您的邮箱",
    "您的密码重置链接",
    "Your invoice for this month",
    "双十一大促：全场五折起",
    "Weekly digest: what you missed",
    "登录提醒：新设备登录",
    "Your receipt",
    "新品上架，抢先看",
];

/// (reason, weight, SMTP reply) for invalid messages.
const INVALID_MIX: &[(Reason, u32, &str)] = &[
    (Reason::AddressNotFound, 40, "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"),
    (Reason::BadAddress, 4, "501 5.1.3 Bad recipient address syntax"),
    (Reason::ServerUnreachable, 9, "Host or domain name not found. Name service error for name={domain} type=MX: Host not found"),
    (Reason::Spam, 8, "554 5.7.1 Message rejected because of unacceptable content: suspected spam"),
    (Reason::IpDomainRejected, 7, "550 5.7.1 Service unavailable; Client host [203.0.113.7] blocked using Spamhaus"),
    (Reason::SenderRecipientRejected, 8, "550 5.7.1 Recipient rejected: sender is not allowed by the recipient's policy"),
    (Reason::Other, 6, "552 5.2.2 Mailbox full: quota exceeded"),
    (Reason::Blacklisted, 10, ""),
    (Reason::Unsubscribed, 8, ""),
];

/// (reason, weight, SMTP reply) for soft bounces, which arrive after delivery.
const SOFT_MIX: &[(Reason, u32, &str)] = &[
    (
        Reason::ServiceUnavailable,
        25,
        "421 4.3.0 Temporary system problem, mailbox service unavailable",
    ),
    (
        Reason::AddressNotFound,
        20,
        "550 5.1.1 The email account that you tried to reach does not exist",
    ),
    (
        Reason::Spam,
        15,
        "550 5.7.350 Remote server returned message detected as spam",
    ),
    (
        Reason::IpDomainRejected,
        10,
        "554 5.7.1 DMARC policy rejection for {domain}",
    ),
    (
        Reason::SenderRecipientRejected,
        10,
        "550 5.7.1 Delivery not authorized, message refused by recipient policy",
    ),
    (
        Reason::Other,
        20,
        "552 5.2.2 The recipient's mailbox is full and can't accept messages now",
    ),
];

#[derive(Debug, Clone, Copy, Default)]
pub struct Generated {
    pub messages: u64,
    pub events: u64,
    pub tracking: u64,
    pub list_entries: u64,
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
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

macro_rules! batch_insert {
    ($conn:expr, $table:expr, $rows:expr) => {
        if !$rows.is_empty() {
            match $conn {
                DbConn::Sqlite(c) => diesel::insert_into($table).values($rows).execute(c)?,
                DbConn::Postgres(c) => diesel::insert_into($table).values($rows).execute(c)?,
            };
        }
    };
}

/// Generates `count` messages requested over the last `days` days into the scope's account,
/// in one transaction: all of it lands, or none.
pub fn generate(
    conn: &mut DbConn,
    scope: &AccountScope,
    count: u64,
    days: u32,
    seed: u64,
) -> StoreResult<Generated> {
    let now = now_ms();
    super::partitions::ensure_range(conn, now - i64::from(days.max(1)) * DAY_MS, now + DAY_MS)?;
    conn.transaction(|conn| {
        // A bulk load builds the indexes of the growing tables once at the end, which is many
        // times faster than updating them row by row; DDL is transactional on both backends.
        let rebuild = if count >= BULK_THRESHOLD {
            drop_indexes(conn)?
        } else {
            Vec::new()
        };
        let stats = generate_rows(conn, scope, count, days, seed)?;
        let bulk = !rebuild.is_empty();
        for create in rebuild {
            diesel::sql_query(create).execute(conn)?;
        }
        if bulk && !conn.is_sqlite() {
            // Fresh statistics, so that the first queries after a bulk load use the indexes
            // (autovacuum never analyses a partitioned parent, and its partitions only later).
            diesel::sql_query(
                "ANALYZE messages, message_tags, message_events, tracking_events, status_rollup, \
                 status_rollup_daily",
            )
            .execute(conn)?;
        }
        Ok(stats)
    })
}

/// From this many messages on, indexes are rebuilt rather than updated.
const BULK_THRESHOLD: u64 = 20_000;

#[derive(QueryableByName)]
struct IndexDef {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    sql: String,
}

/// Drops the secondary indexes of the tables that grow with mail volume and answers the
/// statements that create them again, read from the database's own catalogue.
fn drop_indexes(conn: &mut DbConn) -> StoreResult<Vec<String>> {
    let catalogue = if conn.is_sqlite() {
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         AND tbl_name IN ('messages', 'message_tags', 'message_events', 'tracking_events')"
    } else {
        "SELECT CAST(indexname AS TEXT) AS name, indexdef AS sql FROM pg_indexes \
         WHERE schemaname = current_schema() AND indexname NOT LIKE '%_pkey' \
         AND tablename IN ('messages', 'message_tags', 'message_events', 'tracking_events')"
    };
    let indexes: Vec<IndexDef> = diesel::sql_query(catalogue).load(conn)?;
    for index in &indexes {
        diesel::sql_query(format!("DROP INDEX {}", index.name)).execute(conn)?;
    }
    // PostgreSQL describes an index of a partitioned table as `ON ONLY` the parent, which
    // would build it for no partition; built on the parent, it is built on every partition.
    Ok(indexes
        .into_iter()
        .map(|i| i.sql.replacen(" ON ONLY ", " ON ", 1))
        .collect())
}

fn generate_rows(
    conn: &mut DbConn,
    scope: &AccountScope,
    count: u64,
    days: u32,
    seed: u64,
) -> StoreResult<Generated> {
    let mut rng = StdRng::seed_from_u64(seed);
    let account = scope.account_id();
    let now = now_ms();
    let window = i64::from(days.max(1)) * DAY_MS;
    let first_id: i64 = messages::table
        .select(diesel::dsl::max(messages::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0)
        + 1;

    // Recipients come from a pool, so that an address has a history worth looking up.
    let pool_size = (count / 3).clamp(50, 2_000_000) as usize;
    let recipient = |rng: &mut StdRng| -> (String, &'static str, &'static str) {
        let n = rng.gen_range(0..pool_size);
        let (domain, mx, _) = DOMAINS[n % DOMAINS.len()];
        let domain_pick = pick(rng, DOMAINS, |d| d.2);
        let (domain, mx) = if n % 3 == 0 {
            (domain, mx)
        } else {
            (domain_pick.0, domain_pick.1)
        };
        let name = NAMES[n % NAMES.len()];
        (format!("{name}.{n}@{domain}"), domain, mx)
    };

    let mut stats = Generated::default();
    let mut rollup_counts: HashMap<BucketKey, i64> = HashMap::new();
    let mut tag_counts: HashMap<(BucketKey, String), i64> = HashMap::new();
    let mut bounce_list: HashMap<String, NewBounce> = HashMap::new();
    let mut unsubscribed: HashMap<String, NewUnsubscribe> = HashMap::new();
    let mut spam: HashMap<String, NewSpamReport> = HashMap::new();
    let mut blacklisted: HashSet<String> = HashSet::new();

    // Request times are drawn first and walked oldest first, so that the time-ordered indexes
    // grow at their ends instead of splitting pages all over the file. Newer days send a
    // little more, like a growing sender.
    let mut ages: Vec<i64> = (0..count)
        .map(|_| ((rng.gen::<f64>().powf(1.3) * window as f64) as i64).max(1_000))
        .collect();
    ages.sort_unstable_by(|a, b| b.cmp(a));
    if let DbConn::Sqlite(c) = conn {
        // A large page cache for this one bulk load; the pool's usual size comes back after.
        c.batch_execute("PRAGMA cache_size = -1048576")?;
    }

    let mut produced = 0u64;
    while produced < count {
        let n = (count - produced).min(CHUNK as u64) as usize;
        let mut rows = Vec::with_capacity(n);
        let mut tags = Vec::with_capacity(n);
        let mut events = Vec::with_capacity(n * 3);
        let mut tracking = Vec::new();
        for i in 0..n {
            let id = first_id + (produced as i64) + i as i64;
            let age = ages[produced as usize + i];
            let requested_at = now - age;
            let (rcpt, domain, mx) = recipient(&mut rng);
            let &(api_user, mail_type, tag_choices) = &API_USERS[rng.gen_range(0..API_USERS.len())];
            let tag = tag_choices[rng.gen_range(0..tag_choices.len())];
            let email_id = format!("{requested_at}_{account}_{id}.mt-gen0${rcpt}");
            let recent = age < 10 * 60_000;
            let roll = rng.gen_range(0..1000);
            let (status, reason, reply) = if recent && roll < 300 {
                (Status::Requesting, None, None)
            } else if roll < 925 {
                (Status::Delivered, None, None)
            } else if roll < 950 {
                let (r, _, reply) = *pick(&mut rng, SOFT_MIX, |m| m.1);
                (Status::SoftBounce, Some(r), Some(reply))
            } else {
                let (r, _, reply) = *pick(&mut rng, INVALID_MIX, |m| m.1);
                (Status::Invalid, Some(r), Some(reply))
            };
            let reply = reply.map(|r| r.replace("{rcpt}", &rcpt).replace("{domain}", domain));
            let reply = reply.filter(|r| !r.is_empty());

            let event = |kind: &str,
                         at: i64,
                         smtp_reply: Option<String>,
                         mx: Option<&str>,
                         attempt: Option<i32>,
                         reason: Option<Reason>| NewMessageEvent {
                account_id: account,
                message_id: Some(id),
                email_id: email_id.clone(),
                event_id: None,
                kind: kind.to_string(),
                occurred_at: at,
                smtp_reply,
                mx: mx.map(str::to_string),
                attempt,
                reason: reason.map(Reason::as_i16),
                detail: None,
                received_at: at,
            };
            events.push(event("request", requested_at, None, None, None, None));
            let mut updated_at = requested_at;
            let mut rule = None;
            match status {
                Status::Requesting => {
                    if rng.gen_bool(0.3) {
                        updated_at = requested_at + rng.gen_range(2_000..60_000);
                        events.push(event(
                            "deferred",
                            updated_at,
                            Some("451 4.7.1 Greylisted, please try again later".into()),
                            Some(mx),
                            Some(1),
                            None,
                        ));
                    }
                }
                Status::Delivered => {
                    updated_at = requested_at + rng.gen_range(800..20_000);
                    let queue_id: u64 = rng.gen();
                    events.push(event(
                        "deliver",
                        updated_at,
                        Some(format!("250 2.0.0 Ok: queued as {queue_id:X}")),
                        Some(mx),
                        Some(1),
                        None,
                    ));
                }
                Status::SoftBounce => {
                    let delivered = requested_at + rng.gen_range(800..20_000);
                    events.push(event(
                        "deliver",
                        delivered,
                        Some("250 2.0.0 OK".into()),
                        Some(mx),
                        Some(1),
                        None,
                    ));
                    updated_at = delivered + rng.gen_range(30_000..3_600_000);
                    rule = Some("generated".to_string());
                    events.push(event(
                        "soft_bounce",
                        updated_at,
                        reply.clone(),
                        Some(mx),
                        None,
                        reason,
                    ));
                }
                Status::Invalid => {
                    let r = reason.unwrap_or(Reason::Other);
                    if matches!(r, Reason::Blacklisted | Reason::Unsubscribed) {
                        updated_at = requested_at;
                        rule = Some(format!(
                            "suppressed: {}",
                            if r == Reason::Blacklisted {
                                "blacklist"
                            } else {
                                "unsubscribe list"
                            }
                        ));
                        events.push(event("invalid", updated_at, None, None, None, reason));
                    } else {
                        if r == Reason::ServerUnreachable {
                            events.push(event(
                                "deferred",
                                requested_at + 5_000,
                                Some("451 4.4.0 DNS lookup failed, will retry".into()),
                                None,
                                Some(1),
                                None,
                            ));
                        }
                        updated_at = requested_at + rng.gen_range(2_000..600_000);
                        rule = Some("generated".to_string());
                        events.push(event(
                            "invalid",
                            updated_at,
                            reply.clone(),
                            Some(mx),
                            Some(if r == Reason::ServerUnreachable { 2 } else { 1 }),
                            reason,
                        ));
                    }
                }
            }

            // The list entries these outcomes imply.
            match (status, reason) {
                (_, Some(Reason::AddressNotFound)) => {
                    let entry = bounce_list
                        .entry(rcpt.clone())
                        .or_insert_with(|| NewBounce {
                            account_id: account,
                            address: rcpt.clone(),
                            reason_text: reply.clone().unwrap_or_default(),
                            source: "delivery".into(),
                            email_id: Some(email_id.clone()),
                            bounced_at: updated_at,
                            bounce_count: 0,
                            expires_at: 0,
                        });
                    entry.bounce_count += 1;
                    if updated_at > entry.bounced_at {
                        entry.bounced_at = updated_at;
                    }
                }
                (Status::Invalid, Some(Reason::Blacklisted)) => {
                    blacklisted.insert(rcpt.clone());
                }
                (Status::Invalid, Some(Reason::Unsubscribed)) => {
                    unsubscribed
                        .entry(rcpt.clone())
                        .or_insert_with(|| NewUnsubscribe {
                            account_id: account,
                            address: rcpt.clone(),
                            reason: ["not_wanted", "not_subscribed", "not_wanted", "spam"]
                                [rng.gen_range(0..4)]
                            .into(),
                            source: "recipient".into(),
                            email_id: None,
                            api_user: Some(api_user.into()),
                            tag: Some(tag.into()),
                            unsubscribed_at: requested_at - rng.gen_range(DAY_MS..30 * DAY_MS),
                        });
                }
                _ => {}
            }

            // Opens and clicks of delivered mail.
            if status == Status::Delivered
                && rng.gen_bool(if mail_type == MailType::Trigger {
                    0.35
                } else {
                    0.18
                })
            {
                let opens = rng.gen_range(1..=3);
                let mut at = updated_at;
                for _ in 0..opens {
                    at += rng.gen_range(60_000..6 * HOUR_MS);
                    if at >= now {
                        break;
                    }
                    events.push(event("open", at, None, None, None, None));
                    tracking.push(NewTrackingEvent {
                        account_id: account,
                        message_id: Some(id),
                        email_id: email_id.clone(),
                        recipient: rcpt.clone(),
                        api_user: api_user.into(),
                        tag: Some(tag.into()),
                        kind: 1,
                        url: String::new(),
                        ip: Some(format!("203.0.113.{}", rng.gen_range(1..255))),
                        user_agent: Some(USER_AGENTS[rng.gen_range(0..USER_AGENTS.len())].into()),
                        occurred_at: at,
                    });
                }
                if rng.gen_bool(0.25) && at + 5_000 < now {
                    let url = format!("https://shop.example.cn/{tag}?utm_source=email");
                    events.push(event("click", at + 5_000, None, None, None, None));
                    tracking.push(NewTrackingEvent {
                        account_id: account,
                        message_id: Some(id),
                        email_id: email_id.clone(),
                        recipient: rcpt.clone(),
                        api_user: api_user.into(),
                        tag: Some(tag.into()),
                        kind: 2,
                        url,
                        ip: Some(format!("203.0.113.{}", rng.gen_range(1..255))),
                        user_agent: Some(USER_AGENTS[rng.gen_range(0..USER_AGENTS.len())].into()),
                        occurred_at: at + 5_000,
                    });
                }
                if rng.gen_bool(0.002) {
                    events.push(event("report_spam", at + 60_000, None, None, None, None));
                    spam.entry(rcpt.clone()).or_insert_with(|| NewSpamReport {
                        account_id: account,
                        address: rcpt.clone(),
                        email_id: Some(email_id.clone()),
                        api_user: Some(api_user.into()),
                        reported_at: at + 60_000,
                        expires_at: at + 60_000 + 180 * DAY_MS,
                    });
                }
            }

            let key = BucketKey {
                hour: requested_at.div_euclid(HOUR_MS),
                status: status.as_i16(),
                reason: reason.map(Reason::as_i16).unwrap_or(0),
                api_user: api_user.to_string(),
                mail_type: mail_type.as_i16(),
            };
            *tag_counts
                .entry((key.clone(), tag.to_string()))
                .or_insert(0) += 1;
            *rollup_counts.entry(key).or_insert(0) += 1;
            tags.push(MessageTag {
                message_id: id,
                account_id: account,
                tag: tag.to_string(),
                requested_at,
            });
            rows.push(Message {
                id,
                account_id: account,
                email_id,
                recipient: rcpt,
                api_user: api_user.to_string(),
                mail_type: mail_type.as_i16(),
                tags: tag.to_string(),
                sender: format!("no-reply@{}.example.cn", api_user.replace('_', "-")),
                subject: SUBJECTS[rng.gen_range(0..SUBJECTS.len())].to_string(),
                status: status.as_i16(),
                reason: reason.map(Reason::as_i16),
                smtp_reply: reply,
                rule,
                requested_at,
                updated_at,
            });
        }
        for chunk in rows.chunks(1_000) {
            batch_insert!(conn, messages::table, chunk);
        }
        for chunk in tags.chunks(1_000) {
            batch_insert!(conn, message_tags::table, chunk);
        }
        for chunk in events.chunks(1_000) {
            batch_insert!(conn, message_events::table, chunk);
        }
        for chunk in tracking.chunks(1_000) {
            batch_insert!(conn, tracking_events::table, chunk);
        }
        stats.messages += n as u64;
        stats.events += events.len() as u64;
        stats.tracking += tracking.len() as u64;
        produced += n as u64;
    }

    if let DbConn::Sqlite(c) = conn {
        c.batch_execute("PRAGMA cache_size = -65536")?;
    }

    {
        let mut bounce_rows: Vec<NewBounce> = bounce_list.into_values().collect();
        for b in &mut bounce_rows {
            b.expires_at = b.bounced_at + crate::domain::bounce_backoff_ms(b.bounce_count);
        }
        let existing_bounces: HashSet<String> = bounces::table
            .filter(bounces::account_id.eq(account))
            .select(bounces::address)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        bounce_rows.retain(|b| !existing_bounces.contains(&b.address));
        let unsub_existing: HashSet<String> = unsubscribes::table
            .filter(unsubscribes::account_id.eq(account))
            .select(unsubscribes::address)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        let unsub_rows: Vec<NewUnsubscribe> = unsubscribed
            .into_values()
            .filter(|u| !unsub_existing.contains(&u.address))
            .collect();
        let spam_existing: HashSet<String> = spam_reports::table
            .filter(spam_reports::account_id.eq(account))
            .select(spam_reports::address)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        let spam_rows: Vec<NewSpamReport> = spam
            .into_values()
            .filter(|s| !spam_existing.contains(&s.address))
            .collect();
        let black_existing: HashSet<String> = blacklist::table
            .filter(blacklist::account_id.eq(account))
            .select(blacklist::address)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        let black_rows: Vec<NewBlacklistEntry> = blacklisted
            .into_iter()
            .filter(|a| !black_existing.contains(a))
            .map(|address| NewBlacklistEntry {
                account_id: account,
                address,
                source: "ui".into(),
                api_user: None,
                created_at: now - window,
                expires_at: None,
            })
            .collect();
        stats.list_entries =
            (bounce_rows.len() + unsub_rows.len() + spam_rows.len() + black_rows.len()) as u64;
        for chunk in bounce_rows.chunks(1_000) {
            batch_insert!(conn, bounces::table, chunk);
        }
        for chunk in unsub_rows.chunks(1_000) {
            batch_insert!(conn, unsubscribes::table, chunk);
        }
        for chunk in spam_rows.chunks(1_000) {
            batch_insert!(conn, spam_reports::table, chunk);
        }
        for chunk in black_rows.chunks(1_000) {
            batch_insert!(conn, blacklist::table, chunk);
        }
        let changes: Vec<(BucketKey, i64)> = rollup_counts.into_iter().collect();
        rollup::apply(conn, scope, &changes)?;
        let changes: Vec<((BucketKey, String), i64)> = tag_counts.into_iter().collect();
        rollup::apply_tags(conn, scope, &changes)?;
        if let DbConn::Postgres(_) = conn {
            for table in [
                "messages",
                "message_events",
                "tracking_events",
                "bounces",
                "unsubscribes",
                "spam_reports",
                "blacklist",
            ] {
                diesel::sql_query(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 1))"
                ))
                .execute(conn)?;
            }
        }
    }
    Ok(stats)
}

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; V2309A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0.47",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
];

/// A scope for the generator's callers that already resolved the account.
pub fn scope_for(account: &Account) -> AccountScope {
    AccountScope::new(account.id)
}

/// Keeps a sent message and a send log (the S+ features) for the newest `limit` messages
/// of the account that have none, as an MTA posting them would; answers how many.
pub fn sample_content(conn: &mut DbConn, scope: &AccountScope, limit: i64) -> StoreResult<usize> {
    use crate::db::schema::{message_contents, send_logs};
    let latest = super::messages::latest(conn, scope, limit)?;
    let mut contents = Vec::new();
    let mut logs = Vec::new();
    for m in &latest {
        let events = super::messages::events(conn, scope, m.id)?;
        let raw = format!(
            "From: {sender}\r\nTo: {rcpt}\r\nSubject: =?UTF-8?B?{subject}?=\r\nMessage-ID: <{id}@mailtrail.example>\r\n\
             Date: {date}\r\nList-Unsubscribe: <https://mail.example.cn/u/demo>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/alternative; boundary=\"mt-{id}\"\r\n\r\n\
             --mt-{id}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n您好，\r\n\r\n{plain}\r\n\r\n退订: https://mail.example.cn/u/demo\r\n\
             --mt-{id}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
             <html><body><h2>{plain}</h2><p>您好，感谢您的关注。</p>\
             <p><img src=\"https://track.example.cn/o/{id}.gif\" alt=\"\"> <a href=\"https://shop.example.cn/?utm_source=email\">查看详情</a></p>\
             <script>document.title='x'</script></body></html>\r\n--mt-{id}--\r\n",
            sender = m.sender,
            rcpt = m.recipient,
            subject = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, m.subject.as_bytes()),
            id = m.email_id.split('$').next().unwrap_or("x"),
            date = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(m.requested_at)
                .map(|t| t.to_rfc2822())
                .unwrap_or_default(),
            plain = m.subject,
        );
        contents.push((
            message_contents::message_id.eq(m.id),
            message_contents::account_id.eq(m.account_id),
            message_contents::size.eq(raw.len() as i64),
            message_contents::raw.eq(raw.into_bytes()),
        ));
        let lines: Vec<String> = events
            .iter()
            .map(|e| {
                let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(e.occurred_at)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                    .unwrap_or_default();
                format!(
                    "{at} {kind} to=<{rcpt}> relay={mx} {reply}",
                    kind = e.kind,
                    rcpt = m.recipient,
                    mx = e.mx.as_deref().unwrap_or("-"),
                    reply = e.smtp_reply.as_deref().unwrap_or("")
                )
            })
            .collect();
        logs.push((
            send_logs::message_id.eq(m.id),
            send_logs::account_id.eq(m.account_id),
            send_logs::lines.eq(lines.join("\n")),
        ));
    }
    let existing: HashSet<i64> = message_contents::table
        .filter(message_contents::account_id.eq(scope.account_id()))
        .select(message_contents::message_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let mut written = 0;
    for ((content, log), m) in contents.into_iter().zip(logs).zip(&latest) {
        if existing.contains(&m.id) {
            continue;
        }
        diesel::insert_into(message_contents::table)
            .values(content)
            .execute(conn)?;
        diesel::insert_into(send_logs::table)
            .values(log)
            .execute(conn)?;
        written += 1;
    }
    Ok(written)
}
