//! The console's pages as a user meets them (issue 17): `/status` search by subject and
//! sender, the "21–40 of 193" pager, tab counts that honour the reason, the offline export
//! beyond the download limit, links only where there is something; the overview's ranges,
//! separators and links; an empty account's next steps; Chinese without English UI words.

mod common;

use chrono::{Duration, TimeZone, Utc};

use common::{Client, TestApp};
use mailtrail::domain::Role;

fn today() -> chrono::NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
}

/// The first millisecond of `day` in Shanghai.
fn start_of(day: chrono::NaiveDate) -> i64 {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis()
}

/// `[from, to)` in ms for the last `days` days including today.
fn window(days: i64) -> (i64, i64) {
    let t = today();
    (
        start_of(t - Duration::days(days - 1)),
        start_of(t + Duration::days(1)),
    )
}

fn signed_in(db: common::TestDb, messages: u64, days: u32) -> (TestApp, Client, i64) {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "console pw");
    if messages > 0 {
        app.generate(&account, messages, days);
    }
    let mut client = app.client();
    client.accept_language = Some("en".into());
    assert_eq!(client.login("owner@acme.test", "console pw").status, 303);
    (app, client, account.id)
}

/// The text after `marker` up to the next `<` or `"`.
fn after<'a>(body: &'a str, marker: &str) -> Option<&'a str> {
    let at = body.find(marker)? + marker.len();
    let end = body[at..].find(['<', '"'])? + at;
    Some(&body[at..end])
}

fn tab_count(body: &str, tab: &str) -> i64 {
    let at = body.find(&format!("data-tab=\"{tab}\"")).expect("tab");
    after(&body[at..], "data-count=\"")
        .unwrap()
        .parse()
        .unwrap()
}

fn rows(body: &str) -> Vec<i64> {
    body.match_indices("<tr data-id=\"")
        .map(|(at, m)| {
            let rest = &body[at + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
}

fn href(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!("id=\"{id}\""))?;
    let start = body[..at].rfind("href=\"")? + 6;
    let end = body[start..].find('"')? + start;
    Some(html_unescape(&body[start..end]))
}

both_backends!(status_searches_subjects_and_senders_in_any_case, |db| {
    let (app, mut client, _) = signed_in(db, 600, 7);
    let (from, to) = window(7);
    let week = format!("from={}&to={}", today() - Duration::days(6), today());
    let expected = app.count(&format!(
        "SELECT COUNT(*) AS n FROM messages WHERE LOWER(subject) LIKE '%invoice%' \
         AND requested_at >= {from} AND requested_at < {to}"
    ));
    assert!(expected > 0, "the demo data has invoices");
    let page = client.get(&format!("/status?{week}&subject=INVOICE&per_page=100"));
    assert_eq!(page.status, 200);
    assert_eq!(
        tab_count(&page.body, ""),
        expected,
        "the All tab counts the search"
    );
    let shown = rows(&page.body);
    assert_eq!(shown.len() as i64, expected.min(100));
    for id in &shown {
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) AS n FROM messages WHERE id = {id} AND LOWER(subject) LIKE '%invoice%'"
            )),
            1
        );
    }
    assert!(
        page.body.contains("class=\"c-subject\">Your invoice"),
        "the subject column"
    );

    // The sender, by a part of it.
    let sender: String = {
        use diesel::prelude::*;
        use mailtrail::db::schema::messages;
        messages::table
            .select(messages::sender)
            .first(&mut *app.conn())
            .unwrap()
    };
    let part = &sender[..sender.find('@').unwrap()];
    let by_sender = client.get(&format!("/status?{week}&sender={}", part.to_uppercase()));
    assert_eq!(
        tab_count(&by_sender.body, ""),
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM messages WHERE LOWER(sender) LIKE '%{}%' \
             AND requested_at >= {from} AND requested_at < {to}",
            part.to_lowercase()
        ))
    );

    // LIKE's wildcards are taken literally: nothing has a % in its subject.
    let literal = client.get(&format!("/status?{week}&subject=%25"));
    assert_eq!(literal.status, 200);
    assert_eq!(tab_count(&literal.body, ""), 0);
    assert!(literal.body.contains("id=\"status-empty\""));
});

