//! Storage: migrations, URL handling, and the command line over a real database.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Backend, TestApp, TestDb};

fn mailtrail(db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailtrail"));
    cmd.env("MAILTRAIL_DATABASE_URL", &db.url)
        .env("MAILTRAIL_DATA_DIR", db.dir.path().join("data"))
        .env("RUST_LOG", "warn");
    cmd
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run mailtrail");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

both_backends!(migrations_run_twice_without_harm, |db| {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.generate(&account, 10, 1);
    let again = mailtrail::db::migrate(&mut app.conn()).unwrap();
    assert_eq!(again, 0, "nothing left to run");
    let (ok, out, err) = run(mailtrail(&app.db).arg("migrate"));
    assert!(ok, "{err}");
    assert!(out.contains("0 migrations ran now"), "{out}");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM messages"),
        10,
        "data kept"
    );
});

both_backends!(the_cli_creates_accounts_users_and_keys, |db| {
    let (ok, out, err) = run(mailtrail(&db).args(["account", "add", "acme"]));
    assert!(ok, "{err}");
    assert!(out.contains("created account acme"));
    let (ok, _, err) = run(mailtrail(&db).args(["account", "add", "acme"]));
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");

    let mut child = mailtrail(&db)
        .args([
            "user",
            "add",
            "--account",
            "acme",
            "--email",
            "Ops@Acme.test",
            "--role",
            "owner",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret pass\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (ok, out, err) = run(mailtrail(&db).args([
        "api-user",
        "add",
        "--account",
        "acme",
        "--name",
        "notify",
        "--mail-type",
        "batch",
    ]));
    assert!(ok, "{err}");
    let key = out.lines().last().unwrap().trim().to_string();
    assert!(
        key.starts_with("mt_") && key.len() > 30,
        "the key alone on the last line: {out}"
    );

    let (ok, out, err) = run(mailtrail(&db).args([
        "generate",
        "--account",
        "acme",
        "--messages",
        "500",
        "--days",
        "3",
    ]));
    assert!(ok, "{err}");
    assert!(out.contains("generated 500 messages"), "{out}");
    let (ok, _, err) =
        run(mailtrail(&db).args(["generate", "--account", "nope", "--messages", "5"]));
    assert!(!ok);
    assert!(err.contains("no account named"), "{err}");

    let app = TestApp::start(db);
    // The password from stdin works, the stored key is a hash, and the data is there.
    let mut client = app.client();
    assert_eq!(client.login("ops@acme.test", "s3cret pass").status, 303);
    let stored = app.count(&format!(
        "SELECT COUNT(*) AS n FROM api_users WHERE key_hash = '{}'",
        mailtrail::domain::hash_api_key(&key)
    ));
    assert_eq!(stored, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM api_users WHERE key_hash = '{key}'"
        )),
        0
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM messages"), 500);
    // Generated traffic is realistic: mostly delivered, a few percent failures, lists filled.
    let delivered = app.count("SELECT COUNT(*) AS n FROM messages WHERE status = 1");
    assert!(delivered > 400, "{delivered} of 500 delivered");
    assert!(app.count("SELECT COUNT(*) AS n FROM messages WHERE status IN (2, 3)") > 0);
    assert!(app.count("SELECT COUNT(DISTINCT api_user) AS n FROM messages") >= 3);
    assert!(app.count("SELECT COUNT(DISTINCT mail_type) AS n FROM messages") == 2);
    assert!(app.count("SELECT COUNT(*) AS n FROM message_events") > 500);
    assert!(app.count("SELECT COUNT(*) AS n FROM tracking_events") > 0);
    assert_eq!(
        app.count("SELECT CAST(SUM(count) AS BIGINT) AS n FROM status_rollup"),
        500,
        "the rollup counts every message once"
    );
});

#[test]
fn a_bad_database_url_is_a_clear_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "mysql://root@localhost/x",
        "data/plain-path.db",
        "sqlite://",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mailtrail"))
            .current_dir(dir.path())
            .args(["--database", url, "migrate"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unsupported database URL"), "{url}: {err}");
    }
    // A PostgreSQL server that does not answer is an error, never a fallback to a file.
    let out = Command::new(env!("CARGO_BIN_EXE_mailtrail"))
        .current_dir(dir.path())
        .args([
            "--database",
            "postgres://nobody@127.0.0.1:1/none",
            "migrate",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to the database"));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "no file was created: {left:?}");
    let _ = Backend::Sqlite;
}

both_backends!(prune_removes_what_is_older_than_the_retention, |db| {
    use mailtrail::store::partitions::Month;
    use mailtrail::store::retention;

    let (ok, _, err) = run(mailtrail(&db).arg("prune"));
    assert!(!ok, "prune without a retention must refuse");
    assert!(err.contains("--retention-days"), "{err}");

    let app = TestApp::start(db);
    let account = app.account("acme");
    app.generate(&account, 400, 90);
    let before = app.count("SELECT COUNT(*) AS n FROM messages");
    // What must be left: SQLite keeps from the cutoff on, PostgreSQL from the cutoff's month on.
    let kept_from = |now| {
        let cutoff = retention::cutoff(30, now);
        match app.db.backend {
            Backend::Sqlite => cutoff,
            Backend::Postgres => Month::of(cutoff).start_ms(),
        }
    };
    let from = kept_from(mailtrail::domain::now_ms());
    let expected = app.count(&format!(
        "SELECT COUNT(*) AS n FROM messages WHERE requested_at >= {from}"
    ));
    assert!(0 < expected && expected < before, "{expected} of {before}");

    let (ok, out, err) = run(mailtrail(&app.db).args(["prune", "--retention-days", "30"]));
    assert!(ok, "{err}");
    assert!(out.contains("kept the last 30 days"), "{out}");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM messages"),
        expected,
        "{out}"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM tracking_events WHERE occurred_at < {from}"
        )),
        0
    );
    assert_eq!(
        app.count("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS n FROM status_rollup_daily"),
        expected,
        "the counts went with the rows"
    );
    assert_eq!(
        app.count("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS n FROM status_rollup_tags"),
        expected,
        "the per-tag counts too (one tag a generated message)"
    );
    if app.db.backend == Backend::Postgres {
        assert!(out.contains("messages_p"), "{out}");
    }
});

