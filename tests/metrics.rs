//! `GET /metrics` on both backends: the Prometheus text carries the HTTP, ingestion, export
//! and pool figures, and answers only loopback, allowed addresses and the bearer token.
//!
//! The counters are the process's, shared by the tests that run beside this one: tests read
//! a value before and after and check that it grew by at least what they did.

mod common;

use common::{Client, TestApp};
use mailtrail::domain::{now_ms, MailType, Role};
use mailtrail::store::{accounts, AccountScope};

/// The value of the sample `name{labels}` (labels exactly as rendered), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().unwrap())
        })
        .unwrap_or(0.0)
}

fn scrape(client: &mut Client) -> String {
    let r = client.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type").unwrap().starts_with("text/plain"),
        "{:?}",
        r.headers
    );
    r.body
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

both_backends!(metrics_count_requests_events_exports_and_the_pool, |db| {
    let mut settings = common::settings_for(&db);
    // No worker: a job posted stays in the queue, where the scrape must see it.
    settings.export_workers = 0;
    let app = TestApp::start_with(db, settings);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "pw");
    let (_, key) = accounts::create_api_user(
        &mut app.conn(),
        &AccountScope::new(account.id),
        "notify",
        MailType::Trigger,
    )
    .unwrap();
    let mut client = app.client();
    let before = scrape(&mut client);

    let t = now_ms() - 3_600_000;
    let events = serde_json::json!([
        {"event": "request", "email_id": "m1", "recipient": "a@example.com", "timestamp": rfc3339(t)},
        {"event": "request", "email_id": "m2", "recipient": "b@example.com", "timestamp": rfc3339(t)},
        {"event": "deliver", "email_id": "m1", "timestamp": rfc3339(t + 1_000)},
        {"event": "deliver", "email_id": "m1", "event_id": "x", "timestamp": rfc3339(t + 2_000)},
        {"event": "deliver", "email_id": "m1", "event_id": "x", "timestamp": rfc3339(t + 2_000)},
        {"event": "deliver", "email_id": "later", "timestamp": rfc3339(t + 1_000)},
    ]);
    let auth = format!("Bearer {key}");
    let r = client.post_raw(
        "/api/v1/events",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        events.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(client.get("/status/12345").status, 303, "not signed in");
    assert_eq!(client.login("owner@acme.test", "pw").status, 303);
    let token = client.get("/status").csrf_token();
    let today = chrono::Utc::now().date_naive().to_string();
    let r = client.post_form(
        "/exports",
        &[
            ("csrf_token", &token),
            ("kind", "status"),
            ("format", "csv"),
            ("from", &today),
            ("to", &today),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);

    let after = scrape(&mut client);
    let grew = |series: &str| sample(&after, series) - sample(&before, series);
    let events = |kind: &str, outcome: &str| {
        format!("mailtrail_events_ingested_total{{kind=\"{kind}\",outcome=\"{outcome}\"}}")
    };
    assert!(grew(&events("request", "applied")) >= 2.0, "{after}");
    assert!(grew(&events("deliver", "applied")) >= 2.0, "{after}");
    assert!(grew(&events("deliver", "duplicate")) >= 1.0, "{after}");
    assert!(grew(&events("deliver", "waiting")) >= 1.0, "{after}");
    assert!(grew("mailtrail_ingest_batch_duration_seconds_count") >= 1.0);
    assert!(grew("mailtrail_ingest_batch_events_count") >= 1.0);
    // Requests by route pattern, never by path.
    assert!(
        grew("mailtrail_http_requests_total{method=\"POST\",route=\"/api/v1/events\",status=\"200\"}")
            >= 1.0,
        "{after}"
    );
    assert!(
        grew("mailtrail_http_requests_total{method=\"GET\",route=\"/status/{id}\",status=\"303\"}")
            >= 1.0,
        "{after}"
    );
    assert!(!after.contains("/status/12345"));
    assert!(
        grew("mailtrail_http_request_duration_seconds_count{method=\"GET\",route=\"/metrics\"}")
            >= 1.0
    );
    // Read from this server's own database and pool at scrape time.
    assert_eq!(
        sample(&after, "mailtrail_export_queue{state=\"queued\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "mailtrail_export_queue{state=\"running\"}"),
        0.0
    );
    // Read before the scrape takes its own connection: the test app's idle connections.
    let pool = sample(&after, "mailtrail_db_pool_connections{state=\"in_use\"}")
        + sample(&after, "mailtrail_db_pool_connections{state=\"idle\"}");
    assert!(pool >= 1.0, "{after}");
    assert!(after.contains("# TYPE mailtrail_export_rows_total counter"));
    assert!(after.contains("# TYPE mailtrail_export_jobs_running gauge"));
});

both_backends!(
    metrics_answer_loopback_allowed_addresses_and_the_token,
    |db| {
        let mut settings = common::settings_for(&db);
        // The test client is on loopback; a trusted proxy on loopback names other clients.
        settings.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        settings.metrics_allow = vec!["198.51.100.7".parse().unwrap()];
        settings.metrics_token = Some("s3cret-token".into());
        let app = TestApp::start_with(db, settings);
        let mut client = app.client();
        let as_client = |client: &mut Client, ip: &str, auth: Option<&str>| {
            let mut headers = vec![("X-Forwarded-For", ip)];
            if let Some(auth) = auth {
                headers.push(("Authorization", auth));
            }
            client.send("GET", "/metrics", &headers)
        };
        // A loopback client (through the proxy, or straight) is answered.
        assert_eq!(as_client(&mut client, "127.0.0.1", None).status, 200);
        assert_eq!(
            client.get("/metrics").status,
            403,
            "the proxy named no client"
        );
        // Someone else is not, whatever the proxy's own address.
        let refused = as_client(&mut client, "203.0.113.9", None);
        assert_eq!(refused.status, 403);
        assert!(refused.body.contains("MAILTRAIL_METRICS_ALLOW"));
        assert!(!refused.body.contains("mailtrail_http_requests_total"));
        let wrong = as_client(&mut client, "203.0.113.9", Some("Bearer s3cret-tokeN"));
        assert_eq!(wrong.status, 403);
        // An allowed address, or the token from anywhere.
        assert_eq!(as_client(&mut client, "198.51.100.7", None).status, 200);
        let with_token = as_client(&mut client, "203.0.113.9", Some("Bearer s3cret-token"));
        assert_eq!(with_token.status, 200);
        assert!(with_token.body.contains("mailtrail_http_requests_total"));
    }
);
