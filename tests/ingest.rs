//! Ingestion through real HTTP on both backends: the events API, raw bounce messages, and the
//! rules of DESIGN §2/§3 they apply.

mod common;

use common::{Client, Resp, TestApp};
use mailtrail::domain::{now_ms, MailType};
use mailtrail::store::{accounts, AccountScope};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

// Status and reason codes as stored (src/domain/status.rs).
const REQUESTING: i64 = 0;
const DELIVERED: i64 = 1;
const SOFT_BOUNCE: i64 = 2;
const INVALID: i64 = 3;
const BLACKLISTED: i64 = 1;
const UNSUBSCRIBED: i64 = 2;
const ADDRESS_NOT_FOUND: i64 = 6;
const SPAM: i64 = 7;

pub struct Api {
    pub app: TestApp,
    pub client: Client,
    pub key: String,
    pub account_id: i64,
}

pub fn api(db: common::TestDb) -> Api {
    let app = TestApp::start(db);
    let account = app.account("acme");
    let (_, key) = accounts::create_api_user(
        &mut app.conn(),
        &AccountScope::new(account.id),
        "notify",
        MailType::Trigger,
    )
    .expect("api user");
    let client = app.client();
    Api {
        app,
        client,
        key,
        account_id: account.id,
    }
}

impl Api {
    fn post(&mut self, body: &str) -> Resp {
        let key = self.key.clone();
        self.post_with_key(Some(&key), body)
    }