/// A PostgreSQL database made before the partitions: the migration moves every row into its
/// month, ids go on from where they were, and the app works on it.
#[test]
fn an_existing_postgres_database_is_partitioned_with_its_rows() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};

    let Some(db) = TestDb::new(Backend::Postgres) else {
        return common::skip("an_existing_postgres_database_is_partitioned: PostgreSQL only");
    };
    let mut conn = PgConnection::establish(&db.url).unwrap();
    conn.batch_execute(
        "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )
    .unwrap();
    let mut earlier: Vec<_> = std::fs::read_dir("migrations/postgres")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.as_str() < "2026-11-28-000003")
        .collect();
    earlier.sort();
    assert_eq!(earlier.len(), 3, "{earlier:?}");
    for name in &earlier {
        let sql = std::fs::read_to_string(format!("migrations/postgres/{name}/up.sql")).unwrap();
        conn.batch_execute(&sql).unwrap();
        let version = name.split('_').next().unwrap().replace('-', "");
        conn.batch_execute(&format!(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('{version}')"
        ))
        .unwrap();
    }
    // 2024-03-10 and 2026-11-20 (UTC).
    let (old, recent) = (1_710_028_800_000_i64, 1_795_132_800_000_i64);
    conn.batch_execute(&format!(
        "INSERT INTO accounts (name, created_at) VALUES ('acme', 0);
         INSERT INTO messages (account_id, email_id, recipient, api_user, mail_type, status,
             requested_at, updated_at)
         VALUES (1, 'old', 'a@example.com', 'notify', 0, 0, {old}, {old}),
                (1, 'recent', 'b@example.com', 'notify', 0, 1, {recent}, {recent});
         INSERT INTO message_tags VALUES (1, 1, 'promo', {old});
         INSERT INTO message_events (account_id, message_id, email_id, event_id, kind,
             occurred_at, received_at)
         VALUES (1, 1, 'old', 'ev-1', 'request', {old}, {old}),
                (1, 2, 'recent', NULL, 'deliver', {recent}, {recent});
         INSERT INTO tracking_events (account_id, message_id, email_id, recipient, api_user,
             kind, occurred_at)
         VALUES (1, 2, 'recent', 'b@example.com', 'notify', 1, {recent});
         INSERT INTO send_logs VALUES (1, 1, 'queued');"
    ))
    .unwrap();
    drop(conn);

    let app = TestApp::start(db);
    let partition = |sql: &str| -> String {
        #[derive(diesel::QueryableByName)]
        struct Name {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        let mut conn = app.conn();
        let conn: &mut mailtrail::db::DbConn = &mut conn;
        diesel::RunQueryDsl::get_result::<Name>(diesel::sql_query(sql), conn)
            .unwrap()
            .name
    };
    assert_eq!(
        partition(
            "SELECT CAST(tableoid::regclass AS TEXT) AS name FROM messages WHERE email_id = 'old'"
        ),
        "messages_p202403"
    );
    assert_eq!(
        partition("SELECT CAST(tableoid::regclass AS TEXT) AS name FROM messages WHERE email_id = 'recent'"),
        "messages_p202611"
    );
    assert_eq!(
        partition("SELECT CAST(tableoid::regclass AS TEXT) AS name FROM message_tags"),
        "message_tags_p202403"
    );
    assert_eq!(
        partition("SELECT CAST(tableoid::regclass AS TEXT) AS name FROM tracking_events"),
        "tracking_events_p202611"
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM message_events"), 2);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM send_logs"), 1);
    // Every month from the oldest row to three months ahead exists.
    assert!(
        app.count(
            "SELECT COUNT(*) AS n FROM pg_inherits WHERE inhparent = 'messages'::regclass \
             AND inhrelid::regclass::text LIKE 'messages_p%'"
        ) >= 36
    );
    // New rows get new ids, and the old message still takes its events.
    let id = app.count(
        "INSERT INTO messages (account_id, email_id, recipient, api_user, mail_type, status, \
         requested_at, updated_at) VALUES (1, 'new', 'c@example.com', 'notify', 0, 0, \
         1795132800000, 0) RETURNING id AS n",
    );
    assert_eq!(id, 3);
    let (_, key) = mailtrail::store::accounts::create_api_user(
        &mut app.conn(),
        &mailtrail::store::AccountScope::new(1),
        "notify",
        mailtrail::domain::MailType::Trigger,
    )
    .unwrap();
    let event =
        serde_json::json!([{"event": "deliver", "email_id": "old", "timestamp": old + 5_000}]);
    let r = app.client().post_raw(
        "/api/v1/events",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", "application/json"),
        ],
        event.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.count("SELECT CAST(status AS BIGINT) AS n FROM messages WHERE email_id = 'old'"),
        1
    );
}

