//! Suppression and statuses do not depend on arrival order (DESIGN §3): for random sets of
//! events — requests, deliveries, bounces and bounce reports, unsubscribes, spam reports and
//! blacklist entries, each with its own time — every arrival order, in one batch or many, ends in the same
//! statuses, reasons and list contents. Through the real HTTP API on both backends; each
//! arrival order gets an account of its own in the same database.

mod common;

use common::TestApp;
use diesel::prelude::*;
use mailtrail::db::DbConn;
use mailtrail::domain::{now_ms, MailType};
use mailtrail::store::{accounts, AccountScope};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

const MINUTE: i64 = 60_000;
/// Events are this far apart: a first bounce (1 h) covers three slots, a second (4 h) more.
const SLOT: i64 = 20 * MINUTE;
const ADDRESSES: [&str; 3] = ["ann@x.test", "bob@x.test", "cy@y.test"];
const UNSUBSCRIBE_REASONS: [&str; 4] = ["not_wanted", "not_subscribed", "spam", "fraud"];

#[derive(Debug, Clone)]
enum What {
    Request {
        message: usize,
        who: usize,
    },
    Deliver {
        message: usize,
    },
    /// A soft bounce, an invalid, or a bounce report (soft after a delivery, else invalid); all
    /// `address_not_found`, so all fill the bounce list.
    Bounce {
        message: usize,
        kind: usize,
    },
    Unsubscribe {
        who: usize,
        reason: usize,
    },
    Spam {
        who: usize,
    },
    /// A blacklist entry (added now, before every event's time) expiring after slot `until`.
    Blacklist {
        who: usize,
        until: i64,
    },
}

fn what() -> impl Strategy<Value = What> {
    prop_oneof![
        3 => (0..4usize, 0..3usize).prop_map(|(message, who)| What::Request { message, who }),
        2 => (0..4usize).prop_map(|message| What::Deliver { message }),
        3 => (0..4usize, 0..3usize).prop_map(|(message, kind)| What::Bounce { message, kind }),
        1 => (0..3usize, 0..4usize).prop_map(|(who, reason)| What::Unsubscribe { who, reason }),
        1 => (0..3usize).prop_map(|who| What::Spam { who }),
        1 => (0..3usize, 0..10i64).prop_map(|(who, until)| What::Blacklist { who, until }),
    ]
}

/// A set of events with distinct slots, an arrival order, and where that order is cut into
/// batches.
fn scenario() -> impl Strategy<Value = (Vec<(What, i64)>, Vec<usize>, Vec<bool>)> {
    proptest::collection::vec(what(), 3..10)
        .prop_map(|mut events| {
            // One request per message and one blacklist entry per address: the set is a set.
            let mut seen_requests = std::collections::HashSet::new();
            let mut seen_black = std::collections::HashSet::new();
            events.retain(|e| match e {
                What::Request { message, .. } => seen_requests.insert(*message),
                What::Blacklist { who, .. } => seen_black.insert(*who),
                _ => true,
            });
            events
        })
        .prop_flat_map(|events| {
            let n = events.len();
            let slots = Just((0..n as i64).collect::<Vec<_>>()).prop_shuffle();
            let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            let cuts = proptest::collection::vec(any::<bool>(), n);
            (Just(events), slots, order, cuts)
        })
        .prop_map(|(events, slots, order, cuts)| {
            let mut events: Vec<(What, i64)> = events.into_iter().zip(slots).collect();
            request_first(&mut events);
            (events, order, cuts)
        })
}

/// The message a delivery-side event belongs to.
fn message_of(what: &What) -> Option<usize> {
    match what {
        What::Request { message, .. }
        | What::Deliver { message }
        | What::Bounce { message, .. } => Some(*message),
        _ => None,
    }
}

