//! Sign-in, sign-out, sessions, CSRF and login rate limiting, on both backends.

mod common;

use common::{settings_for, Backend, TestApp, TestDb};
use mailtrail::domain::Role;

fn app_with_owner(db: TestDb) -> TestApp {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "correct horse");
    app
}

both_backends!(login_ok_lands_on_the_overview, |db| {
    let app = app_with_owner(db);
    let mut client = app.client();
    let first = client.get("/");
    assert_eq!(
        first.status, 303,
        "signed-out visitors are sent to the login form"
    );
    assert_eq!(first.location(), "/login?next=%2F");
    let before = client.cookies.get("mailtrail_session").cloned();

    let res = client.login("Owner@Acme.test", "correct horse");
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), "/");
    let after = client.cookies.get("mailtrail_session").cloned();
    assert!(after.is_some());
    assert_ne!(before, after, "the session id is renewed at login");

    let page = client.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("owner@acme.test"));
    assert!(page.body.contains("acme"));
});

both_backends!(login_follows_next_but_only_inside_the_site, |db| {
    let app = app_with_owner(db);
    let mut client = app.client();
    let page = client.get("/login?next=/status/1");
    let token = page.csrf_token();
    let res = client.post_form(
        "/login",
        &[
            ("email", "owner@acme.test"),
            ("password", "correct horse"),
            ("next", "//evil.example/"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), "/", "an off-site next is ignored");
});

both_backends!(wrong_password_is_refused, |db| {
    let app = app_with_owner(db);
    let mut client = app.client();
    client.accept_language = Some("en".into());
    let res = client.login("owner@acme.test", "wrong");
    assert_eq!(res.status, 401);
    assert!(res.body.contains("Wrong email or password."));
    assert!(
        res.body.contains("value=\"owner@acme.test\""),
        "the email typed is kept"
    );
    assert_eq!(client.get("/").status, 303, "still signed out");

    let unknown = client.login("nobody@acme.test", "whatever");
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("Wrong email or password."));
});

both_backends!(login_attempts_are_rate_limited_per_account_and_ip, |db| {
    let mut settings = settings_for(&db);
    settings.login_burst_per_account = 3;
    settings.login_burst_per_ip = 5;
    settings.login_refill_seconds = 3600;
    let app = TestApp::start_with(db, settings);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "correct horse");
    app.user(&account, "member@acme.test", Role::Member, "battery staple");

    let mut client = app.client();
    client.accept_language = Some("en".into());
    for _ in 0..3 {
        assert_eq!(client.login("owner@acme.test", "wrong").status, 401);
    }
    let limited = client.login("owner@acme.test", "correct horse");
    assert_eq!(
        limited.status, 429,
        "even the right password waits once the account's limit is hit"
    );
    assert!(limited.body.contains("Too many sign-in attempts"));
    assert_eq!(client.get("/").status, 303);

    // Another account from the same IP still has attempts left, until the IP's limit.
    assert_eq!(
        client.login("member@acme.test", "battery staple").status,
        303
    );
    let mut other = app.client();
    assert_eq!(
        other.login("member@acme.test", "wrong").status,
        429,
        "the IP's limit of 5 is spent"
    );
});

both_backends!(posts_without_a_valid_csrf_token_are_forbidden, |db| {
    let app = app_with_owner(db);
    let mut client = app.client();
    client.get("/login");
    let missing = client.post_form(
        "/login",
        &[("email", "owner@acme.test"), ("password", "correct horse")],
    );
    assert_eq!(missing.status, 403);
    assert!(
        missing.body.contains("<html"),
        "a friendly page, not a bare error"
    );
    let wrong = client.post_form(
        "/login",
        &[
            ("email", "owner@acme.test"),
            ("password", "correct horse"),
            ("csrf_token", "forged"),
        ],
    );
    assert_eq!(wrong.status, 403);
    assert_eq!(client.get("/").status, 303, "neither attempt signed in");

    assert_eq!(client.login("owner@acme.test", "correct horse").status, 303);
    let logout_without = client.post_form("/logout", &[]);
    assert_eq!(logout_without.status, 403);
    assert_eq!(client.get("/").status, 200, "a forged logout does nothing");

    // A token from another session is no good either.
    let mut stranger = app.client();
    let foreign = stranger.get("/login").csrf_token();
    assert_eq!(
        client
            .post_form("/logout", &[("csrf_token", &foreign)])
            .status,
        403
    );
});

both_backends!(logout_ends_the_session_on_the_server, |db| {
    let app = app_with_owner(db);
    let mut client = app.client();
    assert_eq!(client.login("owner@acme.test", "correct horse").status, 303);
    let stolen = client.cookies.clone();
    let token = client.token();
    let res = client.post_form("/logout", &[("csrf_token", &token)]);
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), "/login");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM sessions WHERE user_id IS NOT NULL"),
        0
    );

    let mut replay = app.client();
    replay.cookies = stolen;
    assert_eq!(
        replay.get("/").status,
        303,
        "the old cookie no longer works"
    );
});

both_backends!(idle_sessions_expire, |db| {
    let app = app_with_owner(db);
    let mut client = app.client();
    assert_eq!(client.login("owner@acme.test", "correct horse").status, 303);
    assert_eq!(client.get("/").status, 200);
    let mut conn = app.conn();
    use diesel::prelude::*;
    use mailtrail::db::schema::sessions;
    diesel::update(sessions::table)
        .set(sessions::expires_at.eq(1))
        .execute(&mut *conn)
        .unwrap();
    drop(conn);
    assert_eq!(
        client.get("/").status,
        303,
        "an expired session is signed out"
    );
});

both_backends!(sessions_survive_a_restart, |db| {
    let app = app_with_owner(db);
    let mut client = app.client();
    assert_eq!(client.login("owner@acme.test", "correct horse").status, 303);
    let cookies = client.cookies.clone();
    let key = std::fs::read(app.settings.data_dir.join("secret.key")).unwrap();
    assert_eq!(key.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.settings.data_dir.join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let db = app.stop();
    let app = TestApp::start(db);
    let mut again = app.client();
    again.cookies = cookies;
    assert_eq!(again.get("/").status, 200, "same key, same session table");
});

both_backends!(session_cookie_flags, |db| {
    let app = app_with_owner(db);
    let mut client = app.client();
    let page = client.get("/login");
    // ureq folds repeated headers; check the flags on the login answer instead.
    let token = page.csrf_token();
    let req = ureq::AgentBuilder::new().redirects(0).build();
    let cookie: Vec<String> = client
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let res = match req
        .post(&format!("{}/login", app.base))
        .set("Cookie", &cookie.join("; "))
        .send_form(&[
            ("email", "owner@acme.test"),
            ("password", "correct horse"),
            ("csrf_token", &token),
        ]) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let set_cookie: Vec<&str> = res.all("set-cookie");
    let session = set_cookie
        .iter()
        .find(|c| c.starts_with("mailtrail_session="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly"));
    assert!(session.contains("SameSite=Lax"));
    assert!(
        !session.contains("Secure"),
        "plain http here; Secure comes with an https public URL"
    );
    let _ = Backend::Sqlite;
});
