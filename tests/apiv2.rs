//! SendCloud's API v2 (`/apiv2/…`) through real HTTP on both backends: every endpoint called
//! in SendCloud's documented shape (GET query strings and POST forms), the windows and their
//! limits in the account's zone, offset paging, the error envelopes, and account isolation.
//! Data goes in through the events API, as a mail server would post it.

mod common;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use common::{Client, TestApp};
use mailtrail::domain::{day_start, now_ms, MailType};
use mailtrail::store::accounts::{self, AccountSettings};
use mailtrail::store::AccountScope;
use serde_json::{json, Value};

const SECOND: i64 = 1_000;
const HOUR: i64 = 3_600_000;

/// Parameters of a call besides the credentials.
type Params<'a> = &'a [(&'a str, &'a str)];

struct Sc {
    app: TestApp,
    client: Client,
    key: String,
    account_id: i64,
}

/// The account `acme` with the API_USER `notify` (the caller) and `billing`.
fn setup(db: common::TestDb) -> Sc {
    let app = TestApp::start(db);
    let account = app.account("acme");
    let scope = AccountScope::new(account.id);
    let (_, key) = accounts::create_api_user(&mut app.conn(), &scope, "notify", MailType::Trigger)
        .expect("api user");
    accounts::create_api_user(&mut app.conn(), &scope, "billing", MailType::Trigger)
        .expect("second api user");
    let client = app.client();
    Sc {
        app,
        client,
        key,
        account_id: account.id,
    }
}

impl Sc {
    /// Posts events through `/api/v1/events`; every one must be accepted.
    fn events(&mut self, events: Vec<Value>) {
        let auth = format!("Bearer {}", self.key);
        let r = self.client.post_raw(
            "/api/v1/events",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            Value::from(events).to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let answer: Value = serde_json::from_str(&r.body).unwrap();
        for result in answer["results"].as_array().unwrap() {
            assert_eq!(result["ok"], true, "{answer}");
        }
    }

    /// A call as `notify` with its key.
    fn call(&mut self, method: &str, path: &str, params: &[(&str, &str)]) -> Value {
        let key = self.key.clone();
        self.call_as(method, path, "notify", &key, params)
    }

    /// A call with the given credentials: a GET query string or a POST form, as SendCloud's
    /// clients send them. Every answer, error or not, is HTTP 200 with the JSON envelope.
    fn call_as(
        &mut self,
        method: &str,
        path: &str,
        api_user: &str,
        key: &str,
        params: &[(&str, &str)],
    ) -> Value {
        let mut fields = vec![("apiUser", api_user), ("apiKey", key)];
        fields.extend_from_slice(params);
        let r = match method {
            "GET" => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&fields)
                    .finish();
                self.client.get(&format!("{path}?{query}"))
            }
            "POST" => self.client.post_form(path, &fields),
            other => panic!("no method {other}"),
        };
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            r.header("content-type")
                .unwrap_or("")
                .starts_with("application/json"),
            "{path}: {:?}",
            r.headers
        );
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
    }

    fn zone(&self) -> Tz {
        accounts::get_account(&mut self.app.conn(), self.account_id)
            .unwrap()
            .unwrap()
            .zone()
    }

    fn set_zone(&self, zone: &str) {
        accounts::update_settings(
            &mut self.app.conn(),
            &AccountScope::new(self.account_id),
            &AccountSettings {
                time_zone: zone,
                mask_addresses: false,
                export_allowed: true,
            },
        )
        .unwrap();
    }
}

/// The `info` of a successful answer.
fn ok(answer: &Value) -> &Value {
    assert_eq!(answer["result"], true, "{answer}");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["message"], "请求成功", "{answer}");
    &answer["info"]
}

/// The `statusCode` of an error answer.
fn error_code(answer: &Value) -> i64 {
    assert_eq!(answer["result"], false, "{answer}");
    assert_eq!(answer["info"], json!({}), "{answer}");
    assert!(
        !answer["message"].as_str().unwrap_or("").is_empty(),
        "{answer}"
    );
    answer["statusCode"].as_i64().expect("a numeric statusCode")
}

fn today(zone: &Tz) -> NaiveDate {
    Utc::now().with_timezone(zone).date_naive()
}

/// Midnight of today, `days_ago` days back, in `zone`.
fn midnight(zone: &Tz, days_ago: i64) -> i64 {
    day_start(zone, today(zone) - Duration::days(days_ago))
}

fn date(zone: &Tz, days_ago: i64) -> String {
    (today(zone) - Duration::days(days_ago))
        .format("%Y-%m-%d")
        .to_string()
}

/// `yyyy-MM-dd HH:mm:ss` in `zone`, computed here rather than by the code under test.
fn local(zone: &Tz, ms: i64) -> String {
    zone.timestamp_millis_opt(ms)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn request(email_id: &str, recipient: &str, at: i64) -> Value {
    json!({"event": "request", "email_id": email_id, "recipient": recipient, "timestamp": at})
}

/// A request and, a second later, an `address_not_found` failure: a bounce-list entry at `at`.
fn bounced(email_id: &str, recipient: &str, at: i64) -> Vec<Value> {
    vec![
        request(email_id, recipient, at - SECOND),
        json!({"event": "invalid", "email_id": email_id, "timestamp": at,
               "reason": "address_not_found", "smtp_reply": "550 5.1.1 user unknown"}),
    ]
}

fn strings(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| v[field].as_str().unwrap_or("").to_string())
        .collect()
}

