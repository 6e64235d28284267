//! Other ESPs' webhooks through real HTTP on both backends: payloads as the ESPs document them
//! (Mailgun's webhooks, SendGrid's Event Webhook, Postmark's webhooks), signed with keys made
//! in the test; bad signatures, stale timestamps, replays and other accounts' keys refused.

mod common;

use base64::Engine;
use common::{Client, Resp, TestApp};
use hmac::{Hmac, Mac};
use mailtrail::domain::{now_ms, Role};
use mailtrail::store::feeds as store;
use mailtrail::store::AccountScope;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use sha2::Sha256;

const MAILGUN_KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";

/// A local address nothing listens on: where SNS's SubscribeURL is fetched from unless a test
/// serves it, so that no test reaches out to the internet.
fn offline() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn setup(db: common::TestDb) -> (TestApp, Client, i64) {
    setup_via(db, offline())
}

fn setup_via(db: common::TestDb, sns: String) -> (TestApp, Client, i64) {
    let mut settings = common::settings_for(&db);
    settings.sns_confirm_via = Some(sns);
    let app = TestApp::start_with(db, settings);
    let account = app.account("shop");
    app.account("other");
    let client = app.client();
    (app, client, account.id)
}

fn set_key(app: &TestApp, account_id: i64, feed: &str, key: &str) {
    store::set_secret(
        &mut app.conn(),
        &AccountScope::new(account_id),
        feed,
        key,
        now_ms(),
    )
    .unwrap();
}

fn state(app: &TestApp, email_id: &str) -> (i64, i64) {
    let q = |c: &str| {
        app.count(&format!(
            "SELECT CAST(COALESCE(MAX({c}), -1) AS BIGINT) AS n FROM messages WHERE email_id = '{email_id}'"
        ))
    };
    (q("status"), q("reason"))
}

fn messages(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) AS n FROM messages")
}

fn post_json(client: &mut Client, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    client.post_raw(path, &all, body.as_bytes())
}

// ---------------------------------------------------------------- Mailgun

fn mailgun_signed(key: &str, timestamp: &str, token: &str, event_data: Value) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    json!({
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event_data,
    })
    .to_string()
}

fn mailgun_message(id: &str, to: &str) -> Value {
    json!({
        "headers": {
            "to": format!("Alice <{to}>"),
            "message-id": id,
            "from": "Bob <bob@sandbox.mailgun.org>",
            "subject": "Test webhook"
        },
        "attachments": [],
        "size": 111
    })
}

/// The `delivered`, `failed` (temporary, then permanent) and `opened` events of Mailgun's
/// webhook documentation, for three messages.
fn mailgun_events() -> Vec<Value> {
    vec![
        json!({
            "id": "CPgfbmQMTCKtHW6uIWtuVe", "timestamp": 1521472262.908181, "log-level": "info",
            "event": "delivered",
            "delivery-status": {"tls": true, "mx-host": "smtp-in.example.com", "code": 250,
                "description": "", "session-seconds": 0.4331989288330078, "utf8": true,
                "attempt-no": 1, "message": "OK", "certificate-verified": true},
            "flags": {"is-routed": false, "is-authenticated": true, "is-system-test": false, "is-test-mode": false},
            "envelope": {"transport": "smtp", "sender": "bob@sandbox.mailgun.org",
                "sending-ip": "209.61.154.250", "targets": "alice@example.com"},
            "message": mailgun_message("20130503182626.18666.16540@sandbox.mailgun.org", "alice@example.com"),
            "recipient": "alice@example.com", "recipient-domain": "example.com",
            "campaigns": [], "tags": ["my_tag_1", "my_tag_2"], "user-variables": {"my_var_1": "Mailgun Variable #1"}
        }),
        json!({
            "id": "Fs7-5t81S2ufLW7OaG3Prg", "timestamp": 1521233123.501324, "log-level": "warn",
            "event": "failed", "severity": "temporary", "reason": "generic",
            "delivery-status": {"attempt-no": 1, "message": "4.2.2 The email account that you tried to reach is over quota. Please direct\n4.2.2 the recipient to review their storage.",
                "code": 452, "description": "", "mx-host": "smtp-in.example.org", "session-seconds": 1.2},
            "message": mailgun_message("20130503192659.13651.20287@sandbox.mailgun.org", "carol@example.org"),
            "recipient": "carol@example.org", "recipient-domain": "example.org",
            "tags": ["my_tag_1"]
        }),
        json!({
            "id": "G9Bn5sl1TC6nu79C8C0bwg", "timestamp": 1521233195.375624, "log-level": "error",
            "event": "failed", "severity": "permanent", "reason": "bounce",
            "delivery-status": {"attempt-no": 1, "message": "", "code": 550,
                "description": "5.1.1 The email account that you tried to reach does not exist.", "session-seconds": 0.8},
            "message": mailgun_message("20130503192659.13651.20288@sandbox.mailgun.org", "dave@example.net"),
            "recipient": "dave@example.net", "recipient-domain": "example.net", "tags": []
        }),
        json!({
            "id": "DACSsAdVSeGpLid7TN03WA", "timestamp": 1521472300.0, "log-level": "info",
            "event": "opened", "ip": "50.56.129.169", "geolocation": {"country": "US", "region": "CA", "city": "San Francisco"},
            "client-info": {"client-os": "Linux", "device-type": "desktop", "client-name": "Chrome",
                "client-type": "browser", "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/26.0.1410.43 Safari/537.31"},
            "message": mailgun_message("20130503182626.18666.16540@sandbox.mailgun.org", "alice@example.com"),
            "recipient": "alice@example.com", "recipient-domain": "example.com", "tags": ["my_tag_1", "my_tag_2"]
        }),
    ]
}

