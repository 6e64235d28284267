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

/// The two screens every console page is checked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Screen {
    /// 360×740 CSS pixels, emulated: a headless window is never narrower than 500 px.
    Phone,
    /// 1440×900.
    Desk,
}

impl Screen {
    fn name(self) -> &'static str {
        match self {
            Screen::Phone => "phone",
            Screen::Desk => "desk",
        }
    }
}

async fn connect(driver: &Driver) -> Client {
    connect_on(driver, None).await
}

async fn connect_on(driver: &Driver, screen: Option<Screen>) -> Client {
    // A profile of its own per screen: each session starts signed out.
    let profile = match screen {
        Some(screen) => driver.profile.path().join(screen.name()),
        None => driver.profile.path().to_path_buf(),
    };
    let window = match screen {
        Some(Screen::Desk) => "--window-size=1440,900",
        _ => "--window-size=1280,900",
    };
    let mut options = serde_json::json!({
        "binary": "/usr/bin/chromium",
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-quic", window, "--hide-scrollbars",
            "--lang=zh-CN", "--accept-lang=zh-CN",
            format!("--user-data-dir={}", profile.display()),
        ],
        "prefs": {"intl.accept_languages": "zh-CN,zh"}
    });
    if screen == Some(Screen::Phone) {
        options["mobileEmulation"] = serde_json::json!({
            "deviceMetrics": {"width": 360, "height": 740, "pixelRatio": 2.0}
        });
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    // Two TLS providers are linked in (ring, aws-lc-rs): rustls needs to be told which.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // chromedriver takes a moment to listen.
    let mut last = None;
    for _ in 0..150 {
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
    // The filtered page, not the one the click left: its URL names the reason.
    for _ in 0..150 {
        let url = client.current_url().await.unwrap();
        if url
            .query()
            .unwrap_or("")
            .contains("reason=address_not_found")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

// ---------------------------------------------------------------------------------------------
// Every console page, both languages, on a phone and on a desk.

/// A page to check: where, its name for screenshots, and the element that must show in the
/// first screen below the heading (the first row of its table, its first tile or field).
struct ConsolePage {
    name: &'static str,
    path: String,
    first: &'static str,
}

/// What one page looks like in the browser, measured by the page's own script.
#[derive(Debug, serde::Deserialize)]
struct Measure {
    scroll_width: f64,
    client_width: f64,
    inner_height: f64,
    heading: Option<(f64, f64)>,
    first: Option<(f64, f64)>,
    lang: String,
    wider: Vec<String>,
    /// The page's visible text without what users typed or mailers sent (subjects,
    /// addresses, SMTP replies, user agents).
    ui_text: String,
}

const MEASURE: &str = r#"
const d = document.documentElement;
const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect(); return [r.top, r.bottom]; };
const wider = [...document.querySelectorAll('body *')]
  .filter((el) => el.getBoundingClientRect().right > d.clientWidth + 1 && el.getClientRects().length)
  .slice(0, 4)
  .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().replace(/\s+/g, '.') : ''));
const copy = document.body.cloneNode(true);
copy.querySelectorAll('code, pre, iframe, .address, .c-subject, .c-api, td.url, [data-user-content], #hits, .fields dd, .tag, .who, .lang-switch, #verdict h2, table.list-table td').forEach((el) => el.remove());
return {
  scroll_width: d.scrollWidth,
  client_width: d.clientWidth,
  inner_height: window.innerHeight,
  heading: box(document.querySelector('main h1')),
  first: box(document.querySelector(arguments[0])),
  lang: d.lang,
  wider,
  ui_text: copy.innerText,
};
"#;

/// English UI words that must not show on a Chinese page (whole words, case as written).
const ENGLISH_UI: &[&str] = &[
    "Overview",
    "Mail status",
    "Status",
    "Reason",
    "Search",
    "Reset",
    "Filters",
    "Menu",
    "Sign out",
    "Settings",
    "Delivered",
    "Invalid",
    "Soft bounce",
    "Requesting",
    "Older",
    "Newer",
    "View",
    "Download",
    "Today",
    "Total",
    "Subject",
    "Sender",
    "Recipient",
    "Any",
    "Export",
    "Period",
    "From",
    "To",
    "Date",
    "Details",
    "Send log",
    "Messages",
    "batch",
    "trigger",
    "delivery",
    "generated",
    "suppressed",
    "ui",
    "Skip to content",
];

fn english_words_in(text: &str) -> Vec<&'static str> {
    ENGLISH_UI
        .iter()
        .copied()
        .filter(|word| {
            text.match_indices(word).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = text[at + word.len()..].chars().next();
                let boundary =
                    |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
                boundary(before) && boundary(after)
            })
        })
        .collect()
}

