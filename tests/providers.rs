//! Mailbox providers on both backends, through the real stack: the provider each message gets
//! at ingestion (domain list, MX, the account's own domains), the provider rollup kept exactly
//! (out-of-order and duplicate events, retention), `/providers` and a provider page against a
//! count from the messages, and `/status?provider=`.

mod common;

use common::{Client, Resp, TestApp};
use mailtrail::domain::{now_ms, MailType, Role};
use mailtrail::store::{accounts, AccountScope};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

struct Api {
    app: TestApp,
    client: Client,
    key: String,
    account: mailtrail::store::models::Account,
}

fn api(db: common::TestDb) -> Api {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "pw");
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
        account,
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

fn request(email_id: &str, recipient: &str, at: i64) -> serde_json::Value {
    serde_json::json!({"event": "request", "email_id": email_id, "recipient": recipient,
        "timestamp": rfc3339(at)})
}

fn event(kind: &str, email_id: &str, at: i64) -> serde_json::Value {
    serde_json::json!({"event": kind, "email_id": email_id, "timestamp": rfc3339(at)})
}

fn failure(kind: &str, email_id: &str, at: i64, reply: &str) -> serde_json::Value {
    let mut e = event(kind, email_id, at);
    e["smtp_reply"] = reply.into();
    e
}

impl Api {
    fn events(&mut self, events: &[serde_json::Value]) {
        let auth = format!("Bearer {}", self.key);
        let r: Resp = self.client.post_raw(
            "/api/v1/events",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
            ],
            serde_json::Value::from(events.to_vec())
                .to_string()
                .as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        for result in answer["results"].as_array().unwrap() {
            assert_eq!(result["ok"], true, "{answer}");
        }
    }

    fn n(&self, sql: &str) -> i64 {
        self.app.count(sql)
    }

    fn provider(&self, email_id: &str) -> String {
        let ids = [
            "qq",
            "netease",
            "gmail",
            "exmail",
            "bigcorp",
            "example.org",
            "unknown",
        ];
        for id in ids {
            if self.n(&format!(
                "SELECT COUNT(*) AS n FROM messages WHERE email_id = '{email_id}' AND provider = '{id}'"
            )) == 1
            {
                return id.to_string();
            }
        }
        panic!("{email_id} has none of the expected providers");
    }

    /// The provider rollup agrees with the messages: per provider, status and reason, hourly
    /// and daily, and the first opens and clicks once per message.
    fn assert_rollup_matches(&self) {
        let grouped = "SELECT provider, requested_at / 3600000 AS hour, status, \
                       COALESCE(reason, 0) AS reason, COUNT(*) AS c FROM messages \
                       GROUP BY provider, requested_at / 3600000, status, COALESCE(reason, 0)";
        let missing = self.n(&format!(
            "SELECT COUNT(*) AS n FROM ({grouped}) m WHERE m.c <> (SELECT COALESCE(SUM(r.count), 0) \
             FROM provider_rollup r WHERE r.provider = m.provider AND r.hour = m.hour \
             AND r.status = m.status AND r.reason = m.reason)"
        ));
        assert_eq!(missing, 0, "message buckets the rollup counts differently");
        let extra = self.n(
            "SELECT COUNT(*) AS n FROM provider_rollup r WHERE r.status < 100 AND r.count <> \
             (SELECT COUNT(*) FROM messages m WHERE m.provider = r.provider \
              AND m.requested_at / 3600000 = r.hour AND m.status = r.status \
              AND COALESCE(m.reason, 0) = r.reason)",
        );
        assert_eq!(extra, 0, "rollup buckets without their messages");
        // The daily rows are days of the zone the account's rollup names (the tests' zones
        // keep one offset all year).
        let offset = self.rollup_offset_hours();
        let misplaced = self.n(&format!(
            "SELECT COUNT(*) AS n FROM provider_rollup_daily d WHERE d.count <> \
             (SELECT COALESCE(SUM(h.count), 0) FROM provider_rollup h \
              WHERE h.account_id = d.account_id AND h.hour >= d.day * 24 - {offset} \
              AND h.hour < d.day * 24 + 24 - {offset} AND h.provider = d.provider \
              AND h.status = d.status AND h.reason = d.reason)",
        ));
        assert_eq!(misplaced, 0, "daily buckets that disagree with their hours");
        let unsummed = self.n(&format!(
            "SELECT COUNT(*) AS n FROM (SELECT provider, (hour + {offset}) / 24 AS day, status, \
             reason, SUM(count) AS c FROM provider_rollup GROUP BY provider, (hour + {offset}) / 24, \
             status, reason) h WHERE h.c <> 0 AND h.c <> (SELECT COALESCE(SUM(d.count), 0) \
             FROM provider_rollup_daily d WHERE d.provider = h.provider AND d.day = h.day \
             AND d.status = h.status AND d.reason = h.reason)",
        ));
        assert_eq!(unsummed, 0, "hours missing from their days");
        for (code, kind) in [(100, 1), (101, 2)] {
            let engaged = self.n(&format!(
                "SELECT COUNT(*) AS n FROM (SELECT DISTINCT email_id FROM tracking_events \
                 WHERE kind = {kind}) t"
            ));
            let rolled = self.n(&format!(
                "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS n FROM provider_rollup \
                 WHERE status = {code}"
            ));
            assert_eq!(rolled, engaged, "first engagements of kind {kind}");
            // Each counts in its message's bucket as the message is filed now.
            let firsts = format!(
                "SELECT m.provider, m.requested_at / 3600000 AS hour, COUNT(DISTINCT m.id) AS c \
                 FROM messages m JOIN tracking_events t ON t.account_id = m.account_id \
                 AND t.email_id = m.email_id WHERE t.kind = {kind} \
                 GROUP BY m.provider, m.requested_at / 3600000"
            );
            let misfiled = self.n(&format!(
                "SELECT COUNT(*) AS n FROM ({firsts}) e WHERE e.c <> (SELECT \
                 COALESCE(SUM(r.count), 0) FROM provider_rollup r WHERE r.provider = e.provider \
                 AND r.hour = e.hour AND r.status = {code})"
            ));
            assert_eq!(misfiled, 0, "first engagements of kind {kind} by provider");
        }
    }

