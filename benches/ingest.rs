//! Ingestion speed (DESIGN §10): events/s through `POST /api/v1/events` over real HTTP, against
//! a bare batched insert of the same event rows, in one run over a fresh database.
//!
//! cargo bench --bench ingest -- [--events N] [--batch 1000] [--clients 2] [--database URL]
//!
//! `--database` defaults to a SQLite file in a temporary folder; a `postgres://…` URL names a
//! server on which a scratch database is created and dropped afterwards.

use std::net::TcpListener;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use mailtrail::db::schema::message_events;
use mailtrail::db::DbConn;
use mailtrail::domain::{now_ms, MailType};
use mailtrail::store::models::NewMessageEvent;
use mailtrail::store::{accounts, AccountScope};
use mailtrail::{AppState, Settings};

struct Options {
    events: usize,
    batch: usize,
    clients: usize,
    database: Option<String>,
}

fn options() -> Options {
    let mut o = Options {
        events: 200_000,
        batch: 1_000,
        clients: 2,
        database: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--events" => o.events = value.parse().expect("--events N"),
            "--batch" => o.batch = value.parse().expect("--batch N"),
            "--clients" => o.clients = value.parse().expect("--clients N"),
            "--database" => o.database = Some(value),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// A scratch database that is removed when the run ends.
struct Scratch {
    url: String,
    _dir: tempfile::TempDir,
    pg_admin: Option<(String, String)>,
}

impl Scratch {
    fn new(database: Option<&str>) -> Scratch {
        let dir = tempfile::tempdir().expect("temp dir");
        match database {
            Some(admin) if admin.starts_with("postgres") => {
                let name = format!(
                    "mt_bench_{}",
                    mailtrail::domain::random_token(10).to_lowercase()
                );
                let mut conn = PgConnection::establish(admin).expect("connect to PostgreSQL");
                conn.batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create scratch database");
                let (base, _) = admin.rsplit_once('/').expect("postgres://HOST/DB");
                Scratch {
                    url: format!("{base}/{name}"),
                    _dir: dir,
                    pg_admin: Some((admin.to_string(), name)),
                }
            }
            Some(other) => Scratch {
                url: other.to_string(),
                _dir: dir,
                pg_admin: None,
            },
            None => Scratch {
                url: format!("sqlite://{}", dir.path().join("bench.db").display()),
                _dir: dir,
                pg_admin: None,
            },
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg_admin {
            if let Ok(mut conn) = PgConnection::establish(admin) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// A realistic stream: requests, their deliveries a little later, some failures classified
/// from their replies, opens, clicks, a few unsubscribes and complaints, in time order.
fn event_stream(n: usize) -> Vec<serde_json::Value> {
    let mut rng = StdRng::seed_from_u64(7);
    let start = now_ms() - 3_600_000;
    let mut timed: Vec<(i64, serde_json::Value)> = Vec::with_capacity(n + 8);
    let mut i = 0u64;
    while timed.len() < n {
        let t = start + (i as i64) * 5;
        let email_id = format!("bench-{i}$user{}@example{}.com", i % 50_000, i % 97);
        let ts = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339()
        };
        let mut push = |at: i64, mut v: serde_json::Value| {
            v["event_id"] = json!(format!("{}-{}", v["event"].as_str().unwrap(), i));
            v["email_id"] = json!(email_id);
            v["timestamp"] = json!(ts(at));
            timed.push((at, v));
        };
        push(
            t,
            json!({"event": "request", "recipient": format!("user{}@example{}.com", i % 50_000, i % 97),
                "tags": ["weekly"], "from": "news@acme.test", "subject": "Weekly digest"}),
        );
        let roll = rng.gen_range(0..1000);
        if roll < 50 {
            push(
                t + 1_500,
                json!({"event": "invalid", "smtp_reply": "550 5.1.1 <x@example.com>: Recipient address rejected: User unknown", "mx": "mx.example.com", "attempt": 1}),
            );
        } else {
            push(
                t + 1_500,
                json!({"event": "deliver", "smtp_reply": "250 2.0.0 OK", "mx": "mx.example.com", "attempt": 1}),
            );
            if roll < 70 {
                push(
                    t + 30_000,
                    json!({"event": "soft_bounce", "smtp_reply": "552 5.2.2 Mailbox full"}),
                );
            } else if roll < 320 {
                push(
                    t + 60_000,
                    json!({"event": "open", "ip": "203.0.113.7", "user_agent": "Mozilla/5.0"}),
                );
                if roll < 380 {
                    push(
                        t + 65_000,
                        json!({"event": "click", "url": "https://acme.test/sale"}),
                    );
                }
            }
            if roll == 999 {
                push(
                    t + 90_000,
                    json!({"event": "unsubscribe", "reason": "not_wanted"}),
                );
            }
        }
        i += 1;
    }
    timed.sort_by_key(|(at, _)| *at);
    timed.truncate(n);
    timed.into_iter().map(|(_, v)| v).collect()
}

fn main() {
    let o = options();
    let scratch = Scratch::new(o.database.as_deref());
    let mut settings = Settings::new(scratch.url.clone());
    settings.data_dir = scratch._dir.path().join("data");
    let state = AppState::open(settings).expect("open database");
    let pool = state.pool.clone();
    let (key, bare_account) = {
        let mut conn = pool.get().unwrap();
        let account = accounts::create_account(&mut conn, "bench").unwrap();
        let bare = accounts::create_account(&mut conn, "bench-bare").unwrap();
        let (_, key) = accounts::create_api_user(
            &mut conn,
            &AccountScope::new(account.id),
            "bench",
            MailType::Trigger,
        )
        .unwrap();
        (key, bare.id)
    };
    let backend = if scratch.url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/api/v1/events", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    let server_thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = mailtrail::launch(listener, state).expect("launch");
            tx.send(server.handle()).unwrap();
            let _ = server.await;
        })
    });
    let handle = rx.recv().unwrap();

    let events = event_stream(o.events);
    let bodies: Vec<String> = events
        .chunks(o.batch)
        .map(|c| serde_json::Value::from(c.to_vec()).to_string())
        .collect();
    println!(
        "ingest bench on {backend}: {} events in batches of {} from {} clients",
        events.len(),
        o.batch,
        o.clients
    );

    // Through the API.
    let queue = Arc::new(Mutex::new(bodies.into_iter().enumerate()));
    let started = Instant::now();
    let workers: Vec<_> = (0..o.clients)
        .map(|_| {
            let queue = queue.clone();
            let base = base.clone();
            let auth = format!("Bearer {key}");
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                loop {
                    let next = queue.lock().unwrap().next();
                    let Some((n, body)) = next else { break };
                    let r = agent
                        .post(&base)
                        .set("Authorization", &auth)
                        .set("Content-Type", "application/json")
                        .send_string(&body)
                        .unwrap_or_else(|e| panic!("batch {n}: {e}"));
                    let text = r.into_string().unwrap();
                    assert!(!text.contains("\"ok\":false"), "batch {n}: {text}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let api_secs = started.elapsed().as_secs_f64();
    let spent = mailtrail::ingest::phases::spent();
    actix_web::rt::System::new().block_on(handle.stop(true));
    server_thread.join().unwrap();

    // The same event rows, inserted bare in batches of the same size.
    let received = now_ms();
    let rows: Vec<NewMessageEvent> = events
        .iter()
        .map(|e| NewMessageEvent {
            account_id: bare_account,
            message_id: None,
            email_id: e["email_id"].as_str().unwrap().to_string(),
            event_id: e["event_id"].as_str().map(str::to_string),
            kind: e["event"].as_str().unwrap().to_string(),
            occurred_at: chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap())
                .unwrap()
                .timestamp_millis(),
            smtp_reply: e["smtp_reply"].as_str().map(str::to_string),
            mx: e["mx"].as_str().map(str::to_string),
            attempt: e["attempt"].as_i64().map(|a| a as i32),
            reason: None,
            detail: None,
            received_at: received,
        })
        .collect();
    let mut conn = pool.get().unwrap();
    let started = Instant::now();
    for chunk in rows.chunks(o.batch) {
        let conn: &mut DbConn = &mut conn;
        conn.transaction(|conn| {
            match conn {
                DbConn::Sqlite(c) => diesel::insert_into(message_events::table)
                    .values(chunk)
                    .execute(c),
                DbConn::Postgres(c) => diesel::insert_into(message_events::table)
                    .values(chunk)
                    .execute(c),
            }
            .map(|_| ())
        })
        .expect("bare insert");
    }
    let bare_secs = started.elapsed().as_secs_f64();

    let messages: i64 = mailtrail::db::schema::messages::table
        .count()
        .get_result(&mut *conn)
        .unwrap();
    let n = events.len() as f64;
    let api_rate = n / api_secs;
    let bare_rate = n / bare_secs;
    println!("  messages created:        {messages}");
    println!("  through POST /api/v1/events: {api_rate:>10.0} events/s ({api_secs:.2} s)");
    println!("  bare batched insert:         {bare_rate:>10.0} events/s ({bare_secs:.2} s)");
    println!(
        "  ratio API / bare insert:     {:>10.2}",
        api_rate / bare_rate
    );
    print_phases(&spent, api_secs, bare_secs, o.batch);
}

/// Where the API path's time went, per batch, beside the bare insert's time per batch.
fn print_phases(
    spent: &mailtrail::ingest::phases::Spent,
    api_secs: f64,
    bare_secs: f64,
    size: usize,
) {
    let batches = spent.batches.max(1) as f64;
    let per_batch = |d: std::time::Duration| d.as_secs_f64() * 1000.0 / batches;
    let total = per_batch(spent.total);
    println!(
        "  per batch of {size}: API {:.1} ms wall, of which {total:.1} ms in ingest; bare insert {:.1} ms",
        api_secs * 1000.0 / batches,
        bare_secs * 1000.0 / batches,
    );
    for (phase, d) in &spent.phases {
        let ms = per_batch(*d);
        println!(
            "    {:<16} {ms:>7.2} ms  {:>4.0} %",
            phase.name(),
            100.0 * ms / total.max(f64::MIN_POSITIVE)
        );
    }
    let phased: f64 = spent.phases.iter().map(|(_, d)| per_batch(*d)).sum();
    println!(
        "    {:<16} {:>7.2} ms  {:>4.0} %",
        "unphased",
        total - phased,
        100.0 * (total - phased) / total.max(f64::MIN_POSITIVE)
    );
}
