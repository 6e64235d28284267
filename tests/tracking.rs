//! The recipient's side (DESIGN §4) through real HTTP on both backends: the open pixel, the
//! signed click redirect, the public unsubscribe page, RFC 8058 one-click, `mailtrail
//! sign-link`, and that a link of one account never touches another.

mod common;

use std::process::Command;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use common::{Client, Resp, TestApp, TestDb};
use mailtrail::domain::token::{Link, LinkKey};
use mailtrail::domain::{now_ms, MailType};
use mailtrail::store::models::Account;
use mailtrail::store::{accounts, AccountScope};

const GIF: &[u8] = b"GIF89a";

struct Site {
    app: TestApp,
    client: Client,
    key: LinkKey,
    account: Account,
    api_key: String,
}

/// The app with account `acme`, an API user, and the key the server signs links with.
fn site(db: TestDb) -> Site {
    let app = TestApp::start(db);
    let account = app.account("acme");
    let api_key = api_user(&app, &account);
    // The server created its secret at launch; the same secret gives the same link key.
    let secret = app.settings.load_or_create_secret().expect("secret");
    Site {
        client: app.client(),
        key: LinkKey::derive(&secret),
        account,
        api_key,
        app,
    }
}

fn api_user(app: &TestApp, account: &Account) -> String {
    accounts::create_api_user(
        &mut app.conn(),
        &AccountScope::new(account.id),
        "notify",
        MailType::Trigger,
    )
    .expect("api user")
    .1
}

/// Posts a request event, as the mail server does when it accepts a message.
fn request(client: &mut Client, api_key: &str, email_id: &str, recipient: &str) -> Resp {
    let body = format!(
        r#"[{{"event":"request","email_id":"{email_id}","recipient":"{recipient}","timestamp":{}}}]"#,
        now_ms()
    );
    let auth = format!("Bearer {api_key}");
    let resp = client.post_raw(
        "/api/v1/events",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        body.as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.body.contains("\"ok\":true"), "{}", resp.body);
    resp
}

impl Site {
    fn request(&mut self, email_id: &str, recipient: &str) {
        request(&mut self.client, &self.api_key, email_id, recipient);
    }

    fn open_path(&self, email_id: &str) -> String {
        let token = self
            .key
            .sign(&Link::open(self.account.id, email_id))
            .unwrap();
        format!("/t/o/{token}")
    }

    fn click_path(&self, email_id: &str, url: &str) -> String {
        let token = self
            .key
            .sign(&Link::click(self.account.id, email_id, url))
            .unwrap();
        format!("/t/c/{token}")
    }

    fn unsubscribe_path(&self, email_id: &str) -> String {
        let token = self
            .key
            .sign(&Link::unsubscribe(self.account.id, email_id))
            .unwrap();
        format!("/u/{token}")
    }

    fn count(&self, sql: &str) -> i64 {
        self.app.count(sql)
    }
}

fn assert_pixel(client: &mut Client, path: &str) {
    let (status, content_type, body) = client.get_bytes(path);
    assert_eq!(status, 200, "{path}");
    assert_eq!(content_type, "image/gif", "{path}");
    assert!(body.starts_with(GIF), "{path}: {body:?}");
    assert_eq!(body.len(), 43, "{path}");
}

/// Waits for the start of a fresh second, so that a few quick requests share one.
fn start_of_a_second() -> i64 {
    while now_ms() % 1000 > 150 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    now_ms() / 1000
}

/// Changes one character in the middle of a token's path.
fn altered(path: &str) -> String {
    let (prefix, token) = path.rsplit_once('/').unwrap();
    let mut bytes = token.as_bytes().to_vec();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    format!("{prefix}/{}", String::from_utf8(bytes).unwrap())
}

