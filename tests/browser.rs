//! Browser journeys in real headless Chromium, driven through chromedriver (fantoccini).
//! They run when /usr/bin/chromedriver exists and say clearly when they are skipped.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestApp;
use fantoccini::{Client, ClientBuilder, Locator};
use mailtrail::domain::Role;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Option<Driver> {
    if !std::path::Path::new(CHROMEDRIVER).exists() {
        common::skip(&format!(
            "browser journey: {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
        ));
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        profile: tempfile::tempdir().unwrap(),
    })
}

async fn connect(driver: &Driver) -> Client {
    let profile = driver.profile.path();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-quic", "--window-size=1280,900",
                "--lang=zh-CN", "--accept-lang=zh-CN",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {"intl.accept_languages": "zh-CN,zh"}
        }),
    );
    // chromedriver takes a moment to listen.
    let mut last = None;
    for _ in 0..50 {
        match ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return client,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cannot connect to chromedriver: {last:?}");
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .for_element(Locator::Css(css))
        .await
        .expect(css)
        .text()
        .await
        .unwrap()
}

/// Signs in through the form, in English, and waits for the overview.
async fn sign_in(client: &Client, base: &str, email: &str, password: &str) {
    client
        .goto(&format!("{base}/lang/en?next=/login"))
        .await
        .unwrap();
    client
        .find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(email)
        .await
        .unwrap();
    client
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    client
        .find(Locator::Id("login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("#period-2"))
        .await
        .unwrap();
}

async fn login_and_overview_in_both_languages(app: &TestApp, driver: &Driver) {
    let client = connect(driver).await;
    let base = &app.base;

    // Signed out, the overview sends the browser to the login form.
    client.goto(&format!("{base}/")).await.unwrap();
    assert!(client
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/login"));
    assert_eq!(
        text_of(&client, "h1").await,
        "登录",
        "Chinese from the browser's language"
    );

    // A wrong password shows a message on the form.
    client
        .find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys("owner@acme.test")
        .await
        .unwrap();
    client
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("nope")
        .await
        .unwrap();
    client
        .find(Locator::Id("login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text_of(&client, "#login-error").await, "邮箱或密码错误。");

    // The right one lands on the overview with the account's real numbers.
    let password = client.find(Locator::Id("password")).await.unwrap();
    password.send_keys("browser pw").await.unwrap();
    client
        .find(Locator::Id("login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("#period-2"))
        .await
        .unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/");
    assert_eq!(text_of(&client, "h1").await, "概览");
    let delivered = client
        .find(Locator::Css("#period-2 tr[data-status=delivered]"))
        .await
        .unwrap()
        .attr("data-count")
        .await
        .unwrap()
        .unwrap();
    let zone = chrono_tz::Asia::Shanghai;
    use chrono::{Duration as Days, TimeZone, Utc};
    let today = Utc::now().with_timezone(&zone).date_naive();
    let start = zone
        .from_local_datetime(&(today - Days::days(6)).and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis();
    let expected = app.count(&format!(
        "SELECT COUNT(*) AS n FROM messages WHERE status = 1 AND requested_at >= {start}"
    ));
    assert_eq!(delivered, expected.to_string());
    assert!(expected > 0);
    assert!(
        !client
            .find_all(Locator::Css("svg.bars rect.seg"))
            .await
            .unwrap()
            .is_empty(),
        "the chart has bars"
    );

    // Switch to English: every visible string follows, and the choice is remembered.
    client
        .find(Locator::Css("a.lang-switch"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("html[lang=en]"))
        .await
        .unwrap();
    assert_eq!(text_of(&client, "h1").await, "Overview");
    assert!(text_of(&client, "#period-2 h2")
        .await
        .starts_with("Last 7 days"));
    client.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(
        text_of(&client, "h1").await,
        "Overview",
        "remembered across pages"
    );
    let shot = client.screenshot().await.unwrap();
    let _ = std::fs::write(
        std::env::temp_dir().join(format!("mailtrail-overview-{}.png", app.db.backend as u8)),
        shot,
    );

    // Open the newest message from the overview.
    client
        .find(Locator::Css("table.list tbody tr a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("section.message"))
        .await
        .unwrap();
    assert_eq!(text_of(&client, "h1").await, "Message");
    assert!(!client
        .find_all(Locator::Css("ol.timeline li"))
        .await
        .unwrap()
        .is_empty());

    // Back to Chinese, then sign out: the overview is closed again.
    client
        .find(Locator::Css("a.lang-switch"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("html[lang=zh-CN]"))
        .await
        .unwrap();
    assert_eq!(text_of(&client, "h1").await, "邮件详情");
    client
        .find(Locator::Css("form[action='/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Id("login-submit"))
        .await
        .unwrap();
    client.goto(&format!("{base}/")).await.unwrap();
    assert!(client
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/login"));
    client.close().await.unwrap();
}

both_backends!(login_journey_and_overview_in_both_languages, |db| {
    let Some(driver) = start_driver() else { return };
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "browser pw");
    app.generate(&account, 400, 7);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(login_and_overview_in_both_languages(&app, &driver));
});

async fn status_filter_to_diagnosis_and_removal(app: &TestApp, driver: &Driver) {
    let client = connect(driver).await;
    let base = &app.base;
    sign_in(&client, base, "owner@acme.test", "browser pw").await;

    // A bookmarked period, then the status and the reason through the form.
    let zone = chrono_tz::Asia::Shanghai;
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    let from = today - chrono::Duration::days(1);
    client
        .goto(&format!("{base}/status?from={from}&to={today}"))
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Id("status-filter"))
        .await
        .unwrap();
    client
        .find(Locator::Css("select[name=status]"))
        .await
        .unwrap()
        .select_by_value("invalid")
        .await
        .unwrap();
    client
        .find(Locator::Id("filter-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("a.tab.active[data-tab=invalid]"))
        .await
        .unwrap();
    client
        .find(Locator::Css("select[name=reason]"))
        .await
        .unwrap()
        .select_by_value("address_not_found")
        .await
        .unwrap();
    client
        .find(Locator::Id("filter-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("table.status-table"))
        .await
        .unwrap();
    let rows = client
        .find_all(Locator::Css("table.status-table tbody tr"))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(
            row.attr("data-status").await.unwrap().as_deref(),
            Some("invalid")
        );
        assert_eq!(
            row.attr("data-reason").await.unwrap().as_deref(),
            Some("address_not_found")
        );
    }

    // Open the newest one's log details, then follow its address to the diagnosis.
    client
        .find(Locator::Css("table.status-table tbody tr td:last-child a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Id("reason-explained"))
        .await
        .unwrap();
    assert!(text_of(&client, "#reason-explained")
        .await
        .contains("does not exist"));
    client
        .find(Locator::Css("dd a.address"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Id("verdict"))
        .await
        .unwrap();
    assert_eq!(
        client
            .find(Locator::Id("verdict"))
            .await
            .unwrap()
            .attr("data-blocked")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert!(text_of(&client, "#verdict p").await.contains("Bounce list"));

    // Remove it from the bounce list, confirming first.
    client
        .find(Locator::Css("a.remove[data-remove^=bounces]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Id("confirm-remove"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Id("removed-notice"))
        .await
        .unwrap();
    assert!(client
        .find_all(Locator::Css("tr[data-list=bounces]"))
        .await
        .unwrap()
        .is_empty());
    let shot = client.screenshot().await.unwrap();
    let _ = std::fs::write(
        std::env::temp_dir().join(format!("mailtrail-lookup-{}.png", app.db.backend as u8)),
        shot,
    );
    client.close().await.unwrap();
}

both_backends!(status_filter_message_diagnosis_and_list_removal, |db| {
    let Some(driver) = start_driver() else { return };
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "browser pw");
    app.generate(&account, 800, 1);
    // Every address that bounced is on the bounce list for a while yet.
    {
        use diesel::prelude::*;
        use mailtrail::db::schema::bounces;
        diesel::update(bounces::table)
            .set(bounces::expires_at.eq(mailtrail::domain::now_ms() + 36_000_000))
            .execute(&mut *app.conn())
            .unwrap();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(status_filter_to_diagnosis_and_removal(&app, &driver));
});

async fn staff_finds_an_address_across_accounts(
    app: &TestApp,
    driver: &Driver,
    address: &str,
    account_id: i64,
) {
    let client = connect(driver).await;
    let base = &app.base;
    sign_in(&client, base, "staff@mt.test", "staff pass 1").await;
    client
        .find(Locator::Css("nav.main-nav a[href='/staff']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Id("staff-address"))
        .await
        .unwrap()
        .send_keys(address)
        .await
        .unwrap();
    client
        .find(Locator::Id("staff-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("#hits tbody tr"))
        .await
        .unwrap();
    let row = client.find(Locator::Css("#hits tbody tr")).await.unwrap();
    assert_eq!(
        row.attr("data-account").await.unwrap(),
        Some(account_id.to_string())
    );
    row.find(Locator::Css("a.open-message"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("section.message"))
        .await
        .unwrap();
    assert!(
        text_of(&client, ".staff-banner").await.contains("globex"),
        "a banner says whose data this is"
    );
    assert!(text_of(&client, "dd a.address").await.contains(address));
    client.close().await.unwrap();
}

both_backends!(
    staff_look_up_an_address_across_accounts_and_open_the_message,
    |db| {
        let Some(driver) = start_driver() else { return };
        let app = TestApp::start(db);
        let customer = app.account("globex");
        app.generate(&customer, 50, 1);
        let support = app.account("support");
        app.user(&support, "staff@mt.test", Role::Staff, "staff pass 1");
        let address = {
            use diesel::prelude::*;
            use mailtrail::db::schema::messages;
            messages::table
                .select(messages::recipient)
                .first::<String>(&mut *app.conn())
                .unwrap()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(staff_finds_an_address_across_accounts(
            &app,
            &driver,
            &address,
            customer.id,
        ));
        assert!(app.count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'staff.view'") >= 1);
    }
);

fn post_request(app: &TestApp, key: &str, email_id: &str, recipient: &str) {
    let body = serde_json::json!([{"event": "request", "email_id": email_id, "recipient": recipient, "timestamp": chrono::Utc::now().to_rfc3339()}]).to_string();
    let res = app.client().post_raw(
        "/api/v1/events",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    assert_eq!(res.status, 200, "{}", res.body);
}

async fn blacklist_a_domain_and_watch_requests(app: &TestApp, driver: &Driver, key: &str) {
    let client = connect(driver).await;
    let base = &app.base;
    sign_in(&client, base, "owner@acme.test", "browser pw").await;

    // Blacklist the whole domain through the page.
    client
        .find(Locator::Css("nav.main-nav a[href='/blacklist']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Id("add-form"))
        .await
        .unwrap();
    client
        .find(Locator::Css("#add-form input[name=address]"))
        .await
        .unwrap()
        .send_keys("@blocked.test")
        .await
        .unwrap();
    client
        .find(Locator::Id("add-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Id("list-notice"))
        .await
        .unwrap();
    assert!(text_of(&client, "table.list-table")
        .await
        .contains("@blocked.test"));

    // A request for an address in it becomes invalid / blacklisted.
    post_request(app, key, "journey-1", "carol@blocked.test");
    client
        .goto(&format!("{base}/status?email_id=journey-1"))
        .await
        .unwrap();
    let row = client
        .wait()
        .for_element(Locator::Css("table.status-table tbody tr"))
        .await
        .unwrap();
    assert_eq!(
        row.attr("data-status").await.unwrap().as_deref(),
        Some("invalid")
    );
    assert_eq!(
        row.attr("data-reason").await.unwrap().as_deref(),
        Some("blacklisted")
    );

    // Remove the domain (select it, confirm), post again: accepted.
    client.goto(&format!("{base}/blacklist")).await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("input.row-check"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Id("delete-selected"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        client
            .wait()
            .for_element(Locator::Id("confirm-count"))
            .await
            .unwrap()
            .attr("data-count")
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    client
        .find(Locator::Id("confirm-delete"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Id("list-empty"))
        .await
        .unwrap();
    post_request(app, key, "journey-2", "carol@blocked.test");
    client
        .goto(&format!("{base}/status?email_id=journey-2"))
        .await
        .unwrap();
    let row = client
        .wait()
        .for_element(Locator::Css("table.status-table tbody tr"))
        .await
        .unwrap();
    assert_eq!(
        row.attr("data-status").await.unwrap().as_deref(),
        Some("requesting")
    );
    client.close().await.unwrap();
}

both_backends!(blacklist_a_domain_then_remove_it, |db| {
    let Some(driver) = start_driver() else { return };
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "browser pw");
    let key = mailtrail::store::accounts::create_api_user(
        &mut app.conn(),
        &mailtrail::store::AccountScope::new(account.id),
        "notify",
        mailtrail::domain::MailType::Trigger,
    )
    .unwrap()
    .1;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(blacklist_a_domain_and_watch_requests(&app, &driver, &key));
});

async fn request_an_export_and_download_it(app: &TestApp, driver: &Driver) -> String {
    let client = connect(driver).await;
    let base = &app.base;
    sign_in(&client, base, "owner@acme.test", "browser pw").await;
    client.goto(&format!("{base}/bounces")).await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("button.export-offline"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The jobs page refreshes itself until the job is done.
    let done = client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("tr[data-state=succeeded] a.download"))
        .await
        .expect("the export finishes while the page is open");
    let href = done.attr("href").await.unwrap().unwrap();
    let progress = client
        .find(Locator::Css("tr[data-state=succeeded] progress"))
        .await
        .unwrap();
    assert_eq!(
        progress.attr("value").await.unwrap().as_deref(),
        Some("100"),
        "the progress bar shows done"
    );
    client.close().await.unwrap();
    href
}

both_backends!(request_an_export_watch_it_finish_and_download_it, |db| {
    let Some(driver) = start_driver() else { return };
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "browser pw");
    app.generate(&account, 300, 2);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let href = runtime.block_on(request_an_export_and_download_it(&app, &driver));
    let mut client = app.client();
    client.login("owner@acme.test", "browser pw");
    let file = client.get(&href);
    assert_eq!(file.status, 200);
    assert_eq!(
        file.body.lines().count() as i64 - 1,
        app.count("SELECT COUNT(*) AS n FROM bounces")
    );
});

/// The list pages' "select all" box (static/app.js) checks every row.
async fn select_all_rows_of_a_list(app: &TestApp, driver: &Driver) {
    let client = connect(driver).await;
    let base = &app.base;
    sign_in(&client, base, "owner@acme.test", "browser pw").await;
    client.goto(&format!("{base}/bounces")).await.unwrap();
    client
        .wait()
        .for_element(Locator::Id("select-all"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let boxes = client
        .find_all(Locator::Css("input.row-check"))
        .await
        .unwrap();
    assert!(!boxes.is_empty(), "the page lists entries");
    for b in &boxes {
        assert!(
            b.is_selected().await.unwrap(),
            "select-all checked every row"
        );
    }
    client.close().await.unwrap();
}

both_backends!(select_all_checks_every_row_of_a_list, |db| {
    let Some(driver) = start_driver() else { return };
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "browser pw");
    app.generate(&account, 300, 2);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(select_all_rows_of_a_list(&app, &driver));
});
