//! Alerts through the real stack on both backends: rules set in the console, mail posted to
//! the events API, evaluation and delivery by the worker's own functions at chosen times (the
//! background worker is off here, so that nothing runs between the steps), notifications
//! received by a local webhook receiver and a local SMTP sink.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{mpsc, Arc, Barrier};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use common::{Client, TestApp};
use mailtrail::domain::{now_ms, MailType, Role};
use mailtrail::jobs::alerts::{deliver_due, evaluate_due};
use mailtrail::store::{accounts, AccountScope};

const MINUTE: i64 = 60_000;

struct Setup {
    app: TestApp,
    owner: Client,
    key: String,
    account_id: i64,
}

fn setup(db: common::TestDb, private_targets: bool, smtp_url: Option<String>) -> Setup {
    let mut settings = common::settings_for(&db);
    settings.alerts.poll_ms = 0;
    settings.alerts.private_targets = private_targets;
    settings.alerts.smtp_url = smtp_url;
    settings.alerts.smtp_from = "alerts@mailtrail.test".into();
    let app = TestApp::start_with(db, settings);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "owner-password");
    app.user(
        &account,
        "member@acme.test",
        Role::Member,
        "member-password",
    );
    let (_, key) = accounts::create_api_user(
        &mut app.conn(),
        &AccountScope::new(account.id),
        "notify",
        MailType::Trigger,
    )
    .expect("api user");
    let mut owner = app.client();
    assert_eq!(owner.login("owner@acme.test", "owner-password").status, 303);
    Setup {
        app,
        owner,
        key,
        account_id: account.id,
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Setup {
    /// Posts `n` requests to `domain` at `at`, of which the first `invalid` are rejected as
    /// unknown addresses.
    fn mail(&mut self, tag: &str, domain: &str, n: usize, invalid: usize, at: i64) {
        let mut events = Vec::new();
        for i in 0..n {
            let id = format!("{tag}-{i}");
            events.push(serde_json::json!({
                "event": "request", "email_id": id, "recipient": format!("user{i}.{tag}@{domain}"),
                "timestamp": rfc3339(at),
            }));
            if i < invalid {
                events.push(serde_json::json!({
                    "event": "invalid", "email_id": id, "timestamp": rfc3339(at + 1000),
                    "smtp_reply": "550 5.1.1 User unknown", "mx": format!("mx.{domain}"),
                }));
            }
        }
        let auth = format!("Bearer {}", self.key);
        let r = self.owner.post_raw(
            "/api/v1/events",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            serde_json::Value::from(events).to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(!r.body.contains("\"ok\":false"), "{}", r.body);
    }

    fn add_rule(&mut self, fields: &[(&str, &str)]) {
        let token = self.owner.token();
        let mut form = fields.to_vec();
        form.push(("csrf_token", &token));
        let r = self.owner.post_form("/alerts/rules", &form);
        assert_eq!(r.status, 303, "{}", r.body);
    }

    fn evaluate(&self, now: i64) -> usize {
        evaluate_due(&mut self.app.conn(), &self.app.settings.alerts, now).expect("evaluate")
    }

    fn deliver(&self, now: i64) -> usize {
        deliver_due(&mut self.app.conn(), &self.app.settings.alerts, now).expect("deliver")
    }

    fn alerts(&self, kind: &str) -> i64 {
        self.app.count(&format!(
            "SELECT COUNT(*) AS n FROM alerts WHERE account_id = {} AND kind = '{kind}'",
            self.account_id
        ))
    }
}

const INVALID_10_PERCENT: &[(&str, &str)] = &[
    ("metric", "invalid_rate"),
    ("provider", ""),
    ("threshold", "10"),
    ("recover", "6"),
    ("window_minutes", "30"),
    ("min_requests", "50"),
];

both_backends!(a_rule_fires_once_and_recovers_once, |db| {
    let mut s = setup(db, false, None);
    let t0 = now_ms();
    s.add_rule(INVALID_10_PERCENT);
    // New accounts come with default rules, all off: only the owner's rule is evaluated.
    let rules = s.owner.get("/alerts");
    assert_eq!(rules.status, 200);
    assert_eq!(
        rules.body.matches("data-state=\"off\"").count(),
        6,
        "{}",
        rules.body
    );

    // Too few requests decide nothing, whatever their rate.
    s.mail("a", "example.com", 40, 40, t0 - 10 * MINUTE);
    assert_eq!(s.evaluate(t0), 0);
    assert_eq!(s.alerts("fired"), 0);

    // 40 + 60 requests, 40 + 2 invalid: 42 %. It fires, once.
    s.mail("b", "example.com", 60, 2, t0 - 9 * MINUTE);
    assert_eq!(s.evaluate(t0 + MINUTE), 1);
    assert_eq!(s.alerts("fired"), 1);
    assert_eq!(
        s.evaluate(t0 + 2 * MINUTE),
        0,
        "still above: no second alert"
    );
    assert_eq!(s.evaluate(t0 + 2 * MINUTE + 1), 0, "not due again yet");

    // 42 of 700 = 6 %: under the threshold, not under the recovery level. Without
    // hysteresis this would recover (and fire again at the next wobble); it stays firing.
    s.mail("c", "example.com", 600, 0, t0 - 8 * MINUTE);
    assert_eq!(s.evaluate(t0 + 3 * MINUTE), 0);
    assert_eq!(s.alerts("recovered"), 0);
    let overview = s.owner.get("/");
    assert!(
        overview.body.contains("id=\"alerts-firing\""),
        "{}",
        overview.body
    );

    // 42 of 800 = 5.25 %: below 6 %, it recovers, once.
    s.mail("d", "example.com", 100, 0, t0 - 7 * MINUTE);
    assert_eq!(s.evaluate(t0 + 4 * MINUTE), 1);
    assert_eq!(s.alerts("recovered"), 1);
    assert_eq!(s.evaluate(t0 + 5 * MINUTE), 0);
    assert_eq!((s.alerts("fired"), s.alerts("recovered")), (1, 1));

    // The window moves on: the mail is older than 30 minutes, nothing is decided.
    assert_eq!(s.evaluate(t0 + 40 * MINUTE), 0);

    // The overview and the alerts page list both, newest first, for owners and members.
    let overview = s.owner.get("/");
    assert_eq!(overview.status, 200);
    let fired = overview
        .body
        .find("data-kind=\"fired\"")
        .expect("fired alert on the overview");
    let recovered = overview
        .body
        .find("data-kind=\"recovered\"")
        .expect("recovered alert on the overview");
    assert!(recovered < fired, "newest first");
    assert!(!overview.body.contains("id=\"alerts-firing\""));
    assert!(overview.body.contains("42 %"), "the rate it fired at");
    let mut member = s.app.client();
    member.login("member@acme.test", "member-password");
    let page = member.get("/alerts");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-kind=\"fired\""));
    assert!(
        !page.body.contains("webhook-secret-value"),
        "members never see the secret"
    );
    // Members cannot change rules or targets; a form without a CSRF token is refused too.
    let token = member.token();
    let r = member.post_form(
        "/alerts/rules",
        &[
            ("metric", "invalid_rate"),
            ("threshold", "1"),
            ("window_minutes", "30"),
            ("min_requests", "1"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(r.status, 403);
    let r = s
        .owner
        .post_form("/alerts/targets", &[("webhook_url", "https://x.example/")]);
    assert_eq!(r.status, 403, "no CSRF token");
});

both_backends!(bad_rules_and_targets_are_refused_with_a_message, |db| {
    let mut s = setup(db, false, None);
    let token = s.owner.token();
    let r = s.owner.post_form(
        "/alerts/rules",
        &[
            ("metric", "invalid_rate"),
            ("provider", "163.com"),
            ("threshold", "12.5"),
            ("recover", "20"),
            ("window_minutes", "30"),
            ("min_requests", "10"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("data-field=\"recover\""), "{}", r.body);
    assert!(r.body.contains("value=\"12.5\""), "what was typed stays");
    let rules = s.app.count("SELECT COUNT(*) AS n FROM alert_rules");
    assert_eq!(rules, 6, "nothing saved");
    for url in [
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
    ] {
        let r = s.owner.post_form(
            "/alerts/targets",
            &[("webhook_url", url), ("emails", ""), ("csrf_token", &token)],
        );
        assert_eq!(r.status, 400, "{url}");
        assert!(r.body.contains("data-field=\"webhook_url\""), "{url}");
    }
    let r = s.owner.post_form(
        "/alerts/targets",
        &[
            ("webhook_url", ""),
            ("emails", "ops@acme.test, nope"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("data-field=\"emails\""));
    assert_eq!(
        s.app
            .count("SELECT COUNT(*) AS n FROM alert_targets WHERE webhook_url IS NOT NULL"),
        0
    );
});

both_backends!(two_evaluators_never_fire_twice, |db| {
    let mut s = setup(db, false, None);
    s.add_rule(INVALID_10_PERCENT);
    let t0 = now_ms() + 1;
    s.mail("a", "example.com", 100, 30, t0 - 5 * MINUTE);
    // A second server: a state of its own over the same database.
    let other = mailtrail::AppState::open(s.app.settings.clone()).expect("second server");
    let pools = [s.app.pool.clone(), other.pool.clone()];
    for round in 0..4 {
        let now = t0 + round * MINUTE;
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let pool = pools[i % 2].clone();
                let settings = s.app.settings.alerts.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let mut conn = pool.get().unwrap();
                    barrier.wait();
                    evaluate_due(&mut conn, &settings, now).unwrap()
                })
            })
            .collect();
        let fired: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(fired, usize::from(round == 0), "round {round}");
    }
    assert_eq!(s.alerts("fired"), 1);
    // A lease taken by an evaluator that died is taken over once it runs out, and the
    // compare-and-set still records one crossing only.
    s.mail("b", "example.com", 1000, 0, t0 - 4 * MINUTE);
    let late = t0 + 10 * MINUTE;
    let dead = mailtrail::store::alerts::claim_rule(&mut s.app.conn(), late, 60_000, "dead")
        .unwrap()
        .expect("a due rule");
    assert_eq!(s.evaluate(late), 0, "held by the dead evaluator");
    assert_eq!(s.evaluate(late + 61_000), 1, "taken over after its lease");
    let _ = dead;
    assert_eq!((s.alerts("fired"), s.alerts("recovered")), (1, 1));
});

/// One HTTP request as the receiver read it.
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// A webhook receiver on a port of its own: answers each request with the next status of
/// `answers` and hands what it read to the test.
fn receiver(answers: Vec<u16>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/hooks/mailtrail?token=abc",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (stream, status) in listener.incoming().zip(answers) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let _ = tx.send(Received { headers, body });
        }
    });
    (url, rx)
}