    fn post_with_key(&mut self, key: Option<&str>, body: &str) -> Resp {
        let auth = key.map(|k| format!("Bearer {k}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        self.client
            .post_raw("/api/v1/events", &headers, body.as_bytes())
    }

    /// Posts events and checks that every one was accepted.
    fn events(&mut self, events: &[serde_json::Value]) -> serde_json::Value {
        let r = self.post(&serde_json::Value::from(events.to_vec()).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
        let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        for result in answer["results"].as_array().unwrap() {
            assert_eq!(result["ok"], true, "{answer}");
        }
        answer
    }

    fn bounce_message(&mut self, raw: &[u8]) -> serde_json::Value {
        let auth = format!("Bearer {}", self.key);
        let r = self.client.post_raw(
            "/api/v1/bounce-messages",
            &[("Authorization", &auth), ("Content-Type", "message/rfc822")],
            raw,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }

    fn n(&self, sql: &str) -> i64 {
        self.app.count(sql)
    }

    fn field(&self, email_id: &str, column: &str) -> i64 {
        self.n(&format!(
            "SELECT CAST(COALESCE({column}, -1) AS BIGINT) AS n FROM messages WHERE email_id = '{email_id}'"
        ))
    }

    fn status(&self, email_id: &str) -> (i64, i64) {
        (
            self.field(email_id, "status"),
            self.field(email_id, "reason"),
        )
    }

    fn blacklist(&self, address: &str, expires_at: Option<i64>) {
        let expires = expires_at.map_or("NULL".to_string(), |e| e.to_string());
        self.n(&format!(
            "INSERT INTO blacklist (account_id, address, source, created_at, expires_at) \
             VALUES ({}, '{address}', 'ui', 0, {expires}) RETURNING CAST(id AS BIGINT) AS n",
            self.account_id
        ));
    }

    /// The rollup agrees with the messages, status by status.
    fn assert_rollup_matches(&self) {
        for status in 0..4 {
            let rolled = self.n(&format!(
                "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS n FROM status_rollup WHERE status = {status}"
            ));
            let counted = self.n(&format!(
                "SELECT COUNT(*) AS n FROM messages WHERE status = {status}"
            ));
            assert_eq!(rolled, counted, "rollup of status {status}");
            let daily = self.n(&format!(
                "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS n FROM status_rollup_daily \
                 WHERE status = {status}"
            ));
            assert_eq!(daily, counted, "daily rollup of status {status}");
        }
        // Day by day, too: no hourly bucket is summed into the wrong UTC day.
        let misplaced = self.n(
            "SELECT COUNT(*) AS n FROM status_rollup_daily d WHERE d.count <> \
             (SELECT COALESCE(SUM(h.count), 0) FROM status_rollup h \
              WHERE h.account_id = d.account_id AND h.hour >= d.day * 24 \
              AND h.hour < d.day * 24 + 24 AND h.status = d.status AND h.reason = d.reason \
              AND h.api_user = d.api_user AND h.mail_type = d.mail_type)",
        );
        assert_eq!(misplaced, 0, "daily buckets that disagree with their hours");
        // Per tag: every tag row of a message counts once, in its message's bucket.
        let disagreeing = self.n(
            "SELECT COUNT(*) AS n FROM (SELECT t.tag, m.status, COALESCE(m.reason, 0) AS reason, \
             COUNT(*) AS c FROM message_tags t JOIN messages m ON m.id = t.message_id \
             GROUP BY t.tag, m.status, COALESCE(m.reason, 0)) AS counted \
             FULL OUTER JOIN (SELECT tag, status, reason, SUM(count) AS c FROM status_rollup_tags \
             GROUP BY tag, status, reason HAVING SUM(count) <> 0) AS rolled \
             ON rolled.tag = counted.tag AND rolled.status = counted.status \
             AND rolled.reason = counted.reason \
             WHERE rolled.c IS NULL OR counted.c IS NULL OR rolled.c <> counted.c",
        );
        assert_eq!(
            disagreeing, 0,
            "tag rollup buckets that disagree with the tagged messages"
        );
        assert!(
            self.n("SELECT COUNT(*) AS n FROM message_tags") == 0
                || self.n("SELECT COUNT(*) AS n FROM status_rollup_tags") > 0
        );
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

fn request(email_id: &str, recipient: &str, at: i64) -> serde_json::Value {
    serde_json::json!({"event": "request", "email_id": email_id, "recipient": recipient,
        "timestamp": rfc3339(at), "tags": ["welcome", "promo"], "from": "news@acme.test",
        "subject": "Hello", "send_log": ["queued"]})
}

fn event(kind: &str, email_id: &str, at: i64) -> serde_json::Value {
    serde_json::json!({"event": kind, "email_id": email_id, "timestamp": rfc3339(at)})
}

both_backends!(every_event_type_has_its_effect, |db| {
    let mut api = api(db);
    let t = now_ms() - HOUR;
    let mut deliver = event("deliver", "e1", t + 1_000);
    deliver["smtp_reply"] = "250 2.0.0 OK".into();
    deliver["mx"] = "mx.example.com".into();
    deliver["attempt"] = 1.into();
    let mut click = event("click", "e1", t + 3_000);
    click["url"] = "https://acme.test/sale".into();
    click["ip"] = "203.0.113.9".into();
    api.events(&[
        request("e1", "Alice@Example.com", t),
        deliver,
        event("open", "e1", t + 2_000),
        click,
    ]);
    assert_eq!(api.status("e1"), (DELIVERED, -1));
    assert_eq!(api.field("e1", "updated_at"), t + 1_000);
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM messages WHERE recipient = 'alice@example.com' AND api_user = 'notify' AND tags = 'welcome,promo'"),
        1
    );
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM message_tags"), 2);
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM message_events WHERE message_id IS NOT NULL"),
        4
    );
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 1 AND url = ''"),
        1
    );
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 2 AND url = 'https://acme.test/sale' AND ip = '203.0.113.9'"),
        1
    );
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM send_logs"), 1);

    // A soft bounce after delivery, classified from its reply, fills the bounce list.
    let mut soft = event("soft_bounce", "e1", t + 60_000);
    soft["smtp_reply"] = "550 5.1.1 <alice@example.com>: user unknown".into();
    api.events(&[soft]);
    assert_eq!(api.status("e1"), (SOFT_BOUNCE, ADDRESS_NOT_FOUND));
    assert_eq!(
        api.n("SELECT CAST(bounce_count AS BIGINT) AS n FROM bounces WHERE address = 'alice@example.com' AND source = 'delivery'"),
        1
    );
    assert_eq!(
        api.n("SELECT expires_at - bounced_at AS n FROM bounces"),
        HOUR,
        "first bounce: 1 h"
    );

    // An invalid with a reason given by the MTA; a second not-found raises the backoff.
    api.events(&[
        request("e2", "alice@example.com", t + 120_000),
        request("e3", "bob@example.com", t + 120_000),
    ]);
    assert_eq!(
        api.status("e2"),
        (INVALID, BLACKLISTED),
        "an unexpired bounce-list entry counts as blacklist"
    );
    let mut invalid = event("invalid", "e3", t + 130_000);
    invalid["reason"] = "spam".into();
    invalid["smtp_reply"] = "554 5.7.1 rejected as spam".into();
    api.events(&[invalid]);
    assert_eq!(api.status("e3"), (INVALID, SPAM));

    // Unsubscribes keep their reason; spam and fraud are complaints too.
    let mut unsubscribe = event("unsubscribe", "e3", t + 140_000);
    unsubscribe["reason"] = "fraud".into();
    api.events(&[unsubscribe]);
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM unsubscribes WHERE address = 'bob@example.com' AND reason = 'fraud'"),
        1
    );
    assert_eq!(
        api.n("SELECT expires_at - reported_at AS n FROM spam_reports WHERE address = 'bob@example.com'"),
        180 * DAY
    );

    // A complaint naming only the recipient needs no message.
    api.events(&[
        serde_json::json!({"event": "report_spam", "recipient": "Carol@Example.com",
        "timestamp": rfc3339(t + 150_000)}),
    ]);
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM spam_reports WHERE address = 'carol@example.com'"),
        1
    );
    api.assert_rollup_matches();
});