/// Gives each message's request the earliest of its events' slots: a mail server reports a
/// delivery or a bounce only after the request it answers (arrival order stays free).
fn request_first(events: &mut [(What, i64)]) {
    for m in 0..4 {
        let mine: Vec<usize> = (0..events.len())
            .filter(|i| message_of(&events[*i].0) == Some(m))
            .collect();
        let request = mine
            .iter()
            .copied()
            .find(|i| matches!(events[*i].0, What::Request { .. }));
        let earliest = mine.iter().copied().min_by_key(|i| events[*i].1);
        if let (Some(r), Some(e)) = (request, earliest) {
            let (a, b) = (events[r].1, events[e].1);
            events[r].1 = b;
            events[e].1 = a;
        }
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

/// What one event is on the wire: an event for `/api/v1/events`, or a blacklist add.
enum Wire {
    Event(Value),
    Blacklist(Value),
}

fn wire(what: &What, slot: i64, base: i64) -> Wire {
    let at = rfc3339(base + slot * SLOT);
    let id = |m: &usize| format!("m{m}");
    Wire::Event(match what {
        What::Request { message, who } => json!({"event": "request", "email_id": id(message),
            "recipient": ADDRESSES[*who], "timestamp": at}),
        What::Deliver { message } => json!({"event": "deliver", "email_id": id(message),
            "smtp_reply": "250 ok", "timestamp": at}),
        What::Bounce { message, kind } => {
            json!({"event": (["soft_bounce", "invalid", "bounce"][*kind]),
            "email_id": id(message), "reason": "address_not_found",
            "smtp_reply": format!("550 5.1.1 user unknown ({slot})"), "timestamp": at})
        }
        What::Unsubscribe { who, reason } => json!({"event": "unsubscribe",
            "recipient": ADDRESSES[*who], "reason": UNSUBSCRIBE_REASONS[*reason], "timestamp": at}),
        What::Spam { who } => json!({"event": "report_spam", "recipient": ADDRESSES[*who],
            "timestamp": at}),
        What::Blacklist { who, until } => {
            return Wire::Blacklist(json!({"address": ADDRESSES[*who],
                "expires_at": rfc3339(base + until * SLOT + 10 * MINUTE)}))
        }
    })
}

/// Rows of one text column `v`, sorted.
fn rows(conn: &mut DbConn, sql: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct V {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let mut out: Vec<String> = diesel::sql_query(sql)
        .load::<V>(conn)
        .expect("snapshot query")
        .into_iter()
        .map(|r| r.v)
        .collect();
    out.sort();
    out
}

/// Everything the order must not change, for one account.
fn snapshot(app: &TestApp, account: i64) -> Vec<Vec<String>> {
    let mut conn = app.conn();
    let conn: &mut DbConn = &mut conn;
    let t = |c: &str| format!("CAST({c} AS TEXT)");
    vec![
        rows(conn, &format!(
            "SELECT email_id || ' ' || recipient || ' ' || {} || ' ' || {} AS v FROM messages WHERE account_id = {account}",
            t("status"), t("COALESCE(reason, -1)"))),
        rows(conn, &format!(
            "SELECT address || ' n=' || {} || ' first=' || {} || ' last=' || {} || ' until=' || {} || ' ' || reason_text AS v \
             FROM bounces WHERE account_id = {account}",
            t("bounce_count"), t("COALESCE(first_bounced_at, bounced_at)"), t("bounced_at"), t("expires_at"))),
        rows(conn, &format!(
            "SELECT address || ' ' || {} || ' until=' || {} AS v FROM spam_reports WHERE account_id = {account}",
            t("reported_at"), t("expires_at"))),
        rows(conn, &format!(
            "SELECT address || ' ' || reason || ' ' || {} AS v FROM unsubscribes WHERE account_id = {account}",
            t("unsubscribed_at"))),
        rows(conn, &format!(
            "SELECT address || ' until=' || {} AS v FROM blacklist WHERE account_id = {account}",
            t("COALESCE(expires_at, -1)"))),
        // The counts follow the statuses.
        rows(conn, &format!(
            "SELECT {} || ' ' || {} || ' ' || {} AS v FROM status_rollup WHERE account_id = {account} \
             GROUP BY status, reason HAVING SUM(count) <> 0",
            t("status"), t("reason"), t("SUM(count)"))),
    ]
}

struct Run<'a> {
    app: &'a TestApp,
    n: std::cell::Cell<usize>,
}

impl Run<'_> {
    /// Posts `batches` into a fresh account and answers its snapshot.
    fn replay(&self, batches: &[Vec<&Wire>]) -> Vec<Vec<String>> {
        self.n.set(self.n.get() + 1);
        let account = self.app.account(&format!("order{}", self.n.get()));
        let (_, key) = accounts::create_api_user(
            &mut self.app.conn(),
            &AccountScope::new(account.id),
            "notify",
            MailType::Trigger,
        )
        .unwrap();
        let auth = format!("Bearer {key}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        let mut client = self.app.client();
        for batch in batches {
            let events: Vec<&Value> = batch
                .iter()
                .filter_map(|w| match w {
                    Wire::Event(v) => Some(v),
                    Wire::Blacklist(_) => None,
                })
                .collect();
            if !events.is_empty() {
                let r = client.post_raw(
                    "/api/v1/events",
                    &headers,
                    json!(events).to_string().as_bytes(),
                );
                assert_eq!(r.status, 200, "{}", r.body);
                assert!(!r.body.contains("\"ok\":false"), "{}", r.body);
            }
            for w in batch {
                if let Wire::Blacklist(body) = w {
                    let r = client.post_raw(
                        "/api/v1/suppressions/blacklist",
                        &headers,
                        body.to_string().as_bytes(),
                    );
                    assert_eq!(r.status, 201, "{}", r.body);
                }
            }
        }
        snapshot(self.app, account.id)
    }
}

both_backends!(arrival_order_changes_nothing, |db| {
    let app = TestApp::start(db);
    // Every event happens a day from now: blacklist entries, added as they arrive, are in
    // force before all of them, as entries "with times" would be.
    let base = now_ms() + 24 * 60 * MINUTE;
    let run = Run {
        app: &app,
        n: std::cell::Cell::new(0),
    };
    // The same cases every run (a fixed seed), so that CI never passes or fails by the draw;
    // `PROPTEST_CASES` with a random seed explores further by hand.
    let explore: Option<u32> = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok());
    let config = Config {
        cases: explore.unwrap_or(12),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = if explore.is_some() {
        TestRunner::new(config)
    } else {
        TestRunner::new_with_rng(
            config,
            proptest::test_runner::TestRng::deterministic_rng(
                proptest::test_runner::RngAlgorithm::ChaCha,
            ),
        )
    };
    runner
        .run(&scenario(), |(events, order, cuts)| {
            let wires: Vec<Wire> = events
                .iter()
                .map(|(w, slot)| wire(w, *slot, base))
                .collect();
            // In time order, one batch.
            let mut by_time: Vec<usize> = (0..events.len()).collect();
            by_time.sort_by_key(|i| events[*i].1);
            let canonical = run.replay(&[by_time.iter().map(|i| &wires[*i]).collect()]);
            // The drawn order, cut into batches where `cuts` says.
            let mut batches: Vec<Vec<&Wire>> = vec![Vec::new()];
            for (k, i) in order.iter().enumerate() {
                batches.last_mut().unwrap().push(&wires[*i]);
                if cuts[k] {
                    batches.push(Vec::new());
                }
            }
            let drawn = run.replay(&batches);
            prop_assert_eq!(
                &drawn,
                &canonical,
                "order {:?}, cuts {:?}, events {:?}",
                order,
                cuts,
                events
            );
            // Newest first, one event a batch.
            let reversed: Vec<Vec<&Wire>> =
                by_time.iter().rev().map(|i| vec![&wires[*i]]).collect();
            let backwards = run.replay(&reversed);
            prop_assert_eq!(&backwards, &canonical, "reverse order, events {:?}", events);
            // And in one batch, newest first.
            let one: Vec<&Wire> = by_time.iter().rev().map(|i| &wires[*i]).collect();
            let one_batch = run.replay(&[one]);
            prop_assert_eq!(
                &one_batch,
                &canonical,
                "one batch reversed, events {:?}",
                events
            );
            Ok(())
        })
        .unwrap();
});

// The two cases the issue names, by hand.
both_backends!(late_entries_and_late_requests, |db| {
    let app = TestApp::start(db);
    let base = now_ms() - 3 * 60 * MINUTE;
    let run = Run {
        app: &app,
        n: std::cell::Cell::new(0),
    };
    let request = Wire::Event(
        json!({"event": "request", "email_id": "r", "recipient": "ann@x.test",
        "timestamp": rfc3339(base)}),
    );
    let unsubscribe_after = Wire::Event(json!({"event": "unsubscribe", "recipient": "ann@x.test",
        "timestamp": rfc3339(base + 60 * MINUTE)}));
    let invalid_after = Wire::Event(
        json!({"event": "invalid", "email_id": "other", "reason": "address_not_found",
        "timestamp": rfc3339(base + 120 * MINUTE)}),
    );
    let other = Wire::Event(
        json!({"event": "request", "email_id": "other", "recipient": "ann@x.test",
        "timestamp": rfc3339(base + 119 * MINUTE)}),
    );
    // A request at T posted after an unsubscribe at T+1h stays 请求中.
    let s = run.replay(&[vec![&unsubscribe_after], vec![&request]]);
    assert!(s[0].contains(&"r ann@x.test 0 -1".to_string()), "{s:?}");
    // A request at T posted after an invalid 406 stamped T+2h is not blacklisted by it.
    let s = run.replay(&[vec![&other, &invalid_after], vec![&request]]);
    assert!(s[0].contains(&"r ann@x.test 0 -1".to_string()), "{s:?}");
    // An unsubscribe at T-1h that arrives after the request at T suppresses it all the same.
    let unsubscribe_before = Wire::Event(json!({"event": "unsubscribe", "recipient": "ann@x.test",
        "timestamp": rfc3339(base - 60 * MINUTE)}));
    let s = run.replay(&[vec![&request], vec![&unsubscribe_before]]);
    assert!(s[0].contains(&"r ann@x.test 3 2".to_string()), "{s:?}");
    let s2 = run.replay(&[vec![&unsubscribe_before, &request]]);
    assert_eq!(s, s2);

    // A bounce report after a delivery is a soft bounce, whichever comes first and whether the
    // delivery is in the same batch, an earlier one, or a later one.
    let requested = Wire::Event(
        json!({"event": "request", "email_id": "b", "recipient": "bob@x.test",
        "timestamp": rfc3339(base)}),
    );
    let delivered = Wire::Event(json!({"event": "deliver", "email_id": "b",
        "timestamp": rfc3339(base + MINUTE)}));
    let invalid = Wire::Event(json!({"event": "invalid", "email_id": "b",
        "reason": "spam", "timestamp": rfc3339(base + 2 * MINUTE)}));
    let reported = Wire::Event(json!({"event": "bounce", "email_id": "b",
        "smtp_reply": "550 5.1.1 user unknown", "timestamp": rfc3339(base + 3 * MINUTE)}));
    let soft = "b bob@x.test 2 6".to_string();
    for batches in [
        vec![vec![&requested, &delivered, &reported]],
        vec![vec![&requested, &reported, &delivered]],
        vec![vec![&requested], vec![&delivered], vec![&reported]],
        vec![vec![&reported], vec![&delivered], vec![&requested]],
        vec![vec![&requested, &reported], vec![&delivered]],
        // An explicit failure between them does not hide the delivery.
        vec![
            vec![&requested, &delivered],
            vec![&invalid],
            vec![&reported],
        ],
        vec![
            vec![&reported, &invalid],
            vec![&requested],
            vec![&delivered],
        ],
    ] {
        let s = run.replay(&batches);
        assert!(s[0].contains(&soft), "{s:?}");
    }
    let s = run.replay(&[vec![&requested, &reported]]);
    assert!(
        s[0].contains(&"b bob@x.test 3 6".to_string()),
        "no delivery: {s:?}"
    );
});