both_backends!(mailgun_signed_posts_map_onto_our_states, |db| {
    let (app, mut client, id) = setup(db);
    set_key(&app, id, "mailgun", MAILGUN_KEY);
    for (i, data) in mailgun_events().into_iter().enumerate() {
        let body = mailgun_signed(
            MAILGUN_KEY,
            &(now_ms() / 1000).to_string(),
            &format!("a8ce0edb2dd8301dcd7d3cb4b4fe6ef1bbc7e2cf6a9f2e6ab{i}"),
            data,
        );
        let r = post_json(&mut client, "/webhooks/mailgun?account=shop", &[], &body);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("\"ok\":true"), "{}", r.body);
    }
    let alice = "20130503182626.18666.16540@sandbox.mailgun.org$alice@example.com";
    assert_eq!(state(&app, alice), (1, -1), "delivered");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM tracking_events WHERE email_id = '{alice}'"
        )),
        1,
        "opened"
    );
    // Temporary failure: still requesting, the attempt on the log.
    let carol = "20130503192659.13651.20287@sandbox.mailgun.org$carol@example.org";
    assert_eq!(state(&app, carol), (0, -1));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM message_events WHERE email_id = '{carol}' AND kind = 'deferred' \
             AND attempt = 1 AND mx = 'smtp-in.example.org' AND smtp_reply LIKE '452 4.2.2%'"
        )),
        1
    );
    // Permanent: invalid, address not found.
    assert_eq!(
        state(
            &app,
            "20130503192659.13651.20288@sandbox.mailgun.org$dave@example.net"
        ),
        (3, 6)
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM messages WHERE api_user = 'mailgun' AND tags = 'my_tag_1,my_tag_2'"),
        1
    );
});

both_backends!(
    mailgun_refuses_bad_signatures_stale_timestamps_and_replays,
    |db| {
        let (app, mut client, id) = setup(db);
        set_key(&app, id, "mailgun", MAILGUN_KEY);
        let data = mailgun_events().remove(0);
        let now = (now_ms() / 1000).to_string();

        let forged = mailgun_signed("not-the-key", &now, "tok-1", data.clone());
        let r = post_json(&mut client, "/webhooks/mailgun?account=shop", &[], &forged);
        assert_eq!(r.status, 403, "{}", r.body);
        // Tampered: signed, then the event changed.
        let signed = mailgun_signed(MAILGUN_KEY, &now, "tok-2", data.clone());
        let tampered = signed.replace("\"tok-2\"", "\"tok-3\"");
        let r = post_json(
            &mut client,
            "/webhooks/mailgun?account=shop",
            &[],
            &tampered,
        );
        assert_eq!(r.status, 403);
        let stale = (now_ms() / 1000 - 3600).to_string();
        let old = mailgun_signed(MAILGUN_KEY, &stale, "tok-4", data.clone());
        let r = post_json(&mut client, "/webhooks/mailgun?account=shop", &[], &old);
        assert_eq!(r.status, 403);
        // Signed with shop's key, sent as another account's (which has none, then another key).
        let r = post_json(&mut client, "/webhooks/mailgun?account=other", &[], &signed);
        assert_eq!(r.status, 403);
        let other = app.count("SELECT CAST(id AS BIGINT) AS n FROM accounts WHERE name = 'other'");
        set_key(&app, other, "mailgun", "key-of-the-other-account");
        let r = post_json(&mut client, "/webhooks/mailgun?account=other", &[], &signed);
        assert_eq!(r.status, 403);
        assert_eq!(messages(&app), 0, "nothing stored");

        let r = post_json(&mut client, "/webhooks/mailgun?account=shop", &[], &signed);
        assert_eq!(r.status, 200, "{}", r.body);
        let r = post_json(&mut client, "/webhooks/mailgun?account=shop", &[], &signed);
        assert_eq!(r.status, 200);
        assert!(r.body.contains("replayed"), "{}", r.body);
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM message_events WHERE kind = 'deliver'"),
            1
        );
        let r = post_json(
            &mut client,
            "/webhooks/mailgun?account=shop",
            &[],
            "{not json",
        );
        assert_eq!(r.status, 400, "not JSON: a clear error");
    }
);

// ---------------------------------------------------------------- SendGrid

/// A P-256 key pair: the signing key, and the verification key as SendGrid shows it (base64
/// of the DER SubjectPublicKeyInfo).
fn sendgrid_keys() -> (SigningKey, String) {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
    der.extend_from_slice(point.as_bytes());
    (key, base64::engine::general_purpose::STANDARD.encode(der))
}

fn sendgrid_sign(key: &SigningKey, timestamp: &str, body: &str) -> String {
    let mut payload = timestamp.as_bytes().to_vec();
    payload.extend_from_slice(body.as_bytes());
    let signature: Signature = key.sign(&payload);
    base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
}

