//! Offline exports: the worker writes exactly the filter's rows (count, values, masking,
//! BOM, gzip), downloads stay in their account, retention, retry, cancel, recovery after a
//! crash, and accounts that forbid exports.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Client, TestApp};
use mailtrail::domain::Role;
use mailtrail::store::accounts;

fn setup(db: common::TestDb, messages: u64) -> (TestApp, Client, i64) {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "pw");
    if messages > 0 {
        app.generate(&account, messages, 2);
    }
    let mut client = app.client();
    client.accept_language = Some("en".into());
    assert_eq!(client.login("owner@acme.test", "pw").status, 303);
    (app, client, account.id)
}

/// Waits (at most a minute) until job `id` leaves queued/running; answers its state.
fn settle(app: &TestApp, id: i64) -> String {
    let started = Instant::now();
    loop {
        let state = {
            use diesel::prelude::*;
            use mailtrail::db::schema::export_jobs;
            export_jobs::table
                .find(id)
                .select(export_jobs::state)
                .first::<String>(&mut *app.conn())
                .unwrap()
        };
        if !matches!(state.as_str(), "queued" | "running")
            || started.elapsed() > Duration::from_secs(60)
        {
            return state;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn last_job(app: &TestApp) -> i64 {
    app.count("SELECT MAX(id) AS n FROM export_jobs")
}

fn days() -> (String, String) {
    let zone = chrono_tz::Asia::Shanghai;
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    (
        (today - chrono::Duration::days(2)).to_string(),
        today.to_string(),
    )
}

both_backends!(a_status_export_holds_exactly_the_filters_rows, |db| {
    let (app, mut client, account_id) = setup(db, 1_500);
    let (from, to) = days();
    let token = client.get("/status").csrf_token();
    let res = client.post_form(
        "/exports",
        &[
            ("csrf_token", &token),
            ("kind", "status"),
            ("format", "csv"),
            ("from", &from),
            ("to", &to),
            ("api_user", "billing"),
        ],
    );
    assert_eq!(res.status, 303);
    let id = last_job(&app);
    assert_eq!(settle(&app, id), "succeeded");
    let page = client.get("/exports");
    assert!(page
        .body
        .contains(&format!("<tr data-id=\"{id}\" data-state=\"succeeded\">")));
    let file = client.get(&format!("/exports/{id}/download"));
    assert_eq!(file.status, 200);
    assert!(file.header("content-disposition").unwrap().contains(".csv"));
    assert!(file.body.starts_with('\u{feff}'));
    let zone = chrono_tz::Asia::Shanghai;
    let start = mailtrail::domain::day_start(
        &zone,
        chrono::NaiveDate::parse_from_str(&from, "%Y-%m-%d").unwrap(),
    );
    let expected = app.count(&format!("SELECT COUNT(*) AS n FROM messages WHERE account_id = {account_id} AND api_user = 'billing' AND requested_at >= {start}"));
    assert!(expected > 100);
    let lines: Vec<&str> = file.body.lines().collect();
    assert_eq!(
        lines.len() as i64 - 1,
        expected,
        "exactly the filter's rows"
    );
    assert!(lines[1..].iter().all(|l| l.contains(",billing,")));
    assert_eq!(
        app.count(&format!(
            "SELECT rows_total AS n FROM export_jobs WHERE id = {id}"
        )),
        expected
    );
    assert_eq!(
        app.count(&format!(
            "SELECT rows_done AS n FROM export_jobs WHERE id = {id}"
        )),
        expected
    );
    // Gzip and masking.
    {
        use diesel::prelude::*;
        use mailtrail::db::schema::accounts as a;
        diesel::update(a::table)
            .set(a::mask_addresses.eq(true))
            .execute(&mut *app.conn())
            .unwrap();
    }
    client.post_form(
        "/exports",
        &[
            ("csrf_token", &token),
            ("kind", "status"),
            ("format", "csv"),
            ("gzip", "1"),
            ("from", &from),
            ("to", &to),
        ],
    );
    let id = last_job(&app);
    assert_eq!(settle(&app, id), "succeeded");
    let path = app
        .settings
        .exports_dir()
        .join(format!("export-{id}.csv.gz"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.starts_with('\u{feff}'));
    assert!(
        text.lines().skip(1).all(|l| l.contains("***@")),
        "masked as on the page"
    );
});

both_backends!(list_exports_and_their_download_stays_in_the_account, |db| {
    let (app, mut client, _) = setup(db, 600);
    let token = client.get("/bounces").csrf_token();
    client.post_form(
        "/exports",
        &[
            ("csrf_token", &token),
            ("kind", "bounces"),
            ("format", "csv"),
        ],
    );
    let id = last_job(&app);
    assert_eq!(settle(&app, id), "succeeded");
    let file = client.get(&format!("/exports/{id}/download"));
    assert_eq!(
        file.body.lines().count() as i64 - 1,
        app.count("SELECT COUNT(*) AS n FROM bounces")
    );

    let other = app.account("other");
    app.user(&other, "owner@other.test", Role::Owner, "pw2");
    let mut intruder = app.client();
    intruder.login("owner@other.test", "pw2");
    assert_eq!(intruder.get(&format!("/exports/{id}/download")).status, 404);
    assert!(!intruder
        .get("/exports")
        .body
        .contains(&format!("data-id=\"{id}\"")));
    let t = intruder.token();
    assert_eq!(
        intruder
            .post_form(&format!("/exports/{id}/cancel"), &[("csrf_token", &t)])
            .status,
        404
    );
});

both_backends!(retention_retry_cancel_and_recovery, |db| {
    let (app, mut client, account_id) = setup(db, 50);
    let token = client.get("/status").csrf_token();
    client.post_form(
        "/exports",
        &[
            ("csrf_token", &token),
            ("kind", "unsubscribes"),
            ("format", "csv"),
        ],
    );
    let id = last_job(&app);
    assert_eq!(settle(&app, id), "succeeded");
    let path = app.settings.exports_dir().join(format!("export-{id}.csv"));
    assert!(path.exists());
    // Seven days later the file goes and the job says so.
    app.count(&format!(
        "SELECT COUNT(*) AS n FROM export_jobs WHERE id = {id}"
    ));
    {
        use diesel::prelude::*;
        use mailtrail::db::schema::export_jobs;
        diesel::update(export_jobs::table.find(id))
            .set(export_jobs::expires_at.eq(1))
            .execute(&mut *app.conn())
            .unwrap();
    }
    let started = Instant::now();
    while path.exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!path.exists());
    assert_eq!(settle(&app, id), "expired");
    assert_eq!(client.get(&format!("/exports/{id}/download")).status, 404);

    // A failed job can be retried; a job of a crashed server is picked up again at start.
    {
        use diesel::prelude::*;
        use mailtrail::db::schema::export_jobs;
        diesel::update(export_jobs::table.find(id))
            .set((
                export_jobs::state.eq("failed"),
                export_jobs::error.eq("disk full"),
            ))
            .execute(&mut *app.conn())
            .unwrap();
    }
    assert!(client.get("/exports").body.contains("disk full"));
    let res = client.post_form(&format!("/exports/{id}/retry"), &[("csrf_token", &token)]);
    assert_eq!(res.status, 303);
    assert_eq!(settle(&app, id), "succeeded");
    {
        use diesel::prelude::*;
        use mailtrail::db::schema::export_jobs;
        diesel::update(export_jobs::table.find(id))
            .set((
                export_jobs::state.eq("running"),
                export_jobs::rows_done.eq(0),
            ))
            .execute(&mut *app.conn())
            .unwrap();
    }
    let db = app.stop();
    let app = TestApp::start(db);
    assert_eq!(
        settle(&app, id),
        "succeeded",
        "a job left running by a crash finishes after restart"
    );
    assert!(app
        .settings
        .exports_dir()
        .join(format!("export-{id}.csv"))
        .exists());
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM export_jobs WHERE account_id = {account_id}"
        )),
        1
    );
    let part_files = std::fs::read_dir(app.settings.exports_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "part")
        })
        .count();
    assert_eq!(part_files, 0, "no partial file left");
});