both_backends!(suppression_at_request_time, |db| {
    let mut api = api(db);
    let t = now_ms();
    api.blacklist("black@example.com", None);
    api.blacklist("@blocked.example", Some(t + DAY));
    api.blacklist("expired@example.com", Some(t - 1));
    api.events(&[
        serde_json::json!({"event": "unsubscribe", "recipient": "gone@example.com",
        "reason": "not_wanted", "timestamp": rfc3339(t - DAY)}),
    ]);
    api.events(&[
        request("s1", "Black@Example.com", t),
        request("s2", "anyone@blocked.example", t),
        request("s3", "gone@example.com", t),
        request("s4", "expired@example.com", t),
        request("s5", "fine@example.com", t),
    ]);
    assert_eq!(api.status("s1"), (INVALID, BLACKLISTED));
    assert_eq!(api.status("s2"), (INVALID, BLACKLISTED), "@domain entry");
    assert_eq!(api.status("s3"), (INVALID, UNSUBSCRIBED));
    assert_eq!(api.status("s4"), (REQUESTING, -1), "expired entry");
    assert_eq!(api.status("s5"), (REQUESTING, -1));

    // Nothing that happens later changes a suppressed message.
    api.events(&[
        event("deliver", "s1", t + 1_000),
        event("deliver", "s4", t + 1_000),
    ]);
    assert_eq!(api.status("s1"), (INVALID, BLACKLISTED));
    assert_eq!(api.status("s4"), (DELIVERED, -1));
    api.assert_rollup_matches();
});

both_backends!(event_ids_make_events_idempotent, |db| {
    let mut api = api(db);
    let t = now_ms();
    let mut r = request("i1", "a@example.com", t);
    r["event_id"] = "req-1".into();
    let mut s = event("soft_bounce", "i1", t + 5_000);
    s["event_id"] = "sb-1".into();
    s["reason"] = "address_not_found".into();
    let mut open = event("open", "i1", t + 6_000);
    open["event_id"] = "open-1".into();
    api.events(&[r.clone(), s.clone()]);
    let answer = api.events(&[r, s.clone(), s, open]);
    assert_eq!(answer["results"][0]["duplicate"], true);
    assert_eq!(answer["results"][1]["duplicate"], true);
    assert_eq!(answer["results"][2]["duplicate"], true);
    assert!(answer["results"][3].get("duplicate").is_none());
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM messages"), 1);
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM message_events"), 3);
    assert_eq!(
        api.n("SELECT CAST(bounce_count AS BIGINT) AS n FROM bounces"),
        1
    );
    api.assert_rollup_matches();
});

// Several clients posting the same requests at once (a retry racing its first try): every
// call is answered and each message exists once.
both_backends!(concurrent_batches_with_the_same_messages_all_apply, |db| {
    let api = api(db);
    let now = mailtrail::domain::now_ms();
    let batch: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            request(
                &format!("race-{i}$x@acme.test"),
                &format!("user{i}@acme.test"),
                now,
            )
        })
        .collect();
    let body = serde_json::Value::from(batch).to_string();
    let auth = format!("Bearer {}", api.key);
    let barrier = std::sync::Barrier::new(4);
    let answers: Vec<Resp> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut client = api.app.client();
                    barrier.wait();
                    client.post_raw(
                        "/api/v1/events",
                        &[
                            ("Content-Type", "application/json"),
                            ("Authorization", &auth),
                        ],
                        body.as_bytes(),
                    )
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.body);
        let parsed: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert!(
            parsed["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["ok"] == true),
            "{parsed}"
        );
    }
    assert_eq!(
        api.app
            .count("SELECT COUNT(*) AS n FROM messages WHERE email_id LIKE 'race-%'"),
        300
    );
    api.assert_rollup_matches();
});