/// Events as SendGrid's Event Webhook reference shows them, one recipient per outcome.
fn sendgrid_batch() -> String {
    let m = |n: u32| {
        format!("14c5d75ce93.dfd.64b46{n}.filter0001.16648.5515E0B88.000000000000000000000")
    };
    let smtp = |n: u32| format!("<14c5d75ce93.dfd.64b46{n}@ismtpd-555>");
    json!([
        {"email": "a@example.com", "timestamp": 1513299569, "smtp-id": smtp(1), "event": "processed",
         "category": "cat facts", "sg_event_id": "rbtnWrG1DVDGGGFHFyun0A==", "sg_message_id": m(1)},
        {"email": "a@example.com", "timestamp": 1513299570, "smtp-id": smtp(1), "event": "delivered",
         "category": "cat facts", "sg_event_id": "rWVYmVk90MjZJ9iohOBa3w==", "sg_message_id": m(1), "response": "250 OK"},
        {"email": "a@example.com", "timestamp": 1513299580, "event": "open", "sg_machine_open": false,
         "category": "cat facts", "sg_event_id": "FOTFFO0ecsBE-zxFXfs6WA==", "sg_message_id": m(1),
         "useragent": "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)", "ip": "255.255.255.255"},
        {"email": "a@example.com", "timestamp": 1513299590, "event": "click", "category": "cat facts",
         "sg_event_id": "kCAi1KttyQdEKHhdC-nuEA==", "sg_message_id": m(1),
         "useragent": "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)",
         "ip": "255.255.255.255", "url": "http://www.sendgrid.com/"},
        {"email": "b@example.com", "timestamp": 1513299569, "smtp-id": smtp(2), "event": "deferred",
         "category": "cat facts", "sg_event_id": "t7LEShmowp86DTdUW8M-GQ==", "sg_message_id": m(2),
         "response": "400 try again later", "attempt": "5"},
        {"email": "c@example.com", "timestamp": 1513299569, "smtp-id": smtp(3), "event": "bounce",
         "category": "cat facts", "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==", "sg_message_id": m(3),
         "reason": "500 unknown recipient", "status": "5.0.0", "type": "bounce"},
        {"email": "d@example.com", "timestamp": 1513299569, "smtp-id": smtp(4), "event": "bounce",
         "category": "cat facts", "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPx==", "sg_message_id": m(4),
         "reason": "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to user complaints", "status": "4.7.0", "type": "blocked"},
        {"email": "e@example.com", "timestamp": 1513299569, "smtp-id": smtp(5), "event": "dropped",
         "category": "cat facts", "sg_event_id": "zmzJhfJgAfUSOW80yEbPyw==", "sg_message_id": m(5),
         "reason": "Bounced Address", "status": "5.0.0"},
        {"email": "a@example.com", "timestamp": 1513299600, "event": "spamreport",
         "sg_event_id": "37nvH5QBz858KGVYCM4uOA==", "sg_message_id": m(1)},
        {"email": "f@example.com", "timestamp": 1513299569, "event": "group_unsubscribe", "category": "cat facts",
         "sg_event_id": "ahSCB7xYcXFb-hEaawsPRw==", "sg_message_id": m(6),
         "useragent": "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)",
         "ip": "255.255.255.255", "url": "http://www.sendgrid.com/", "asm_group_id": 10}
    ])
    .to_string()
}

both_backends!(sendgrid_signed_batches_map_onto_our_states, |db| {
    let (app, mut client, id) = setup(db);
    let (key, public) = sendgrid_keys();
    set_key(&app, id, "sendgrid", &public);
    let body = sendgrid_batch();
    let ts = (now_ms() / 1000).to_string();
    let sig = sendgrid_sign(&key, &ts, &body);
    let headers = [
        ("X-Twilio-Email-Event-Webhook-Signature", sig.as_str()),
        ("X-Twilio-Email-Event-Webhook-Timestamp", ts.as_str()),
    ];
    let r = post_json(
        &mut client,
        "/webhooks/sendgrid?account=shop",
        &headers,
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"ok\":true"), "{}", r.body);
    let id = |n: u32, to: &str| format!("14c5d75ce93.dfd.64b46{n}${to}");
    assert_eq!(state(&app, &id(1, "a@example.com")), (1, -1));
    assert_eq!(
        state(&app, &id(2, "b@example.com")),
        (0, -1),
        "deferred: requesting"
    );
    assert_eq!(
        state(&app, &id(3, "c@example.com")),
        (3, 6),
        "bounce: invalid"
    );
    assert_eq!(
        state(&app, &id(4, "d@example.com")).0,
        2,
        "blocked: soft bounce"
    );
    assert_eq!(
        state(&app, &id(5, "e@example.com")),
        (3, 6),
        "dropped: bounced address"
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM message_events WHERE kind = 'deferred' AND attempt = 5"
        ),
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM tracking_events"), 2);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM spam_reports WHERE address = 'a@example.com'"),
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM unsubscribes WHERE address = 'f@example.com'"),
        1
    );

    // The same post again: refused as a replay, nothing applied twice.
    let r = post_json(
        &mut client,
        "/webhooks/sendgrid?account=shop",
        &headers,
        &body,
    );
    assert!(r.body.contains("replayed"), "{}", r.body);
    // A signature over another body, an old timestamp, another key: 403.
    let before = app.count("SELECT COUNT(*) AS n FROM message_events");
    let changed = body.replace("250 OK", "250 Ok");
    let r = post_json(
        &mut client,
        "/webhooks/sendgrid?account=shop",
        &headers,
        &changed,
    );
    assert_eq!(r.status, 403);
    let old = ((now_ms() / 1000) - 3600).to_string();
    let old_sig = sendgrid_sign(&key, &old, &body);
    let r = post_json(
        &mut client,
        "/webhooks/sendgrid?account=shop",
        &[
            ("X-Twilio-Email-Event-Webhook-Signature", old_sig.as_str()),
            ("X-Twilio-Email-Event-Webhook-Timestamp", old.as_str()),
        ],
        &body,
    );
    assert_eq!(r.status, 403);
    let (stranger, _) = sendgrid_keys();
    let forged = sendgrid_sign(&stranger, &ts, &changed);
    let r = post_json(
        &mut client,
        "/webhooks/sendgrid?account=shop",
        &[
            ("X-Twilio-Email-Event-Webhook-Signature", forged.as_str()),
            ("X-Twilio-Email-Event-Webhook-Timestamp", ts.as_str()),
        ],
        &changed,
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM message_events"),
        before
    );
});

// ---------------------------------------------------------------- Postmark

