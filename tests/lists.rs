//! The list pages: filters and paging, adds, deletes (selected and by filter, confirmed),
//! the blacklist's union with what counts as blacklist, CSV, opens/clicks, and isolation.

mod common;

use common::TestApp;
use mailtrail::domain::ListKind;
use mailtrail::domain::{now_ms, Role};
use mailtrail::store::lists::{self as list_pages, ManualEntry};
use mailtrail::store::AccountScope;

const HOUR: i64 = 3_600_000;

fn setup(db: common::TestDb) -> (TestApp, common::Client, i64) {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "pw");
    let mut client = app.client();
    client.accept_language = Some("en".into());
    assert_eq!(client.login("owner@acme.test", "pw").status, 303);
    (app, client, account.id)
}

fn add(app: &TestApp, account_id: i64, list: ListKind, address: &str, expires_at: Option<i64>) {
    let entry = ManualEntry {
        list,
        address: address.into(),
        reason: None,
        expires_at,
        api_user: None,
        source: "api",
    };
    list_pages::add(
        &mut app.conn(),
        &AccountScope::new(account_id),
        &entry,
        now_ms(),
    )
    .unwrap();
}

fn ids(body: &str) -> Vec<String> {
    body.split("name=\"ids\" value=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

both_backends!(pages_show_their_entries_and_filter_them, |db| {
    let (app, mut client, account_id) = setup(db);
    app.generate(
        &mailtrail::store::accounts::get_account(&mut app.conn(), account_id)
            .unwrap()
            .unwrap(),
        400,
        3,
    );
    for (path, table) in [
        ("/bounces", "bounces"),
        ("/unsubscribes", "unsubscribes"),
        ("/spam-reports", "spam_reports"),
    ] {
        let page = client.get(path);
        assert_eq!(page.status, 200, "{path}");
        let expected = app.count(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE account_id = {account_id}"
        ));
        assert_eq!(ids(&page.body).len() as i64, expected.min(50), "{path}");
    }
    add(&app, account_id, ListKind::Bounces, "Zed@Example.com", None);
    let one = client.get("/bounces?address=zed@example.com");
    assert_eq!(ids(&one.body).len(), 1);
    assert!(one.body.contains(">zed@example.com<"));
    let bad = client.get("/bounces?address=nope");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("data-field=\"address\""));
    assert!(bad.body.contains("value=\"nope\""), "what was typed stays");
    let bad_date = client.get("/bounces?from=2026-13-01");
    assert_eq!(bad_date.status, 400);
    assert!(bad_date.body.contains("data-field=\"from\""));
});

both_backends!(the_blacklist_page_includes_what_counts_as_blacklist, |db| {
    let (app, mut client, account_id) = setup(db);
    add(&app, account_id, ListKind::Blacklist, "@spammy.test", None);
    add(
        &app,
        account_id,
        ListKind::Bounces,
        "gone@example.com",
        Some(now_ms() + HOUR),
    );
    add(
        &app,
        account_id,
        ListKind::Bounces,
        "old@example.com",
        Some(now_ms() - HOUR),
    );
    add(
        &app,
        account_id,
        ListKind::SpamReports,
        "angry@example.com",
        None,
    );
    add(
        &app,
        account_id,
        ListKind::Unsubscribes,
        "bye@example.com",
        None,
    );
    let page = client.get("/blacklist");
    let shown = ids(&page.body);
    assert_eq!(
        shown.len(),
        3,
        "manual, bounce and spam report, not the expired bounce nor the unsubscribe: {shown:?}"
    );
    assert!(shown.iter().any(|k| k.starts_with("blacklist:")));
    assert!(shown.iter().any(|k| k.starts_with("bounces:")));
    assert!(shown.iter().any(|k| k.starts_with("spam_reports:")));
    assert!(page.body.contains("@spammy.test"));
});

both_backends!(adding_entries_through_the_form, |db| {
    let (app, mut client, _) = setup(db);
    let token = client.get("/blacklist").csrf_token();
    let res = client.post_form(
        "/blacklist/add",
        &[
            ("csrf_token", &token),
            ("address", "@Example.ORG"),
            ("expires", "2099-01-01"),
        ],
    );
    assert_eq!(res.status, 303);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM blacklist WHERE address = '@example.org' AND expires_at IS NOT NULL"), 1);
    let res = client.post_form(
        "/unsubscribes/add",
        &[
            ("csrf_token", &token),
            ("address", "u@example.com"),
            ("reason", "fraud"),
        ],
    );
    assert_eq!(res.status, 303);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM unsubscribes WHERE reason = 'fraud' AND source = 'ui'"
        ),
        1
    );
    let res = client.post_form(
        "/bounces/add",
        &[
            ("csrf_token", &token),
            ("address", "b@example.com"),
            ("reason", "550 no such user"),
        ],
    );
    assert_eq!(res.status, 303);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM bounces WHERE source = 'ui' AND bounce_count = 1"),
        1
    );
    for (path, fields) in [
        ("/blacklist/add", vec![("address", "not an address")]),
        (
            "/blacklist/add",
            vec![("address", "@x.test"), ("expires", "2001-01-01")],
        ),
        (
            "/unsubscribes/add",
            vec![("address", "u2@example.com"), ("reason", "bored")],
        ),
    ] {
        let mut form = vec![("csrf_token", token.as_str())];
        form.extend(fields);
        assert_eq!(client.post_form(path, &form).status, 400, "{path} {form:?}");
    }
    assert_eq!(
        client
            .post_form(
                "/spam-reports/add",
                &[("csrf_token", &token), ("address", "s@example.com")]
            )
            .status,
        403
    );
    assert_eq!(
        client
            .post_form("/blacklist/add", &[("address", "@nocsrf.test")])
            .status,
        403
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM blacklist"), 1);
});