both_backends!(
    concurrent_batches_updating_the_same_messages_lose_no_change,
    |db| {
        // Four clients post different events for the same stored messages at once (a delivery
        // and an open arriving through two webhooks, say). Each batch must see what the others
        // committed before it: a change computed from a stale message would be lost, and the
        // counts would no longer add up to the rows.
        let mut api = api(db);
        let t = now_ms() - HOUR;
        let ids: Vec<String> = (0..200).map(|i| format!("upd-{i}")).collect();
        let requests: Vec<serde_json::Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| request(id, &format!("user{i}@acme.test"), t))
            .collect();
        api.events(&requests);
        let kinds = ["deliver", "soft_bounce", "open", "deferred"];
        let bodies: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(k, kind)| {
                let batch: Vec<serde_json::Value> = ids
                    .iter()
                    .map(|id| {
                        let mut e = event(kind, id, t + 1_000 * (k as i64 + 1));
                        if *kind == "soft_bounce" {
                            e["reason"] = "other".into();
                        }
                        e
                    })
                    .collect();
                serde_json::Value::from(batch).to_string()
            })
            .collect();
        let auth = format!("Bearer {}", api.key);
        let barrier = std::sync::Barrier::new(kinds.len());
        std::thread::scope(|scope| {
            let calls: Vec<_> = bodies
                .iter()
                .map(|body| {
                    let (barrier, auth, app) = (&barrier, &auth, &api.app);
                    scope.spawn(move || {
                        let mut client = app.client();
                        barrier.wait();
                        client.post_raw(
                            "/api/v1/events",
                            &[
                                ("Content-Type", "application/json"),
                                ("Authorization", auth),
                            ],
                            body.as_bytes(),
                        )
                    })
                })
                .collect();
            for call in calls {
                let answer = call.join().unwrap();
                assert_eq!(answer.status, 200, "{}", answer.body);
            }
        });
        // The soft bounce is the latest state-changing event of every message.
        for id in &ids {
            assert_eq!(api.status(id).0, SOFT_BOUNCE, "{id}");
        }
        assert_eq!(
            api.n("SELECT COUNT(*) AS n FROM tracking_events"),
            ids.len() as i64
        );
        api.assert_rollup_matches();
    }
);

both_backends!(out_of_order_events_end_in_the_right_state, |db| {
    let mut api = api(db);
    let t = now_ms() - HOUR;
    // Deliver (and an open) before the request, in separate calls.
    let answer = api.events(&[
        event("deliver", "o1", t + 2_000),
        event("open", "o1", t + 9_000),
    ]);
    assert_eq!(answer["results"][0]["waiting"], true);
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM messages"), 0);
    api.events(&[request("o1", "a@example.com", t)]);
    assert_eq!(api.status("o1"), (DELIVERED, -1));
    assert_eq!(api.field("o1", "updated_at"), t + 2_000);
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM message_events WHERE message_id IS NULL"),
        0
    );
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM tracking_events"), 1);

    // Open before deliver, and a late, older deliver after a bounce: the latest event wins.
    api.events(&[
        request("o2", "b@example.com", t),
        event("open", "o2", t + 5_000),
    ]);
    assert_eq!(api.status("o2"), (REQUESTING, -1));
    let mut bounce = event("soft_bounce", "o2", t + 60_000);
    bounce["reason"] = "other".into();
    api.events(&[bounce, event("deliver", "o2", t + 1_000)]);
    assert_eq!(api.status("o2").0, SOFT_BOUNCE);
    assert_eq!(api.field("o2", "updated_at"), t + 60_000);

    // All in one call, in reverse order.
    api.events(&[
        event("deliver", "o3", t + 3_000),
        request("o3", "c@example.com", t),
    ]);
    assert_eq!(api.status("o3"), (DELIVERED, -1));
    api.assert_rollup_matches();
});