fn postmark_posts() -> Vec<Value> {
    vec![
        json!({
            "RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
            "MessageID": "00000000-0000-0000-0000-000000000001", "Recipient": "john@example.com",
            "Tag": "welcome-email", "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
            "Details": "Test delivery webhook details", "Metadata": {"a_key": "a_value"}
        }),
        json!({
            "RecordType": "Open", "MessageStream": "outbound", "FirstOpen": true,
            "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"},
            "OS": {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc.", "Family": "OS X 10"},
            "Platform": "WebMail",
            "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/35.0.1916.153 Safari/537.36",
            "ReadSeconds": 5,
            "Geo": {"CountryISOCode": "RS", "Country": "Serbia", "City": "Novi Sad", "Coords": "45.2517,19.8369", "IP": "188.2.95.4"},
            "MessageID": "00000000-0000-0000-0000-000000000001", "Metadata": {"a_key": "a_value"},
            "ReceivedAt": "2019-11-05T16:40:54.9070259Z", "Tag": "welcome-email", "Recipient": "john@example.com"
        }),
        json!({
            "RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775807_i64,
            "Type": "HardBounce", "TypeCode": 1, "Name": "Hard bounce", "Tag": "Test",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Metadata": {"a_key": "a_value"},
            "ServerID": 23,
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": "Test bounce details", "Email": "jane@example.com", "From": "sender@example.com",
            "BouncedAt": "2019-11-05T16:33:54.9070259Z", "DumpAvailable": true, "Inactive": true,
            "CanActivate": true, "Subject": "Test subject", "Content": "<Full dump of bounce>"
        }),
        json!({
            "RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775808_u64,
            "Type": "SoftBounce", "TypeCode": 4096, "Name": "Soft bounce", "Tag": "Test",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79484", "ServerID": 23,
            "Description": "Unable to temporarily deliver this email.",
            "Details": "smtp;452 4.2.2 Mailbox full", "Email": "joe@example.com", "From": "sender@example.com",
            "BouncedAt": "2019-11-05T16:33:54.9070259Z", "Inactive": false, "CanActivate": true,
            "Subject": "Test subject"
        }),
        json!({
            "RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 42, "Type": "SpamComplaint",
            "TypeCode": 100001, "Name": "Spam complaint", "Tag": "Test",
            "MessageID": "00000000-0000-0000-0000-000000000001", "ServerID": 1234,
            "Description": "", "Details": "Test spam complaint details", "Email": "john@example.com",
            "From": "sender@example.com", "BouncedAt": "2019-11-05T17:00:00Z", "DumpAvailable": true,
            "Inactive": true, "CanActivate": false, "Subject": "Test subject"
        }),
        json!({
            "RecordType": "SubscriptionChange", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79485",
            "ServerID": 123456, "MessageStream": "outbound", "ChangedAt": "2020-02-01T10:53:34.416071Z",
            "Recipient": "jim@example.com", "Origin": "Recipient", "SuppressSending": true,
            "SuppressionReason": "ManualSuppression", "Tag": "my-tag", "Metadata": {"example": "value"}
        }),
    ]
}

both_backends!(postmark_posts_with_basic_auth_or_the_url_secret, |db| {
    let (app, mut client, id) = setup(db);
    set_key(&app, id, "postmark", "s3cr3t-postmark-0123456789");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("shop:s3cr3t-postmark-0123456789")
    );
    for (i, post) in postmark_posts().into_iter().enumerate() {
        let body = post.to_string();
        let r = if i % 2 == 0 {
            post_json(
                &mut client,
                "/webhooks/postmark?account=shop",
                &[("Authorization", &basic)],
                &body,
            )
        } else {
            post_json(
                &mut client,
                "/webhooks/postmark?account=shop&secret=s3cr3t-postmark-0123456789",
                &[],
                &body,
            )
        };
        assert_eq!(r.status, 200, "post {i}: {}", r.body);
    }
    assert_eq!(
        state(
            &app,
            "00000000-0000-0000-0000-000000000001$john@example.com"
        ),
        (1, -1)
    );
    assert_eq!(
        state(
            &app,
            "883953f4-6105-42a2-a16a-77a8eac79483$jane@example.com"
        ),
        (3, 6)
    );
    assert_eq!(
        state(&app, "883953f4-6105-42a2-a16a-77a8eac79484$joe@example.com").0,
        2
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM tracking_events"), 1);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM spam_reports WHERE address = 'john@example.com'"),
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM unsubscribes WHERE address = 'jim@example.com'"),
        1
    );
    // The same record again is acknowledged and applied once.
    let again = postmark_posts().remove(0).to_string();
    let r = post_json(
        &mut client,
        "/webhooks/postmark?account=shop",
        &[("Authorization", &basic)],
        &again,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM message_events WHERE kind = 'deliver'"),
        1
    );

    let before = app.count("SELECT COUNT(*) AS n FROM message_events");
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("shop:guess")
    );
    let post = postmark_posts().remove(2).to_string();
    for (path, headers) in [
        (
            "/webhooks/postmark?account=shop",
            vec![("Authorization", wrong.as_str())],
        ),
        ("/webhooks/postmark?account=shop&secret=guess", vec![]),
        ("/webhooks/postmark?account=shop", vec![]),
        (
            "/webhooks/postmark?account=other&secret=s3cr3t-postmark-0123456789",
            vec![],
        ),
    ] {
        let r = post_json(&mut client, path, &headers, &post);
        assert_eq!(r.status, 403, "{path}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM message_events"),
        before
    );
});

// ---------------------------------------------------------------- settings