both_backends!(the_pixel_is_always_a_gif, |db| {
    let mut s = site(db);
    s.request("m1", "reader@example.com");
    let good = s.open_path("m1");
    let forged = format!(
        "/t/o/{}",
        LinkKey::derive(&[9u8; 64])
            .sign(&Link::open(s.account.id, "m1"))
            .unwrap()
    );
    let wrong_kind = s.unsubscribe_path("m1").replace("/u/", "/t/o/");
    for path in [
        good.as_str(),
        forged.as_str(),
        &altered(&good),
        wrong_kind.as_str(),
        "/t/o/garbage",
        "/t/o/%FF%00",
        "/t/o/",
        "/t/o/a/b/c.gif",
    ] {
        assert_pixel(&mut s.client, path);
    }
    let resp = s.client.get(&good);
    assert!(
        resp.header("cache-control")
            .unwrap_or("")
            .contains("no-store"),
        "{:?}",
        resp.headers
    );
    // Only the good token recorded anything.
    assert!(s.count("SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 1") >= 1);
    assert_eq!(
        s.count(
            "SELECT COUNT(*) AS n FROM message_events WHERE kind = 'open' AND email_id <> 'm1'"
        ),
        0
    );
});

both_backends!(an_open_is_recorded_once_per_second, |db| {
    let mut s = site(db);
    s.request("m1", "reader@example.com");
    let path = s.open_path("m1");
    let first = start_of_a_second();
    for _ in 0..3 {
        assert_pixel(&mut s.client, &path);
    }
    let last = now_ms() / 1000;
    let opens = s.count("SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 1");
    if first == last {
        assert_eq!(opens, 1, "three fetches in one second are one open");
    } else {
        assert!(opens >= 1 && opens <= last - first + 1, "{opens}");
    }
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 1 AND email_id = 'm1' AND recipient = 'reader@example.com' AND ip = '127.0.0.1' AND user_agent LIKE 'ureq%' AND api_user = 'notify'"),
        opens,
        "time, IP, user agent and the message's API_USER are kept"
    );
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM message_events WHERE kind = 'open'"),
        opens
    );
    // A later second is a later open.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_pixel(&mut s.client, &path);
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 1"),
        opens + 1
    );
});

both_backends!(a_click_is_recorded_and_redirected_to_its_url, |db| {
    let mut s = site(db);
    s.request("m1", "reader@example.com");
    let url = "https://shop.example/item?id=7&ref=mail#top";
    let path = s.click_path("m1", url);
    let resp = s.client.get(&path);
    assert_eq!(resp.status, 302, "{}", resp.body);
    assert_eq!(resp.location(), url);
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 2 AND email_id = 'm1' AND url = '{url}' AND ip = '127.0.0.1'"
        )),
        1
    );
    // Another link of the same message in the same second is another click; the same one is not.
    let other = s.click_path("m1", "https://shop.example/other");
    let first = start_of_a_second();
    assert_eq!(s.client.get(&other).status, 302);
    assert_eq!(s.client.get(&other).status, 302);
    let last = now_ms() / 1000;
    let clicks = s.count(
        "SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 2 AND url = 'https://shop.example/other'",
    );
    if first == last {
        assert_eq!(clicks, 1);
    }
    assert!((1..=2).contains(&clicks));
});

both_backends!(
    a_forged_or_altered_click_link_is_a_404_without_redirect,
    |db| {
        let mut s = site(db);
        s.request("m1", "reader@example.com");
        let good = s.click_path("m1", "https://good.example/page");

        // The destination swapped for another of the same length, the signature kept.
        let token = good.trim_start_matches("/t/c/");
        let mut raw = URL_SAFE_NO_PAD.decode(token).unwrap();
        let at = raw.windows(4).position(|w| w == b"good").unwrap();
        raw[at..at + 4].copy_from_slice(b"evil");
        let swapped = format!("/t/c/{}", URL_SAFE_NO_PAD.encode(&raw));

        let forged = format!(
            "/t/c/{}",
            LinkKey::derive(&[9u8; 64])
                .sign(&Link::click(s.account.id, "m1", "https://evil.example/"))
                .unwrap()
        );
        let open_token = s.open_path("m1").replace("/t/o/", "/t/c/");
        let truncated = good[..good.len() - 3].to_string();
        for path in [
            swapped.as_str(),
            forged.as_str(),
            &altered(&good),
            open_token.as_str(),
            truncated.as_str(),
            "/t/c/garbage",
            "/t/c/https:%2F%2Fevil.example",
        ] {
            let resp = s.client.get(path);
            assert_eq!(resp.status, 404, "{path}");
            assert!(resp.header("location").is_none(), "{path}: no redirect");
            assert!(
                resp.header("content-type")
                    .unwrap_or("")
                    .starts_with("text/html"),
                "{path}: the friendly 404 page"
            );
            assert!(!resp.body.contains("evil.example"), "{path}");
        }
        assert_eq!(s.count("SELECT COUNT(*) AS n FROM tracking_events"), 0);
        assert_eq!(s.client.get(&good).status, 302, "the real link still works");
    }
);