both_backends!(bad_input_is_refused_and_nothing_is_stored, |db| {
    let mut api = api(db);
    let t = now_ms();
    let r = api.post(r#"[{"event": "request", "email_id": "x1""#);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("invalid JSON"), "{}", r.body);
    let r = api.post("{\"event\":\"request\",\"email_id\":\"x2\",\"recipient\":\"a@b.c\",\"timestamp\":1}\nnot json\n");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("line 2"), "{}", r.body);
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM messages"), 0);
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM message_events"), 0);

    // NDJSON; one bad event does not sink the others.
    let lines = [
        request("x3", "a@example.com", t).to_string(),
        serde_json::json!({"event": "teleport", "email_id": "x3", "timestamp": rfc3339(t)})
            .to_string(),
        serde_json::json!({"event": "request", "email_id": "x4", "recipient": "not an address",
            "timestamp": rfc3339(t)})
        .to_string(),
        serde_json::json!({"event": "deliver", "email_id": "x3", "timestamp": "yesterday"})
            .to_string(),
        event("deliver", "x3", t + 1).to_string(),
    ];
    let r = api.post(&lines.join("\n"));
    assert_eq!(r.status, 200, "{}", r.body);
    let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let ok: Vec<bool> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(ok, [true, false, false, false, true]);
    assert!(answer["results"][1]["error"]
        .as_str()
        .unwrap()
        .contains("teleport"));
    assert_eq!(api.status("x3"), (DELIVERED, -1));
});

both_backends!(keys_decide_who_may_post, |db| {
    let mut api = api(db);
    let t = now_ms();
    assert_eq!(api.post_with_key(None, "[]").status, 401);
    let r = api.post_with_key(
        Some("mt_wrong"),
        &format!("[{}]", request("k1", "a@b.c", t)),
    );
    assert_eq!(r.status, 401);
    assert!(r.body.contains("\"code\":\"unauthorized\""), "{}", r.body);
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM messages"), 0);

    // Another account's key reaches only its own account.
    api.events(&[request("k2", "a@example.com", t)]);
    let other = api.app.account("rival");
    let (_, rival_key) = accounts::create_api_user(
        &mut api.app.conn(),
        &AccountScope::new(other.id),
        "notify",
        MailType::Trigger,
    )
    .unwrap();
    let mut invalid = event("invalid", "k2", t + 1_000);
    invalid["reason"] = "address_not_found".into();
    let r = api.post_with_key(Some(&rival_key), &format!("[{invalid}]"));
    assert_eq!(r.status, 200);
    assert_eq!(api.status("k2"), (REQUESTING, -1));
    assert_eq!(
        api.n(&format!(
            "SELECT COUNT(*) AS n FROM message_events WHERE account_id = {} AND email_id = 'k2'",
            api.account_id
        )),
        1
    );
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM bounces"), 0);

    // A revoked key is refused.
    api.n("UPDATE api_users SET revoked_at = 1 WHERE name = 'notify' RETURNING CAST(1 AS BIGINT) AS n");
    let key = api.key.clone();
    assert_eq!(api.post_with_key(Some(&key), "[]").status, 401);
});

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/ingest/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

both_backends!(bounce_messages_are_classified_and_applied, |db| {
    let mut api = api(db);
    let t = now_ms() - HOUR;
    api.events(&[
        request("e-dsn$alice@example.net", "alice@example.net", t),
        request("e-old$bob@example.org", "bob@example.org", t - 1_000),
        request("e-q$bob@example.org", "bob@example.org", t),
        event("deliver", "e-q$bob@example.org", t + 1_000),
        request("e-arf$dave@example.com", "dave@example.com", t),
        request("m-auto$carol@example.com", "carol@example.com", t),
        event("deliver", "m-auto$carol@example.com", t + 1_000),
    ]);

    // RFC 3464 DSN for a message not yet delivered: invalid, found by its emailId header.
    let answer = api.bounce_message(&fixture("dsn.eml"));
    assert_eq!(answer["classification"]["kind"], "bounce");
    assert_eq!(answer["matched_by"], "email_id");
    assert_eq!(answer["status_after"], "invalid");
    assert_eq!(answer["reason_after"], "address_not_found");
    assert_eq!(answer["lists"][0], "bounces");
    assert_eq!(
        api.status("e-dsn$alice@example.net"),
        (INVALID, ADDRESS_NOT_FOUND)
    );

    // qmail's text bounce after delivery: soft bounce of the recipient's newest message.
    let answer = api.bounce_message(&fixture("qmail.eml"));
    assert_eq!(answer["matched_by"], "recipient");
    assert_eq!(answer["email_id"], "e-q$bob@example.org");
    assert_eq!(
        api.status("e-q$bob@example.org"),
        (SOFT_BOUNCE, ADDRESS_NOT_FOUND)
    );
    assert_eq!(api.status("e-old$bob@example.org"), (REQUESTING, -1));

    // An ARF complaint becomes a spam report.
    let answer = api.bounce_message(&fixture("arf.eml"));
    assert_eq!(answer["classification"]["kind"], "complaint");
    assert_eq!(answer["lists"][0], "spam_reports");
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM spam_reports WHERE address = 'dave@example.com' AND email_id = 'e-arf$dave@example.com'"),
        1
    );

    // An auto-reply is logged on its message and changes nothing else.
    let answer = api.bounce_message(&fixture("autoreply.eml"));
    assert_eq!(answer["classification"]["kind"], "auto_reply");
    assert_eq!(answer["matched_by"], "message_id");
    assert_eq!(api.status("m-auto$carol@example.com"), (DELIVERED, -1));
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM message_events WHERE kind = 'auto_reply' AND email_id = 'm-auto$carol@example.com' AND message_id IS NOT NULL"),
        1
    );
    api.assert_rollup_matches();
});