both_backends!(settings_show_each_feeds_url_and_keep_its_key, |db| {
    let (app, mut client, _) = setup(db);
    let account = mailtrail::store::accounts::find_account_by_name(&mut app.conn(), "shop")
        .unwrap()
        .unwrap();
    app.user(
        &account,
        "owner@shop.example",
        Role::Owner,
        "correct horse battery",
    );
    client.login("owner@shop.example", "correct horse battery");
    let page = client.get("/settings");
    assert!(
        page.body.contains("/settings/feeds"),
        "the settings link to the feeds"
    );
    let page = client.get("/settings/feeds");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/webhooks/mailgun?account=shop"));
    assert!(page.body.contains("/webhooks/sendgrid?account=shop"));
    let token = page.csrf_token();
    let r = client.post_form(
        "/settings/feeds",
        &[
            ("csrf_token", &token),
            ("feed", "mailgun"),
            ("key", MAILGUN_KEY),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = client.post_form(
        "/settings/feeds",
        &[
            ("csrf_token", &token),
            ("feed", "sendgrid"),
            ("key", "not a key"),
        ],
    );
    assert_eq!(r.status, 400);
    let r = client.post_form(
        "/settings/feeds",
        &[("csrf_token", &token), ("feed", "postmark")],
    );
    assert_eq!(r.status, 200);
    let shown = r.body.replace("&#38;", "&").replace("&amp;", "&");
    assert!(
        shown.contains("/webhooks/postmark?account=shop&secret="),
        "{}",
        r.body
    );
    // The Mailgun key now verifies posts.
    let body = mailgun_signed(
        MAILGUN_KEY,
        &(now_ms() / 1000).to_string(),
        "tok",
        mailgun_events().remove(0),
    );
    let r = post_json(&mut client, "/webhooks/mailgun?account=shop", &[], &body);
    assert_eq!(r.status, 200, "{}", r.body);
    // Without the form's token nothing changes.
    let r = client.post_form("/settings/feeds", &[("feed", "mailgun"), ("key", "x")]);
    assert_eq!(r.status, 403);
});

// ---------------------------------------------------------------- Amazon SES through SNS

/// A key pair and a self-signed certificate standing in for SNS's signing certificate.
fn sns_certificate(dir: &std::path::Path) -> String {
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=sns.us-west-2.amazonaws.com", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl makes the test's certificate");
    assert!(status.success());
    std::fs::read_to_string(dir.join("cert.pem")).unwrap()
}

/// Signs an SNS message as SNS does (SignatureVersion 1: SHA1withRSA; 2: SHA256withRSA).
fn sns_signed(dir: &std::path::Path, mut post: Value, version: &str) -> String {
    post["SignatureVersion"] = json!(version);
    let text = mailtrail::feeds::ses::string_to_sign(&post).expect("all signed fields");
    std::fs::write(dir.join("text"), text).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "dgst",
            if version == "1" { "-sha1" } else { "-sha256" },
            "-sign",
        ])
        .arg(dir.join("key.pem"))
        .arg(dir.join("text"))
        .output()
        .unwrap();
    assert!(out.status.success());
    post["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(out.stdout));
    post.to_string()
}

fn sns_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An SNS Notification carrying one SES event as SES's docs show it.
fn sns_notification(n: u32, event: Value) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": format!("22b80b92-fdea-4c2c-8f9d-bdfb0c7bf32{n}"),
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Subject": "Amazon SES Email Event Notification",
        "Message": event.to_string(),
        "Timestamp": sns_now(),
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0-26c4-47ec-8998-413945fb5a96"
    })
}

fn ses_mail(id: &str, to: &str) -> Value {
    json!({
        "timestamp": "2017-08-05T00:40:02.012Z",
        "source": "Sender Name <sender@example.com>",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
        "sendingAccountId": "123456789012",
        "messageId": id,
        "destination": [to],
        "headersTruncated": false,
        "commonHeaders": {"from": ["Sender Name <sender@example.com>"], "to": [to],
            "messageId": id, "subject": "Message sent from Amazon SES"},
        "tags": {"ses:configuration-set": ["ConfigSet"], "ses:source-ip": ["192.0.2.0"],
            "ses:from-domain": ["example.com"], "campaign": ["spring"]}
    })
}