    /// The offset in hours of the zone the account's daily rollup rows are days of.
    fn rollup_offset_hours(&self) -> i64 {
        use chrono::Offset;
        #[derive(diesel::QueryableByName)]
        struct Z {
            #[diesel(sql_type = diesel::sql_types::Text)]
            zone: String,
        }
        use diesel::RunQueryDsl;
        let zone: Vec<Z> = diesel::sql_query(format!(
            "SELECT zone FROM provider_rollup_zone WHERE account_id = {}",
            self.account.id
        ))
        .load(&mut *self.app.conn())
        .expect("rollup zone");
        let Some(z) = zone.first() else { return 0 };
        let tz: chrono_tz::Tz = z.zone.parse().expect("a zone");
        let seconds = chrono::Utc::now()
            .with_timezone(&tz)
            .offset()
            .fix()
            .local_minus_utc();
        i64::from(seconds / 3600)
    }

    /// Sets the account's time zone.
    fn set_zone(&self, zone: &str) {
        use diesel::RunQueryDsl;
        diesel::sql_query(format!(
            "UPDATE accounts SET time_zone = '{zone}' WHERE id = {}",
            self.account.id
        ))
        .execute(&mut *self.app.conn())
        .expect("zone");
    }

    /// An owner's client, signed in.
    fn owner(&self) -> Client {
        let mut owner = self.app.client();
        assert_eq!(owner.login("owner@acme.test", "pw").status, 303);
        owner
    }
}

both_backends!(each_message_gets_its_provider, |db| {
    let mut api = api(db);
    let t = now_ms() - 2 * HOUR;
    let mut via_exmail = event("deliver", "m4", t + 1_000);
    via_exmail["mx"] = "mxbiz1.qq.com".into();
    let mut via_own_mx = event("deliver", "m5", t + 1_000);
    via_own_mx["mx"] = "mx.example.org".into();
    api.events(&[
        request("m1", "Alice@QQ.com", t),
        request("m2", "bob@vip.163.com", t),
        request("m3", "carol@googlemail.com", t),
        request("m4", "dave@acme-hosted.cn", t),
        via_exmail,
        request("m5", "erin@example.org", t),
        via_own_mx,
    ]);
    assert_eq!(api.provider("m1"), "qq");
    assert_eq!(api.provider("m2"), "netease");
    assert_eq!(api.provider("m3"), "gmail");
    // An unlisted domain whose MX is Tencent Exmail is Exmail's; one on its own MX is itself.
    assert_eq!(api.provider("m4"), "exmail");
    assert_eq!(api.provider("m5"), "example.org");

    // An owner maps a domain of their own; mail from then on counts under that name.
    let mut owner = api.app.client();
    assert_eq!(owner.login("owner@acme.test", "pw").status, 303);
    let token = owner.token();
    let bad = owner.post_form(
        "/providers/domains",
        &[
            ("csrf_token", &token),
            ("domain", "not a domain"),
            ("provider", "x"),
        ],
    );
    assert_eq!(bad.status, 400, "a bad domain is refused with a message");
    let saved = owner.post_form(
        "/providers/domains",
        &[
            ("csrf_token", &token),
            ("domain", "BigCorp.cn"),
            ("provider", "bigcorp"),
        ],
    );
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains("data-domain=\"bigcorp.cn\""));
    api.events(&[request("m6", "frank@bigcorp.cn", t)]);
    assert_eq!(api.provider("m6"), "bigcorp");
    api.assert_rollup_matches();
});