both_backends!(arbitrary_bytes_never_break_the_endpoints, |db| {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let api = api(db);
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..400), |bytes| {
            let auth = format!("Bearer {}", api.key);
            let mut client = api.app.client();
            for path in ["/api/v1/bounce-messages", "/api/v1/events"] {
                let r = client.post_raw(path, &[("Authorization", &auth)], &bytes);
                prop_assert!(r.status == 200 || r.status == 400, "{path}: {}", r.status);
            }
            Ok(())
        })
        .unwrap();
});

both_backends!(retention_drops_old_mail_with_its_counts, |db| {
    use mailtrail::store::partitions::{self, Month};
    use mailtrail::store::retention;

    let mut api = api(db);
    let postgres = api.app.db.backend == common::Backend::Postgres;
    let now = now_ms();
    let keep_days: u32 = 30;
    let cutoff = retention::cutoff(keep_days, now);
    // Requests of many ages, each delivered and opened; the oldest months have no partition
    // yet on PostgreSQL, so ingestion makes them.
    let ages = [400, 100, 45, 31, 29, 2];
    for age in ages {
        let (id, t) = (format!("m{age}"), now - age * DAY);
        api.events(&[
            request(&id, &format!("bob{age}@example.com"), t),
            event("deliver", &id, t + 1_000),
            event("open", &id, t + 2_000),
        ]);
    }
    // An event whose request never came, long ago.
    api.events(&[event("deliver", "ghost", now - 100 * DAY)]);
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM messages"), 6);

    let pruned = retention::prune(&mut api.app.conn(), keep_days, now).unwrap();
    assert!(!pruned.skipped);
    // SQLite deletes what is older than the cutoff; PostgreSQL drops whole months, so a month
    // that reaches past the cutoff is kept entire.
    let gone = |t: i64| {
        if postgres {
            Month::of(t).end_ms() <= cutoff
        } else {
            t < cutoff
        }
    };
    let mut kept = 0;
    for age in ages {
        let t = now - age * DAY;
        let expected = i64::from(!gone(t));
        kept += expected;
        let id = format!("m{age}");
        for table in ["messages", "message_events", "tracking_events"] {
            let rows = api.n(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE email_id = '{id}'"
            ));
            let per_message = if table == "message_events" { 3 } else { 1 };
            assert_eq!(
                rows,
                expected * per_message,
                "{table} of {id}, {age} days old"
            );
        }
    }
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM messages WHERE email_id = 'm400'"),
        0
    );
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM messages WHERE email_id = 'm2'"),
        1
    );
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM messages WHERE email_id = 'm29'"),
        1
    );
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM message_events WHERE email_id = 'ghost'"),
        0
    );
    // The tags and send logs of the messages that went, went with them.
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM message_tags"), 2 * kept);
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM send_logs"), kept);
    // The counts of the hours that went, went too: the tabs still add up to the rows.
    api.assert_rollup_matches();
    let oldest_hour =
        api.n("SELECT CAST(COALESCE(MIN(hour), 0) AS BIGINT) AS n FROM status_rollup");
    assert!(
        !gone(oldest_hour * HOUR),
        "a count older than the kept rows"
    );

    if postgres {
        let mut conn = api.app.conn();
        let old = Month::of(now - 400 * DAY);
        assert!(
            pruned.partitions.contains(&old.partition_of("messages")),
            "{pruned:?}"
        );
        assert!(pruned
            .partitions
            .contains(&old.partition_of("tracking_events")));
        for table in partitions::TABLES {
            let months: Vec<Month> = partitions::list(&mut conn, table)
                .unwrap()
                .into_iter()
                .map(|p| p.month)
                .collect();
            assert!(
                months.iter().all(|m| m.end_ms() > cutoff),
                "{table}: {months:?}"
            );
            // This month and the next three are there ahead of the mail.
            let mut month = Month::of(now);
            for _ in 0..=partitions::AHEAD_MONTHS {
                assert!(
                    months.contains(&month),
                    "{table} lacks {month:?}: {months:?}"
                );
                month = month.next();
            }
        }
    } else {
        // m400, m100, m45 and m31 went.
        assert_eq!(pruned.messages, 4, "{pruned:?}");
        assert!(
            pruned.rows > 0 && pruned.partitions.is_empty(),
            "{pruned:?}"
        );
    }
    // A second run finds nothing more to do.
    let again = retention::prune(&mut api.app.conn(), keep_days, now).unwrap();
    assert_eq!(
        (again.messages, again.rows, again.partitions.len()),
        (0, 0, 0),
        "{again:?}"
    );

    // The mail that was kept still takes events.
    api.events(&[event("soft_bounce", "m2", now - DAY)]);
    assert_eq!(api.status("m2").0, SOFT_BOUNCE);
    api.assert_rollup_matches();
});

