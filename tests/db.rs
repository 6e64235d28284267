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