both_backends!(the_unsubscribe_page_speaks_both_languages, |db| {
    let mut s = site(db);
    s.request("m1", "Reader@Example.com");
    let path = s.unsubscribe_path("m1");

    s.client.accept_language = Some("en-US,en;q=0.9".into());
    let en = s.client.get(&path);
    assert_eq!(en.status, 200, "{}", en.body);
    assert!(en.body.contains("<html lang=\"en\""));
    assert!(en.body.contains("Why do you want to unsubscribe?"));
    assert!(en.body.contains("reader@example.com"));
    for (code, label) in [
        ("not_wanted", "I no longer want these emails"),
        ("not_subscribed", "I never subscribed"),
        ("spam", "This is spam"),
        ("fraud", "This is fraud, I want to report it"),
    ] {
        assert!(
            en.body.contains(&format!(
                "type=\"radio\" name=\"reason\" id=\"reason-{code}\" value=\"{code}\""
            )),
            "{code}"
        );
        assert!(en.body.contains(label), "{label}");
    }
    assert!(en.body.contains(&format!("action=\"{path}\"")));
    assert!(en.body.contains("name=\"viewport\""), "made for phones too");
    assert!(!en.body.contains("style="), "no inline styles (CSP)");

    s.client.accept_language = Some("zh-CN,zh;q=0.9,en;q=0.5".into());
    let zh = s.client.get(&path);
    assert_eq!(zh.status, 200);
    assert!(zh.body.contains("<html lang=\"zh-CN\""));
    assert!(zh.body.contains("您为什么要取消订阅？"));
    for label in [
        "我不想再收到此类邮件",
        "这不是我订阅的",
        "这是垃圾邮件",
        "这是欺诈邮件, 我要举报",
    ] {
        assert!(zh.body.contains(label), "{label}");
    }
    // The language cookie beats the browser's preference.
    s.client.cookies.insert("lang".into(), "en".into());
    assert!(s.client.get(&path).body.contains("I never subscribed"));

    // The account's masking setting applies here too.
    accounts::update_settings(
        &mut s.app.conn(),
        &AccountScope::new(s.account.id),
        &accounts::AccountSettings {
            time_zone: "Asia/Shanghai",
            mask_addresses: true,
            export_allowed: true,
        },
    )
    .unwrap();
    let masked = s.client.get(&path);
    assert!(masked.body.contains("re***@example.com"), "{}", masked.body);
    assert!(!masked.body.contains("reader@example.com"));

    // The stylesheet has the page's classes, phones included.
    let css = s.client.get("/static/app.css").body;
    assert!(css.contains(".reasons label.reason"));

    // A forged link or a message the account never sent is a plain 404.
    assert_eq!(s.client.get(&altered(&path)).status, 404);
    assert_eq!(s.client.get(&s.unsubscribe_path("never-sent")).status, 404);
});

both_backends!(each_reason_unsubscribes_and_complaints_report_spam, |db| {
    let mut s = site(db);
    s.client.accept_language = Some("en".into());
    for code in ["not_wanted", "not_subscribed", "spam", "fraud"] {
        let email_id = format!("m-{code}");
        let address = format!("{code}@example.com");
        s.request(&email_id, &address);
        let path = s.unsubscribe_path(&email_id);
        let resp = s.client.post_form(&path, &[("reason", code)]);
        assert_eq!(resp.status, 200, "{code}: {}", resp.body);
        assert!(resp.body.contains("You are unsubscribed"), "{code}");
        let complaint = code == "spam" || code == "fraud";
        assert_eq!(
            resp.body.contains("recorded as a spam complaint"),
            complaint,
            "{code}"
        );
        assert_eq!(
            s.count(&format!(
                "SELECT COUNT(*) AS n FROM unsubscribes WHERE address = '{address}' AND reason = '{code}' AND email_id = '{email_id}' AND api_user = 'notify' AND source = 'recipient'"
            )),
            1,
            "{code}"
        );
        assert_eq!(
            s.count(&format!(
                "SELECT COUNT(*) AS n FROM spam_reports WHERE address = '{address}' AND email_id = '{email_id}'"
            )),
            i64::from(complaint),
            "{code}"
        );
    }
    assert_eq!(s.count("SELECT COUNT(*) AS n FROM unsubscribes"), 4);
    assert_eq!(s.count("SELECT COUNT(*) AS n FROM spam_reports"), 2);

    // Without a reason the form comes back with a message; nothing is recorded.
    s.request("m-none", "none@example.com");
    let path = s.unsubscribe_path("m-none");
    let resp = s.client.post_form(&path, &[("reason", "because")]);
    assert_eq!(resp.status, 400);
    assert!(resp.body.contains("Please choose one of the reasons."));
    assert!(resp.body.contains("id=\"unsubscribe-form\""));
    assert_eq!(s.count("SELECT COUNT(*) AS n FROM unsubscribes"), 4);
    // No session and no CSRF token are needed: the signed link is the authority.
    assert!(!s.client.cookies.contains_key("mailtrail_session"));
});