both_backends!(email_status_answers_in_sendclouds_shape, |db| {
    let mut sc = setup(db);
    let zone = sc.zone();
    let t0 = midnight(&zone, 0);
    sc.events(vec![
        request("m0", "old@qq.com", t0 - SECOND),
        json!({"event": "request", "email_id": "m1", "recipient": "alice@qq.com",
               "tags": ["welcome"], "timestamp": t0 + SECOND}),
        json!({"event": "deliver", "email_id": "m1", "smtp_reply": "250 ok", "timestamp": t0 + 2 * SECOND}),
        request("m2", "bob@163.com", t0 + 3 * SECOND),
        json!({"event": "invalid", "email_id": "m2", "reason": "address_not_found",
               "smtp_reply": "550 5.1.1 user unknown", "timestamp": t0 + 4 * SECOND}),
        request("m3", "carol@qq.com", t0 + 5 * SECOND),
        json!({"event": "soft_bounce", "email_id": "m3", "reason": "ip_domain_rejected",
               "smtp_reply": "554 IP in blacklist", "timestamp": t0 + 6 * SECOND}),
        request("m4", "dave@gmail.com", t0 + 7 * SECOND),
        json!({"event": "request", "email_id": "m5", "recipient": "erin@qq.com",
               "api_user": "billing", "timestamp": t0 + 8 * SECOND}),
    ]);

    let answer = sc.call("GET", "/apiv2/data/emailStatus", &[("days", "1")]);
    let info = ok(&answer);
    assert_eq!(info["total"], "5", "SendCloud's total is a string");
    assert_eq!(info["voListSize"], 5);
    let list = &info["voList"];
    assert_eq!(strings(list, "emailId"), ["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(
        strings(list, "status"),
        ["送达", "无效邮件", "软退信", "请求中", "请求中"]
    );
    assert_eq!(
        list[0],
        json!({"emailId": "m1", "status": "送达", "apiUser": "notify", "recipients": "alice@qq.com",
               "requestTime": local(&zone, t0 + SECOND), "modifiedTime": local(&zone, t0 + 2 * SECOND),
               "sendLog": "250 ok", "provider": "qq"})
    );
    assert!(list[0]["requestTime"]
        .as_str()
        .unwrap()
        .ends_with(" 00:00:01"));
    assert_eq!(list[1]["subStat"], 406);
    assert_eq!(list[1]["subStatDesc"], "邮箱地址不存在");
    assert_eq!(list[1]["sendLog"], "550 5.1.1 user unknown");
    assert_eq!(list[2]["subStat"], 505);
    assert_eq!(list[2]["subStatDesc"], "IP、域名被拒");
    assert!(list[3].get("subStat").is_none(), "{}", list[3]);
    assert_eq!(list[4]["apiUser"], "billing");

    let two_days = sc.call("GET", "/apiv2/data/emailStatus", &[("days", "2")]);
    assert_eq!(ok(&two_days)["total"], "6");
    assert_eq!(ok(&two_days)["voList"][0]["emailId"], "m0");

    let by_ids = sc.call(
        "GET",
        "/apiv2/data/emailStatus",
        &[("days", "1"), ("emailIds", "m4;m1;nope")],
    );
    assert_eq!(ok(&by_ids)["total"], "2");
    assert_eq!(strings(&ok(&by_ids)["voList"], "emailId"), ["m1", "m4"]);

    let by_email = sc.call(
        "GET",
        "/apiv2/data/emailStatus",
        &[("days", "1"), ("email", "Bob@163.com")],
    );
    assert_eq!(ok(&by_email)["total"], "1");
    assert_eq!(strings(&ok(&by_email)["voList"], "emailId"), ["m2"]);

    let billing = sc.call(
        "GET",
        "/apiv2/data/emailStatus",
        &[("days", "1"), ("apiUserList", "billing")],
    );
    assert_eq!(ok(&billing)["total"], "1");
    assert_eq!(strings(&ok(&billing)["voList"], "emailId"), ["m5"]);
    let both = sc.call(
        "GET",
        "/apiv2/data/emailStatus",
        &[("days", "1"), ("apiUserList", "notify;billing")],
    );
    assert_eq!(ok(&both)["total"], "5");

    let labelled = sc.call(
        "GET",
        "/apiv2/data/emailStatus",
        &[("days", "1"), ("labelId", "welcome")],
    );
    assert_eq!(ok(&labelled)["total"], "1");
    assert_eq!(strings(&ok(&labelled)["voList"], "emailId"), ["m1"]);

    let posted = sc.call(
        "POST",
        "/apiv2/data/emailStatus",
        &[("startDate", &date(&zone, 1)), ("endDate", &date(&zone, 0))],
    );
    assert_eq!(ok(&posted)["total"], "6");
    assert_eq!(ok(&posted)["voListSize"], 6);
});

both_backends!(
    windows_are_required_bounded_and_cut_in_the_accounts_zone,
    |db| {
        let mut sc = setup(db);
        // Far from UTC and from the default zone, so that a day cut anywhere else is seen.
        sc.set_zone("Pacific/Kiritimati");
        let zone = sc.zone();
        assert_eq!(zone.name(), "Pacific/Kiritimati");
        let t0 = midnight(&zone, 0);
        sc.events(vec![
            request("today", "a@qq.com", t0),
            request("yesterday", "b@qq.com", t0 - SECOND),
        ]);
        let today = sc.call("GET", "/apiv2/data/emailStatus", &[("days", "1")]);
        assert_eq!(strings(&ok(&today)["voList"], "emailId"), ["today"]);
        assert_eq!(
            ok(&today)["voList"][0]["requestTime"],
            format!("{} 00:00:00", date(&zone, 0))
        );
        let two = sc.call("GET", "/apiv2/data/emailStatus", &[("days", "2")]);
        assert_eq!(
            strings(&ok(&two)["voList"], "emailId"),
            ["yesterday", "today"]
        );
        assert_eq!(
            ok(&two)["voList"][0]["requestTime"],
            format!("{} 23:59:59", date(&zone, 1))
        );
        let yesterday = sc.call(
            "GET",
            "/apiv2/data/emailStatus",
            &[("startDate", &date(&zone, 1)), ("endDate", &date(&zone, 1))],
        );
        assert_eq!(strings(&ok(&yesterday)["voList"], "emailId"), ["yesterday"]);
        assert_eq!(ok(&yesterday)["total"], "1");

        let cases: &[(&str, Params, i64)] = &[
            ("/apiv2/data/emailStatus", &[], 40090),
            ("/apiv2/data/emailStatus", &[("email", "a@qq.com")], 40090),
            ("/apiv2/data/emailStatus", &[("days", "31")], 40091),
            ("/apiv2/data/emailStatus", &[("days", "0")], 40006),
            ("/apiv2/data/emailStatus", &[("days", "week")], 40006),
            (
                "/apiv2/data/emailStatus",
                &[("startDate", "2026-01-01"), ("endDate", "2026-01-31")],
                40091,
            ),
            (
                "/apiv2/data/emailStatus",
                &[("startDate", "2026/01/01"), ("endDate", "2026-01-02")],
                40007,
            ),
            (
                "/apiv2/data/emailStatus",
                &[("startDate", "2026-01-01")],
                40008,
            ),
            (
                "/apiv2/data/emailStatus",
                &[("startDate", "2026-01-05"), ("endDate", "2026-01-02")],
                40008,
            ),
            (
                "/apiv2/data/emailStatus",
                &[("days", "1"), ("startDate", "2026-01-05")],
                40099,
            ),
            (
                "/apiv2/data/emailStatus",
                &[("days", "1"), ("email", "nope")],
                40012,
            ),
            ("/apiv2/bounce/list", &[], 40090),
            ("/apiv2/bounce/list", &[("days", "91")], 40091),
            ("/apiv2/bounce/delete", &[], 40090),
            ("/apiv2/unsubscribe/list", &[], 40090),
            ("/apiv2/unsubscribe/delete", &[], 40090),
            ("/apiv2/spamreported/list", &[], 40090),
            ("/apiv2/data/openOrClick", &[], 40090),
            ("/apiv2/openandclick/list", &[("days", "100")], 40091),
        ];
        for (path, params, code) in cases {
            for method in ["GET", "POST"] {
                let answer = sc.call(method, path, params);
                assert_eq!(error_code(&answer), *code, "{method} {path} {params:?}");
            }
        }
        let thirty = sc.call(
            "GET",
            "/apiv2/data/emailStatus",
            &[("startDate", "2026-01-01"), ("endDate", "2026-01-30")],
        );
        assert_eq!(ok(&thirty)["total"], "0");
        let ninety = sc.call("GET", "/apiv2/bounce/list", &[("days", "90")]);
        assert_eq!(ok(&ninety)["count"], 0);
    }
);

both_backends!(paging_and_keys, |db| {
    let mut sc = setup(db);
    let zone = sc.zone();
    let t0 = midnight(&zone, 0);
    sc.events(
        (1..=5)
            .map(|i| request(&format!("m{i}"), &format!("r{i}@qq.com"), t0 + i * SECOND))
            .collect(),
    );
    let page = |sc: &mut Sc, params: &[(&str, &str)]| {
        let mut all = vec![("days", "1")];
        all.extend_from_slice(params);
        let answer = sc.call("GET", "/apiv2/data/emailStatus", &all);
        let info = ok(&answer);
        assert_eq!(info["total"], "5", "{answer}");
        let ids = strings(&info["voList"], "emailId");
        assert_eq!(info["voListSize"], ids.len(), "{answer}");
        ids
    };
    assert_eq!(page(&mut sc, &[]), ["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(page(&mut sc, &[("limit", "2")]), ["m1", "m2"]);
    assert_eq!(
        page(&mut sc, &[("start", "2"), ("limit", "2")]),
        ["m3", "m4"]
    );
    assert_eq!(page(&mut sc, &[("start", "4"), ("limit", "2")]), ["m5"]);
    assert!(page(&mut sc, &[("start", "5")]).is_empty());
    assert!(page(&mut sc, &[("limit", "0")]).is_empty());
    assert_eq!(page(&mut sc, &[("limit", "100")]).len(), 5);
    for (params, code) in [
        (vec![("limit", "101")], 40004),
        (vec![("limit", "-1")], 40004),
        (vec![("limit", "many")], 40004),
        (vec![("start", "-1")], 40002),
        (vec![("start", "first")], 40002),
    ] {
        let mut all = vec![("days", "1")];
        all.extend(params.iter().copied());
        let answer = sc.call("GET", "/apiv2/data/emailStatus", &all);
        assert_eq!(error_code(&answer), code, "{params:?}");
    }
    let limited = sc.call(
        "GET",
        "/apiv2/bounce/list",
        &[("days", "1"), ("limit", "101")],
    );
    assert_eq!(error_code(&limited), 40004);

    // Keys: wrong, missing, not the named API_USER's, revoked.
    let key = sc.key.clone();
    let path = "/apiv2/data/emailStatus";
    let wrong = sc.call_as("GET", path, "notify", "not-the-key", &[("days", "1")]);
    assert_eq!(error_code(&wrong), 40005);
    assert_eq!(wrong["message"], "认证失败");
    let missing = sc.call_as("POST", path, "notify", "", &[("days", "1")]);
    assert_eq!(error_code(&missing), 40005);
    let other_name = sc.call_as("GET", path, "billing", &key, &[("days", "1")]);
    assert_eq!(error_code(&other_name), 40005);
    let bare = sc.client.get("/apiv2/bounce/list?days=1");
    assert_eq!(bare.status, 200);
    let bare: Value = serde_json::from_str(&bare.body).unwrap();
    assert_eq!(error_code(&bare), 40005);
    // The key is checked before anything else is read.
    let wrong_and_bad = sc.call_as("GET", path, "notify", "nope", &[("limit", "500")]);
    assert_eq!(error_code(&wrong_and_bad), 40005);
    let api_user_id =
        accounts::list_api_users(&mut sc.app.conn(), &AccountScope::new(sc.account_id))
            .unwrap()
            .into_iter()
            .find(|u| u.name == "notify")
            .unwrap()
            .id;
    assert!(accounts::revoke_api_user(
        &mut sc.app.conn(),
        &AccountScope::new(sc.account_id),
        api_user_id
    )
    .unwrap());
    let revoked = sc.call("GET", path, &[("days", "1")]);
    assert_eq!(error_code(&revoked), 40005);
});

both_backends!(bounce_list_and_delete_by_window, |db| {
    let mut sc = setup(db);
    let zone = sc.zone();
    let noon = |days_ago: i64| midnight(&zone, days_ago) + 12 * HOUR;
    let mut events = Vec::new();
    events.extend(bounced("b5", "five@qq.com", noon(5)));
    events.extend(bounced("b3a", "three.a@163.com", noon(3)));
    events.extend(bounced("b3b", "three.b@163.com", noon(3) + SECOND));
    events.extend(bounced("b1", "one@gmail.com", noon(1)));
    sc.events(events);
    assert_eq!(sc.app.count("SELECT COUNT(*) AS n FROM bounces"), 4);

    let week = [("startDate", date(&zone, 6)), ("endDate", date(&zone, 0))];
    let week: Vec<(&str, &str)> = week.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let listed = sc.call("GET", "/apiv2/bounce/list", &week);
    let info = ok(&listed);
    assert_eq!(info["count"], 4);
    assert_eq!(
        strings(&info["dataList"], "email"),
        [
            "five@qq.com",
            "three.a@163.com",
            "three.b@163.com",
            "one@gmail.com"
        ]
    );
    assert_eq!(
        info["dataList"][0],
        json!({"email": "five@qq.com", "reason": "550 5.1.1 user unknown",
               "bounceTime": local(&zone, noon(5)), "domain": "qq.com",
               "expireTime": local(&zone, noon(5) + HOUR)}),
        "a first bounce blocks sends for an hour"
    );
    let by_email = sc.call(
        "GET",
        "/apiv2/bounce/list",
        &[("email", "ONE@gmail.com"), ("days", "1")],
    );
    assert_eq!(
        strings(&ok(&by_email)["dataList"], "email"),
        ["one@gmail.com"]
    );
    let paged = sc.call(
        "POST",
        "/apiv2/bounce/list",
        &[week[0], week[1], ("start", "1"), ("limit", "2")],
    );
    assert_eq!(
        strings(&ok(&paged)["dataList"], "email"),
        ["three.a@163.com", "three.b@163.com"]
    );
    assert_eq!(ok(&paged)["count"], 2);

    // The window D-4 … D-2 holds exactly the two entries of D-3.
    let deleted = sc.call(
        "POST",
        "/apiv2/bounce/delete",
        &[("startDate", &date(&zone, 4)), ("endDate", &date(&zone, 2))],
    );
    assert_eq!(ok(&deleted)["count"], 2);
    let left = sc.call("GET", "/apiv2/bounce/list", &week);
    assert_eq!(
        strings(&ok(&left)["dataList"], "email"),
        ["five@qq.com", "one@gmail.com"]
    );
    assert_eq!(sc.app.count("SELECT COUNT(*) AS n FROM bounces"), 2);

    // `days=2` is yesterday and today: it takes the D-1 entry only.
    let recent = sc.call("GET", "/apiv2/bounce/delete", &[("days", "2")]);
    assert_eq!(ok(&recent)["count"], 1);
    let one = sc.call("GET", "/apiv2/bounce/delete", &[("email", "five@qq.com")]);
    assert_eq!(ok(&one)["count"], 1);
    let again = sc.call("GET", "/apiv2/bounce/delete", &[("email", "five@qq.com")]);
    assert_eq!(ok(&again)["count"], 0);
    assert_eq!(sc.app.count("SELECT COUNT(*) AS n FROM bounces"), 0);
    let bad = sc.call("GET", "/apiv2/bounce/delete", &[("email", "five.qq.com")]);
    assert_eq!(error_code(&bad), 40012);

    // A fresh bounce blocks sends; deleted through the API, the address is accepted again.
    let now = now_ms();
    sc.events(bounced("fresh", "fresh@qq.com", now - 10 * SECOND));
    let status_of = |sc: &Sc, email_id: &str| {
        sc.app.count(&format!(
            "SELECT CAST(status * 10 + COALESCE(reason, 0) AS BIGINT) AS n FROM messages \
             WHERE email_id = '{email_id}'"
        ))
    };
    sc.events(vec![request("blocked", "fresh@qq.com", now - 5 * SECOND)]);
    assert_eq!(status_of(&sc, "blocked"), 31, "invalid / blacklisted");
    let fresh = sc.call("POST", "/apiv2/bounce/delete", &[("email", "fresh@qq.com")]);
    assert_eq!(ok(&fresh)["count"], 1);
    sc.events(vec![request("again", "fresh@qq.com", now)]);
    assert_eq!(status_of(&sc, "again"), 0, "requesting");
});

both_backends!(unsubscribes_add_list_and_delete, |db| {
    let mut sc = setup(db);
    let zone = sc.zone();
    let added = sc.call(
        "POST",
        "/apiv2/unsubscribe/add",
        &[("email", " Zoe@Example.com")],
    );
    let data = &ok(&added)["data"];
    assert_eq!(data["email"], "zoe@example.com");
    assert_eq!(data["domain"], "example.com");
    assert_eq!(data["labelId"], 0);
    assert_eq!(data["apiUser"], "notify");
    assert!(
        data["unsubscribeTime"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{} ", date(&zone, 0))),
        "{data}"
    );
    assert_eq!(
        sc.app.count(
            "SELECT COUNT(*) AS n FROM unsubscribes WHERE address = 'zoe@example.com' \
             AND source = 'api' AND reason = 'not_wanted' AND api_user = 'notify'"
        ),
        1,
        "stored as the console's and /api/v1's adds store it"
    );
    // A request to the address is now suppressed: invalid / unsubscribed.
    let now = now_ms();
    sc.events(vec![request("to-zoe", "zoe@example.com", now)]);
    assert_eq!(
        sc.app.count(
            "SELECT CAST(status * 10 + COALESCE(reason, 0) AS BIGINT) AS n FROM messages \
             WHERE email_id = 'to-zoe'"
        ),
        32
    );
    // An unsubscribe from a message sent with SendCloud label 123.
    sc.events(vec![
        json!({"event": "request", "email_id": "lab", "recipient": "tagged@qq.com",
               "tags": ["123"], "timestamp": now}),
        json!({"event": "unsubscribe", "email_id": "lab", "timestamp": now + SECOND}),
    ]);
    let missing = sc.call("GET", "/apiv2/unsubscribe/add", &[]);
    assert_eq!(error_code(&missing), 40011);
    let bad = sc.call("GET", "/apiv2/unsubscribe/add", &[("email", "zoe")]);
    assert_eq!(error_code(&bad), 40012);

    let listed = sc.call("GET", "/apiv2/unsubscribe/list", &[("days", "1")]);
    let info = ok(&listed);
    assert_eq!(info["count"], 2);
    assert_eq!(
        strings(&info["dataList"], "email"),
        ["zoe@example.com", "tagged@qq.com"]
    );
    assert_eq!(info["dataList"][1]["labelId"], 123);
    assert_eq!(info["dataList"][1]["apiUser"], "notify");
    assert_eq!(info["dataList"][1]["domain"], "qq.com");
    for (params, expected) in [
        (vec![("labelIdList", "123")], vec!["tagged@qq.com"]),
        (vec![("labelIdList", "[123;999]")], vec!["tagged@qq.com"]),
        (vec![("apiUserList", "billing")], vec![]),
        (
            vec![("apiUserList", "billing;notify")],
            vec!["zoe@example.com", "tagged@qq.com"],
        ),
        (vec![("email", "tagged@qq.com")], vec!["tagged@qq.com"]),
    ] {
        let mut all = vec![("days", "1")];
        all.extend(params.iter().copied());
        let answer = sc.call("POST", "/apiv2/unsubscribe/list", &all);
        assert_eq!(
            strings(&ok(&answer)["dataList"], "email"),
            expected,
            "{params:?}"
        );
        assert_eq!(ok(&answer)["count"], expected.len());
    }

    let one = sc.call(
        "GET",
        "/apiv2/unsubscribe/delete",
        &[("email", "zoe@example.com")],
    );
    assert_eq!(ok(&one)["count"], 1);
    let rest = sc.call("POST", "/apiv2/unsubscribe/delete", &[("days", "1")]);
    assert_eq!(ok(&rest)["count"], 1);
    let none = sc.call("GET", "/apiv2/unsubscribe/list", &[("days", "1")]);
    assert_eq!(ok(&none)["count"], 0);
    assert_eq!(sc.app.count("SELECT COUNT(*) AS n FROM unsubscribes"), 0);
});

both_backends!(spam_reports_list_and_delete, |db| {
    let mut sc = setup(db);
    let zone = sc.zone();
    let at = now_ms() - SECOND;
    sc.events(vec![
        json!({"event": "report_spam", "recipient": "Angry@QQ.com", "timestamp": at}),
        json!({"event": "report_spam", "recipient": "old@qq.com", "timestamp": midnight(&zone, 3)}),
    ]);
    let listed = sc.call("GET", "/apiv2/spamreported/list", &[("days", "1")]);
    let info = ok(&listed);
    assert_eq!(info["count"], 1);
    assert_eq!(
        info["dataList"][0],
        json!({"receiver": "angry@qq.com", "reason": "收件人举报垃圾邮件", "spamReportedTime": local(&zone, at),
               "domain": "qq.com"})
    );
    let week = sc.call("POST", "/apiv2/spamreported/list", &[("days", "7")]);
    assert_eq!(
        strings(&ok(&week)["dataList"], "receiver"),
        ["old@qq.com", "angry@qq.com"]
    );
    // Spam reports are deleted one address at a time.
    let by_window = sc.call("GET", "/apiv2/spamreported/delete", &[("days", "7")]);
    assert_eq!(error_code(&by_window), 40011);
    let deleted = sc.call(
        "POST",
        "/apiv2/spamreported/delete",
        &[("email", "angry@qq.com")],
    );
    assert_eq!(ok(&deleted)["count"], 1);
    let left = sc.call("GET", "/apiv2/spamreported/list", &[("days", "7")]);
    assert_eq!(strings(&ok(&left)["dataList"], "receiver"), ["old@qq.com"]);
});

both_backends!(opens_and_clicks_on_both_paths, |db| {
    let mut sc = setup(db);
    let zone = sc.zone();
    let t0 = midnight(&zone, 0);
    sc.events(vec![
        request("m1", "a@qq.com", t0 + SECOND),
        json!({"event": "open", "email_id": "m1", "timestamp": t0 + 10 * SECOND, "ip": "10.0.0.1"}),
        json!({"event": "click", "email_id": "m1", "timestamp": t0 + 20 * SECOND,
               "url": "https://shop.example.com/sale"}),
        json!({"event": "request", "email_id": "m2", "recipient": "b@qq.com", "api_user": "billing",
               "tags": ["invoice"], "timestamp": t0 + 2 * SECOND}),
        json!({"event": "open", "email_id": "m2", "timestamp": t0 + 30 * SECOND}),
    ]);
    let all = sc.call("GET", "/apiv2/data/openOrClick", &[("days", "1")]);
    let info = ok(&all);
    assert_eq!(info["total"], 3);
    assert_eq!(info["count"], 3);
    assert_eq!(
        info["dataList"][1],
        json!({"trackType": 2, "apiUser": "notify", "email": "a@qq.com",
               "url": "https://shop.example.com/sale", "currTime": local(&zone, t0 + 20 * SECOND)})
    );
    assert_eq!(info["dataList"][0]["trackType"], 1);
    assert_eq!(info["dataList"][0]["url"], "");
    for (params, total, emails) in [
        (vec![("trackType", "1")], 2, vec!["a@qq.com", "b@qq.com"]),
        (vec![("trackType", "2")], 1, vec!["a@qq.com"]),
        (vec![("apiUserList", "billing")], 1, vec!["b@qq.com"]),
        (vec![("labelId", "invoice")], 1, vec!["b@qq.com"]),
        (vec![("start", "1"), ("limit", "1")], 3, vec!["a@qq.com"]),
    ] {
        let mut all = vec![("days", "1")];
        all.extend(params.iter().copied());
        let answer = sc.call("GET", "/apiv2/data/openOrClick", &all);
        assert_eq!(ok(&answer)["total"], total, "{params:?}");
        assert_eq!(
            strings(&ok(&answer)["dataList"], "email"),
            emails,
            "{params:?}"
        );
        assert_eq!(ok(&answer)["count"], emails.len());
    }
    // `email` reads the address's opens and clicks at any time, without a window.
    let by_email = sc.call("POST", "/apiv2/openandclick/list", &[("email", "a@qq.com")]);
    assert_eq!(ok(&by_email)["total"], 2);
    assert_eq!(
        ok(&by_email)["dataList"][1]["url"],
        "https://shop.example.com/sale"
    );
    let documented = sc.call(
        "POST",
        "/apiv2/openandclick/list",
        &[("days", "1"), ("trackType", "2")],
    );
    assert_eq!(ok(&documented)["total"], 1);
    let bad = sc.call(
        "GET",
        "/apiv2/data/openOrClick",
        &[("days", "1"), ("trackType", "3")],
    );
    assert_eq!(error_code(&bad), 40099);
});

both_backends!(another_accounts_key_sees_and_deletes_nothing, |db| {
    let mut sc = setup(db);
    let now = now_ms() - 10 * SECOND;
    let mut events = bounced("x1", "x@acme.test", now);
    events.extend([
        request("x2", "u@acme.test", now),
        json!({"event": "unsubscribe", "email_id": "x2", "timestamp": now + SECOND}),
        json!({"event": "open", "email_id": "x2", "timestamp": now + SECOND}),
        json!({"event": "report_spam", "recipient": "s@acme.test", "timestamp": now}),
    ]);
    sc.events(events);
    let other = sc.app.account("rival");
    let (_, rival_key) = accounts::create_api_user(
        &mut sc.app.conn(),
        &AccountScope::new(other.id),
        "rival_api",
        MailType::Trigger,
    )
    .unwrap();
    let mut as_rival = |method: &str, path: &str, params: &[(&str, &str)]| {
        let key = rival_key.clone();
        sc.call_as(method, path, "rival_api", &key, params)
    };
    let status = as_rival("GET", "/apiv2/data/emailStatus", &[("days", "1")]);
    assert_eq!(ok(&status)["total"], "0");
    assert_eq!(ok(&status)["voList"], json!([]));
    let ids = as_rival(
        "GET",
        "/apiv2/data/emailStatus",
        &[("days", "1"), ("emailIds", "x1;x2")],
    );
    assert_eq!(ok(&ids)["total"], "0");
    for (path, params) in [
        ("/apiv2/bounce/list", vec![("days", "1")]),
        ("/apiv2/bounce/list", vec![("email", "x@acme.test")]),
        ("/apiv2/unsubscribe/list", vec![("days", "1")]),
        ("/apiv2/spamreported/list", vec![("email", "s@acme.test")]),
    ] {
        let answer = as_rival("GET", path, &params);
        assert_eq!(ok(&answer)["count"], 0, "{path}");
    }
    let opens = as_rival(
        "GET",
        "/apiv2/data/openOrClick",
        &[("email", "u@acme.test")],
    );
    assert_eq!(ok(&opens)["total"], 0);
    for (path, params) in [
        ("/apiv2/bounce/delete", vec![("email", "x@acme.test")]),
        ("/apiv2/bounce/delete", vec![("days", "1")]),
        ("/apiv2/unsubscribe/delete", vec![("email", "u@acme.test")]),
        ("/apiv2/unsubscribe/delete", vec![("days", "1")]),
        ("/apiv2/spamreported/delete", vec![("email", "s@acme.test")]),
    ] {
        let answer = as_rival("POST", path, &params);
        assert_eq!(ok(&answer)["count"], 0, "{path} {params:?}");
    }
    // The rival's own add stays in its own account.
    let added = as_rival(
        "POST",
        "/apiv2/unsubscribe/add",
        &[("email", "x@acme.test")],
    );
    assert_eq!(ok(&added)["data"]["apiUser"], "rival_api");
    let account = sc.account_id;
    for table in ["bounces", "unsubscribes", "spam_reports"] {
        assert_eq!(
            sc.app.count(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE account_id = {account}"
            )),
            1,
            "{table}"
        );
    }
    let mine = sc.call("GET", "/apiv2/unsubscribe/list", &[("days", "1")]);
    assert_eq!(strings(&ok(&mine)["dataList"], "email"), ["u@acme.test"]);
    let mine = sc.call("GET", "/apiv2/bounce/list", &[("days", "1")]);
    assert_eq!(strings(&ok(&mine)["dataList"], "email"), ["x@acme.test"]);
});

// SendCloud's documented `status` codes of emailStatus: 1 送达, 4 无效邮件, 5 软退信, 18 请求中;
// `subStatus` a `;`-separated list of subStat codes; `labelName`.
both_backends!(
    email_status_filters_by_status_substatus_and_label_name,
    |db| {
        let mut sc = setup(db);
        let zone = sc.zone();
        let t0 = midnight(&zone, 0);
        sc.events(vec![
            json!({"event": "request", "email_id": "d1", "recipient": "a@qq.com",
               "tags": ["welcome", "7"], "timestamp": t0 + SECOND}),
            json!({"event": "deliver", "email_id": "d1", "timestamp": t0 + 2 * SECOND}),
            request("i406", "b@qq.com", t0 + 3 * SECOND),
            json!({"event": "invalid", "email_id": "i406", "reason": "address_not_found",
               "timestamp": t0 + 4 * SECOND}),
            request("i407", "c@qq.com", t0 + 5 * SECOND),
            json!({"event": "invalid", "email_id": "i407", "reason": "spam",
               "timestamp": t0 + 6 * SECOND}),
            request("s507", "d@qq.com", t0 + 7 * SECOND),
            json!({"event": "soft_bounce", "email_id": "s507", "reason": "spam",
               "timestamp": t0 + 8 * SECOND}),
            request("r", "e@qq.com", t0 + 9 * SECOND),
        ]);
        let ids = |sc: &mut Sc, params: &[(&str, &str)]| {
            let mut all = vec![("days", "1")];
            all.extend_from_slice(params);
            let answer = sc.call("GET", "/apiv2/data/emailStatus", &all);
            let info = ok(&answer).clone();
            let list = strings(&info["voList"], "emailId");
            assert_eq!(info["total"], list.len().to_string(), "{params:?}");
            list
        };
        assert_eq!(ids(&mut sc, &[("status", "1")]), ["d1"]);
        assert_eq!(ids(&mut sc, &[("status", "4")]), ["i406", "i407"]);
        assert_eq!(ids(&mut sc, &[("status", "5")]), ["s507"]);
        assert_eq!(ids(&mut sc, &[("status", "18")]), ["r"]);
        assert_eq!(ids(&mut sc, &[("subStatus", "406;507")]), ["i406", "s507"]);
        assert_eq!(ids(&mut sc, &[("subStatus", "407")]), ["i407"]);
        assert_eq!(
            ids(&mut sc, &[("status", "4"), ("subStatus", "406;507")]),
            ["i406"]
        );
        assert!(ids(&mut sc, &[("status", "1"), ("subStatus", "406")]).is_empty());
        assert_eq!(ids(&mut sc, &[("labelName", "welcome")]), ["d1"]);

        // SendCloud's own texts, one per code.
        let answer = sc.call("GET", "/apiv2/data/emailStatus", &[("days", "1")]);
        let list = ok(&answer)["voList"].as_array().unwrap().clone();
        let desc = |id: &str| {
            list.iter()
                .find(|v| v["emailId"] == id)
                .map(|v| (v["subStat"].clone(), v["subStatDesc"].clone()))
                .unwrap()
        };
        assert_eq!(desc("i406"), (json!(406), json!("邮箱地址不存在")));
        assert_eq!(desc("i407"), (json!(407), json!("垃圾邮件")));
        assert_eq!(desc("s507"), (json!(507), json!("反垃圾邮件被拒")));

        // A filter we cannot apply is refused, never ignored.
        for bad in [
            vec![("status", "2")],
            vec![("status", "delivered")],
            vec![("subStatus", "406;999")],
            vec![("labelId", "7"), ("labelName", "welcome")],
        ] {
            let mut all = vec![("days", "1")];
            all.extend(bad.iter().copied());
            let answer = sc.call("GET", "/apiv2/data/emailStatus", &all);
            assert_eq!(error_code(&answer), 40099, "{bad:?}");
        }
    }
);

both_backends!(unsubscribes_carry_type_and_label_name, |db| {
    let mut sc = setup(db);
    let now = now_ms();
    sc.events(vec![
        json!({"event": "request", "email_id": "u1", "recipient": "one@qq.com",
               "tags": ["newsletter", "123"], "timestamp": now - 3 * SECOND}),
        json!({"event": "unsubscribe", "email_id": "u1", "reason": "fraud", "timestamp": now - 2 * SECOND}),
        json!({"event": "unsubscribe", "recipient": "two@qq.com", "reason": "not_subscribed",
               "timestamp": now - SECOND}),
    ]);
    let listed = sc.call("GET", "/apiv2/unsubscribe/list", &[("days", "1")]);
    let list = &ok(&listed)["dataList"];
    assert_eq!(strings(list, "email"), ["one@qq.com", "two@qq.com"]);
    assert_eq!(list[0]["unsubscribeType"], 3);
    assert_eq!(list[0]["unsubscribeTypeDesc"], "这是欺诈邮件, 我要举报");
    assert_eq!(list[0]["labelName"], "newsletter");
    assert_eq!(list[0]["labelId"], 123);
    assert_eq!(list[1]["unsubscribeType"], 1);
    assert_eq!(list[1]["unsubscribeTypeDesc"], "这不是我订阅的");
    assert_eq!(list[1]["labelName"], "");
    let named = sc.call(
        "POST",
        "/apiv2/unsubscribe/list",
        &[("days", "1"), ("labelNameList", "newsletter;other")],
    );
    assert_eq!(strings(&ok(&named)["dataList"], "email"), ["one@qq.com"]);
    // An unsubscribe for fraud is a complaint too, and says so.
    let complaints = sc.call("GET", "/apiv2/complaint/list", &[("days", "1")]);
    assert_eq!(
        ok(&complaints)["dataList"][0]["reason"],
        "取消订阅: 这是欺诈邮件, 我要举报 (emailId: u1)"
    );
});

both_backends!(complaints_under_their_current_name, |db| {
    let mut sc = setup(db);
    let zone = sc.zone();
    let at = now_ms() - SECOND;
    sc.events(vec![
        request("c1", "angry@qq.com", at - SECOND),
        json!({"event": "report_spam", "email_id": "c1", "timestamp": at}),
        json!({"event": "report_spam", "recipient": "old@163.com", "timestamp": midnight(&zone, 3)}),
    ]);
    let listed = sc.call("GET", "/apiv2/complaint/list", &[("days", "1")]);
    let info = ok(&listed);
    assert_eq!(info["count"], 1);
    let entry = &info["dataList"][0];
    assert_eq!(entry["email"], "angry@qq.com");
    assert_eq!(entry["domain"], "qq.com");
    assert_eq!(entry["complaintTime"], local(&zone, at));
    assert_eq!(entry["expireTime"], local(&zone, at + 180 * 24 * HOUR));
    assert_eq!(entry["reason"], "收件人举报垃圾邮件 (emailId: c1)");
    let by_email = sc.call("GET", "/apiv2/complaint/list", &[("email", "old@163.com")]);
    assert_eq!(
        strings(&ok(&by_email)["dataList"], "email"),
        ["old@163.com"]
    );

    let window = [("startDate", date(&zone, 4)), ("endDate", date(&zone, 2))];
    let window: Vec<(&str, &str)> = window.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let deleted = sc.call("POST", "/apiv2/complaint/delete", &window);
    assert_eq!(ok(&deleted)["count"], 1);
    let deleted = sc.call(
        "GET",
        "/apiv2/complaint/delete",
        &[("email", "angry@qq.com")],
    );
    assert_eq!(ok(&deleted)["count"], 1);
    assert_eq!(sc.app.count("SELECT COUNT(*) AS n FROM spam_reports"), 0);
});

both_backends!(too_many_calls_answer_sendclouds_50000, |db| {
    let mut settings = common::settings_for(&db);
    settings.apiv2_calls_per_minute = 3;
    let app = TestApp::start_with(db, settings);
    let account = app.account("acme");
    let scope = AccountScope::new(account.id);
    let (_, key) =
        accounts::create_api_user(&mut app.conn(), &scope, "notify", MailType::Trigger).unwrap();
    let (_, other_key) =
        accounts::create_api_user(&mut app.conn(), &scope, "billing", MailType::Trigger).unwrap();
    let mut sc = Sc {
        app,
        client: common::Client::new("http://unused"),
        key,
        account_id: account.id,
    };
    sc.client = sc.app.client();
    for _ in 0..3 {
        let answer = sc.call("GET", "/apiv2/bounce/list", &[("days", "1")]);
        ok(&answer);
    }
    let limited = sc.call("GET", "/apiv2/bounce/list", &[("days", "1")]);
    assert_eq!(error_code(&limited), 50000);
    // Per API_USER: another one still gets answers.
    let answer = sc.call_as(
        "GET",
        "/apiv2/bounce/list",
        "billing",
        &other_key,
        &[("days", "1")],
    );
    ok(&answer);
});