both_backends!(the_rollup_stays_exact, |db| {
    let mut api = api(db);
    let t = now_ms() - 5 * HOUR;
    // Out of order: failures and opens before their requests, across batches.
    api.events(&[
        failure(
            "invalid",
            "o1",
            t + 2_000,
            "550 5.1.1 <a@163.com>: user unknown",
        ),
        event("open", "o2", t + 9_000),
        event("deliver", "o2", t + 1_000),
    ]);
    api.events(&[
        request("o1", "a@163.com", t),
        request("o2", "b@qq.com", t),
        request("o3", "c@gmail.com", t + HOUR),
        failure(
            "soft_bounce",
            "o3",
            t + HOUR + 1_000,
            "421 4.7.0 try again later",
        ),
        event("deliver", "o3", t + HOUR + 60_000),
        event("click", "o3", t + HOUR + 70_000),
    ]);
    // Duplicates: the same request, the same events again, an event id seen before.
    let mut once = event("open", "o3", t + HOUR + 80_000);
    once["event_id"] = "ev-1".into();
    api.events(&[once.clone(), once.clone()]);
    api.events(&[
        request("o1", "a@163.com", t),
        event("open", "o2", t + 9_000),
        event("open", "o2", t + 10_000),
        event("click", "o3", t + HOUR + 71_000),
        once,
    ]);
    // A status that changes twice in one batch, and a late delivery after a soft bounce.
    api.events(&[
        request("o4", "d@126.com", t + 2 * HOUR),
        failure("soft_bounce", "o4", t + 2 * HOUR + 1_000, "451 MI:SFQ"),
        failure("invalid", "o4", t + 2 * HOUR + 2_000, "550 user unknown"),
    ]);
    assert_eq!(api.provider("o1"), "netease");
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM messages WHERE status = 3 AND provider = 'netease'"),
        2
    );
    api.assert_rollup_matches();
    let opened = api.n(
        "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS n FROM provider_rollup WHERE status = 100",
    );
    assert_eq!(opened, 2, "o2 and o3 opened, each counted once");
});

both_backends!(retention_trims_the_provider_rollup, |db| {
    use mailtrail::store::retention;
    let mut api = api(db);
    let now = now_ms();
    for age in [100, 45, 2] {
        let (id, t) = (format!("r{age}"), now - age * DAY);
        api.events(&[
            request(&id, &format!("x{age}@163.com"), t),
            event("deliver", &id, t + 1_000),
        ]);
    }
    retention::prune(&mut api.app.conn(), 30, now).unwrap();
    let cutoff_hour = retention::cutoff(30, now) / HOUR;
    assert_eq!(
        api.n(&format!(
            "SELECT COUNT(*) AS n FROM provider_rollup WHERE hour < {cutoff_hour}"
        )),
        0,
        "no count older than the retention"
    );
    assert_eq!(
        api.n(&format!(
            "SELECT COUNT(*) AS n FROM provider_rollup_daily WHERE day < {}",
            cutoff_hour / 24
        )),
        0
    );
    assert_eq!(
        api.n("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS n FROM provider_rollup WHERE status = 1"),
        1,
        "the recent message still counts"
    );
});

/// The number in attribute `attr` of the row `data-provider="id"`.
fn row_attr(body: &str, id: &str, attr: &str) -> Option<String> {
    let start = body.find(&format!("<tr data-provider=\"{id}\""))?;
    let row = &body[start..start + body[start..].find("</tr>")?];
    let marker = format!("{attr}=\"");
    let at = row.find(&marker)? + marker.len();
    Some(row[at..at + row[at..].find('"')?].to_string())
}

