//! SendCloud's webhook (`POST /webhooks/sendcloud`) through real HTTP on both backends.

mod common;

use common::{Client, Resp, TestApp};
use hmac::{Hmac, Mac};
use mailtrail::domain::{now_ms, MailType, Role};
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

both_backends!(
    the_account_is_found_by_name_or_by_whose_key_verifies,
    |db| {
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
        // Two accounts have an API user "notify": acme's key verifies the post, so it is acme's.
        let r = post_form(&mut client, "/webhooks/sendcloud", &fields, &"a".repeat(50));
        assert_eq!(r.status, 200, "{}", r.body);
        let r = post_form(
            &mut client,
            "/webhooks/sendcloud?account=acme",
            &[
                ("event", "request"),
                ("apiUser", "notify"),
                ("emailId", "a2$a@example.com"),
                ("recipient", "a@example.com"),
            ],
            &"b".repeat(50),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let acme_messages = app.count("SELECT COUNT(*) AS n FROM messages");
        assert_eq!(acme_messages, 2);
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
    }
);

/// SendCloud's documented check, as its Python example does it:
/// `hmac.new(key=appkey, msg='{}{}'.format(timestamp, token), digestmod=hashlib.sha256).hexdigest()`.
fn sendcloud_signature(app_key: &str, timestamp: &str, token: &str) -> String {
    let message = format!("{timestamp}{token}");
    let mut mac = Hmac::<Sha256>::new_from_slice(app_key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A post as SendCloud makes it: form fields, `timestamp` in epoch milliseconds, a 50-character
/// token, signed with `app_key`.
fn sendcloud_post(
    client: &mut Client,
    app_key: &str,
    timestamp: i64,
    token: &str,
    fields: &[(&str, &str)],
) -> Resp {
    let timestamp = timestamp.to_string();
    let signature = sendcloud_signature(app_key, &timestamp, token);
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.extend([
        ("timestamp", timestamp.as_str()),
        ("token", token),
        ("signature", signature.as_str()),
    ]);
    client.post_form("/webhooks/sendcloud", &all)
}

fn token50(seed: char) -> String {
    std::iter::repeat_n(seed, 50).collect()
}

both_backends!(a_pasted_sendcloud_app_key_verifies_sendcloud_posts, |db| {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "owner pass 1");
    accounts::create_api_user(
        &mut app.conn(),
        &AccountScope::new(account.id),
        "acme_trigger",
        MailType::Trigger,
    )
    .unwrap();
    let mut owner = app.client();
    owner.accept_language = Some("en".into());
    assert_eq!(owner.login("owner@acme.test", "owner pass 1").status, 303);

    // The APP KEY SendCloud's console shows (控制台 【发送设置】-【WebHook】), pasted.
    let pasted = "Vx3kP9qLm2Tz8RwYb5NcJd7FhGs4AeU1";
    let csrf = owner.get("/settings").csrf_token();
    let r = owner.post_form(
        "/settings/webhook-key",
        &[("csrf_token", &csrf), ("app_key", pasted)],
    );
    // Saved: a redirect (303) back to the settings, which say so and never echo the key.
    assert_eq!(r.status, 303, "{}", r.body);
    let r = owner.get(r.location());
    assert!(r.body.contains("APP KEY is saved"), "{}", r.body);
    assert!(
        !r.body.contains(pasted),
        "a pasted key is never echoed back"
    );
    assert!(!owner.get("/settings").body.contains(pasted));
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'settings.webhook_key' AND target = 'pasted'"),
        1
    );
    // A key that cannot be SendCloud's is refused, and the stored one stays.
    let csrf = owner.get("/settings").csrf_token();
    let r = owner.post_form(
        "/settings/webhook-key",
        &[("csrf_token", &csrf), ("app_key", "short key")],
    );
    assert_eq!(r.status, 400);
    assert!(!r.body.contains("short key"));

    let mut sendcloud = app.client();
    let at = now_ms();
    let r = sendcloud_post(
        &mut sendcloud,
        pasted,
        at,
        &token50('p'),
        &[
            ("event", "request"),
            ("message", "request"),
            ("apiUser", "acme_trigger"),
            ("category", "acme_trigger"),
            ("labelId", "12345"),
            ("labelName", "welcome"),
            (
                "emailId",
                "1500000000000_1_1_1.sc-10_1_1_1-inbound0$alice@example.com",
            ),
            ("recipient", "alice@example.com"),
            ("maillistTaskId", "0"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = sendcloud_post(
        &mut sendcloud,
        pasted,
        at + 1500,
        &token50('q'),
        &[
            ("event", "deliver"),
            ("message", "deliver"),
            ("apiUser", "acme_trigger"),
            ("category", "acme_trigger"),
            ("labelId", "12345"),
            (
                "emailId",
                "1500000000000_1_1_1.sc-10_1_1_1-inbound0$alice@example.com",
            ),
            ("recipient", "alice@example.com"),
            ("outIp", "203.0.113.7"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        status_of(
            &app,
            "1500000000000_1_1_1.sc-10_1_1_1-inbound0$alice@example.com"
        ),
        (1, -1)
    );
    // labelName is kept and filterable like a tag, on /status as in the API.
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM message_tags WHERE tag = 'welcome'"),
        1
    );
    let labelled = owner.get("/status?tag=welcome");
    assert_eq!(labelled.status, 200);
    assert_eq!(
        labelled.body.matches("data-status=\"delivered\"").count(),
        1
    );
    let other = owner.get("/status?tag=another-label");
    assert_eq!(other.body.matches("data-status=").count(), 0);

    // The same post signed with a generated key of ours is refused once the pasted one is set.
    let r = sendcloud_post(
        &mut sendcloud,
        "another-key-entirely-0000000000",
        at,
        &token50('r'),
        &[("event", "request"), ("apiUser", "acme_trigger")],
    );
    assert_eq!(r.status, 403);
});

both_backends!(
    stale_posts_and_unknown_senders_look_like_bad_signatures,
    |db| {
        let (app, mut client) = setup(db);
        let request = |id: &'static str| {
            vec![
                ("event", "request"),
                ("apiUser", "notify"),
                ("emailId", id),
                ("recipient", "a@example.com"),
            ]
        };
        // Correctly signed, but stamped in 2001, or 11 minutes off either way: refused.
        for (i, at) in [
            978_307_200_000,
            now_ms() - 11 * 60_000,
            now_ms() + 11 * 60_000,
        ]
        .into_iter()
        .enumerate()
        {
            let token = token50(char::from(b'a' + i as u8));
            let r = sendcloud_post(
                &mut client,
                APP_KEY,
                at,
                &token,
                &request("old$a@example.com"),
            );
            assert_eq!(r.status, 403, "{at}: {}", r.body);
            assert!(r.body.contains("10 minutes"), "{}", r.body);
        }
        // Nine minutes off in seconds (SendCloud's older posts): fine.
        let r = sendcloud_post(
            &mut client,
            APP_KEY,
            (now_ms() - 9 * 60_000) / 1000,
            &token50('s'),
            &request("fresh$a@example.com"),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(app.count("SELECT COUNT(*) AS n FROM messages"), 1);

        // Unknown apiUser, unknown account, account without key, wrong key: one answer.
        let bad_signature = sendcloud_post(
            &mut client,
            "not-the-key",
            now_ms(),
            &token50('t'),
            &request("x1$a@example.com"),
        );
        assert_eq!(bad_signature.status, 403);
        let mut unknown_user = request("x2$a@example.com");
        unknown_user[1] = ("apiUser", "nobody");
        let answers = [
            sendcloud_post(&mut client, APP_KEY, now_ms(), &token50('u'), &unknown_user),
            {
                let ts = now_ms().to_string();
                let token = token50('v');
                let sig = sendcloud_signature(APP_KEY, &ts, &token);
                let mut f = request("x3$a@example.com");
                f.extend([
                    ("timestamp", ts.as_str()),
                    ("token", token.as_str()),
                    ("signature", sig.as_str()),
                ]);
                client.post_form("/webhooks/sendcloud?account=no-such-account", &f)
            },
        ];
        for r in answers {
            assert_eq!(
                (r.status, &r.body),
                (bad_signature.status, &bad_signature.body)
            );
        }
        assert_eq!(app.count("SELECT COUNT(*) AS n FROM messages"), 1);
    }
);

both_backends!(
    list_fields_in_every_shape_and_bad_addresses_per_event,
    |db| {
        let (app, mut client) = setup(db);
        let shapes: [(&str, Vec<(&str, &str)>); 4] = [
            (
                "bare brackets",
                vec![
                    ("emailIds", "[s1$a@example.com, s1$b@example.com]"),
                    ("recipientArray", "[a@example.com, b@example.com]"),
                ],
            ),
            (
                "JSON",
                vec![
                    ("emailIds", r#"["s2$a@example.com","s2$b@example.com"]"#),
                    ("recipientArray", r#"["a@example.com","b@example.com"]"#),
                ],
            ),
            (
                "semicolons",
                vec![
                    ("emailIds", "s3$a@example.com;s3$b@example.com"),
                    ("recipientArray", "a@example.com;b@example.com"),
                ],
            ),
            (
                "repeated",
                vec![
                    ("emailIds", "s4$a@example.com"),
                    ("emailIds", "s4$b@example.com"),
                    ("recipientArray", "a@example.com"),
                    ("recipientArray", "b@example.com"),
                ],
            ),
        ];
        for (i, (shape, lists)) in shapes.iter().enumerate() {
            let mut fields = vec![("event", "request"), ("apiUser", "notify")];
            fields.extend(lists.iter().cloned());
            let r = sendcloud_post(
                &mut client,
                APP_KEY,
                now_ms(),
                &token50(char::from(b'a' + i as u8)),
                &fields,
            );
            assert_eq!(r.status, 200, "{shape}: {}", r.body);
            let prefix = format!("s{}", i + 1);
            for who in ["a", "b"] {
                assert_eq!(
                app.count(&format!(
                    "SELECT COUNT(*) AS n FROM messages WHERE email_id = '{prefix}${who}@example.com' AND recipient = '{who}@example.com'"
                )),
                1,
                "{shape}"
            );
            }
        }
        assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM messages WHERE email_id LIKE '%[%' OR email_id LIKE '%\"%' \
             OR email_id LIKE '%]%' OR recipient LIKE '%[%' OR recipient LIKE '%\"%'"
        ),
        0
    );

        // Hostile recipients: refused one by one with the reason; the good one still applies.
        let bidi = "ad\u{202E}moc.live@example.com";
        let zero_width = "al\u{200B}ice@example.com";
        let long_local = format!("{}@example.com", "l".repeat(65));
        let long_address = format!("a@{}.example.com", "d".repeat(250));
        let recipients = [
            bidi.to_string(),
            zero_width.to_string(),
            long_local.clone(),
            long_address.clone(),
            "good@example.com".to_string(),
        ];
        let email_ids: Vec<String> = (0..recipients.len()).map(|i| format!("h{i}")).collect();
        let joined_ids = email_ids.join(";");
        let joined_rcpts = recipients.join(";");
        let r = sendcloud_post(
            &mut client,
            APP_KEY,
            now_ms(),
            &token50('z'),
            &[
                ("event", "request"),
                ("apiUser", "notify"),
                ("emailIds", &joined_ids),
                ("recipientArray", &joined_rcpts),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let errors: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].contains("invisible"), "{}", errors[0]);
        assert!(errors[1].contains("invisible"), "{}", errors[1]);
        assert!(errors[2].contains("64 octets"), "{}", errors[2]);
        assert!(errors[3].contains("254 octets"), "{}", errors[3]);
        assert!(
            !r.body.contains('\u{202E}'),
            "the answer quotes the address escaped"
        );
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM messages WHERE email_id LIKE 'h%'"),
            1
        );
    }
);