both_backends!(deleting_selected_and_by_filter_is_confirmed_first, |db| {
    let (app, mut client, account_id) = setup(db);
    for a in ["a@example.com", "b@example.com", "c@other.test"] {
        add(&app, account_id, ListKind::SpamReports, a, None);
    }
    let page = client.get("/spam-reports");
    let token = page.csrf_token();
    let keys = ids(&page.body);
    assert_eq!(keys.len(), 3);
    let ask = client.post_form(
        "/spam-reports/delete",
        &[("csrf_token", &token), ("ids", &keys[0]), ("ids", &keys[1])],
    );
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("data-count=\"2\""));
    assert!(
        ask.body.contains("id=\"spam-warning\""),
        "deleting spam reports warns"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM spam_reports"),
        3,
        "nothing deleted before confirming"
    );
    let done = client.post_form(
        "/spam-reports/delete",
        &[
            ("csrf_token", &token),
            ("ids", &keys[0]),
            ("ids", &keys[1]),
            ("confirmed", "1"),
        ],
    );
    assert_eq!(done.status, 303);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM spam_reports"), 1);
    assert!(client
        .get(done.location())
        .body
        .contains("2 entries were deleted."));

    for a in ["x1@example.com", "x2@example.com", "keep@other.test"] {
        add(&app, account_id, ListKind::Unsubscribes, a, None);
    }
    let ask = client.post_form(
        "/unsubscribes/delete",
        &[
            ("csrf_token", &token),
            ("all", "1"),
            ("address", "x1@example.com"),
        ],
    );
    assert!(ask.body.contains("data-count=\"1\""));
    assert!(!ask.body.contains("id=\"spam-warning\""));
    assert!(
        ask.body.contains("x1@example.com will be removed from the"),
        "one entry is named: {}",
        ask.body
    );
    let done = client.post_form(
        "/unsubscribes/delete",
        &[
            ("csrf_token", &token),
            ("all", "1"),
            ("address", "x1@example.com"),
            ("confirmed", "1"),
        ],
    );
    assert_eq!(done.status, 303);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM unsubscribes"), 2);
    let everything = client.post_form(
        "/unsubscribes/delete",
        &[("csrf_token", &token), ("all", "1"), ("confirmed", "1")],
    );
    assert_eq!(everything.status, 303);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM unsubscribes"), 0);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'list.delete'"),
        3
    );
    // One ticked entry is named; two are counted.
    let page = client.get("/spam-reports");
    let keys = ids(&page.body);
    let ask = client.post_form(
        "/spam-reports/delete",
        &[("csrf_token", &token), ("ids", &keys[0])],
    );
    assert!(
        ask.body.contains("a@example.com will be removed"),
        "{}",
        ask.body
    );
    // Sent with nothing ticked (no script to hold the button back): the list again, with
    // its filter and a message, and nothing deleted.
    let none = client.post_form(
        "/spam-reports/delete",
        &[
            ("csrf_token", &token),
            ("selected", "1"),
            ("address", "a@example.com"),
        ],
    );
    assert_eq!(none.status, 303);
    assert!(none
        .location()
        .starts_with("/spam-reports?address=a%40example.com"));
    let again = client.get(none.location());
    assert_eq!(again.status, 200);
    assert!(again.body.contains("id=\"list-problem\""));
    assert!(again.body.contains("Select at least one entry"));
    assert!(again.body.contains("value=\"a@example.com\""));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM spam_reports"), 1);
});

both_backends!(
    a_list_beyond_the_download_limit_offers_the_offline_export,
    |db| {
        let (app, mut client, account_id) = setup(db);
        let small = client.get("/unsubscribes");
        assert!(!small.body.contains("id=\"export-over-limit\""));
        let now = now_ms();
        {
            use diesel::RunQueryDsl;
            let mut conn = app.conn();
            let conn: &mut mailtrail::db::DbConn = &mut conn;
            diesel::sql_query(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10001) \
             INSERT INTO unsubscribes (account_id, address, reason, source, unsubscribed_at) \
             SELECT {account_id}, 'u' || CAST(i AS TEXT) || '@example.com', 'user', 'api', {now} - i FROM n"
        ))
        .execute(conn)
        .unwrap();
        }
        let page = client.get("/unsubscribes");
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains("id=\"export-over-limit\""),
            "{}",
            page.body
        );
        assert!(
            !page.body.contains("id=\"csv-export\""),
            "no link that would be refused"
        );
        assert!(page.body.contains("class=\"export-offline\""));
        // A narrower filter fits again.
        let few = client.get("/unsubscribes?address=u1234%40example.com");
        assert!(few.body.contains("id=\"csv-export\""));
        assert!(!few.body.contains("id=\"export-over-limit\""));
    }
);

