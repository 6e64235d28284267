//! The page shell and the overview: numbers from the data, both languages, headers, errors.

mod common;

use common::TestApp;
use mailtrail::domain::Role;

fn signed_in(db: common::TestDb, messages: u64) -> (TestApp, common::Client) {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "pw");
    if messages > 0 {
        app.generate(&account, messages, 10);
    }
    let mut client = app.client();
    assert_eq!(client.login("owner@acme.test", "pw").status, 303);
    (app, client)
}

/// The number in `data-count` of the first row with `data-status="status"` after `from`.
fn count_after(body: &str, from: &str, status: &str) -> i64 {
    let start = body.find(from).expect("section present");
    let marker = format!("data-status=\"{status}\" data-count=\"");
    let at = body[start..].find(&marker).expect("status row") + start + marker.len();
    let end = body[at..].find('"').unwrap() + at;
    body[at..end].parse().unwrap()
}

both_backends!(overview_counts_match_the_messages, |db| {
    let (app, mut client) = signed_in(db, 600);
    let page = client.get("/");
    assert_eq!(page.status, 200);
    // The 7-day window of the page is cut at midnight in Asia/Shanghai; count the same rows.
    let zone = chrono_tz::Asia::Shanghai;
    use chrono::{Duration, TimeZone, Utc};
    let today = Utc::now().with_timezone(&zone).date_naive();
    let start = zone
        .from_local_datetime(&(today - Duration::days(6)).and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis();
    for (code, n) in [
        ("requesting", 0),
        ("delivered", 1),
        ("soft_bounce", 2),
        ("invalid", 3),
    ] {
        let expected = app.count(&format!(
            "SELECT COUNT(*) AS n FROM messages WHERE status = {n} AND requested_at >= {start}"
        ));
        assert_eq!(
            count_after(&page.body, "id=\"period-2\"", code),
            expected,
            "7-day count of {code}"
        );
    }
    let total_week = app.count(&format!(
        "SELECT COUNT(*) AS n FROM messages WHERE requested_at >= {start}"
    ));
    assert!(total_week > 0);
    assert!(page.body.contains(&format!("data-total=\"{total_week}\"")));
    assert!(
        page.body.contains("<svg"),
        "the chart is drawn on the server"
    );
    assert!(page.body.contains("<rect"));
    assert!(
        !page.body.contains("<script"),
        "the page needs no JavaScript"
    );
    // Every latest message links to its page.
    let latest = app.count("SELECT MAX(id) AS n FROM messages WHERE requested_at = (SELECT MAX(requested_at) FROM messages)");
    assert!(page.body.contains(&format!("href=\"/status/{latest}\"")));
    let message = client.get(&format!("/status/{latest}"));
    assert_eq!(message.status, 200);
    assert!(
        message.body.contains("data-kind=\"request\""),
        "the log details start with the request"
    );
});

both_backends!(an_empty_account_says_what_to_do, |db| {
    let (_app, mut client) = signed_in(db, 0);
    client.accept_language = Some("en-US,en;q=0.9".into());
    let page = client.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No messages yet"));
    assert!(page.body.contains("data-total=\"0\""));
});

both_backends!(language_follows_accept_language_then_the_switch, |db| {
    let (_app, mut client) = signed_in(db, 20);
    client.accept_language = Some("en-GB,en;q=0.9,zh-CN;q=0.5".into());
    let en = client.get("/");
    assert!(en.body.contains("<html lang=\"en\""));
    assert!(en.body.contains("Last 7 days"));
    assert!(en.body.contains("Delivered"));

    client.accept_language = Some("zh-CN,zh;q=0.9".into());
    let zh = client.get("/");
    assert!(zh.body.contains("<html lang=\"zh-CN\""));
    assert!(zh.body.contains("最近 7 天"));
    assert!(zh.body.contains("送达"));

    // The switch is remembered over the browser's preference.
    let switched = client.get("/lang/en?next=/");
    assert_eq!(switched.status, 303);
    assert_eq!(switched.location(), "/");
    let remembered = client.get("/");
    assert!(remembered.body.contains("<html lang=\"en\""));
    assert_eq!(
        client
            .get("/lang/zh-CN?next=https://evil.example/")
            .location(),
        "/"
    );
});

both_backends!(security_headers_and_friendly_errors, |db| {
    let (_app, mut client) = signed_in(db, 0);
    client.accept_language = Some("en".into());
    let page = client.get("/");
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));

    let missing = client.get("/no/such/page");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Not found"));
    assert!(
        missing.body.contains("/static/app.css"),
        "inside the layout"
    );
    assert_eq!(missing.header("x-frame-options"), Some("DENY"));

    let css = client.get("/static/app.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(client.get("/static/../Cargo.toml").status, 404);
});

both_backends!(healthz_answers_when_the_database_does, |db| {
    let app = TestApp::start(db);
    let res = app.client().get("/healthz");
    assert_eq!(res.status, 200);
    assert_eq!(res.body, "ok");
});
