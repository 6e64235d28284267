//! Offline exports: the worker writes exactly the filter's rows (count, values, masking,
//! BOM, gzip, XLSX), progress only grows, downloads stay in their account, retention, retry,
//! cancel, recovery after a crash, and accounts that forbid exports.

mod common;

use std::io::{Cursor, Read};
use std::time::{Duration, Instant};

use common::{Client, TestApp};
use mailtrail::domain::Role;
use mailtrail::store::accounts;

fn setup(db: common::TestDb, messages: u64) -> (TestApp, Client, i64) {
    let settings = common::settings_for(&db);
    setup_with(db, settings, messages)
}

fn setup_with(
    db: common::TestDb,
    settings: mailtrail::Settings,
    messages: u64,
) -> (TestApp, Client, i64) {
    let app = TestApp::start_with(db, settings);
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

fn job_state(app: &TestApp, id: i64) -> String {
    use diesel::prelude::*;
    use mailtrail::db::schema::export_jobs;
    export_jobs::table
        .find(id)
        .select(export_jobs::state)
        .first::<String>(&mut *app.conn())
        .unwrap()
}

/// Waits (at most a minute) until job `id` leaves queued/running; answers its state.
fn settle(app: &TestApp, id: i64) -> String {
    let started = Instant::now();
    loop {
        let state = job_state(app, id);
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
    // The sweep deletes the file, then marks the job: wait for both.
    let started = Instant::now();
    while (path.exists() || job_state(&app, id) != "expired")
        && started.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!path.exists());
    assert_eq!(job_state(&app, id), "expired");
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
    // A running job whose lease is fresh belongs to a live server (several may share the
    // queue): a server starting up leaves it alone.
    let set_running = |app: &TestApp, heartbeat_at: i64| {
        use diesel::prelude::*;
        use mailtrail::db::schema::export_jobs;
        diesel::update(export_jobs::table.find(id))
            .set((
                export_jobs::state.eq("running"),
                export_jobs::rows_done.eq(0),
                export_jobs::heartbeat_at.eq(heartbeat_at),
            ))
            .execute(&mut *app.conn())
            .unwrap();
    };
    set_running(&app, mailtrail::domain::now_ms());
    let db = app.stop();
    let app = TestApp::start(db);
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(
        job_state(&app, id),
        "running",
        "another server's job is not taken while its lease is fresh"
    );
    // Once the lease has run out, the server that held it is taken for dead.
    set_running(
        &app,
        mailtrail::domain::now_ms() - mailtrail::jobs::exports::LEASE_MS - 1,
    );
    assert_eq!(
        settle(&app, id),
        "succeeded",
        "a job left running by a crashed server finishes after its lease runs out"
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

/// The rows of every sheet of an XLSX file, in order, each padded to `width` cells (Excel
/// writes no cell for an empty value). Reads inline strings and shared strings alike.
fn xlsx_sheets(bytes: &[u8], width: usize) -> Vec<Vec<Vec<String>>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("an xlsx file is a zip");
    let mut part = |name: &str| -> Option<String> {
        let mut text = String::new();
        zip.by_name(name).ok()?.read_to_string(&mut text).unwrap();
        Some(text)
    };
    let shared: Vec<String> = part("xl/sharedStrings.xml")
        .map(|xml| xml.split("<si>").skip(1).map(text_of).collect())
        .unwrap_or_default();
    let mut sheets = Vec::new();
    for n in 1.. {
        let Some(xml) = part(&format!("xl/worksheets/sheet{n}.xml")) else {
            break;
        };
        let rows = xml
            .split("<row ")
            .skip(1)
            .map(|row| {
                let row = &row[..row.find("</row>").unwrap_or(row.len())];
                let mut cells = vec![String::new(); width];
                for cell in row.split("<c r=\"").skip(1) {
                    let col = cell
                        .bytes()
                        .take_while(u8::is_ascii_uppercase)
                        .fold(0, |n, b| n * 26 + (b - b'A' + 1) as usize)
                        - 1;
                    let head = &cell[..cell.find('>').unwrap()];
                    let v = cell
                        .find("<v>")
                        .map(|i| &cell[i + 3..i + cell[i..].find("</v>").unwrap()]);
                    let value = match v {
                        Some(v) if head.contains("t=\"s\"") => {
                            shared[v.parse::<usize>().unwrap()].clone()
                        }
                        // A number with a style is a time (Excel's serial days), written
                        // back as exports write times; a plain number as itself.
                        Some(v) if !head.contains("t=\"") && head.contains(" s=\"") => {
                            let secs = (v.parse::<f64>().unwrap() * 86_400.0).round() as i64;
                            (chrono::NaiveDate::from_ymd_opt(1899, 12, 30)
                                .unwrap()
                                .and_hms_opt(0, 0, 0)
                                .unwrap()
                                + chrono::Duration::seconds(secs))
                            .format("%Y-%m-%d %H:%M:%S")
                            .to_string()
                        }
                        Some(v) if !head.contains("t=\"") => v.to_string(),
                        _ => text_of(cell),
                    };
                    cells[col] = value;
                }
                cells
            })
            .collect();
        sheets.push(rows);
    }
    sheets
}

/// The text of the first `<t>` element in `xml`, unescaped.
fn text_of(xml: &str) -> String {
    let Some(open) = xml.find("<t") else {
        return String::new();
    };
    let start = open + xml[open..].find('>').unwrap() + 1;
    let end = start + xml[start..].find("</t>").unwrap();
    xml[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn mask_all(app: &TestApp) {
    use diesel::prelude::*;
    use mailtrail::db::schema::accounts as a;
    diesel::update(a::table)
        .set(a::mask_addresses.eq(true))
        .execute(&mut *app.conn())
        .unwrap();
}

both_backends!(an_xlsx_export_holds_exactly_what_the_csv_holds, |db| {
    let (app, mut client, account_id) = setup(db, 1_500);
    mask_all(&app);
    let (from, to) = days();
    let token = client.get("/status").csrf_token();
    let export = |client: &mut Client, format: &str, gzip: &str| {
        let res = client.post_form(
            "/exports",
            &[
                ("csrf_token", &token),
                ("kind", "status"),
                ("format", format),
                ("gzip", gzip),
                ("from", &from),
                ("to", &to),
                ("api_user", "billing"),
            ],
        );
        assert_eq!(res.status, 303, "{}", res.body);
        let id = last_job(&app);
        assert_eq!(settle(&app, id), "succeeded");
        id
    };
    let csv_id = export(&mut client, "csv", "");
    // gzip is for CSV; an XLSX is compressed already and stays a plain .xlsx.
    let xlsx_id = export(&mut client, "xlsx", "1");
    assert!(app
        .settings
        .exports_dir()
        .join(format!("export-{xlsx_id}.xlsx"))
        .exists());

    let head = client.get(&format!("/exports/{xlsx_id}/download"));
    assert!(head
        .header("content-disposition")
        .unwrap()
        .ends_with(&format!("-{xlsx_id}.xlsx\"")));
    let (status, content_type, bytes) = client.get_bytes(&format!("/exports/{xlsx_id}/download"));
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(client.get("/exports").body.contains(&format!(
        "<tr data-id=\"{xlsx_id}\" data-state=\"succeeded\">"
    )));

    let csv_text = client.get(&format!("/exports/{csv_id}/download")).body;
    let csv_rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv_text.trim_start_matches('\u{feff}').as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let width = csv_rows[0].len();
    let sheets = xlsx_sheets(&bytes, width);
    assert_eq!(sheets.len(), 1, "one sheet below Excel's row limit");
    let rows = &sheets[0];

    let zone = chrono_tz::Asia::Shanghai;
    let start = mailtrail::domain::day_start(
        &zone,
        chrono::NaiveDate::parse_from_str(&from, "%Y-%m-%d").unwrap(),
    );
    let expected = app.count(&format!("SELECT COUNT(*) AS n FROM messages WHERE account_id = {account_id} AND api_user = 'billing' AND requested_at >= {start}"));
    assert!(expected > 100);
    assert_eq!(rows.len() as i64 - 1, expected, "exactly the filter's rows");
    assert_eq!(
        rows[0],
        [
            "emailId",
            "Status",
            "Reason",
            "Status code",
            "Reason code",
            "subStat",
            "API_USER",
            "Recipient",
            "Mail type",
            "Tags",
            "Request time",
            "Status update time",
            "SMTP reply",
            "Provider"
        ]
    );
    // The newest message comes first, with its own values.
    #[derive(diesel::QueryableByName)]
    struct Newest {
        #[diesel(sql_type = diesel::sql_types::Text)]
        email_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        recipient: String,
    }
    let newest: Newest = {
        use diesel::prelude::*;
        let mut conn = app.conn();
        let conn: &mut mailtrail::db::DbConn = &mut conn;
        diesel::sql_query(format!("SELECT email_id, recipient FROM messages WHERE account_id = {account_id} AND api_user = 'billing' ORDER BY requested_at DESC, id DESC LIMIT 1"))
            .get_result(conn)
            .unwrap()
    };
    // Masked exports mask the address inside an emailId too (`…$al***@example.com`).
    assert_eq!(
        rows[1][0],
        mailtrail::domain::mask_addresses_in(&newest.email_id)
    );
    assert_eq!(
        rows[1][7],
        mailtrail::domain::mask_address(&newest.recipient)
    );
    assert!(rows[1..].iter().all(|r| r[6] == "billing"));
    assert!(
        rows[1..].iter().all(|r| r[7].contains("***@")),
        "masked as in the CSV"
    );
    assert!(rows[1..]
        .iter()
        .all(|r| chrono::NaiveDateTime::parse_from_str(&r[10], "%Y-%m-%d %H:%M:%S").is_ok()));
    // Cell for cell what the CSV of the same filter holds.
    assert_eq!(rows, &csv_rows);

    // A format nobody offers is a message, not a 500.
    let res = client.post_form(
        "/exports",
        &[
            ("csrf_token", &token),
            ("kind", "status"),
            ("format", "pdf"),
        ],
    );
    assert_eq!(res.status, 400);
    assert!(res.body.contains("Choose CSV or XLSX."));
    assert_eq!(last_job(&app), xlsx_id, "no job for a bad format");
    // Every export form offers both formats.
    for page in ["/status", "/bounces", "/opens-clicks"] {
        let body = client.get(page).body;
        assert!(body.contains("<option value=\"xlsx\">"), "{page}");
        assert!(body.contains("<option value=\"csv\">"), "{page}");
    }
});

both_backends!(progress_only_grows, |db| {
    // Progress written at every step, so that a test-sized export shows several.
    let mut settings = common::settings_for(&db);
    settings.export_progress_ms = 0;
    let (app, mut client, account_id) = setup_with(db, settings, 40_000);
    let (from, to) = days();
    let token = client.get("/status").csrf_token();
    client.post_form(
        "/exports",
        &[
            ("csrf_token", &token),
            ("kind", "status"),
            ("format", "csv"),
            ("from", &from),
            ("to", &to),
        ],
    );
    let id = last_job(&app);
    // What the jobs page says of the job, as often as it can be asked.
    let row_marker = format!("<tr data-id=\"{id}\" data-state=\"");
    let mut seen: Vec<(String, i64)> = Vec::new();
    let started = Instant::now();
    loop {
        let body = client.get("/exports").body;
        let at = body.find(&row_marker).expect("the job is listed") + row_marker.len();
        let state = body[at..at + body[at..].find('"').unwrap()].to_string();
        let marker = "data-rows-done=\"";
        let done_at = at + body[at..].find(marker).unwrap() + marker.len();
        let done: i64 = body[done_at..done_at + body[done_at..].find('"').unwrap()]
            .parse()
            .unwrap();
        let finished = !matches!(state.as_str(), "queued" | "running");
        seen.push((state, done));
        if finished || started.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    let (state, last) = seen.last().unwrap().clone();
    assert_eq!(state, "succeeded", "{seen:?}");
    for pair in seen.windows(2) {
        assert!(pair[1].1 >= pair[0].1, "rows_done went back: {seen:?}");
    }
    let total = app.count(&format!(
        "SELECT COUNT(*) AS n FROM messages WHERE account_id = {account_id}"
    ));
    assert!(total > 20_000);
    assert_eq!(last, total, "ends at every row");
    assert_eq!(
        app.count(&format!(
            "SELECT rows_total AS n FROM export_jobs WHERE id = {id}"
        )),
        total
    );
    // The job was watched while it ran, not only after.
    assert!(
        seen.iter()
            .any(|(s, n)| s == "running" && *n > 0 && *n < total),
        "progress seen in between: {seen:?}"
    );
});

both_backends!(
    an_unwritable_export_folder_is_said_and_requests_wait_for_it,
    |db| {
        // A file where the folder should be: not writable, even for root.
        let folder = db.dir.path().join("exports-here");
        std::fs::write(&folder, b"not a folder").unwrap();
        let mut settings = common::settings_for(&db);
        settings.exports_dir = Some(folder.clone());
        let (app, mut client, _) = setup_with(db, settings, 200);
        assert_eq!(client.get("/status").status, 200);
        let page = client.get("/exports");
        assert_eq!(page.status, 200);
        assert!(page.body.contains("id=\"exports-folder-error\""));
        let (from, to) = days();
        let token = page.csrf_token();
        let res = client.post_form(
            "/exports",
            &[
                ("csrf_token", &token),
                ("kind", "status"),
                ("format", "csv"),
                ("from", &from),
                ("to", &to),
            ],
        );
        assert_eq!(res.status, 303);
        let id = last_job(&app);
        // Once the folder can be made, the waiting job runs, on its first attempt.
        std::fs::remove_file(&folder).unwrap();
        assert_eq!(settle(&app, id), "succeeded");
        assert_eq!(
            app.count(&format!(
                "SELECT CAST(attempts AS BIGINT) AS n FROM export_jobs WHERE id = {id}"
            )),
            1
        );
        assert!(!client
            .get("/exports")
            .body
            .contains("id=\"exports-folder-error\""));
    }
);

/// Runs one status export of `filter` in `lang` through the worker's own `run`, with or
/// without the server's COPY; answers the file's bytes.
fn export_file(
    app: &TestApp,
    account_id: i64,
    filter: &mailtrail::store::status::StatusFilter,
    lang: &str,
    copy: bool,
) -> Vec<u8> {
    use mailtrail::jobs::exports as worker;
    use mailtrail::store::exports::{self, ExportSpec, JobFilter, NewJob};
    let mut conn = app.conn();
    let scope = mailtrail::store::AccountScope::new(account_id);
    let description = serde_json::to_string(&JobFilter {
        spec: ExportSpec::Status {
            filter: filter.clone(),
        },
        lang: lang.into(),
        summary: "both paths".into(),
    })
    .unwrap();
    let user = app.count(&format!(
        "SELECT MIN(id) AS n FROM users WHERE account_id = {account_id}"
    ));
    let now = mailtrail::domain::now_ms();
    let new = NewJob {
        requested_by: user,
        kind: "status",
        filter: &description,
        format: "csv",
        gzip: false,
    };
    let id = exports::create(&mut conn, &scope, &new, now).unwrap();
    let job = exports::claim(&mut conn, now, worker::LEASE_MS)
        .unwrap()
        .unwrap();
    assert_eq!(job.id, id);
    let mut settings = worker::WorkerSettings::new(&app.settings);
    if !copy {
        settings.copy_from = None;
    }
    std::fs::create_dir_all(&settings.dir).unwrap();
    let rows = worker::run(&mut conn, &job, &settings).unwrap().unwrap();
    let path = settings.dir.join(worker::final_name(
        &job,
        mailtrail::domain::ExportFormat::Csv,
    ));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(records(&bytes), rows + 1, "the header and every row");
    bytes
}

/// CSV records in an export (a quoted field may hold line breaks).
fn records(bytes: &[u8]) -> i64 {
    let mut n = 0;
    for record in csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
    {
        record.unwrap();
        n += 1;
    }
    n
}

both_backends!(copy_and_keyset_exports_are_the_same_bytes, |db| {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    use mailtrail::store::status::StatusFilter;
    let mut settings = common::settings_for(&db);
    // No worker of the server's own: the test runs each job itself.
    settings.export_workers = 0;
    let (app, _client, account_id) = setup_with(db, settings, 1_500);
    // Cells a spreadsheet would run, addresses inside text, Chinese, tabs, line breaks and
    // backslashes (COPY escapes them), NULLs, and a subject with LIKE's own wildcard.
    let crafted: [(&str, &str, Option<&str>, &str, &str); 3] = [
        (
            "=cmd|x$ma.3057@yahoo.com",
            "al@example.com",
            Some("550 5.1.1 <al@例子.中国>:\ttab\nline \\ back"),
            "-1+2,@evil",
            "Spring 100% sale",
        ),
        ("plain-id", "张三@例子.中国", None, "", "plain"),
        ("+sum", "x@y.cn", Some("@SUM(A1)"), "\tlead", "ünïcode"),
    ];
    let first = app.count(&format!(
        "SELECT MIN(id) AS n FROM messages WHERE account_id = {account_id}"
    ));
    for (n, (email_id, recipient, reply, tags, subject)) in crafted.into_iter().enumerate() {
        diesel::sql_query(
            "UPDATE messages SET email_id = $1, recipient = $2, smtp_reply = $3, tags = $4, \
             subject = $5 WHERE id = $6",
        )
        .bind::<Text, _>(email_id)
        .bind::<Text, _>(recipient)
        .bind::<diesel::sql_types::Nullable<Text>, _>(reply)
        .bind::<Text, _>(tags)
        .bind::<Text, _>(subject)
        .bind::<BigInt, _>(first + n as i64)
        .execute(&mut *app.conn())
        .unwrap();
    }
    diesel::sql_query(format!(
        "UPDATE messages SET reason = NULL WHERE id = {}",
        first + 1
    ))
    .execute(&mut *app.conn())
    .unwrap();
    mask_all(&app);
    diesel::sql_query("UPDATE accounts SET time_zone = 'America/New_York'")
        .execute(&mut *app.conn())
        .unwrap();
    #[derive(QueryableByName)]
    struct Tag {
        #[diesel(sql_type = Text)]
        tag: String,
    }
    let tag = diesel::sql_query(format!(
        "SELECT tag FROM message_tags WHERE account_id = {account_id} ORDER BY tag LIMIT 1"
    ))
    .get_result::<Tag>(&mut *app.conn())
    .unwrap()
    .tag;
    let now = mailtrail::domain::now_ms();
    let all = StatusFilter {
        from_ms: now - 10 * 86_400_000,
        to_ms: now + 86_400_000,
        ..StatusFilter::default()
    };
    let filters = [
        all.clone(),
        StatusFilter {
            api_user: Some("billing".into()),
            ..all.clone()
        },
        StatusFilter {
            tag: Some(tag),
            ..all.clone()
        },
        StatusFilter {
            subject: Some("100%".into()),
            ..all.clone()
        },
    ];
    for (n, filter) in filters.iter().enumerate() {
        for lang in ["zh-CN", "en"] {
            let copied = export_file(&app, account_id, filter, lang, true);
            let stepped = export_file(&app, account_id, filter, lang, false);
            assert!(
                copied == stepped,
                "filter {n} in {lang}: the two paths differ"
            );
            assert!(records(&copied) > 1, "filter {n} in {lang}: no rows");
            let text = String::from_utf8(copied).unwrap();
            if n == 0 && lang == "zh-CN" {
                // The crafted rows are in it, as an export presents them.
                assert!(text.contains("'=cmd|x$ma***@yahoo.com"), "{text:.2000}");
                assert!(text.contains("***@example.com") && !text.contains("al@example.com"));
                assert!(text.contains("'@SUM(A1)"));
                assert!(text.contains("\"550 5.1.1 <a***@例子.中国>:\ttab\nline \\ back\""));
                assert!(text.contains("邮件"), "Chinese header");
            }
            if n == 3 {
                assert_eq!(records(text.as_bytes()), 2, "one subject holds 100%");
            }
        }
    }
});