both_backends!(another_accounts_entries_cannot_be_seen_or_deleted, |db| {
    let (app, mut client, _) = setup(db);
    let other = app.account("other");
    add(
        &app,
        other.id,
        ListKind::Bounces,
        "theirs@example.com",
        Some(now_ms() + HOUR),
    );
    let id = app.count("SELECT MAX(id) AS n FROM bounces");
    assert!(ids(&client.get("/bounces").body).is_empty());
    assert!(ids(&client.get("/blacklist").body).is_empty());
    let token = client.token();
    let key = format!("bounces:{id}");
    client.post_form(
        "/bounces/delete",
        &[("csrf_token", &token), ("ids", &key), ("confirmed", "1")],
    );
    client.post_form(
        "/bounces/delete",
        &[("csrf_token", &token), ("all", "1"), ("confirmed", "1")],
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM bounces"),
        1,
        "still there"
    );
    let csv = client.get("/bounces.csv");
    assert_eq!(csv.status, 200);
    assert!(!csv.body.contains("theirs@example.com"));
});

both_backends!(lists_download_as_csv_with_masking, |db| {
    let (app, mut client, account_id) = setup(db);
    add(
        &app,
        account_id,
        ListKind::Unsubscribes,
        "carol@example.com",
        None,
    );
    let csv = client.get("/unsubscribes.csv");
    assert_eq!(csv.status, 200);
    assert!(csv.body.starts_with('\u{feff}'));
    assert!(csv.body.contains("carol@example.com"));
    assert!(csv.body.contains("I no longer want these emails"));
    {
        use diesel::prelude::*;
        use mailtrail::db::schema::accounts;
        diesel::update(accounts::table)
            .set(accounts::mask_addresses.eq(true))
            .execute(&mut *app.conn())
            .unwrap();
    }
    let masked = client.get("/unsubscribes.csv");
    assert!(masked.body.contains("ca***@example.com"));
    assert!(!masked.body.contains("carol@example.com"));
    assert!(client
        .get("/unsubscribes")
        .body
        .contains(">ca***@example.com<"));
});

both_backends!(opens_and_clicks_filter_by_kind_and_address, |db| {
    let (app, mut client, account_id) = setup(db);
    app.generate(
        &mailtrail::store::accounts::get_account(&mut app.conn(), account_id)
            .unwrap()
            .unwrap(),
        300,
        2,
    );
    let zone = chrono_tz::Asia::Shanghai;
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    let from = today - chrono::Duration::days(3);
    let query = format!("from={from}&to={today}");
    let all = client.get(&format!("/opens-clicks?{query}"));
    assert_eq!(all.status, 200);
    let clicks = client.get(&format!("/opens-clicks?{query}&kind=click"));
    let rows = clicks.body.matches("<tr data-id=").count();
    assert_eq!(rows, clicks.body.matches("data-kind=\"click\"").count());
    let expected = app
        .count("SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 2")
        .min(50);
    assert_eq!(rows as i64, expected);
    assert!(
        all.body.contains("<td>Windows</td>")
            || all.body.contains("<td>iOS</td>")
            || all.body.contains("<td>Android</td>")
    );
    assert_eq!(
        client
            .get(&format!("/opens-clicks?{query}&kind=bounce"))
            .status,
        400
    );
    let csv = client.get(&format!("/opens-clicks.csv?{query}&kind=click"));
    assert_eq!(
        csv.body.lines().count() as i64 - 1,
        app.count("SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 2")
    );
});

both_backends!(the_sweep_deletes_only_expired_entries_and_sessions, |db| {
    let (app, mut client, account_id) = setup(db);
    add(
        &app,
        account_id,
        ListKind::Bounces,
        "old@example.com",
        Some(now_ms() - HOUR),
    );
    add(
        &app,
        account_id,
        ListKind::Bounces,
        "new@example.com",
        Some(now_ms() + HOUR),
    );
    add(&app, account_id, ListKind::Blacklist, "@forever.test", None);
    add(
        &app,
        account_id,
        ListKind::Unsubscribes,
        "u@example.com",
        None,
    );
    {
        use diesel::prelude::*;
        use mailtrail::db::schema::sessions;
        diesel::update(sessions::table)
            .set(sessions::expires_at.eq(1))
            .execute(&mut *app.conn())
            .unwrap();
    }
    let swept = mailtrail::jobs::maintenance::sweep(&mut app.conn()).unwrap();
    assert!(swept >= 2, "the expired bounce and the session");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM bounces"), 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM blacklist"), 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM unsubscribes"), 1);
    assert_eq!(client.get("/").status, 303, "the expired session is gone");
});
