//! The suppression lists as JSON (`/api/v1/suppressions/…`) and their effect on requests
//! posted through the events API: blacklist a domain, a request to it becomes
//! invalid/blacklisted; remove the domain, the next request is accepted.

mod common;

use common::{Client, TestApp};
use mailtrail::domain::MailType;
use mailtrail::store::{accounts, AccountScope};

fn key_for(app: &TestApp, account: &str) -> String {
    let account = app.account(account);
    accounts::create_api_user(
        &mut app.conn(),
        &AccountScope::new(account.id),
        "notify",
        MailType::Trigger,
    )
    .unwrap()
    .1
}

fn call(
    client: &mut Client,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&str>,
) -> common::Resp {
    let auth = format!("Bearer {key}");
    match body {
        Some(b) => client.post_raw(
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            b.as_bytes(),
        ),
        None => client.send(method, path, &[("Authorization", &auth)]),
    }
}

fn request(client: &mut Client, key: &str, email_id: &str, recipient: &str) -> serde_json::Value {
    let body = serde_json::json!([{"event": "request", "email_id": email_id, "recipient": recipient, "timestamp": chrono::Utc::now().to_rfc3339()}]).to_string();
    let res = call(client, "POST", "/api/v1/events", key, Some(&body));
    assert_eq!(res.status, 200, "{}", res.body);
    serde_json::from_str(&res.body).unwrap()
}

fn status_of(app: &TestApp, email_id: &str) -> (i64, i64) {
    (
        app.count(&format!("SELECT CAST(status AS BIGINT) AS n FROM messages WHERE email_id = '{email_id}'")),
        app.count(&format!("SELECT CAST(COALESCE(reason, 0) AS BIGINT) AS n FROM messages WHERE email_id = '{email_id}'")),
    )
}

both_backends!(
    a_blacklisted_domain_suppresses_requests_until_removed,
    |db| {
        let app = TestApp::start(db);
        let key = key_for(&app, "acme");
        let mut client = app.client();
        let added = call(
            &mut client,
            "POST",
            "/api/v1/suppressions/blacklist",
            &key,
            Some(r#"{"address": "@Blocked.test"}"#),
        );
        assert_eq!(added.status, 201, "{}", added.body);
        assert!(added.body.contains("\"address\":\"@blocked.test\""));

        request(&mut client, &key, "m1", "alice@blocked.test");
        assert_eq!(
            status_of(&app, "m1"),
            (3, 1),
            "invalid / blacklisted at once"
        );

        let listed = call(
            &mut client,
            "GET",
            "/api/v1/suppressions/blacklist",
            &key,
            None,
        );
        assert_eq!(listed.status, 200);
        let json: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
        assert_eq!(json["entries"].as_array().unwrap().len(), 1);

        let deleted = call(
            &mut client,
            "DELETE",
            "/api/v1/suppressions/blacklist?address=@blocked.test",
            &key,
            None,
        );
        assert_eq!(deleted.status, 200);
        assert!(deleted.body.contains("\"deleted\":1"));
        request(&mut client, &key, "m2", "alice@blocked.test");
        assert_eq!(status_of(&app, "m2"), (0, 0), "accepted: requesting");
    }
);

both_backends!(
    unsubscribes_through_the_api_suppress_as_unsubscribed,
    |db| {
        let app = TestApp::start(db);
        let key = key_for(&app, "acme");
        let mut client = app.client();
        let bad = call(
            &mut client,
            "POST",
            "/api/v1/suppressions/unsubscribes",
            &key,
            Some(r#"{"address": "bob@example.com", "reason": "meh"}"#),
        );
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("\"error\""));
        let ok = call(
            &mut client,
            "POST",
            "/api/v1/suppressions/unsubscribes",
            &key,
            Some(r#"{"address": "Bob@Example.com", "reason": "not_subscribed"}"#),
        );
        assert_eq!(ok.status, 201);
        request(&mut client, &key, "m3", "bob@example.com");
        assert_eq!(status_of(&app, "m3"), (3, 2), "invalid / unsubscribed");
        let not_json = call(
            &mut client,
            "POST",
            "/api/v1/suppressions/bounces",
            &key,
            Some("{nope"),
        );
        assert_eq!(not_json.status, 400);
    }
);

both_backends!(keys_are_required_and_scoped_to_their_account, |db| {
    let app = TestApp::start(db);
    let key_a = key_for(&app, "alpha");
    let key_b = key_for(&app, "beta");
    let mut client = app.client();
    call(
        &mut client,
        "POST",
        "/api/v1/suppressions/bounces",
        &key_a,
        Some(r#"{"address": "x@example.com"}"#),
    );
    let theirs = call(
        &mut client,
        "GET",
        "/api/v1/suppressions/bounces?address=x@example.com",
        &key_b,
        None,
    );
    assert_eq!(theirs.status, 200);
    assert!(theirs.body.contains("\"entries\":[]"));
    let gone = call(
        &mut client,
        "DELETE",
        "/api/v1/suppressions/bounces?address=x@example.com",
        &key_b,
        None,
    );
    assert!(gone.body.contains("\"deleted\":0"));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM bounces"), 1);
    let anonymous = call(
        &mut client,
        "GET",
        "/api/v1/suppressions/bounces",
        "wrong-key",
        None,
    );
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.body.contains("\"error\""));
});