fn secret_on_page(page: &str) -> String {
    let start = page
        .find("id=\"webhook-secret-value\">")
        .expect("secret shown to the owner")
        + "id=\"webhook-secret-value\">".len();
    page[start..start + page[start..].find('<').unwrap()].to_string()
}

both_backends!(a_signed_webhook_fails_once_and_is_retried, |db| {
    let mut s = setup(db, true, None);
    let (url, received) = receiver(vec![500, 200]);
    let token = s.owner.token();
    let r = s.owner.post_form(
        "/alerts/targets",
        &[
            ("webhook_url", &url),
            ("emails", ""),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let secret = secret_on_page(&s.owner.get("/alerts").body);
    assert!(secret.starts_with("whsec_"));
    s.add_rule(INVALID_10_PERCENT);
    let t0 = now_ms();
    s.mail("a", "example.com", 100, 25, t0 - 5 * MINUTE);
    assert_eq!(s.evaluate(t0), 1);

    // The first attempt meets a 500.
    assert_eq!(s.deliver(t0), 1);
    let first = received.recv().unwrap();
    assert_eq!(s.deliver(t0 + 1_000), 0, "backing off");
    // The retry, after the backoff, succeeds.
    assert_eq!(s.deliver(t0 + 31_000), 1);
    let second = received.recv().unwrap();
    assert_eq!(s.deliver(t0 + 3_600_000), 0, "delivered: nothing left");

    for got in [&first, &second] {
        // The documented signature: v1= hex(HMAC-SHA256(secret, timestamp "." body)).
        let timestamp = got.header("X-Mailtrail-Timestamp");
        assert!(timestamp.parse::<i64>().unwrap() > 1_600_000_000);
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&got.body);
        let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(got.header("X-Mailtrail-Signature"), expected);
        assert_eq!(got.header("Content-Type"), "application/json");
    }
    assert_eq!(first.body, second.body, "a retry sends the same body");
    assert_eq!(
        first.header("X-Mailtrail-Delivery"),
        second.header("X-Mailtrail-Delivery")
    );
    let body: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(body["event"], "alert.fired");
    assert_eq!(body["account"], "acme");
    assert_eq!(body["alert"]["requests"], 100);
    assert_eq!(body["alert"]["matched"], 25);
    assert_eq!(body["alert"]["value_percent"], 25.0);
    assert_eq!(body["rule"]["metric"], "invalid_rate");
    assert_eq!(body["rule"]["threshold_percent"], 10.0);

    // The delivery log in the console: one notification, delivered, after two attempts.
    let page = s.owner.get("/alerts");
    assert!(
        page.body.contains("data-state=\"succeeded\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-ok=\"no\""));
    assert!(page.body.contains("data-ok=\"yes\""));
    assert!(page.body.contains("HTTP 500"));
    let log = &page.body[page.body.find("id=\"alert-deliveries\"").unwrap()..];
    assert!(
        !log.contains("token=abc"),
        "a webhook's path and query stay out of the log"
    );
    assert_eq!(
        s.app
            .count("SELECT COUNT(*) AS n FROM alert_delivery_attempts"),
        2
    );
});

both_backends!(a_webhook_to_a_private_address_is_refused_by_default, |db| {
    let mut s = setup(db, false, None);
    let (url, received) = receiver(vec![200]);
    let token = s.owner.token();
    let r = s.owner.post_form(
        "/alerts/targets",
        &[
            ("webhook_url", &url),
            ("emails", ""),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(r.status, 303);
    s.add_rule(INVALID_10_PERCENT);
    let t0 = now_ms();
    s.mail("a", "example.com", 100, 25, t0 - 5 * MINUTE);
    assert_eq!(s.evaluate(t0), 1);
    assert_eq!(s.deliver(t0), 1);
    assert!(received.try_recv().is_err(), "nothing reached the receiver");
    let page = s.owner.get("/alerts");
    assert!(page.body.contains("private address"), "{}", page.body);
    assert!(page.body.contains("data-state=\"queued\""));
});

/// A minimal SMTP server: accepts one message and hands its DATA to the test.
fn smtp_sink() -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        stream.write_all(b"220 sink ESMTP\r\n").unwrap();
        let (mut rcpt, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                stream.write_all(b"250-sink\r\n250 8BITMIME\r\n").unwrap();
            } else if upper.starts_with("RCPT TO") {
                rcpt = line.trim().to_string();
                stream.write_all(b"250 OK\r\n").unwrap();
            } else if upper.starts_with("DATA") {
                stream.write_all(b"354 go on\r\n").unwrap();
                loop {
                    let mut l = String::new();
                    reader.read_line(&mut l).unwrap();
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                stream.write_all(b"250 queued\r\n").unwrap();
            } else if upper.starts_with("QUIT") {
                stream.write_all(b"221 bye\r\n").unwrap();
                break;
            } else {
                stream.write_all(b"250 OK\r\n").unwrap();
            }
        }
        let _ = tx.send((rcpt, data));
    });
    (url, rx)
}

