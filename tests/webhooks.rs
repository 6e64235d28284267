//! SendCloud's webhook (`POST /webhooks/sendcloud`) through real HTTP on both backends.

mod common;

use common::{Client, Resp, TestApp};
use hmac::{Hmac, Mac};
use mailtrail::domain::{now_ms, MailType};
use mailtrail::store::{accounts, AccountScope};
use sha2::Sha256;

const APP_KEY: &str = "sendcloud-app-key-of-acme";

fn setup(db: common::TestDb) -> (TestApp, Client) {
    let app = TestApp::start(db);
    let account = app.account("acme");
    accounts::create_api_user(
        &mut app.conn(),
        &AccountScope::new(account.id),
        "notify",
        MailType::Batch,
    )
    .unwrap();
    app.count(&format!(
        "UPDATE accounts SET webhook_app_key = '{APP_KEY}' WHERE id = {} RETURNING CAST(id AS BIGINT) AS n",
        account.id
    ));
    let client = app.client();
    (app, client)
}

fn sign(key: &str, timestamp: &str, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A signed form post of `fields` with a fresh token (or the given one).
fn post_form(client: &mut Client, path: &str, fields: &[(&str, &str)], token: &str) -> Resp {
    let timestamp = now_ms().to_string();
    let signature = sign(APP_KEY, &timestamp, token);
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.extend([
        ("timestamp", timestamp.as_str()),
        ("token", token),
        ("signature", signature.as_str()),
    ]);
    client.post_form(path, &all)
}

fn status_of(app: &TestApp, email_id: &str) -> (i64, i64) {
    let q = |c: &str| {
        app.count(&format!(
            "SELECT CAST(COALESCE({c}, -1) AS BIGINT) AS n FROM messages WHERE email_id = '{email_id}'"
        ))
    };
    (q("status"), q("reason"))
}

both_backends!(signed_posts_apply_sendcloud_events, |db| {
    let (app, mut client) = setup(db);
    // One request, two recipients: one message per emailId.
    let r = post_form(
        &mut client,
        "/webhooks/sendcloud",
        &[
            ("event", "request"),
            ("apiUser", "notify"),
            ("category", "notify"),
            ("emailIds", "m1$a@example.com;m2$b@example.com"),
            ("recipientArray", "[\"a@example.com\",\"b@example.com\"]"),
            ("messageId", "m"),
        ],
        &"t".repeat(50),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM messages WHERE api_user = 'notify' AND mail_type = 2"),
        2
    );

    // The newer alias, as JSON.
    let timestamp = (now_ms() / 1000).to_string();
    let token = "j".repeat(50);
    let body = serde_json::json!({"event": "delivered", "apiUser": "notify", "emailId": "m1$a@example.com",
        "recipient": "a@example.com", "timestamp": timestamp, "token": token,
        "signature": sign(APP_KEY, &timestamp, &token)});
    let r = client.post_raw(
        "/webhooks/sendcloud",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_of(&app, "m1$a@example.com"), (1, -1));

    // subStat codes carry the reason.
    let r = post_form(
        &mut client,
        "/webhooks/sendcloud?account=acme",
        &[
            ("event", "invalid"),
            ("apiUser", "notify"),
            ("emailId", "m2$b@example.com"),
            ("recipient", "b@example.com"),
            ("subStat", "406"),
            ("subStatDesc", "550 user unknown"),
        ],
        &"u".repeat(50),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_of(&app, "m2$b@example.com"), (3, 6));
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM bounces WHERE address = 'b@example.com'"),
        1
    );

    // An event we do not know is acknowledged.
    let r = post_form(
        &mut client,
        "/webhooks/sendcloud",
        &[("event", "route"), ("apiUser", "notify")],
        &"v".repeat(50),
    );
    assert_eq!(r.status, 200);
    assert!(r.body.contains("ignored"));
});

both_backends!(bad_signatures_and_replays_are_not_applied, |db| {
    let (app, mut client) = setup(db);
    let request = [
        ("event", "request"),
        ("apiUser", "notify"),
        ("emailId", "r1$a@example.com"),
        ("recipient", "a@example.com"),
    ];
    let mut forged = request.to_vec();
    forged.extend([
        ("timestamp", "1700000000000"),
        ("token", "abc"),
        ("signature", "00ff"),
    ]);
    let r = client.post_form("/webhooks/sendcloud", &forged);
    assert_eq!(r.status, 403);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM messages"), 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM webhook_tokens"), 0);

    let token = "k".repeat(50);
    assert_eq!(
        post_form(&mut client, "/webhooks/sendcloud", &request, &token).status,
        200
    );
    let spam = [
        ("event", "spam-report"),
        ("apiUser", "notify"),
        ("emailId", "r1$a@example.com"),
        ("recipient", "a@example.com"),
    ];
    let spam_token = "s".repeat(50);
    assert_eq!(
        post_form(&mut client, "/webhooks/sendcloud", &spam, &spam_token).status,
        200
    );
    let events = app.count("SELECT COUNT(*) AS n FROM message_events");
    // The same posts again within 24 h: acknowledged, not applied twice.
    for (fields, token) in [(&request[..], &token), (&spam[..], &spam_token)] {
        let r = post_form(&mut client, "/webhooks/sendcloud", fields, token);
        assert_eq!(r.status, 200);
        assert!(r.body.contains("\"replayed\":true"), "{}", r.body);
    }
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM message_events"),
        events
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM messages"), 1);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM spam_reports WHERE address = 'a@example.com'"),
        1
    );
});

both_backends!(the_account_is_found_by_name_or_unique_api_user, |db| {
    let (app, mut client) = setup(db);
    let rival = app.account("rival");
    accounts::create_api_user(
        &mut app.conn(),
        &AccountScope::new(rival.id),
        "notify",
        MailType::Trigger,
    )
    .unwrap();
    let fields = [
        ("event", "request"),
        ("apiUser", "notify"),
        ("emailId", "a1$a@example.com"),
        ("recipient", "a@example.com"),
    ];
    let r = post_form(&mut client, "/webhooks/sendcloud", &fields, &"a".repeat(50));
    assert_eq!(r.status, 400, "ambiguous apiUser: {}", r.body);
    assert!(r.body.contains("?account="));
    let r = post_form(
        &mut client,
        "/webhooks/sendcloud?account=acme",
        &fields,
        &"b".repeat(50),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The rival account has no app key: its posts can never be verified.
    let r = post_form(
        &mut client,
        "/webhooks/sendcloud?account=rival",
        &fields,
        &"c".repeat(50),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM messages WHERE account_id = {}",
            rival.id
        )),
        0
    );
});