/// The text of the element with `data-figure="figure"` in the row of `id`.
fn figure(body: &str, id: &str, figure: &str) -> String {
    let start = body.find(&format!("<tr data-provider=\"{id}\"")).unwrap();
    let row = &body[start..start + body[start..].find("</tr>").unwrap()];
    let marker = format!("data-figure=\"{figure}\"");
    let at = row.find(&marker).unwrap();
    let open = row[at..].find('>').unwrap() + at + 1;
    row[open..open + row[open..].find('<').unwrap()].to_string()
}

both_backends!(pages_agree_with_the_messages, |db| {
    let mut api = api(db);
    api.app.generate(&api.account, 3_000, 10);
    // A NetEase refusal of our own, with the server's words.
    let t = now_ms() - HOUR;
    api.events(&[
        request("spm1", "zed@163.com", t),
        failure(
            "invalid",
            "spm1",
            t + 1_000,
            "554 DT:SPM 163 mx14,QsCowAB1234: 发送的邮件内容包含了未被许可的信息",
        ),
    ]);
    let mut client = api.app.client();
    assert_eq!(client.login("owner@acme.test", "pw").status, 303);
    let page = client.get("/providers?days=7");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<svg class=\"spark\""),
        "sparklines drawn on the server"
    );
    assert!(!page.body.contains("<script"), "no script needed");

    let zone = chrono_tz::Asia::Shanghai;
    use chrono::{Duration, TimeZone, Utc};
    let today = Utc::now().with_timezone(&zone).date_naive();
    let start = zone
        .from_local_datetime(&(today - Duration::days(6)).and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis();
    for id in ["qq", "netease", "gmail", "exmail"] {
        let requests = api.n(&format!(
            "SELECT COUNT(*) AS n FROM messages WHERE provider = '{id}' AND requested_at >= {start}"
        ));
        assert!(requests > 0, "{id} has mail");
        assert_eq!(
            row_attr(&page.body, id, "data-requests"),
            Some(requests.to_string()),
            "requests of {id}"
        );
        let invalid = api.n(&format!(
            "SELECT COUNT(*) AS n FROM messages WHERE provider = '{id}' AND status = 3 \
             AND requested_at >= {start}"
        ));
        assert_eq!(
            figure(&page.body, id, "invalid"),
            format!("{:.1}%", invalid as f64 * 100.0 / requests as f64),
            "invalid rate of {id}"
        );
        let delivered = api.n(&format!(
            "SELECT COUNT(*) AS n FROM messages WHERE provider = '{id}' AND status = 1 \
             AND requested_at >= {start}"
        ));
        assert_eq!(
            figure(&page.body, id, "delivered"),
            format!("{:.1}%", delivered as f64 * 100.0 / requests as f64),
            "delivered rate of {id}"
        );
    }
    // Each figure links to /status with the provider; that page counts the same.
    let netease_requests = row_attr(&page.body, "netease", "data-requests").unwrap();
    let status = client.get(&format!(
        "/status?from={}&to={today}&provider=netease",
        today - Duration::days(6)
    ));
    assert_eq!(status.status, 200);
    assert!(
        status
            .body
            .contains(&format!("data-count=\"{netease_requests}\""))
            || status
                .body
                .contains(&format!("data-count-raw=\"{netease_requests}\""))
            || status
                .body
                .contains(&format!(">{}<", grouped(netease_requests.parse().unwrap()))),
        "the status tab counts the provider's messages"
    );
    // Every row of the filtered table is NetEase's.
    let ids: Vec<i64> = status
        .body
        .match_indices("<tr data-id=\"")
        .map(|(at, m)| {
            let rest = &status.body[at + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    assert!(!ids.is_empty());
    for id in ids {
        assert_eq!(
            api.n(&format!(
                "SELECT COUNT(*) AS n FROM messages WHERE id = {id} AND provider = 'netease'"
            )),
            1
        );
    }
    let bad = client.get("/status?provider=not%20a%20provider");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("data-field=\"provider\""));

    // The provider page: its reasons, the servers' replies grouped, recent failures.
    let netease = client.get("/providers/netease?days=7");
    assert_eq!(netease.status, 200);
    assert!(netease.body.contains("id=\"replies\""));
    assert!(
        netease.body.contains("DT:SPM"),
        "the bad hour's replies are shown"
    );
    // Its recent failures are the provider's newest soft bounces and invalid messages of the
    // period, newest first, and nothing else.
    let section = &netease.body[netease.body.find("id=\"failures\"").unwrap()..];
    let listed: Vec<i64> = section
        .match_indices("<tr data-id=\"")
        .map(|(at, m)| {
            let rest = &section[at + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    let newest = api.app.numbers(&format!(
        "SELECT id AS n FROM messages WHERE provider = 'netease' AND status IN (2, 3) \
         AND requested_at >= {start} ORDER BY requested_at DESC, id DESC LIMIT 20"
    ));
    assert!(newest.len() >= 2, "the generated mail has NetEase failures");
    assert_eq!(listed, newest, "the newest failures, newest first");
    assert_eq!(client.get("/providers/bad%20id").status, 404);
    // Sorting and the other periods answer.
    for q in [
        "days=1&sort=invalid&dir=desc",
        "days=30&sort=provider&dir=asc",
    ] {
        assert_eq!(client.get(&format!("/providers?{q}")).status, 200, "{q}");
    }
});

fn grouped(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The attributes of the provider page's trend bars: (start, all, failed).
fn trend(body: &str) -> Vec<(String, i64, i64)> {
    let attr = |g: &str, name: &str| {
        let marker = format!("{name}=\"");
        let at = g.find(&marker).unwrap() + marker.len();
        g[at..at + g[at..].find('"').unwrap()].to_string()
    };
    body.match_indices("<g data-start=")
        .map(|(at, _)| {
            let g = &body[at..at + body[at..].find('>').unwrap()];
            (
                attr(g, "data-start"),
                attr(g, "data-all").parse().unwrap(),
                attr(g, "data-failed").parse().unwrap(),
            )
        })
        .collect()
}

both_backends!(the_trend_counts_the_days_of_the_accounts_zone, |db| {
    use chrono::{Duration, TimeZone, Utc};
    let mut api = api(db);
    // NetEase mail every five hours over nine days, every third message invalid.
    let now = now_ms();
    let mut events = Vec::new();
    for k in 0..44 {
        let (id, at) = (format!("z{k}"), now - k * 5 * HOUR - 60_000);
        events.push(request(&id, &format!("u{k}@163.com"), at));
        if k % 3 == 0 {
            events.push(failure("invalid", &id, at + 1_000, "550 user unknown"));
        } else {
            events.push(event("deliver", &id, at + 1_000));
        }
    }
    api.events(&events);
    let mut owner = api.owner();
    // Each zone twice: just set (the daily rows still count the days of the zone before: the
    // pages read the hours), then with the daily rows summed again as the zone's days, as a
    // change in settings or a server start does.
    let zones = ["Asia/Shanghai", "America/Sao_Paulo", "UTC", "Asia/Kolkata"];
    for (name, realigned) in zones.iter().flat_map(|z| [(*z, false), (*z, true)]) {
        api.set_zone(name);
        let zone: chrono_tz::Tz = name.parse().unwrap();
        if realigned {
            let scope = mailtrail::store::AccountScope::new(api.account.id);
            let mut conn = api.app.conn();
            mailtrail::store::providers::realign_days(&mut conn, &scope, &zone).unwrap();
            drop(conn);
            if zone.name() != "Asia/Kolkata" {
                api.assert_rollup_matches();
            }
        }
        let page = owner.get("/providers/netease?days=7");
        assert_eq!(page.status, 200);
        let bars = trend(&page.body);
        assert_eq!(bars.len(), 7, "{name}: one bar per day of the zone");
        let today = Utc::now().with_timezone(&zone).date_naive();
        // A day starts with the hour its midnight falls in (Kolkata's at half past).
        let start = |d: chrono::NaiveDate| {
            zone.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
                .unwrap()
                .timestamp_millis()
                .div_euclid(HOUR)
                * HOUR
        };
        for (i, (label, all, failed)) in bars.iter().enumerate() {
            let day = today - Duration::days(6 - i as i64);
            assert_eq!(label, &day.to_string(), "{name}: bars are the zone's days");
            let (from, to) = (start(day), start(day + Duration::days(1)));
            let count = |status: &str| {
                api.n(&format!(
                    "SELECT COUNT(*) AS n FROM messages WHERE provider = 'netease' \
                     AND requested_at >= {from} AND requested_at < {to}{status}"
                ))
            };
            assert_eq!(*all, count(""), "{name} {day}: requests");
            assert_eq!(*failed, count(" AND status = 3"), "{name} {day}: failures");
        }
        let total: i64 = bars.iter().map(|b| b.1).sum();
        assert!(total > 20, "{name}: the week holds mail ({total})");
    }
    // An owner's change of zone in settings sums the daily rows again as the new zone's days.
    let token = owner.token();
    let saved = owner.post_form(
        "/settings/account",
        &[("csrf_token", &token), ("time_zone", "America/Sao_Paulo")],
    );
    assert_eq!(saved.status, 303);
    assert_eq!(
        api.rollup_offset_hours(),
        -3,
        "the daily rows are São Paulo's days"
    );
    api.assert_rollup_matches();
});

both_backends!(an_owners_mapping_refiles_the_mail_already_stored, |db| {
    let mut api = api(db);
    let t = now_ms() - 3 * HOUR;
    let mut via_exmail = event("deliver", "b3", t + 2_000);
    via_exmail["mx"] = "mxbiz1.qq.com".into();
    api.events(&[
        request("b1", "ann@bigcorp.cn", t),
        event("deliver", "b1", t + 1_000),
        event("open", "b1", t + 5_000),
        request("b2", "ben@BigCorp.cn", t + HOUR),
        failure("invalid", "b2", t + HOUR + 1_000, "550 no such user"),
        request("b3", "cat@bigcorp.cn", t),
        via_exmail,
        event("click", "b3", t + 9_000),
        request("o1", "dan@other.cn", t),
    ]);
    let filed = |api: &Api, p: &str| {
        api.n(&format!(
            "SELECT COUNT(*) AS n FROM messages WHERE email_id LIKE 'b%' AND provider = '{p}'"
        ))
    };
    assert_eq!(filed(&api, "bigcorp.cn"), 2);
    assert_eq!(
        filed(&api, "exmail"),
        1,
        "an unlisted domain on Exmail is Exmail's"
    );
    api.assert_rollup_matches();

    let mut owner = api.owner();
    let token = owner.token();
    let saved = owner.post_form(
        "/providers/domains",
        &[
            ("csrf_token", &token),
            ("domain", "bigcorp.cn"),
            ("provider", "bigcorp"),
        ],
    );
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(filed(&api, "bigcorp"), 3, "the domain's stored mail moved");
    assert_eq!(
        api.n("SELECT COUNT(*) AS n FROM messages WHERE email_id = 'o1' AND provider = 'other.cn'"),
        1,
        "other domains stay"
    );
    api.assert_rollup_matches();
    let page = owner.get("/providers?days=7");
    assert_eq!(
        row_attr(&page.body, "bigcorp", "data-requests").as_deref(),
        Some("3")
    );
    assert_eq!(row_attr(&page.body, "bigcorp.cn", "data-requests"), None);

    // Removed, the mapping gives the mail back to the domain, or to the MX's provider.
    let token = owner.token();
    let removed = owner.post_form(
        "/providers/domains/delete",
        &[("csrf_token", &token), ("domain", "bigcorp.cn")],
    );
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(filed(&api, "bigcorp"), 0);
    assert_eq!(filed(&api, "bigcorp.cn"), 2);
    assert_eq!(filed(&api, "exmail"), 1);
    api.assert_rollup_matches();
});

both_backends!(an_open_before_the_mx_moves_with_the_message, |db| {
    let mut api = api(db);
    let t = now_ms() - 4 * HOUR;
    let with_mx = |id: &str, at: i64| {
        let mut e = event("deliver", id, at);
        e["mx"] = "mxbiz2.qq.com".into();
        e
    };
    // Across batches: opened and clicked, then the delivery names Exmail's MX.
    api.events(&[
        request("x1", "amy@hosted-a.cn", t),
        event("open", "x1", t + 5_000),
        event("click", "x1", t + 6_000),
    ]);
    api.assert_rollup_matches();
    api.events(&[with_mx("x1", t + 1_000)]);
    // In one batch, out of order: the open comes before the request and the delivery.
    api.events(&[
        event("open", "x2", t + 7_000),
        request("x2", "bo@hosted-b.cn", t),
        with_mx("x2", t + 1_000),
    ]);
    for id in ["x1", "x2"] {
        assert_eq!(
            api.n(&format!(
                "SELECT COUNT(*) AS n FROM messages WHERE email_id = '{id}' AND provider = 'exmail'"
            )),
            1,
            "{id} is Exmail's"
        );
    }
    let engaged = |p: &str, status: i16| {
        api.n(&format!(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS n FROM provider_rollup \
             WHERE provider = '{p}' AND status = {status}"
        ))
    };
    assert_eq!(engaged("exmail", 100), 2, "both opens moved to Exmail");
    assert_eq!(engaged("exmail", 101), 1, "the click too");
    assert_eq!(engaged("hosted-a.cn", 100), 0);
    assert_eq!(engaged("hosted-a.cn", 101), 0);
    api.assert_rollup_matches();
});