both_backends!(pager_says_where_it_is_and_tabs_honour_the_reason, |db| {
    let (app, mut client, _) = signed_in(db, 2000, 7);
    let (from, to) = window(7);
    let week = format!("from={}&to={}", today() - Duration::days(6), today());
    let delivered = app.count(&format!(
        "SELECT COUNT(*) AS n FROM messages WHERE status = 1 AND requested_at >= {from} AND requested_at < {to}"
    ));
    assert!(delivered > 40);
    let first = client.get(&format!("/status?{week}&status=delivered"));
    let total = mailtrail::web::layout::grouped(delivered);
    assert_eq!(
        after(&first.body, "id=\"page-range\">").unwrap(),
        format!("1–20 of {total}")
    );
    let second = client.get(&href(&first.body, "page-older").expect("a next page"));
    assert_eq!(
        after(&second.body, "id=\"page-range\">").unwrap(),
        format!("21–40 of {total}")
    );
    let back = client.get(&href(&second.body, "page-newer").expect("a way back"));
    assert_eq!(
        after(&back.body, "id=\"page-range\">").unwrap(),
        format!("1–20 of {total}")
    );
    assert_eq!(rows(&back.body), rows(&first.body));

    // A reason: the tabs where it occurs count only it, and keep it in their links.
    let invalid_not_found = app.count(&format!(
        "SELECT COUNT(*) AS n FROM messages WHERE status = 3 AND reason = {} \
         AND requested_at >= {from} AND requested_at < {to}",
        mailtrail::domain::Reason::AddressNotFound.as_i16()
    ));
    let soft_not_found = app.count(&format!(
        "SELECT COUNT(*) AS n FROM messages WHERE status = 2 AND reason = {} \
         AND requested_at >= {from} AND requested_at < {to}",
        mailtrail::domain::Reason::AddressNotFound.as_i16()
    ));
    assert!(invalid_not_found > 0);
    // The grouped choice says its status itself.
    let page = client.get(&format!("/status?{week}&reason=invalid:address_not_found"));
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains("class=\"tab bad active\" data-tab=\"invalid\""));
    assert_eq!(tab_count(&page.body, "invalid"), invalid_not_found);
    assert_eq!(tab_count(&page.body, "soft_bounce"), soft_not_found);
    assert!(
        page.body.contains("<optgroup")
            || page.body.contains("value=\"address_not_found\" selected")
    );
    for id in rows(&page.body) {
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) AS n FROM messages WHERE id = {id} AND status = 3 AND reason = {}",
                mailtrail::domain::Reason::AddressNotFound.as_i16()
            )),
            1
        );
    }
    let soft_href = {
        let at = page.body.find("data-tab=\"soft_bounce\"").unwrap();
        let start = page.body[..at].rfind("href=\"").unwrap() + 6;
        html_unescape(&page.body[start..start + page.body[start..].find('"').unwrap()])
    };
    assert!(
        soft_href.contains("reason=address_not_found"),
        "{soft_href}"
    );
    // Without a status, every reason is offered under its status.
    let any = client.get(&format!("/status?{week}"));
    assert!(any.body.contains("<optgroup label=\"Soft bounce\">"));
    assert!(any.body.contains("value=\"invalid:blacklisted\""));
    assert!(
        !any.body.contains("value=\"soft_bounce:blacklisted\""),
        "no reason that cannot occur"
    );
});

both_backends!(
    a_bad_date_keeps_what_was_typed_and_presets_fill_the_dates,
    |db| {
        let (_app, mut client, _) = signed_in(db, 50, 2);
        let bad = client.get("/status?from=2024-13-45&to=");
        assert_eq!(bad.status, 400);
        assert!(bad
            .body
            .contains("type=\"text\" name=\"from\" value=\"2024-13-45\""));
        assert!(bad.body.contains("placeholder=\"YYYY-MM-DD\""));
        assert!(bad.body.contains("YYYY-MM-DD"));
        let page = client.get("/status");
        let t = today();
        for (code, back) in [("today", 0), ("24h", 1), ("7d", 6), ("30d", 29)] {
            let at = page.body.find(&format!("data-preset=\"{code}\"")).unwrap();
            let start = page.body[..at].rfind("href=\"").unwrap() + 6;
            let link =
                html_unescape(&page.body[start..start + page.body[start..].find('"').unwrap()]);
            assert!(
                link.contains(&format!("from={}", t - Duration::days(back))),
                "{link}"
            );
            assert!(link.contains(&format!("to={t}")), "{link}");
            assert_eq!(client.get(&link).status, 200);
        }
        assert!(
            page.body.contains("(Asia/Shanghai)"),
            "the time zone is shown with the times"
        );
    }
);