both_backends!(
    times_outside_the_years_2000_to_2099_are_refused_one_by_one,
    |db| {
        let mut api = api(db);
        let now = now_ms();
        let mut seconds = request("s1", "carol@example.com", now);
        seconds["timestamp"] = (now / 1000).into();
        let mut micros = request("s2", "carol@example.com", now);
        micros["timestamp"] = (now * 1000).into();
        let body = serde_json::Value::from(vec![
            seconds,
            request("s3", "carol@example.com", now),
            micros,
        ]);
        let r = api.post(&body.to_string());
        assert_eq!(r.status, 200, "{}", r.body);
        let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results[0]["ok"], false, "{answer}");
        assert!(
            results[0]["error"].as_str().unwrap().contains("2000"),
            "{answer}"
        );
        assert_eq!(results[1]["ok"], true, "{answer}");
        assert_eq!(results[2]["ok"], false, "{answer}");
        assert_eq!(api.n("SELECT COUNT(*) AS n FROM messages"), 1);
        assert_eq!(api.status("s3").0, REQUESTING);
    }
);

/// Several servers making the same new month at the same moment all succeed, and the month
/// exists once.
#[test]
fn servers_racing_to_make_a_partition_all_succeed() {
    use mailtrail::store::partitions::{self, Month};

    let Some(db) = common::TestDb::new(common::Backend::Postgres) else {
        return common::skip("servers_racing_to_make_a_partition_all_succeed: PostgreSQL only");
    };
    let app = TestApp::start(db);
    let far = now_ms() + 5 * 365 * DAY;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let pool = app.pool.clone();
            std::thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                partitions::ensure_months(&mut conn, [far]).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for table in partitions::TABLES {
        let name = Month::of(far).partition_of(table);
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) AS n FROM pg_inherits WHERE inhrelid = to_regclass('{name}')"
            )),
            1,
            "{name}"
        );
    }
    // Rows of that month go into it.
    let account = app.account("acme");
    app.count(&format!(
        "INSERT INTO tracking_events (account_id, email_id, recipient, api_user, kind, occurred_at) \
         VALUES ({}, 'x', 'x@example.com', 'u', 1, {far}) RETURNING CAST(id AS BIGINT) AS n",
        account.id
    ));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM {}",
            Month::of(far).partition_of("tracking_events")
        )),
        1
    );
}

mod parser {
    use mailtrail::classify::Classifier;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn the_classifier_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2_000)) {
            let c = Classifier::new();
            let _ = c.classify_input(&bytes);
            let _ = c.classify_message(&bytes);
        }

        #[test]
        fn mime_shaped_garbage_never_panics(
            head in "[A-Za-z-]{1,20}: [ -~]{0,60}",
            ctype in prop_oneof![
                Just("multipart/report; report-type=delivery-status; boundary=b"),
                Just("message/delivery-status"),
                Just("multipart/mixed; boundary=b"),
                Just("message/rfc822"),
            ],
            body in "[ -~\n]{0,800}",
        ) {
            let raw = format!("{head}\nContent-Type: {ctype}\n\n--b\nContent-Type: message/delivery-status\n\n{body}\n--b--\n");
            let _ = Classifier::new().classify_message(raw.as_bytes());
        }
    }
}