both_backends!(an_alert_is_mailed_through_smtp, |db| {
    let (smtp, mails) = smtp_sink();
    let mut s = setup(db, false, Some(smtp));
    let token = s.owner.token();
    let r = s.owner.post_form(
        "/alerts/targets",
        &[
            ("webhook_url", ""),
            ("emails", "oncall@acme.test"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(r.status, 303);
    s.add_rule(INVALID_10_PERCENT);
    let t0 = now_ms();
    s.mail("a", "example.com", 100, 25, t0 - 5 * MINUTE);
    assert_eq!(s.evaluate(t0), 1);
    assert_eq!(s.deliver(t0), 1);
    let (rcpt, data) = mails.recv().unwrap();
    assert!(rcpt.contains("oncall@acme.test"), "{rcpt}");
    assert!(data.contains("alerts@mailtrail.test"), "{data}");
    assert!(data.contains("Subject:"), "{data}");
    let page = s.owner.get("/alerts");
    assert!(
        page.body.contains("data-state=\"succeeded\""),
        "{}",
        page.body
    );
});

both_backends!(
    a_rule_reads_a_typed_domain_with_the_accounts_own_mappings,
    |db| {
        let mut s = setup(db, false, None);
        let t0 = now_ms();
        // The owner files bigcorp.cn under a provider of the account's own.
        let token = s.owner.token();
        let mapped = s.owner.post_form(
            "/providers/domains",
            &[
                ("csrf_token", &token),
                ("domain", "bigcorp.cn"),
                ("provider", "bigcorp"),
            ],
        );
        assert_eq!(mapped.status, 200, "{}", mapped.body);
        let mut rule = INVALID_10_PERCENT.to_vec();
        rule[1] = ("provider", "BigCorp.cn");
        s.add_rule(&rule);
        let mut listed = INVALID_10_PERCENT.to_vec();
        listed[1] = ("provider", "126.com");
        s.add_rule(&listed);
        let providers = |s: &Setup, p: &str| {
            s.app.count(&format!(
                "SELECT COUNT(*) AS n FROM alert_rules WHERE account_id = {} AND provider = '{p}' \
                 AND enabled = TRUE",
                s.account_id
            ))
        };
        assert_eq!(providers(&s, "bigcorp"), 1, "the account's mapping wins");
        assert_eq!(providers(&s, "bigcorp.cn"), 0);
        assert_eq!(
            providers(&s, "netease"),
            1,
            "a listed domain is its provider's"
        );
        // The rule counts the mapped domain's mail: 40 of 100 invalid fires it.
        s.mail("big", "bigcorp.cn", 100, 40, t0 - 5 * MINUTE);
        assert_eq!(s.evaluate(t0 + MINUTE), 1);
        assert_eq!(s.alerts("fired"), 1);
    }
);