both_backends!(send_log_and_content_links_only_where_they_exist, |db| {
    let (app, mut client, account) = signed_in(db, 300, 1);
    mailtrail::store::accounts::set_splus(&mut app.conn(), account, true, true).unwrap();
    let page = client.get("/status?per_page=100");
    let shown = rows(&page.body);
    assert!(!shown.is_empty());
    let ids = shown
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let logs = app.count(&format!(
        "SELECT COUNT(*) AS n FROM send_logs WHERE message_id IN ({ids})"
    ));
    let contents = app.count(&format!(
        "SELECT COUNT(*) AS n FROM message_contents WHERE message_id IN ({ids})"
    ));
    assert_eq!(
        page.body.matches("class=\"send-log-link\"").count() as i64,
        logs
    );
    assert_eq!(
        page.body.matches("class=\"content-link\"").count() as i64,
        contents
    );
    assert!(
        (logs as usize) < shown.len(),
        "not every message has a send log"
    );
    assert_eq!(page.body.matches("class=\"log-link\"").count(), shown.len());
});

both_backends!(over_the_download_limit_the_export_goes_offline, |db| {
    let (_app, mut client, _) = signed_in(db, 10_200, 1);
    let two_days = format!("from={}&to={}", today() - Duration::days(1), today());
    let page = client.get(&format!("/status?{two_days}"));
    assert_eq!(page.status, 200);
    let all = tab_count(&page.body, "");
    assert!(all > 10_000, "{all}");
    assert!(page.body.contains("id=\"export-over-limit\""));
    assert!(!page.body.contains("id=\"csv-export\""), "no link to a 400");
    assert!(page.body.contains("class=\"export-offline\""));
    // A bookmarked download of too many rows leads back to the page, not to a 400.
    let csv = client.get(&format!("/status.csv?{two_days}"));
    assert_eq!(csv.status, 303);
    assert_eq!(csv.location(), format!("/status?{two_days}"));
    let small = client.get(&format!("/status?{two_days}&status=requesting"));
    assert!(small.body.contains("id=\"csv-export\""));
    assert!(!small.body.contains("id=\"export-over-limit\""));
});

both_backends!(overview_ranges_link_to_status_with_separators, |db| {
    let (app, mut client, _) = signed_in(db, 1500, 30);
    for days in [1, 7, 30] {
        let page = client.get(&format!("/?days={days}"));
        assert_eq!(page.status, 200);
        let (from, to) = window(days);
        let total = app.count(&format!(
            "SELECT COUNT(*) AS n FROM messages WHERE requested_at >= {from} AND requested_at < {to}"
        ));
        let at = page.body.find("id=\"period-2\"").unwrap();
        assert_eq!(
            after(&page.body[at..], "data-total=\"").unwrap(),
            total.to_string(),
            "{days} days"
        );
        assert!(page
            .body
            .contains(&format!("data-days=\"{days}\" class=\"active\"")));
        let start = today() - Duration::days(days - 1);
        assert!(html_unescape(&page.body).contains(&format!(
            "href=\"/status?from={start}&to={}&status=delivered\"",
            today()
        )));
        if total >= 1000 {
            assert!(page.body.contains(&mailtrail::web::layout::grouped(total)));
        }
    }
    let month = client.get("/?days=30");
    assert!(month.body.contains("<title>"), "hover values");
    assert!(month.body.contains("class=\"tick\""), "a y axis with ticks");
    assert!(month.body.contains("Delivery rate"));
    assert_eq!(
        client.get("/?days=9").status,
        200,
        "an unknown range shows the default"
    );
});

both_backends!(an_empty_account_gets_the_webhook_url_to_paste, |db| {
    let (app, mut client, _) = signed_in(db, 0, 0);
    let page = client.get("/");
    assert_eq!(page.status, 200);
    let base = app.base.clone();
    assert!(
        page.body
            .contains(&format!("{base}/webhooks/sendcloud?account=acme")),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("{base}/api/v1/events")));
    assert!(page.body.contains("href=\"/settings#api-users\""));
    assert!(!page.body.contains("mailtrail generate"), "no CLI command");
});