both_backends!(a_second_visit_says_already_unsubscribed, |db| {
    let mut s = site(db);
    s.request("m1", "reader@example.com");
    let path = s.unsubscribe_path("m1");
    let first = start_of_a_second();
    s.client.accept_language = Some("en".into());
    assert_eq!(
        s.client
            .post_form(&path, &[("reason", "not_wanted")])
            .status,
        200
    );
    // The same form sent again within the second is the same unsubscribe.
    assert_eq!(
        s.client
            .post_form(&path, &[("reason", "not_wanted")])
            .status,
        200
    );
    let last = now_ms() / 1000;
    let logged = s.count("SELECT COUNT(*) AS n FROM message_events WHERE kind = 'unsubscribe'");
    if first == last {
        assert_eq!(logged, 1);
    }
    assert!((1..=2).contains(&logged));

    let again = s.client.get(&path);
    assert_eq!(again.status, 200);
    assert!(
        again.body.contains("already unsubscribed"),
        "{}",
        again.body
    );
    assert!(!again.body.contains("id=\"unsubscribe-form\""));
    // When: in the account's zone (Asia/Shanghai by default).
    assert!(again.body.contains("(Asia/Shanghai)"), "{}", again.body);
    s.client.accept_language = Some("zh-CN".into());
    assert!(s.client.get(&path).body.contains("此地址已经取消订阅"));

    // A later request to the address is suppressed as unsubscribed.
    s.request("m2", "reader@example.com");
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM messages WHERE email_id = 'm2' AND status = 3 AND reason = 2"),
        1
    );
});