both_backends!(
    ses_through_sns_signed_with_the_configured_certificate,
    |db| {
        let (app, mut client, id) = setup(db);
        let dir = tempfile::tempdir().unwrap();
        let cert = sns_certificate(dir.path());
        set_key(&app, id, "ses", &cert);
        let (a, b, c, d) = (
            "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000001",
            "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000002",
            "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000003",
            "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000004",
        );
        let events = [
            json!({"eventType": "Delivery", "mail": ses_mail(a, "alice@example.com"),
            "delivery": {"timestamp": "2017-08-05T00:40:14.133Z", "processingTimeMillis": 11893,
                "recipients": ["alice@example.com"], "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": "mta.example.com"}}),
            json!({"eventType": "Open", "mail": ses_mail(a, "alice@example.com"),
            "open": {"ipAddress": "192.0.2.1", "timestamp": "2017-08-05T01:00:19.652Z",
                "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X) AppleWebKit/603.3.8 (KHTML, like Gecko) Mobile/14G60"}}),
            json!({"eventType": "DeliveryDelay", "mail": ses_mail(b, "bob@example.org"),
            "deliveryDelay": {"timestamp": "2017-08-05T00:45:40.641Z", "delayType": "TransientCommunicationFailure",
                "expirationTime": "2017-08-05T12:40:02.012Z",
                "delayedRecipients": [{"emailAddress": "bob@example.org", "status": "4.4.1",
                    "diagnosticCode": "smtp; 421 4.4.1 Unable to connect to remote host"}]}}),
            json!({"eventType": "Bounce", "mail": ses_mail(c, "recipient@example.com"),
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                "bouncedRecipients": [{"emailAddress": "recipient@example.com", "action": "failed",
                    "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
                "timestamp": "2017-08-05T00:41:02.669Z",
                "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
                "reportingMTA": "dsn; mta.example.com"}}),
            json!({"notificationType": "Complaint", "mail": ses_mail(d, "dan@example.com"),
            "complaint": {"complainedRecipients": [{"emailAddress": "dan@example.com"}],
                "timestamp": "2017-08-05T02:41:02.669Z",
                "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000001",
                "userAgent": "Mozilla/5.0", "complaintFeedbackType": "abuse",
                "arrivalDate": "2017-08-05T02:41:02.669Z"}}),
        ];
        for (i, event) in events.into_iter().enumerate() {
            let body = sns_signed(
                dir.path(),
                sns_notification(i as u32, event),
                if i % 2 == 0 { "1" } else { "2" },
            );
            let r = client.post_raw(
                "/webhooks/ses?account=shop",
                &[("Content-Type", "text/plain; charset=UTF-8")],
                body.as_bytes(),
            );
            assert_eq!(r.status, 200, "{i}: {}", r.body);
            assert!(r.body.contains("\"ok\":true"), "{}", r.body);
        }
        assert_eq!(state(&app, &format!("{a}$alice@example.com")), (1, -1));
        assert_eq!(app.count("SELECT COUNT(*) AS n FROM tracking_events"), 1);
        assert_eq!(
            state(&app, &format!("{b}$bob@example.org")),
            (0, -1),
            "delayed: requesting"
        );
        assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM message_events WHERE kind = 'deferred' AND smtp_reply LIKE '421 4.4.1%'"),
        1
    );
        assert_eq!(state(&app, &format!("{c}$recipient@example.com")), (3, 6));
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM spam_reports WHERE address = 'dan@example.com'"),
            1
        );
        assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM messages WHERE tags = 'campaign:spring' AND api_user = 'ses'"),
        4
    );

        // Replayed, tampered, stale, or signed by another key: refused.
        let replay = sns_signed(
            dir.path(),
            sns_notification(
                0,
                json!({"eventType": "Send", "mail": ses_mail(a, "alice@example.com")}),
            ),
            "1",
        );
        let r = client.post_raw("/webhooks/ses?account=shop", &[], replay.as_bytes());
        assert!(r.body.contains("replayed"), "{}", r.body);
        let before = app.count("SELECT COUNT(*) AS n FROM message_events");
        let fresh = sns_signed(
            dir.path(),
            sns_notification(
                9,
                json!({"eventType": "Bounce", "mail": ses_mail(a, "alice@example.com"),
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "alice@example.com"}], "timestamp": "2017-08-05T03:00:00.000Z"}}),
            ),
            "2",
        );
        let tampered = fresh.replace("Permanent", "Transient");
        let r = client.post_raw("/webhooks/ses?account=shop", &[], tampered.as_bytes());
        assert_eq!(r.status, 403);
        let mut old = sns_notification(
            10,
            json!({"eventType": "Send", "mail": ses_mail(a, "alice@example.com")}),
        );
        old["Timestamp"] = json!("2017-08-05T00:40:02.012Z");
        let r = client.post_raw(
            "/webhooks/ses?account=shop",
            &[],
            sns_signed(dir.path(), old, "1").as_bytes(),
        );
        assert_eq!(r.status, 403);
        let other = tempfile::tempdir().unwrap();
        sns_certificate(other.path());
        let forged = sns_signed(
            other.path(),
            sns_notification(
                11,
                json!({"eventType": "Send", "mail": ses_mail(a, "x@example.com")}),
            ),
            "1",
        );
        let r = client.post_raw("/webhooks/ses?account=shop", &[], forged.as_bytes());
        assert_eq!(r.status, 403);
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM message_events"),
            before
        );

        // SNS's subscription confirmation: checked, and its link offered to the owner.
        let confirm = json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Message": "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
            "Timestamp": sns_now(),
            "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
        });
        let r = client.post_raw(
            "/webhooks/ses?account=shop",
            &[],
            sns_signed(dir.path(), confirm, "1").as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("ConfirmSubscription"));
        assert!(
            r.body.contains("\"confirmed\":false"),
            "offline: {}",
            r.body
        );
        let account = mailtrail::store::accounts::find_account_by_name(&mut app.conn(), "shop")
            .unwrap()
            .unwrap();
        app.user(
            &account,
            "owner@shop.example",
            Role::Owner,
            "correct horse battery",
        );
        client.login("owner@shop.example", "correct horse battery");
        let page = client.get("/settings/feeds");
        assert!(page.body.contains("id=\"ses-subscribe\""), "{}", page.body);
        assert!(page.body.contains("/webhooks/ses?account=shop"));
    }
);

// A refused post never tells an unknown account from a known one without a key, or from a bad
// signature: a prober learns nothing about which accounts exist.
both_backends!(every_refusal_answers_alike, |db| {
    let (app, mut client, id) = setup(db);
    set_key(&app, id, "mailgun", MAILGUN_KEY);
    let forged = mailgun_signed(
        "not the key",
        &(now_ms() / 1000).to_string(),
        "a8ce0edb2dd8301dcd7d3cb4b4fe6ef1bbc7e2cf6a9f2e6ab0",
        mailgun_events().remove(0),
    );
    let answers: Vec<(u16, String)> = [
        "/webhooks/mailgun?account=nobody",
        "/webhooks/mailgun",
        "/webhooks/mailgun?account=shop",
        "/webhooks/sendgrid?account=shop",
    ]
    .iter()
    .map(|path| {
        let r = post_json(&mut client, path, &[], &forged);
        (r.status, r.body)
    })
    .collect();
    for answer in &answers {
        assert_eq!(answer, &answers[0], "{answers:?}");
    }
    assert_eq!(answers[0].0, 403);
    assert_eq!(messages(&app), 0);
});

// ---------------------------------------------------------------- bounces after delivery