both_backends!(chinese_pages_name_sources_and_rules_in_chinese, |db| {
    let (app, mut client, _) = signed_in(db, 400, 3);
    client.accept_language = Some("zh-CN".into());
    assert_eq!(client.get("/lang/zh-CN?next=/").status, 303);
    let generated = app.count("SELECT MIN(id) AS n FROM messages WHERE rule = 'generated'");
    let page = client.get(&format!("/status/{generated}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("判定依据"));
    assert!(
        !page.body.contains("generated"),
        "the rule reads in Chinese"
    );
    assert!(page.body.contains("判定依据："), "a full-width colon");
    // Where a list entry came from, as the lookup page names it.
    use mailtrail::web::lang::Lang;
    use mailtrail::web::lookup::source_shown;
    assert_eq!(source_shown(Lang::Zh, "delivery"), "投递结果");
    assert_eq!(source_shown(Lang::Zh, "ui"), "控制台添加");
    assert_eq!(source_shown(Lang::En, "something-new"), "something-new");
    // Three days, not today: just after midnight in Shanghai today may hold one page or less.
    let status = client.get(&format!(
        "/status?from={}&to={}",
        today() - Duration::days(2),
        today()
    ));
    assert!(
        status.body.contains("较新")
            || status.body.contains("较早")
            || status.body.contains("id=\"status-empty\"")
    );
    assert!(!status.body.contains("更新 →") && !status.body.contains("← 更新"));
});

both_backends!(
    export_jobs_describe_their_filter_in_the_viewers_language,
    |db| {
        let (_app, mut client, _) = signed_in(db, 100, 1);
        let token = client.token();
        let t = today().to_string();
        let made = client.post_form(
            "/exports",
            &[
                ("csrf_token", &token),
                ("kind", "status"),
                ("format", "csv"),
                ("from", &t),
                ("to", &t),
                ("status", "invalid"),
                ("reason", "address_not_found"),
            ],
        );
        assert_eq!(made.status, 303);
        let en = client.get("/exports");
        assert!(en.body.contains("Status: Invalid"), "{}", en.body);
        assert!(
            en.body.contains("Reason: Address does not exist"),
            "{}",
            en.body
        );
        assert!(!en.body.contains("status=invalid"));
        assert_eq!(client.get("/lang/zh-CN?next=/exports").status, 303);
        let zh = client.get("/exports");
        assert!(zh.body.contains("状态：无效邮件"), "{}", zh.body);
    }
);

both_backends!(a_message_shows_its_clicks_with_url_ip_and_browser, |db| {
    let (app, mut client, _) = signed_in(db, 400, 3);
    let id = app.count(
        "SELECT MIN(m.id) AS n FROM messages m JOIN tracking_events t \
         ON t.email_id = m.email_id AND t.recipient = m.recipient AND t.kind = 2",
    );
    assert!(id > 0, "the demo data has clicks");
    let (url, ip): (String, Option<String>) = {
        use diesel::prelude::*;
        use mailtrail::db::schema::{messages, tracking_events as t};
        let (email_id, recipient): (String, String) = messages::table
            .filter(messages::id.eq(id))
            .select((messages::email_id, messages::recipient))
            .first(&mut *app.conn())
            .unwrap();
        t::table
            .filter(t::email_id.eq(email_id))
            .filter(t::recipient.eq(recipient))
            .filter(t::kind.eq(2))
            .select((t::url, t::ip))
            .first(&mut *app.conn())
            .unwrap()
    };
    let page = client.get(&format!("/status/{id}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"engagement\""));
    assert!(page.body.contains("data-kind=\"click\""));
    assert!(
        page.body.contains(&url.replace('&', "&#38;")),
        "the clicked URL"
    );
    if let Some(ip) = ip {
        assert!(page.body.contains(&format!("IP <code>{ip}</code>")));
    }
});

both_backends!(
    errors_are_pages_of_the_console_and_an_outage_is_a_503,
    |db| {
        let (app, mut client, _) = signed_in(db, 20, 1);
        // A 404 keeps the navigation, the sign-out and the way back to where the viewer was.
        client.referer = Some(format!("{}/status?per_page=20", app.base));
        let missing = client.get("/status/999999999");
        client.referer = None;
        assert_eq!(missing.status, 404);
        assert!(
            missing.body.contains("class=\"main-nav\""),
            "{}",
            missing.body
        );
        assert!(missing.body.contains("action=\"/logout\""));
        assert!(missing
            .body
            .contains("id=\"error-back\" href=\"/status?per_page=20\""));
        assert!(missing.body.contains("id=\"error-home\""));
        // Signed out, the same page offers the sign-in instead.
        let mut stranger = app.client();
        stranger.accept_language = Some("zh-CN".into());
        let lost = stranger.get("/no/such/page");
        assert_eq!(lost.status, 404);
        assert!(lost.body.contains("页面不存在"));
        assert!(lost.body.contains("id=\"error-login\""));
        assert!(!lost.body.contains("action=\"/logout\""));

        // The database goes away while someone is signed in: a page that says so (503, with a
        // retry), not a bare 500. SQLite: the sessions table is gone; PostgreSQL: the server
        // refuses every connection to the database.
        match app.db.backend {
            common::Backend::Sqlite => {
                use diesel::connection::SimpleConnection;
                app.conn()
                    .batch_execute("ALTER TABLE sessions RENAME TO sessions_away")
                    .unwrap();
            }
            common::Backend::Postgres => {
                use diesel::connection::SimpleConnection;
                use diesel::{Connection, RunQueryDsl};
                let admin_url = std::env::var(common::PG_ENV).unwrap();
                let name = app.db.url.rsplit('/').next().unwrap().to_string();
                let mut admin = diesel::PgConnection::establish(&admin_url).unwrap();
                admin
                    .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
                    .unwrap();
                // A terminated backend leaves when it gets to it, and the pool may have been
                // half-way through opening one: terminate until none is left.
                let remaining =
                    format!("(SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{name}')");
                for _ in 0..100 {
                    admin
                        .batch_execute(&format!(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE datname = '{name}'"
                        ))
                        .unwrap();
                    let left: i64 =
                        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&remaining))
                            .get_result(&mut admin)
                            .unwrap();
                    if left == 0 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
        let down = client.get("/status");
        assert_eq!(down.status, 503, "{}", down.body);
        assert!(down
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        assert!(
            down.body.contains("The database is not answering"),
            "{}",
            down.body
        );
        assert!(down.body.contains("id=\"error-retry\" href=\"/status\""));
        assert_eq!(down.header("retry-after"), Some("5"));
        assert!(down.header("content-security-policy").is_some());
        if app.db.backend == common::Backend::Postgres {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            let admin_url = std::env::var(common::PG_ENV).unwrap();
            let name = app.db.url.rsplit('/').next().unwrap().to_string();
            let mut admin = diesel::PgConnection::establish(&admin_url).unwrap();
            admin
                .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                .unwrap();
        }
    }
);

both_backends!(
    demo_data_has_no_future_and_subjects_match_their_tags,
    |db| {
        let (app, _client, account_id) = signed_in(db, 3_000, 2);
        let now = mailtrail::domain::now_ms();
        for (table, column) in [
            ("messages", "requested_at"),
            ("messages", "updated_at"),
            ("message_events", "occurred_at"),
            ("tracking_events", "occurred_at"),
            ("bounces", "bounced_at"),
            ("spam_reports", "reported_at"),
            ("unsubscribes", "unsubscribed_at"),
            ("blacklist", "created_at"),
        ] {
            let latest = app.count(&format!(
                "SELECT CAST(COALESCE(MAX({column}), 0) AS BIGINT) AS n FROM {table}"
            ));
            assert!(
                latest <= now,
                "{table}.{column} is in the future: {latest} > {now}"
            );
        }
        use diesel::prelude::*;
        use mailtrail::db::schema::messages;
        let pairs: Vec<(String, String)> = messages::table
            .filter(messages::account_id.eq(account_id))
            .select((messages::tags, messages::subject))
            .distinct()
            .load(&mut *app.conn())
            .unwrap();
        assert!(pairs.len() >= 10, "every tag is drawn: {pairs:?}");
        for (tag, subject) in pairs {
            assert!(
                mailtrail::demo::catalogue::subjects_for(&tag).contains(&subject.as_str()),
                "{subject:?} is not a subject for {tag}"
            );
        }
    }
);