both_backends!(one_click_unsubscribes_with_not_wanted, |db| {
    let mut s = site(db);
    s.request("m1", "one@example.com");
    s.request("m2", "two@example.com");
    let resp = s.client.post_raw(
        &s.unsubscribe_path("m1"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"List-Unsubscribe=One-Click",
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(!resp.body.contains("<html"), "no page needed");
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM unsubscribes WHERE address = 'one@example.com' AND reason = 'not_wanted' AND email_id = 'm1'"),
        1
    );

    // Some providers send it as multipart/form-data.
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
    let resp = s.client.post_raw(
        &s.unsubscribe_path("m2"),
        &[("Content-Type", "multipart/form-data; boundary=XyZ")],
        body.as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM unsubscribes WHERE reason = 'not_wanted'"),
        2
    );
    assert_eq!(s.count("SELECT COUNT(*) AS n FROM spam_reports"), 0);

    // A forged one-click changes nothing.
    let resp = s.client.post_raw(
        &altered(&s.unsubscribe_path("m1")),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"List-Unsubscribe=One-Click",
    );
    assert_eq!(resp.status, 404);
    assert_eq!(s.count("SELECT COUNT(*) AS n FROM unsubscribes"), 2);
});

both_backends!(sign_link_prints_links_the_server_accepts, |db| {
    let mut s = site(db);
    s.request("cli-1", "reader@example.com");
    let mailtrail = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailtrail"));
        cmd.env("MAILTRAIL_DATABASE_URL", &s.app.db.url)
            .env("MAILTRAIL_DATA_DIR", &s.app.settings.data_dir)
            .env_remove("MAILTRAIL_SECRET_KEY")
            .env_remove("MAILTRAIL_PUBLIC_URL")
            .env("RUST_LOG", "warn")
            .arg("sign-link")
            .args(args);
        cmd
    };
    let url = "https://shop.example/sale?x=1";
    let out = mailtrail(&[
        "--account",
        "acme",
        "--email-id",
        "cli-1",
        "--url",
        url,
        "--base-url",
        &s.app.base,
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let path = |line: &str| line.strip_prefix(s.app.base.as_str()).unwrap().to_string();
    assert!(
        lines[0].starts_with(&format!("{}/t/o/", s.app.base)),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("{}/t/c/", s.app.base)),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with(&format!("{}/u/", s.app.base)),
        "{stdout}"
    );

    assert_pixel(&mut s.client, &path(lines[0]));
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM tracking_events WHERE kind = 1 AND email_id = 'cli-1'"),
        1
    );
    let click = s.client.get(&path(lines[1]));
    assert_eq!(click.status, 302);
    assert_eq!(click.location(), url);
    let page = s.client.get(&path(lines[2]));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("reader@example.com"));

    // Without --url there is no click line; the base may come from MAILTRAIL_PUBLIC_URL.
    let out = mailtrail(&["--account", "acme", "--email-id", "cli-1"])
        .env("MAILTRAIL_PUBLIC_URL", "https://track.example.com/")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("https://track.example.com/t/o/"));
    assert!(lines[1].starts_with("https://track.example.com/u/"));

    // Neither a base URL nor the setting: a clear error.
    let out = mailtrail(&["--account", "acme", "--email-id", "cli-1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--base-url"), "{stderr}");
    assert!(stderr.contains("MAILTRAIL_PUBLIC_URL"), "{stderr}");

    let out = mailtrail(&[
        "--account",
        "nope",
        "--email-id",
        "x",
        "--base-url",
        "https://t.example",
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account named"));
    let out = mailtrail(&[
        "--account",
        "acme",
        "--email-id",
        "x",
        "--url",
        "javascript:alert(1)",
        "--base-url",
        "https://t.example",
    ])
    .output()
    .unwrap();
    assert!(!out.status.success(), "only http(s) destinations");
});

both_backends!(links_of_one_account_never_touch_another, |db| {
    let mut s = site(db);
    let other = s.app.account("other");
    let other_key = api_user(&s.app, &other);
    // The other account sent a message that acme never did, and both sent one called "shared".
    request(&mut s.client, &other_key, "theirs", "them@example.com");
    request(&mut s.client, &other_key, "shared", "them-too@example.com");
    s.request("shared", "us@example.com");

    // acme's links naming the other account's message find nothing of it.
    let theirs_open = s.open_path("theirs");
    assert_pixel(&mut s.client, &theirs_open);
    assert_eq!(
        s.client
            .get(&s.click_path("theirs", "https://x.example/"))
            .status,
        302
    );
    assert_eq!(s.client.get(&s.unsubscribe_path("theirs")).status, 404);
    assert_eq!(
        s.client
            .post_form(&s.unsubscribe_path("theirs"), &[("reason", "spam")])
            .status,
        404
    );
    s.client.post_raw(
        &s.unsubscribe_path("theirs"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"List-Unsubscribe=One-Click",
    );
    // acme's links to its own "shared" message act on acme's message only.
    let shared_open = s.open_path("shared");
    assert_pixel(&mut s.client, &shared_open);
    assert_eq!(
        s.client
            .post_form(&s.unsubscribe_path("shared"), &[("reason", "fraud")])
            .status,
        200
    );

    let theirs = |table: &str| {
        s.count(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE account_id = {}",
            other.id
        ))
    };
    assert_eq!(theirs("tracking_events"), 0);
    assert_eq!(theirs("unsubscribes"), 0);
    assert_eq!(theirs("spam_reports"), 0);
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) AS n FROM message_events WHERE account_id = {} AND kind <> 'request'",
            other.id
        )),
        0
    );
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) AS n FROM unsubscribes WHERE account_id = {} AND address = 'us@example.com'",
            s.account.id
        )),
        1
    );

    // A token signed for acme but rewritten to name the other account is refused.
    let token = s
        .key
        .sign(&Link::unsubscribe(s.account.id, "theirs"))
        .unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    raw[1] = other.id as u8;
    let rewritten = format!("/u/{}", URL_SAFE_NO_PAD.encode(&raw));
    assert_eq!(s.client.get(&rewritten).status, 404);
});
