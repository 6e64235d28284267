//! `/status`: every filter returns exactly its rows, bad input is a message on the form,
//! keyset paging walks every row once, counts, masking, and the CSV download.

mod common;

use std::collections::BTreeSet;

use chrono::{Duration, TimeZone, Utc};
use diesel::prelude::*;

use common::TestApp;
use mailtrail::db::schema::{message_tags, messages};
use mailtrail::domain::{MailType, Reason, Role, Status};
use mailtrail::store::models::{Message, MessageTag};
use mailtrail::store::rollup::{self, BucketKey, HOUR_MS};
use mailtrail::store::AccountScope;

/// Noon of `days_ago` days before today in Shanghai, in ms: safely inside that day.
fn noon(days_ago: i64) -> i64 {
    let zone = chrono_tz::Asia::Shanghai;
    let day = Utc::now().with_timezone(&zone).date_naive() - Duration::days(days_ago);
    zone.from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis()
}

fn day(days_ago: i64) -> String {
    let zone = chrono_tz::Asia::Shanghai;
    (Utc::now().with_timezone(&zone).date_naive() - Duration::days(days_ago)).to_string()
}

struct Spec {
    recipient: String,
    api_user: &'static str,
    mail_type: MailType,
    tag: &'static str,
    status: Status,
    reason: Option<Reason>,
    at: i64,
}

/// Inserts one message as ingestion would leave it, rollup included; answers its id.
fn insert(app: &TestApp, account_id: i64, n: usize, spec: &Spec) -> i64 {
    let mut conn = app.conn();
    let conn = &mut *conn;
    let email_id = format!("{}_{}_{n}$test", spec.at, account_id);
    let row = Message {
        id: 0,
        account_id,
        email_id: email_id.clone(),
        recipient: spec.recipient.clone(),
        api_user: spec.api_user.into(),
        mail_type: spec.mail_type.as_i16(),
        tags: spec.tag.into(),
        sender: "s@x.test".into(),
        subject: "hello".into(),
        status: spec.status.as_i16(),
        reason: spec.reason.map(Reason::as_i16),
        smtp_reply: None,
        rule: None,
        requested_at: spec.at,
        updated_at: spec.at,
        provider: mailtrail::domain::providers::provider_of(
            &mailtrail::domain::providers::domain_of(&spec.recipient),
        ),
    };
    // As ingestion does: on PostgreSQL the month must have its partition.
    mailtrail::store::partitions::ensure_months(conn, [spec.at]).unwrap();
    diesel::insert_into(messages::table)
        .values((
            messages::account_id.eq(row.account_id),
            messages::email_id.eq(&row.email_id),
            messages::recipient.eq(&row.recipient),
            messages::api_user.eq(&row.api_user),
            messages::mail_type.eq(row.mail_type),
            messages::tags.eq(&row.tags),
            messages::status.eq(row.status),
            messages::reason.eq(row.reason),
            messages::requested_at.eq(row.requested_at),
            messages::updated_at.eq(row.updated_at),
            messages::provider.eq(&row.provider),
        ))
        .execute(conn)
        .unwrap();
    let id: i64 = messages::table
        .filter(messages::email_id.eq(&email_id))
        .select(messages::id)
        .first(conn)
        .unwrap();
    diesel::insert_into(message_tags::table)
        .values(MessageTag {
            message_id: id,
            account_id,
            tag: spec.tag.into(),
            requested_at: spec.at,
        })
        .execute(conn)
        .unwrap();
    let key = BucketKey {
        hour: spec.at.div_euclid(HOUR_MS),
        status: spec.status.as_i16(),
        reason: spec.reason.map(Reason::as_i16).unwrap_or(0),
        api_user: spec.api_user.into(),
        mail_type: spec.mail_type.as_i16(),
    };
    let scope = AccountScope::new(account_id);
    rollup::apply_tags(conn, &scope, &[((key.clone(), spec.tag.into()), 1)]).unwrap();
    rollup::apply(conn, &scope, &[(key, 1)]).unwrap();
    let mut provider_deltas = mailtrail::store::providers::ProviderDeltas::default();
    provider_deltas.moved(None, &row);
    provider_deltas.write(conn, &scope).unwrap();
    id
}