/// A feedback report (RFC 5965) from a mailbox provider's loop that names the recipient only
/// in `Original-Rcpt-To`: no Message-ID, no emailId header.
fn arf_without_message_id(recipient: &str) -> Vec<u8> {
    format!(
        "From: fbl@mail.example\r\nTo: abuse@acme.test\r\nSubject: FW: complaint\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
--b1\r\nContent-Type: message/feedback-report\r\n\r\n\
Feedback-Type: abuse\r\nUser-Agent: ExampleFBL/1.0\r\nVersion: 1\r\n\
Original-Rcpt-To: <{recipient}>\r\nArrival-Date: Thu, 8 Mar 2026 14:00:00 +0800\r\n\r\n\
--b1--\r\n"
    )
    .into_bytes()
}

both_backends!(complaints_without_a_message_id_still_count, |db| {
    let mut api = api(db);
    let t = now_ms() - HOUR;
    api.events(&[
        request("older", "frank@example.com", t - 1_000),
        request("newer", "frank@example.com", t),
    ]);
    let answer = api.bounce_message(&arf_without_message_id("Frank@Example.com"));
    assert_eq!(answer["classification"]["kind"], "complaint", "{answer}");
    assert_eq!(answer["lists"][0], "spam_reports", "{answer}");
    assert_eq!(
        answer["email_id"], "newer",
        "linked to the most recent message"
    );
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM spam_reports WHERE address = 'frank@example.com' AND email_id = 'newer'"),
        1
    );
    // No message to that address at all: the report is still recorded.
    let answer = api.bounce_message(&arf_without_message_id("stranger@example.com"));
    assert_eq!(answer["lists"][0], "spam_reports", "{answer}");
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM spam_reports WHERE address = 'stranger@example.com' AND email_id IS NULL"),
        1
    );
});

both_backends!(a_dsn_keeps_the_providers_words, |db| {
    let mut api = api(db);
    let t = now_ms() - HOUR;
    api.events(&[request("w1$gina@example.net", "gina@example.net", t)]);
    let dsn = "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@acme.test\r\n\
Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"r1\"\r\n\r\n\
--r1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n\
--r1\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; mx.example.net\r\n\r\n\
Final-Recipient: rfc822; gina@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <gina@example.net>... User Unknown\r\n\r\n\
--r1\r\nContent-Type: text/rfc822-headers\r\n\r\n\
From: news@acme.test\r\nTo: gina@example.net\r\nX-Mailtrail-Email-Id: w1$gina@example.net\r\n\r\n\
--r1--\r\n";
    let answer = api.bounce_message(dsn.as_bytes());
    assert_eq!(answer["reason_after"], "address_not_found", "{answer}");
    let reply = api.n(
        "SELECT COUNT(*) AS n FROM messages WHERE email_id = 'w1$gina@example.net' \
         AND smtp_reply = '550 5.1.1 <gina@example.net>... User Unknown' AND reason = 6 AND rule LIKE 'bounce message: %'",
    );
    assert_eq!(
        reply, 1,
        "the MTA's words, the reason code and the rule beside them"
    );
    assert_eq!(
        api.n(
            "SELECT COUNT(*) AS n FROM bounces WHERE address = 'gina@example.net' \
               AND reason_text = '550 5.1.1 <gina@example.net>... User Unknown'"
        ),
        1
    );
});

both_backends!(hostile_recipients_are_refused_one_by_one, |db| {
    let mut api = api(db);
    let t = now_ms();
    let long_local = format!("{}@example.com", "x".repeat(65));
    let long_address = format!("a@{}.example.com", "d".repeat(250));
    let events = serde_json::json!([
        request("ok", "fine@example.com", t),
        request("rlo", "ev\u{202E}moc.lia@example.com", t),
        request("zw", "zero\u{200B}width@example.com", t),
        request("ll", &long_local, t),
        request("la", &long_address, t),
        request("br", "[a@example.com]", t),
        request("[\"x\",\"y\"]", "quoted@example.com", t),
        {"event": "report_spam", "recipient": "iso\u{2066}late@example.com", "timestamp": rfc3339(t)},
    ]);
    let r = api.post(&events.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results[0]["ok"], true);
    let expect = [
        "invisible",
        "invisible",
        "64 octets",
        "254 octets",
        "brackets",
        "email_id",
        "invisible",
    ];
    for (i, word) in expect.iter().enumerate() {
        let result = &results[i + 1];
        assert_eq!(result["ok"], false, "{result}");
        assert!(
            result["error"].as_str().unwrap().contains(word),
            "{i}: {result}"
        );
    }
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM messages"), 1);
    assert_eq!(api.n("SELECT COUNT(*) AS n FROM spam_reports"), 0);
});