// Each ESP reports a bounce without saying whether the mail had been accepted: one that
// follows a delivery is a soft bounce (DESIGN §2), in either arrival order; one without a
// delivery before it is invalid.
both_backends!(
    a_bounce_after_a_delivery_is_a_soft_bounce_on_every_feed,
    |db| {
        let (app, mut client, id) = setup(db);
        const SOFT: (i64, i64) = (2, 6);
        const INVALID: (i64, i64) = (3, 6);

        // Mailgun: `delivered`, then `failed` permanent, as its docs show them.
        set_key(&app, id, "mailgun", MAILGUN_KEY);
        let delivered = mailgun_events().remove(0);
        let mut failed = mailgun_events().remove(2);
        failed["id"] = json!("G9Bn5sl1TC6nu79C8C0bwh");
        let mut mailgun_post = |n: u32, mut data: Value, message: &str, at: f64| {
            data["message"] = mailgun_message(message, "alice@example.com");
            data["recipient"] = json!("alice@example.com");
            data["timestamp"] = json!(at);
            data["id"] = json!(format!("{}-{n}", data["id"].as_str().unwrap()));
            let body = mailgun_signed(
                MAILGUN_KEY,
                &(now_ms() / 1000).to_string(),
                &format!("bounce-after-delivery-token-{n}"),
                data,
            );
            let r = post_json(&mut client, "/webhooks/mailgun?account=shop", &[], &body);
            assert_eq!(r.status, 200, "{}", r.body);
        };
        mailgun_post(1, delivered.clone(), "m1@sandbox.mailgun.org", 1521472262.9);
        mailgun_post(2, failed.clone(), "m1@sandbox.mailgun.org", 1521472300.0);
        mailgun_post(3, failed.clone(), "m2@sandbox.mailgun.org", 1521472300.0);
        mailgun_post(4, delivered, "m2@sandbox.mailgun.org", 1521472262.9);
        mailgun_post(5, failed, "m3@sandbox.mailgun.org", 1521472300.0);
        assert_eq!(
            state(&app, "m1@sandbox.mailgun.org$alice@example.com"),
            SOFT
        );
        assert_eq!(
            state(&app, "m2@sandbox.mailgun.org$alice@example.com"),
            SOFT,
            "delivery late"
        );
        assert_eq!(
            state(&app, "m3@sandbox.mailgun.org$alice@example.com"),
            INVALID
        );

        // SendGrid: `delivered` and `bounce` (type bounce), in one batch each way round.
        let (key, public) = sendgrid_keys();
        set_key(&app, id, "sendgrid", &public);
        let sg = |n: &str, event: &str, at: i64| {
            let mut e = json!({"email": "bo@example.com", "timestamp": at, "event": event,
            "smtp-id": format!("<sg{n}@ismtpd-555>"), "category": "cat facts",
            "sg_event_id": format!("{event}-{n}"),
            "sg_message_id": format!("sg{n}.filter0001.16648.5515E0B88.0")});
            if event == "bounce" {
                e["reason"] =
                    json!("550 5.1.1 The email account that you tried to reach does not exist");
                e["status"] = json!("5.1.1");
                e["type"] = json!("bounce");
            } else {
                e["response"] = json!("250 OK");
            }
            e
        };
        let body = json!([
            sg("1", "delivered", 1513299570),
            sg("1", "bounce", 1513299600),
            sg("2", "bounce", 1513299600),
            sg("2", "delivered", 1513299570),
            sg("3", "bounce", 1513299600),
        ])
        .to_string();
        let ts = (now_ms() / 1000).to_string();
        let sig = sendgrid_sign(&key, &ts, &body);
        let r = post_json(
            &mut client,
            "/webhooks/sendgrid?account=shop",
            &[
                ("X-Twilio-Email-Event-Webhook-Signature", sig.as_str()),
                ("X-Twilio-Email-Event-Webhook-Timestamp", ts.as_str()),
            ],
            &body,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(state(&app, "sg1$bo@example.com"), SOFT);
        assert_eq!(state(&app, "sg2$bo@example.com"), SOFT, "delivery late");
        assert_eq!(state(&app, "sg3$bo@example.com"), INVALID);

        // Postmark: a Delivery and a HardBounce record.
        set_key(&app, id, "postmark", "s3cr3t-postmark-0123456789");
        let delivery = postmark_posts().remove(0);
        let bounce = postmark_posts().remove(2);
        let mut postmark_post = |mut post: Value, message: &str| {
            post["MessageID"] = json!(message);
            if post["RecordType"] == "Delivery" {
                post["Recipient"] = json!("jane@example.com");
            }
            let r = post_json(
                &mut client,
                "/webhooks/postmark?account=shop&secret=s3cr3t-postmark-0123456789",
                &[],
                &post.to_string(),
            );
            assert_eq!(r.status, 200, "{}", r.body);
        };
        let mut early = delivery.clone();
        early["DeliveredAt"] = json!("2019-11-05T16:30:00Z");
        postmark_post(early.clone(), "pm-1");
        postmark_post(bounce.clone(), "pm-1");
        postmark_post(bounce.clone(), "pm-2");
        postmark_post(early, "pm-2");
        postmark_post(bounce, "pm-3");
        assert_eq!(state(&app, "pm-1$jane@example.com"), SOFT);
        assert_eq!(state(&app, "pm-2$jane@example.com"), SOFT, "delivery late");
        assert_eq!(state(&app, "pm-3$jane@example.com"), INVALID);

        // SES: `Delivery`, then a Permanent `Bounce`.
        let dir = tempfile::tempdir().unwrap();
        set_key(&app, id, "ses", &sns_certificate(dir.path()));
        let ses_delivery = |m: &str| {
            json!({"eventType": "Delivery", "mail": ses_mail(m, "recipient@example.com"),
        "delivery": {"timestamp": "2017-08-05T00:40:14.133Z", "processingTimeMillis": 11893,
            "recipients": ["recipient@example.com"], "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "mta.example.com"}})
        };
        let ses_bounce = |m: &str| {
            json!({"eventType": "Bounce", "mail": ses_mail(m, "recipient@example.com"),
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": "recipient@example.com", "action": "failed",
                "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            "timestamp": "2017-08-05T00:41:02.669Z",
            "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
            "reportingMTA": "dsn; mta.example.com"}})
        };
        for (n, event) in [
            ses_delivery("ses-1"),
            ses_bounce("ses-1"),
            ses_bounce("ses-2"),
            ses_delivery("ses-2"),
            ses_bounce("ses-3"),
        ]
        .into_iter()
        .enumerate()
        {
            let body = sns_signed(dir.path(), sns_notification(50 + n as u32, event), "2");
            let r = client.post_raw("/webhooks/ses?account=shop", &[], body.as_bytes());
            assert_eq!(r.status, 200, "{}", r.body);
        }
        assert_eq!(state(&app, "ses-1$recipient@example.com"), SOFT);
        assert_eq!(
            state(&app, "ses-2$recipient@example.com"),
            SOFT,
            "delivery late"
        );
        assert_eq!(state(&app, "ses-3$recipient@example.com"), INVALID);

        // The log shows what the ESP said: a bounce report.
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM message_events WHERE kind = 'bounce'"),
            12
        );
    }
);

/// SNS's SubscriptionConfirmation as its docs show it, for `url`.
fn sns_confirmation(url: &str) -> Value {
    json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1c",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Message": "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": url,
        "Timestamp": sns_now(),
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
    })
}