/// 48 varied messages today and 4 from 40 days ago; answers (spec, id) pairs.
fn seed(app: &TestApp, account_id: i64) -> Vec<(Spec, i64)> {
    let outcomes = [
        (Status::Delivered, None),
        (Status::Requesting, None),
        (Status::SoftBounce, Some(Reason::ServiceUnavailable)),
        (Status::Invalid, Some(Reason::AddressNotFound)),
        (Status::Invalid, Some(Reason::Blacklisted)),
        (Status::Delivered, None),
    ];
    let mut out = Vec::new();
    for n in 0..52 {
        let (status, reason) = outcomes[n % outcomes.len()];
        let spec = Spec {
            recipient: format!(
                "user{}@{}",
                n % 7,
                if n % 2 == 0 { "qq.com" } else { "163.com" }
            ),
            api_user: ["notify", "market"][n % 2],
            mail_type: [MailType::Trigger, MailType::Batch][(n / 2) % 2],
            tag: ["welcome", "invoice", "promo"][n % 3],
            status,
            reason,
            at: if n < 48 {
                noon(0) - (n as i64) * 60_000
            } else {
                noon(40) + n as i64
            },
        };
        let id = insert(app, account_id, n, &spec);
        out.push((spec, id));
    }
    out
}

/// The `data-id`s of the rows of a page, in order.
fn ids(body: &str) -> Vec<i64> {
    body.split("<tr data-id=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

fn href(body: &str, id: &str) -> Option<String> {
    let marker = "href=\"";
    let at = body.find(&format!("id=\"{id}\""))?;
    let start = body[..at].rfind(&marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

fn setup(db: common::TestDb) -> (TestApp, common::Client, i64, Vec<(Spec, i64)>) {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "pw");
    let seeded = seed(&app, account.id);
    let mut client = app.client();
    client.accept_language = Some("en".into());
    assert_eq!(client.login("owner@acme.test", "pw").status, 303);
    (app, client, account.id, seeded)
}

both_backends!(each_filter_returns_exactly_its_rows, |db| {
    let (_app, mut client, _, seeded) = setup(db);
    let today: Vec<&(Spec, i64)> = seeded.iter().filter(|(s, _)| s.at > noon(1)).collect();
    let expect = |pred: &dyn Fn(&Spec) -> bool| -> BTreeSet<i64> {
        today
            .iter()
            .filter(|(s, _)| pred(s))
            .map(|(_, id)| *id)
            .collect()
    };
    let cases: Vec<(String, BTreeSet<i64>)> = vec![
        (String::new(), expect(&|_| true)),
        (
            "recipient=USER3@163.com".into(),
            expect(&|s| s.recipient == "user3@163.com"),
        ),
        (
            "api_user=market".into(),
            expect(&|s| s.api_user == "market"),
        ),
        (
            "mail_type=batch".into(),
            expect(&|s| s.mail_type == MailType::Batch),
        ),
        ("tag=promo".into(), expect(&|s| s.tag == "promo")),
        (
            "tag=promo&status=delivered".into(),
            expect(&|s| s.tag == "promo" && s.status == Status::Delivered),
        ),
        (
            "status=invalid".into(),
            expect(&|s| s.status == Status::Invalid),
        ),
        (
            "status=invalid&reason=blacklisted".into(),
            expect(&|s| s.reason == Some(Reason::Blacklisted)),
        ),
        (
            "status=soft_bounce&api_user=notify".into(),
            expect(&|s| s.status == Status::SoftBounce && s.api_user == "notify"),
        ),
    ];
    for (query, expected) in cases {
        let page = client.get(&format!("/status?per_page=100&{query}"));
        assert_eq!(page.status, 200, "{query}");
        let got: BTreeSet<i64> = ids(&page.body).into_iter().collect();
        assert_eq!(got, expected, "filter {query:?}");
        assert!(!expected.is_empty(), "the case {query:?} tests something");
    }
    let one = &today[5];
    let email_id = format!("{}_{}_{}$test", one.0.at, 1, 5);
    let page = client.get(&format!(
        "/status?email_id={}",
        email_id.replace('$', "%24")
    ));
    assert_eq!(ids(&page.body), vec![one.1]);

    // The default period is today; older rows need a wider one.
    let old: BTreeSet<i64> = seeded
        .iter()
        .filter(|(s, _)| s.at < noon(1))
        .map(|(_, id)| *id)
        .collect();
    let wide = client.get(&format!(
        "/status?per_page=100&from={}&to={}",
        day(40),
        day(40)
    ));
    assert_eq!(ids(&wide.body).into_iter().collect::<BTreeSet<_>>(), old);
    let none = client.get("/status?recipient=nobody@nowhere.test");
    assert!(
        none.body.contains("id=\"status-empty\""),
        "an empty state that explains what to try"
    );
});

both_backends!(rows_carry_their_codes_and_counts_match, |db| {
    let (_app, mut client, _, seeded) = setup(db);
    let page = client.get("/status?per_page=100&status=invalid");
    for (spec, id) in seeded
        .iter()
        .filter(|(s, _)| s.at > noon(1) && s.status == Status::Invalid)
    {
        let reason = spec.reason.unwrap().code();
        assert!(page.body.contains(&format!(
            "<tr data-id=\"{id}\" data-status=\"invalid\" data-reason=\"{reason}\">"
        )));
    }
    // Tabs: the rollup path (no recipient filter) and the direct path (recipient filter).
    let tab = |body: &str, code: &str| -> String {
        let at = body.find(&format!("data-tab=\"{code}\"")).unwrap();
        let c = body[at..].find("data-count=\"").unwrap() + at + 12;
        body[c..c + body[c..].find('"').unwrap()].to_string()
    };
    let today: Vec<&Spec> = seeded
        .iter()
        .map(|(s, _)| s)
        .filter(|s| s.at > noon(1))
        .collect();
    let all = client.get("/status");
    for &status in Status::ALL {
        let n = today.iter().filter(|s| s.status == status).count();
        assert_eq!(tab(&all.body, status.code()), n.to_string(), "tab {status}");
    }
    assert_eq!(tab(&all.body, ""), today.len().to_string());
    let one = client.get("/status?recipient=user0@qq.com");
    for &status in Status::ALL {
        let n = today
            .iter()
            .filter(|s| s.status == status && s.recipient == "user0@qq.com")
            .count();
        assert_eq!(
            tab(&one.body, status.code()),
            n.to_string(),
            "direct tab {status}"
        );
    }
    // A tag's tabs come from the per-tag rollup, alone and with the rollup's other filters.
    let tagged = client.get("/status?tag=promo");
    let with_user = client.get("/status?tag=promo&api_user=market");
    for &status in Status::ALL {
        let promo = |s: &Spec| s.status == status && s.tag == "promo";
        let n = today.iter().filter(|s| promo(s)).count();
        assert_eq!(
            tab(&tagged.body, status.code()),
            n.to_string(),
            "tag tab {status}"
        );
        let n = today
            .iter()
            .filter(|s| promo(s) && s.api_user == "market")
            .count();
        assert_eq!(
            tab(&with_user.body, status.code()),
            n.to_string(),
            "tag and API_USER tab {status}"
        );
    }
    assert_ne!(tab(&tagged.body, ""), "0");
});

// Tabs over a 30-day span add whole UTC days from the daily rollup and the ragged hours at
// each end (a Shanghai day starts at 16:00 UTC) from the hourly one: messages at the very
// first and last hours of the span, and just outside it, land on the right side.
both_backends!(tabs_over_many_days_count_every_hour_once, |db| {
    let (app, mut client, account_id, seeded) = setup(db);
    let zone = chrono_tz::Asia::Shanghai;
    let local = |days_ago: i64, h: u32, m: u32| -> i64 {
        let d = Utc::now().with_timezone(&zone).date_naive() - Duration::days(days_ago);
        zone.from_local_datetime(&d.and_hms_opt(h, m, 0).unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let times = [
        local(29, 0, 0),   // the span's first instant
        local(29, 7, 59),  // before the first UTC midnight inside the span
        local(29, 8, 0),   // the first UTC midnight
        local(15, 3, 30),  // a whole day in the middle
        local(1, 23, 59),  // yesterday's last minute
        local(30, 23, 59), // just before the span
    ];
    let mut extra = Vec::new();
    for (n, &at) in times.iter().enumerate() {
        for (k, (status, reason)) in [
            (Status::Delivered, None),
            (Status::Invalid, Some(Reason::AddressNotFound)),
        ]
        .into_iter()
        .enumerate()
        {
            let spec = Spec {
                recipient: format!("span{n}@qq.com"),
                api_user: "notify",
                mail_type: MailType::Trigger,
                tag: "span",
                status,
                reason,
                at,
            };
            insert(&app, account_id, 100 + n * 2 + k, &spec);
            extra.push(spec);
        }
    }
    let (from, to) = (local(29, 0, 0), local(-1, 0, 0));
    let inside: Vec<&Spec> = seeded
        .iter()
        .map(|(s, _)| s)
        .chain(extra.iter())
        .filter(|s| s.at >= from && s.at < to)
        .collect();
    let page = client.get(&format!("/status?from={}&to={}", day(29), day(0)));
    assert_eq!(page.status, 200, "{}", page.body);
    let tab = |code: &str| -> String {
        let at = page.body.find(&format!("data-tab=\"{code}\"")).unwrap();
        let c = page.body[at..].find("data-count=\"").unwrap() + at + 12;
        page.body[c..c + page.body[c..].find('"').unwrap()].to_string()
    };
    assert_eq!(tab(""), inside.len().to_string());
    for &status in Status::ALL {
        let n = inside.iter().filter(|s| s.status == status).count();
        assert_eq!(tab(status.code()), n.to_string(), "tab {status}");
    }
    // The edge messages really are split: some inside the span, one pair outside it.
    assert_eq!(
        extra.iter().filter(|s| s.at >= from && s.at < to).count(),
        10
    );
});

both_backends!(bad_values_are_messages_on_the_form, |db| {
    let (_app, mut client, _, _) = setup(db);
    let cases = [
        (
            format!("from={}&to={}", day(40), day(0)),
            "to",
            "at most 30 days",
        ),
        (
            format!("from={}&to={}", day(0), day(3)),
            "to",
            "before the start date",
        ),
        ("from=yesterday".to_string(), "from", "YYYY-MM-DD"),
        ("status=bounced".to_string(), "status", "Unknown status"),
        (
            "status=delivered&reason=spam".to_string(),
            "reason",
            "does not occur",
        ),
        (
            "reason=spam".to_string(),
            "reason",
            "Choose Soft bounce or Invalid first",
        ),
        (
            "mail_type=bulk".to_string(),
            "mail_type",
            "trigger or batch",
        ),
        ("per_page=5000".to_string(), "per_page", "20, 50 or 100"),
    ];
    for (query, field, text) in cases {
        let page = client.get(&format!("/status?{query}"));
        assert_eq!(page.status, 400, "{query}");
        assert!(
            page.body.contains(&format!("data-field=\"{field}\"")),
            "{query}: message next to {field}"
        );
        assert!(page.body.contains(text), "{query}: {text}");
        assert!(page.body.contains("<form"), "the form stays");
    }
    let typed = client.get("/status?from=yesterday&recipient=keep@me.test");
    assert!(
        typed.body.contains("value=\"yesterday\""),
        "what the user typed is kept"
    );
    assert!(typed.body.contains("value=\"keep@me.test\""));
    let garbage = client.get("/status?cursor=%27%3B%20DROP%20TABLE");
    assert_eq!(garbage.status, 200);
    assert!(garbage.body.contains("id=\"cursor-notice\""));
    assert_eq!(ids(&garbage.body).len(), 20, "the first page instead");
    assert_eq!(
        client
            .get("/status?cursor=n99999999999999999999999_1")
            .status,
        200
    );
});

both_backends!(paging_walks_every_row_once_while_new_rows_arrive, |db| {
    let (app, mut client, account_id, seeded) = setup(db);
    let expected: BTreeSet<i64> = seeded
        .iter()
        .filter(|(s, _)| s.at > noon(1))
        .map(|(_, id)| *id)
        .collect();
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut page = client.get("/status?per_page=20");
    let mut arrived = 0;
    loop {
        let rows = ids(&page.body);
        assert!(rows.len() <= 20);
        seen.extend(rows.iter().copied());
        pages.push(rows);
        // New mail keeps arriving (newer than everything) while the user pages.
        let spec = Spec {
            recipient: "new@qq.com".into(),
            api_user: "notify",
            mail_type: MailType::Trigger,
            tag: "welcome",
            status: Status::Requesting,
            reason: None,
            at: noon(0) + 3_600_000 + arrived,
        };
        insert(&app, account_id, 100 + arrived as usize, &spec);
        arrived += 1;
        match href(&page.body, "page-older") {
            Some(next) => page = client.get(&next),
            None => break,
        }
    }
    assert_eq!(seen.len(), expected.len(), "no row twice");
    assert_eq!(
        seen.iter().copied().collect::<BTreeSet<_>>(),
        expected,
        "every row once"
    );
    assert_eq!(pages.len(), 3);
    // And back: the newer link of the last page gives the page before it.
    let back = client.get(&href(&page.body, "page-newer").expect("a way back"));
    assert_eq!(ids(&back.body), pages[1]);
    assert!(href(&client.get("/status?per_page=20").body, "page-newer").is_none());
});

both_backends!(another_accounts_rows_never_show, |db| {
    let (app, mut client, _, _) = setup(db);
    let other = app.account("other");
    let theirs = insert(
        &app,
        other.id,
        1,
        &Spec {
            recipient: "user0@qq.com".into(),
            api_user: "notify",
            mail_type: MailType::Trigger,
            tag: "welcome",
            status: Status::Delivered,
            reason: None,
            at: noon(0) + 1,
        },
    );
    for query in [
        "",
        "recipient=user0@qq.com",
        "tag=welcome",
        "api_user=notify",
    ] {
        let page = client.get(&format!("/status?per_page=100&{query}"));
        assert!(!ids(&page.body).contains(&theirs), "{query}");
    }
    let csv = client.get("/status.csv?recipient=user0@qq.com");
    assert!(!csv.body.contains(&format!("_{}_1$test", other.id)));
});

both_backends!(masking_in_the_page_and_the_csv, |db| {
    let (app, mut client, account_id, _) = setup(db);
    let plain = client.get("/status?recipient=user3@163.com");
    assert!(plain.body.contains(">user3@163.com<"));
    let csv = client.get("/status.csv?recipient=user3@163.com");
    assert_eq!(csv.status, 200);
    assert!(csv.body.starts_with('\u{feff}'), "UTF-8 BOM for Excel");
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].contains("emailId"));
    let expected = app.count(&format!(
        "SELECT COUNT(*) AS n FROM messages WHERE account_id = {account_id} AND recipient = 'user3@163.com' AND requested_at > {}",
        noon(1)
    ));
    assert_eq!(lines.len() as i64 - 1, expected);

    {
        use mailtrail::db::schema::accounts;
        let mut conn = app.conn();
        diesel::update(accounts::table)
            .set(accounts::mask_addresses.eq(true))
            .execute(&mut *conn)
            .unwrap();
    }
    let masked = client.get("/status?recipient=user3@163.com");
    assert!(!masked.body.contains(">user3@163.com<"));
    assert!(masked.body.contains(">us***@163.com<"));
    let csv = client.get("/status.csv?recipient=user3@163.com");
    assert!(csv.body.contains("us***@163.com"));
    assert!(!csv.body.contains("user3@163.com"));

    // Staff see masked values until they reveal, which is audited.
    let staff_account = app.account("support");
    app.user(&staff_account, "staff@mt.test", Role::Staff, "pw");
    let mut staff = app.client();
    staff.login("staff@mt.test", "pw");
    let view = format!("/status?account={account_id}&recipient=user3@163.com");
    assert!(staff.get(&view).body.contains(">us***@163.com<"));
    let token = staff.get(&view).csrf_token();
    let revealed = staff.post_form(
        &format!("/reveal?account={account_id}"),
        &[("csrf_token", &token), ("next", &view)],
    );
    assert_eq!(revealed.status, 303);
    assert!(staff.get(&view).body.contains(">user3@163.com<"));
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'staff.reveal'"),
        1
    );
    let token = client.token();
    assert_eq!(
        client
            .post_form("/reveal", &[("csrf_token", &token)])
            .status,
        403,
        "customers cannot reveal"
    );
});

both_backends!(csv_refuses_more_than_ten_thousand_rows, |db| {
    let (app, mut client, _, _) = setup(db);
    let account = mailtrail::store::accounts::find_account_by_name(&mut app.conn(), "acme")
        .unwrap()
        .unwrap();
    app.generate(&account, 10_050, 1);
    let query = format!("from={}&to={}", day(1), day(0));
    // Too many: back to the page of the same filter, which offers the offline export.
    let csv = client.get(&format!("/status.csv?{query}"));
    assert_eq!(csv.status, 303);
    assert_eq!(csv.location(), format!("/status?{query}"));
    assert!(client
        .get(csv.location())
        .body
        .contains("id=\"export-over-limit\""));
    let small = client.get(&format!("/status.csv?{query}&api_user=billing"));
    assert_eq!(small.status, 200);
    let zone = chrono_tz::Asia::Shanghai;
    let start = mailtrail::domain::day_start(
        &zone,
        Utc::now().with_timezone(&zone).date_naive() - Duration::days(1),
    );
    let expected = app.count(&format!(
        "SELECT COUNT(*) AS n FROM messages WHERE api_user = 'billing' AND requested_at >= {start}"
    ));
    assert!(expected > 1000);
    assert_eq!(small.body.lines().count() as i64 - 1, expected);
});

both_backends!(a_period_past_the_retention_says_so, |db| {
    let mut settings = common::settings_for(&db);
    settings.retention_days = Some(30);
    let app = TestApp::start_with(db, settings);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "pw");
    let mut client = app.client();
    client.accept_language = Some("en".into());
    assert_eq!(client.login("owner@acme.test", "pw").status, 303);

    let page = client.get(&format!("/status?from={}&to={}", day(40), day(35)));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"retention-notice\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("kept for 30 days"), "{}", page.body);
    let page = client.get("/status");
    assert!(!page.body.contains("retention-notice"));
    let page = client.get(&format!("/status?from={}&to={}", day(20), day(0)));
    assert!(!page.body.contains("retention-notice"));
});