both_backends!(an_account_that_forbids_export_gets_403_everywhere, |db| {
    let (app, mut client, account_id) = setup(db, 20);
    let token = client.get("/status").csrf_token();
    client.post_form(
        "/exports",
        &[
            ("csrf_token", &token),
            ("kind", "blacklist"),
            ("format", "csv"),
        ],
    );
    let id = last_job(&app);
    settle(&app, id);
    {
        use diesel::prelude::*;
        use mailtrail::db::schema::accounts as a;
        diesel::update(a::table.find(account_id))
            .set(a::export_allowed.eq(false))
            .execute(&mut *app.conn())
            .unwrap();
    }
    let page = client.get("/status");
    assert!(!page.body.contains("export-offline"), "no export controls");
    assert!(!page.body.contains("id=\"csv-export\""));
    assert_eq!(
        client
            .post_form(
                "/exports",
                &[
                    ("csrf_token", &token),
                    ("kind", "status"),
                    ("format", "csv")
                ]
            )
            .status,
        403
    );
    assert_eq!(client.get(&format!("/exports/{id}/download")).status, 403);
    assert_eq!(client.get("/status.csv").status, 403);
    assert_eq!(client.get("/bounces.csv").status, 403);
    assert_eq!(
        client
            .post_form(&format!("/exports/{id}/retry"), &[("csrf_token", &token)])
            .status,
        403
    );
    assert!(accounts::get_account(&mut app.conn(), account_id)
        .unwrap()
        .is_some());
});