#[test]
fn english_words_are_found_as_whole_words_only() {
    assert_eq!(english_words_in("邮件状态 Status"), vec!["Status"]);
    assert!(english_words_in("marketing_batch · Statusbar · Todays").is_empty());
    assert_eq!(english_words_in("来源：ui"), vec!["ui"]);
}

/// axe-core's browser build, when it has been installed (`npm install axe-core` into
/// `target/axe-core`, as `.ci/run` does), or where `MAILTRAIL_AXE_JS` says.
fn axe_source() -> Option<String> {
    let path = std::env::var("MAILTRAIL_AXE_JS").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/axe-core/node_modules/axe-core/axe.min.js"
        )
        .to_string()
    });
    std::fs::read_to_string(path).ok()
}

/// axe-core's WCAG 2 A/AA rules on the page: the rules that fail, with how many elements.
async fn axe_violations(client: &Client, axe: &str) -> Vec<String> {
    client.execute(axe, vec![]).await.expect("load axe-core");
    let found = client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
              .then((r) => done(r.violations.map((v) => v.id + ' ×' + v.nodes.length + ': ' + v.nodes.slice(0, 2).map((n) => n.target.join(' ')).join(' | '))))
              .catch((e) => done(['axe failed: ' + e]));"#,
            vec![],
        )
        .await
        .expect("run axe-core");
    serde_json::from_value(found).unwrap()
}

struct Walk<'a> {
    app: &'a TestApp,
    screen: Screen,
    axe: Option<&'a str>,
    shots: Option<std::path::PathBuf>,
    problems: Vec<String>,
    checked: usize,
}

impl Walk<'_> {
    async fn check(&mut self, client: &Client, lang: &str, page: &ConsolePage) {
        let base = &self.app.base;
        client.goto(&format!("{base}{}", page.path)).await.unwrap();
        let m: Measure = serde_json::from_value(
            client
                .execute(MEASURE, vec![serde_json::json!(page.first)])
                .await
                .unwrap(),
        )
        .unwrap();
        let at = format!("{} {lang} {}", self.screen.name(), page.path);
        self.checked += 1;
        if m.lang != lang {
            self.problems
                .push(format!("{at}: page language {}", m.lang));
        }
        if m.scroll_width > m.client_width {
            self.problems.push(format!(
                "{at}: {} px wide in a {} px window (wider: {:?})",
                m.scroll_width, m.client_width, m.wider
            ));
        }
        match m.heading {
            Some((top, bottom)) if top >= 0.0 && bottom <= m.inner_height => {}
            other => self.problems.push(format!(
                "{at}: main heading not in the first screen: {other:?}"
            )),
        }
        match m.first {
            Some((top, _)) if top >= 0.0 && top < m.inner_height - 20.0 => {}
            other => self.problems.push(format!(
                "{at}: {} not in the first screen ({} px): {other:?}",
                page.first, m.inner_height
            )),
        }
        if lang == "zh-CN" {
            let english = english_words_in(&m.ui_text);
            if !english.is_empty() {
                self.problems
                    .push(format!("{at}: English on a Chinese page: {english:?}"));
            }
        }
        if let Some(axe) = self.axe {
            for v in axe_violations(client, axe).await {
                self.problems.push(format!("{at}: axe {v}"));
            }
        }
        if let Some(dir) = &self.shots {
            let png = client.screenshot().await.unwrap();
            let lang = if lang == "en" { "en" } else { "zh" };
            std::fs::write(
                dir.join(format!("{}-{lang}-{}.png", page.name, self.screen.name())),
                png,
            )
            .unwrap();
        }
    }
}