/// A one-request-at-a-time HTTP server standing in for SNS: answers 200 with the
/// ConfirmSubscriptionResponse and sends each request line to the test.
fn fake_sns() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            // The request's headers, to the blank line that ends them.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
            }
            // Told before answering, so the test sees it once its post is answered.
            if tx.send(first.trim().to_string()).is_err() {
                break;
            }
            let body = "<ConfirmSubscriptionResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:us-west-2:123456789012:MyTopic:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, rx)
}

both_backends!(
    sns_subscription_is_confirmed_by_fetching_only_amazon_urls,
    |db| {
        let (sns, requests) = fake_sns();
        let (app, mut client, id) = setup_via(db, sns);
        let dir = tempfile::tempdir().unwrap();
        set_key(&app, id, "ses", &sns_certificate(dir.path()));
        // Another host, a port, plain http: refused, never fetched, nothing kept.
        for url in [
            "https://sns.us-west-2.amazonaws.com.evil.example/?Action=ConfirmSubscription",
            "https://169.254.169.254/latest/meta-data/",
            "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
        ] {
            let body = sns_signed(dir.path(), sns_confirmation(url), "1");
            let r = client.post_raw("/webhooks/ses?account=shop", &[], body.as_bytes());
            assert_eq!(r.status, 400, "{url}: {}", r.body);
        }
        // SNS's own URL: fetched with its path and query, and the subscription confirmed.
        let url = "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37fb";
        let body = sns_signed(dir.path(), sns_confirmation(url), "2");
        let r = client.post_raw("/webhooks/ses?account=shop", &[], body.as_bytes());
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("\"confirmed\":true"), "{}", r.body);
        assert_eq!(
        requests.try_recv().unwrap(),
        "GET /?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37fb HTTP/1.1"
    );
        assert!(
            requests.try_recv().is_err(),
            "one request, none for the refused URLs"
        );
        let account = mailtrail::store::accounts::find_account_by_name(&mut app.conn(), "shop")
            .unwrap()
            .unwrap();
        app.user(
            &account,
            "owner@shop.example",
            Role::Owner,
            "correct horse battery",
        );
        client.login("owner@shop.example", "correct horse battery");
        let page = client.get("/settings/feeds");
        assert!(page.body.contains("id=\"ses-subscribed\""), "{}", page.body);
        assert!(page
            .body
            .contains("arn:aws:sns:us-west-2:123456789012:MyTopic"));
        assert!(!page.body.contains("id=\"ses-subscribe\""));
    }
);

both_backends!(retention_forgets_the_message_ids_feeds_remembered, |db| {
    use mailtrail::store::retention;
    let (app, _client, shop) = setup(db);
    let other = app.account("third").id;
    let now = now_ms();
    let keep_days = 30;
    let cutoff = retention::cutoff(keep_days, now);
    let remember = |account: i64, message_id: &str, email_id: &str, at: i64| {
        store::record_message_ids(
            &mut app.conn(),
            &AccountScope::new(account),
            &[(message_id.to_string(), email_id.to_string())],
            at,
        )
        .unwrap();
    };
    remember(
        shop,
        "old@mx.shop.example",
        "old-1",
        cutoff - 40 * 86_400_000,
    );
    remember(shop, "old@mx.shop.example", "old-2", cutoff - 1);
    remember(other, "old@mx.third.example", "other-old", cutoff - 1);
    remember(shop, "new@mx.shop.example", "new-1", cutoff + 1);
    remember(other, "new@mx.third.example", "other-new", now);

    let pruned = retention::prune(&mut app.conn(), keep_days, now).unwrap();
    assert!(!pruned.skipped && pruned.rows >= 3, "{pruned:?}");

    let ids = |account: i64, message_id: &str| {
        store::email_ids_for_message_id(&mut app.conn(), &AccountScope::new(account), message_id)
            .unwrap()
    };
    // On PostgreSQL retention keeps whole months (kept_from may lie before the cutoff), so
    // what goes for certain is what is older than the month before the cutoff.
    let far = ids(shop, "old@mx.shop.example");
    assert!(!far.contains(&"old-1".to_string()), "{far:?}");
    assert_eq!(ids(shop, "new@mx.shop.example"), vec!["new-1".to_string()]);
    assert_eq!(
        ids(other, "new@mx.third.example"),
        vec!["other-new".to_string()]
    );
    if app.db.backend == common::Backend::Sqlite {
        assert!(far.is_empty(), "{far:?}");
        assert!(ids(other, "old@mx.third.example").is_empty());
    }
});