both_backends!(a_bulk_generation_keeps_every_index, |db| {
    let app = TestApp::start(db);
    let account = app.account("acme");
    let sqlite_indexes = |app: &TestApp| {
        app.count(
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'index' AND tbl_name IN \
             ('messages', 'message_tags', 'message_events', 'tracking_events')",
        )
    };
    let before = match app.db.backend {
        Backend::Sqlite => sqlite_indexes(&app),
        Backend::Postgres => 0,
    };
    // Large enough that the generator drops the indexes and builds them again at the end.
    app.generate(&account, 20_000, 30);
    match app.db.backend {
        Backend::Sqlite => assert_eq!(sqlite_indexes(&app), before, "every index is back"),
        Backend::Postgres => {
            // Every partition has every index of its parent, valid.
            let lacking = app.count(
                "SELECT COUNT(*) AS n FROM pg_inherits p JOIN pg_class c ON c.oid = p.inhrelid \
                 WHERE c.relkind = 'r' AND p.inhparent IN ('messages'::regclass, \
                 'message_tags'::regclass, 'message_events'::regclass, \
                 'tracking_events'::regclass) \
                 AND (SELECT COUNT(*) FROM pg_index i WHERE i.indrelid = p.inhrelid \
                      AND i.indisvalid) \
                  <> (SELECT COUNT(*) FROM pg_index i WHERE i.indrelid = p.inhparent)",
            );
            assert_eq!(lacking, 0, "partitions lacking an index of their parent");
            assert!(app.count("SELECT COUNT(*) AS n FROM pg_index WHERE NOT indisvalid") == 0);
            assert!(
                app.count(
                    "SELECT COUNT(*) AS n FROM pg_indexes WHERE tablename LIKE 'messages_p%'"
                ) >= 8 * 4,
                "eight indexes on each of at least four months"
            );
        }
    }
});