async fn sign_out(client: &Client, base: &str, screen: Screen) {
    client.goto(&format!("{base}/")).await.unwrap();
    if screen == Screen::Phone {
        // On a phone the navigation and sign-out fold behind the menu.
        client
            .find(Locator::Css("details.menu > summary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    let button = match screen {
        Screen::Phone => "details.menu form[action='/logout'] button",
        Screen::Desk => ".who form[action='/logout'] button",
    };
    client
        .find(Locator::Css(button))
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
}

struct Fixture {
    owner_pages: Vec<ConsolePage>,
    staff_pages: Vec<ConsolePage>,
}

fn fixture(app: &TestApp) -> Fixture {
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "browser pw");
    app.user(&account, "member@acme.test", Role::Member, "member pw 1");
    let support = app.account("support");
    app.user(&support, "staff@mt.test", Role::Staff, "staff pass 1");
    app.generate(&account, 1500, 30);
    mailtrail::store::accounts::create_api_user(
        &mut app.conn(),
        &mailtrail::store::AccountScope::new(account.id),
        "notify",
        mailtrail::domain::MailType::Trigger,
    )
    .unwrap();
    let message = app.count("SELECT MAX(id) AS n FROM messages WHERE status = 3");
    let address = {
        use diesel::prelude::*;
        use mailtrail::db::schema::messages;
        messages::table
            .filter(messages::id.eq(message))
            .select(messages::recipient)
            .first::<String>(&mut *app.conn())
            .unwrap()
    };
    let provider = {
        use diesel::prelude::*;
        use mailtrail::db::schema::messages;
        messages::table
            .filter(messages::id.eq(message))
            .select(messages::provider)
            .first::<String>(&mut *app.conn())
            .unwrap()
    };
    // The recipient's unsubscribe link of that message: the public page, no console around it.
    let unsubscribe = {
        use diesel::prelude::*;
        use mailtrail::db::schema::messages;
        use mailtrail::domain::token::{Link, LinkKey};
        let email_id = messages::table
            .filter(messages::id.eq(message))
            .select(messages::email_id)
            .first::<String>(&mut *app.conn())
            .unwrap();
        let secret = app.settings.load_or_create_secret().unwrap();
        LinkKey::derive(&secret)
            .sign(&Link::unsubscribe(account.id, &email_id))
            .unwrap()
    };
    let zone = chrono_tz::Asia::Shanghai;
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    let week = today - chrono::Duration::days(6);
    let list_row = "table.list-table tbody tr";
    let page = |name, path: String, first| ConsolePage { name, path, first };
    let owner_pages = vec![
        page("overview", "/".into(), ".kpi"),
        page("overview-today", "/?days=1".into(), ".kpi"),
        page("overview-30-days", "/?days=30".into(), ".kpi"),
        page(
            "status",
            format!("/status?from={week}&to={today}"),
            "table.status-table tbody tr",
        ),
        page(
            "status-invalid",
            format!("/status?from={week}&to={today}&status=invalid&reason=address_not_found"),
            "table.status-table tbody tr",
        ),
        page(
            "status-bad-date",
            "/status?from=2024-13-45".into(),
            "#status-filter input[name=from]",
        ),
        page("message", format!("/status/{message}"), ".status-line"),
        page(
            "lookup",
            "/lookup".into(),
            ".lookup-form input[name=address]",
        ),
        page(
            "lookup-address",
            format!("/lookup?address={address}"),
            "#verdict",
        ),
        page(
            "opens-clicks",
            format!("/opens-clicks?from={week}&to={today}"),
            "table tbody tr",
        ),
        page("bounces", "/bounces".into(), list_row),
        page("spam-reports", "/spam-reports".into(), list_row),
        page("unsubscribes", "/unsubscribes".into(), list_row),
        page("blacklist", "/blacklist".into(), "#list-filter"),
        page(
            "exports",
            "/exports".into(),
            "#no-jobs, table.exports tbody tr",
        ),
        page("settings", "/settings".into(), "select[name=time_zone]"),
        page(
            "settings-feeds",
            "/settings/feeds".into(),
            "main section.card",
        ),
        page(
            "providers",
            "/providers?days=7".into(),
            "#providers tbody tr",
        ),
        page("provider", format!("/providers/{provider}?days=7"), "#kpis"),
        page("alerts", "/alerts".into(), "#alerts-recent"),
        page("not-found", "/status/999999999".into(), "main p"),
        page(
            "bounces-nothing-ticked",
            "/bounces?nothing=1".into(),
            "#list-problem",
        ),
        page(
            "unsubscribe",
            format!("/u/{unsubscribe}"),
            "#unsubscribe-form",
        ),
    ];
    let a = account.id;
    let staff_pages = vec![
        page("staff", "/staff".into(), "#staff-address"),
        page(
            "staff-search",
            format!("/staff?address={address}"),
            "#hits tbody tr",
        ),
        page("staff-audit", "/staff/audit".into(), "table tbody tr"),
        page("staff-overview", format!("/?account={a}"), ".kpi"),
        page(
            "staff-status",
            format!("/status?account={a}&from={week}&to={today}"),
            "table.status-table tbody tr",
        ),
    ];
    Fixture {
        owner_pages,
        staff_pages,
    }
}

async fn walk_console(
    app: &TestApp,
    driver: &Driver,
    fixture: &Fixture,
    screen: Screen,
    axe: Option<&str>,
) -> (usize, Vec<String>) {
    let client = connect_on(driver, Some(screen)).await;
    let base = &app.base;
    let shots = std::env::var_os("MAILTRAIL_SCREENSHOTS").map(std::path::PathBuf::from);
    if let Some(dir) = &shots {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut walk = Walk {
        app,
        screen,
        axe,
        shots,
        problems: Vec::new(),
        checked: 0,
    };
    // Signed out: the login form.
    for lang in ["en", "zh-CN"] {
        client
            .goto(&format!("{base}/lang/{lang}?next=/login"))
            .await
            .unwrap();
        let login = ConsolePage {
            name: "login",
            path: "/login".into(),
            first: "#login-submit",
        };
        walk.check(&client, lang, &login).await;
    }
    for (email, password, pages) in [
        ("owner@acme.test", "browser pw", &fixture.owner_pages),
        ("staff@mt.test", "staff pass 1", &fixture.staff_pages),
    ] {
        sign_in(&client, base, email, password).await;
        if screen == Screen::Phone {
            // The navigation is folded, and opens from the menu.
            let nav = client
                .find(Locator::Css("details.menu nav a[href^='/status']"))
                .await
                .unwrap();
            assert!(!nav.is_displayed().await.unwrap(), "folded on a phone");
            client
                .find(Locator::Css("details.menu > summary"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            assert!(nav.is_displayed().await.unwrap(), "the menu opens");
        }
        for lang in ["en", "zh-CN"] {
            client
                .goto(&format!("{base}/lang/{lang}?next=/"))
                .await
                .unwrap();
            for page in pages {
                walk.check(&client, lang, page).await;
            }
        }
        sign_out(&client, base, screen).await;
    }
    client.close().await.unwrap();
    (walk.checked, walk.problems)
}

both_backends!(
    every_console_page_fits_a_phone_and_a_desk_in_both_languages,
    |db| {
        // The app first: chromedriver's free port is then not one the app could take.
        let app = TestApp::start(db);
        let Some(driver) = start_driver() else { return };
        let fixture = fixture(&app);
        let axe = axe_source();
        if axe.is_none() {
            common::skip("axe-core checks: target/axe-core/node_modules/axe-core/axe.min.js is missing (npm install --prefix target/axe-core axe-core)");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut problems = Vec::new();
        let mut checked = 0;
        for screen in [Screen::Phone, Screen::Desk] {
            // axe-core's rules do not depend on the width; once, on the desk, is enough.
            let axe = axe.as_deref().filter(|_| screen == Screen::Desk);
            let (n, found) = runtime.block_on(walk_console(&app, &driver, &fixture, screen, axe));
            checked += n;
            problems.extend(found);
        }
        assert_eq!(
            checked,
            2 * (2 + 2 * (fixture.owner_pages.len() + fixture.staff_pages.len())),
            "every page on both screens in both languages"
        );
        assert!(
            problems.is_empty(),
            "{} problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
);

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

/// Opens each of `paths` on `phone` (a client on a [`Screen::Phone`]) and asserts that the
/// page is no wider than the screen.
async fn assert_pages_fit_a_phone(phone: &Client, base: &str, paths: &[&str]) {
    for path in paths {
        phone.goto(&format!("{base}{path}")).await.unwrap();
        phone
            .wait()
            .for_element(Locator::Css("main h1"))
            .await
            .unwrap();
        let fits = phone
            .execute(
                "const d = document.documentElement; return d.scrollWidth <= d.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, serde_json::json!(true), "{path} fits 360 px");
    }
}

/// Mailbox providers: from the navigation to `/providers`, NetEase's row (its bad hour in the
/// generated traffic), its page with the servers' own replies; the same page fits a phone.
async fn providers_page_and_a_provider(app: &TestApp, driver: &Driver) {
    let client = connect(driver).await;
    let base = &app.base;
    sign_in(&client, base, "owner@acme.test", "browser pw").await;
    client
        .find(Locator::Css(".main-nav a[href='/providers']"))
        .await
        .expect("providers in the navigation")
        .click()
        .await
        .unwrap();
    let row = client
        .wait()
        .for_element(Locator::Css("#providers tr[data-provider='netease']"))
        .await
        .expect("NetEase has a row");
    let requests: i64 = row
        .attr("data-requests")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(requests > 0);
    row.find(Locator::Css("th a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("h1[data-provider='netease']"))
        .await
        .expect("the provider page");
    let replies = text_of(&client, "#replies").await;
    assert!(
        replies.contains("DT:SPM"),
        "the bad hour's refusals are among the replies: {replies}"
    );
    assert!(client
        .find(Locator::Css("#failures tr[data-status]"))
        .await
        .is_ok());
    client.close().await.unwrap();

    let phone = connect_on(driver, Some(Screen::Phone)).await;
    sign_in(&phone, base, "owner@acme.test", "browser pw").await;
    assert_pages_fit_a_phone(&phone, base, &["/providers", "/providers/netease"]).await;
    phone.close().await.unwrap();
}

both_backends!(providers_journey, |db| {
    let Some(driver) = start_driver() else { return };
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "browser pw");
    // Seven days of traffic: the demo's NetEase bad hour is three hours ago.
    app.generate(&account, 3_000, 2);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(providers_page_and_a_provider(&app, &driver));
});

/// Alerts (issue #20): a burst of 163.com invalids makes the NetEase rule, turned on by the
/// owner, fire; the overview shows the alert, and from it the provider page shows the replies.
async fn a_netease_burst_fires_an_alert(app: &TestApp, driver: &Driver) {
    let client = connect(driver).await;
    let base = &app.base;
    sign_in(&client, base, "owner@acme.test", "browser pw").await;
    client
        .find(Locator::Css(".main-nav a[href='/alerts']"))
        .await
        .expect("alerts in the navigation")
        .click()
        .await
        .unwrap();
    let rule = "#alert-rules tr[data-metric='invalid_rate'][data-provider='netease']";
    client
        .wait()
        .for_element(Locator::Css(&format!(
            "{rule}[data-state='off'] button.switch-on"
        )))
        .await
        .expect("the default NetEase rule, off")
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css(&format!("{rule} button.switch-off")))
        .await
        .expect("the rule is on");
    // The background evaluator takes the rule at once; the overview shows what it found.
    let fired = "#alerts tr[data-kind='fired'][data-provider='netease']";
    let mut shown = false;
    for _ in 0..100 {
        client.goto(&format!("{base}/")).await.unwrap();
        if client.find(Locator::Css(fired)).await.is_ok() {
            shown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(shown, "the overview shows the NetEase alert");
    assert!(client
        .find(Locator::Css("#alerts-firing li[data-provider='netease']"))
        .await
        .is_ok());
    client
        .find(Locator::Css(&format!("{fired} a.alert-provider")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("h1[data-provider='netease']"))
        .await
        .expect("the provider page");
    let replies = text_of(&client, "#replies").await;
    assert!(
        replies.contains("DT:SPM"),
        "the burst's refusals: {replies}"
    );
    client.close().await.unwrap();

    // In Chinese, on a phone: the alerts page and the overview fit 360 px.
    let phone = connect_on(driver, Some(Screen::Phone)).await;
    sign_in(&phone, base, "owner@acme.test", "browser pw").await;
    phone
        .goto(&format!("{base}/lang/zh-CN?next=/alerts"))
        .await
        .unwrap();
    let title = text_of(&phone, "main h1").await;
    assert_eq!(title, "告警");
    assert_pages_fit_a_phone(&phone, base, &["/alerts", "/"]).await;
    phone.close().await.unwrap();
}

both_backends!(alerts_journey, |db| {
    let Some(driver) = start_driver() else { return };
    let mut settings = common::settings_for(&db);
    settings.alerts.poll_ms = 100;
    let app = TestApp::start_with(db, settings);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "browser pw");
    let (_, key) = mailtrail::store::accounts::create_api_user(
        &mut app.conn(),
        &mailtrail::store::AccountScope::new(account.id),
        "notify",
        mailtrail::domain::MailType::Trigger,
    )
    .unwrap();
    // 150 requests to 163.com in the last minutes, 40 refused: 27 %, over the rule's 10 %.
    let at = chrono::Utc::now() - chrono::Duration::minutes(5);
    let mut events = Vec::new();
    for i in 0..150 {
        let id = format!("burst-{i}");
        events.push(serde_json::json!({"event": "request", "email_id": id,
            "recipient": format!("user{i}@163.com"), "timestamp": at.to_rfc3339()}));
        if i < 40 {
            events.push(serde_json::json!({"event": "invalid", "email_id": id,
                "timestamp": (at + chrono::Duration::seconds(2)).to_rfc3339(),
                "smtp_reply": "550 DT:SPM 163 mx14,QMCowAD3 1764576000 http://mail.163.com/help/help_spam_16.htm?ip=203.0.113.9",
                "mx": "163mx01.mxmail.netease.com"}));
        }
    }
    let res = app.client().post_raw(
        "/api/v1/events",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", "application/json"),
        ],
        serde_json::Value::from(events).to_string().as_bytes(),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(a_netease_burst_fires_an_alert(&app, &driver));
});
