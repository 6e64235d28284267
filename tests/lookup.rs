//! `/lookup?address=`: the verdict, the entries that block an address, removal with
//! confirmation and CSRF, and account isolation.

mod common;

use diesel::prelude::*;

use common::TestApp;
use mailtrail::db::schema::{blacklist, bounces, spam_reports, unsubscribes};
use mailtrail::domain::{now_ms, Role};
use mailtrail::store::models::{NewBlacklistEntry, NewBounce, NewSpamReport, NewUnsubscribe};

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

fn bounce(app: &TestApp, account_id: i64, address: &str, expires_in: i64) -> i64 {
    let now = now_ms();
    diesel::insert_into(bounces::table)
        .values(NewBounce {
            account_id,
            address: address.into(),
            reason_text: "550 5.1.1 user unknown".into(),
            source: "delivery".into(),
            email_id: None,
            bounced_at: now - HOUR,
            bounce_count: 1,
            expires_at: now + expires_in,
        })
        .execute(&mut *app.conn())
        .unwrap();
    app.count(&format!(
        "SELECT MAX(id) AS n FROM bounces WHERE address = '{address}'"
    ))
}

both_backends!(an_address_with_nothing_against_it, |db| {
    let (_app, mut client, _) = setup(db);
    let page = client.get("/lookup?address=Nobody@Example.com");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-blocked=\"false\""));
    assert!(page.body.contains("no message has been sent to it"));
    assert!(page.body.contains("id=\"no-entries\""));
    let bad = client.get("/lookup?address=not-an-address");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("data-field=\"address\""));
    assert!(bad.body.contains("value=\"not-an-address\""));
    let empty = client.get("/lookup");
    assert_eq!(empty.status, 200);
    assert!(
        empty.body.contains("Why didn&#39;t someone")
            || empty.body.contains("Why didn't someone")
            || empty.body.contains("Why didn&#x27;t")
    );
});

both_backends!(a_bounce_entry_blocks_until_it_expires, |db| {
    let (app, mut client, account_id) = setup(db);
    let active = bounce(&app, account_id, "alice@example.com", 2 * HOUR);
    let page = client.get("/lookup?address=alice@example.com");
    assert!(page.body.contains("data-blocked=\"true\""));
    assert!(page
        .body
        .contains("Sends to this address are blocked: it is on the Bounce list"));
    assert!(page.body.contains(&format!(
        "<tr data-id=\"{active}\" data-list=\"bounces\" data-active=\"true\" class=\"blocking\">"
    )));

    let expired = bounce(&app, account_id, "bob@example.com", -HOUR);
    let page = client.get("/lookup?address=bob@example.com");
    assert!(
        page.body.contains("data-blocked=\"false\""),
        "an expired entry stops suppressing by itself"
    );
    assert!(page.body.contains(&format!(
        "<tr data-id=\"{expired}\" data-list=\"bounces\" data-active=\"false\">"
    )));
    assert!(page.body.contains("Expired"));
});

both_backends!(a_domain_on_the_blacklist_blocks_its_addresses, |db| {
    let (app, mut client, account_id) = setup(db);
    diesel::insert_into(blacklist::table)
        .values(NewBlacklistEntry {
            account_id,
            address: "@spamtrap.test".into(),
            source: "ui".into(),
            api_user: None,
            created_at: now_ms() - HOUR,
            expires_at: None,
        })
        .execute(&mut *app.conn())
        .unwrap();
    let page = client.get("/lookup?address=Carol@SpamTrap.test");
    assert!(page.body.contains("data-blocked=\"true\""));
    assert!(page.body.contains("@spamtrap.test"));
    assert!(page.body.contains("no expiry"));
    let other = client.get("/lookup?address=carol@spamtrap.test.example");
    assert!(other.body.contains("data-blocked=\"false\""));
});

both_backends!(
    removing_an_entry_asks_first_and_needs_the_csrf_token,
    |db| {
        let (app, mut client, account_id) = setup(db);
        let now = now_ms();
        diesel::insert_into(spam_reports::table)
            .values(NewSpamReport {
                account_id,
                address: "dave@example.com".into(),
                email_id: None,
                api_user: None,
                reported_at: now - HOUR,
                expires_at: now + 100 * HOUR,
            })
            .execute(&mut *app.conn())
            .unwrap();
        diesel::insert_into(unsubscribes::table)
            .values(NewUnsubscribe {
                account_id,
                address: "dave@example.com".into(),
                reason: "not_wanted".into(),
                source: "recipient".into(),
                email_id: None,
                api_user: None,
                tag: None,
                unsubscribed_at: now - HOUR,
            })
            .execute(&mut *app.conn())
            .unwrap();
        let spam_id = app.count("SELECT MAX(id) AS n FROM spam_reports");
        let page = client.get("/lookup?address=dave@example.com");
        assert!(page.body.contains("data-list=\"spam_reports\""));
        assert!(page.body.contains("data-list=\"unsubscribes\""));

        let confirm = client.get(&format!(
            "/lookup/remove?list=spam_reports&id={spam_id}&address=dave@example.com"
        ));
        assert_eq!(confirm.status, 200);
        assert!(
            confirm.body.contains("id=\"spam-warning\""),
            "deleting a spam report warns"
        );
        assert!(confirm.body.contains("1 entry will be removed"));

        let without = client.post_form(
            "/lookup/remove",
            &[
                ("list", "spam_reports"),
                ("id", &spam_id.to_string()),
                ("address", "dave@example.com"),
            ],
        );
        assert_eq!(without.status, 403);
        assert_eq!(app.count("SELECT COUNT(*) AS n FROM spam_reports"), 1);

        let token = confirm.csrf_token();
        let done = client.post_form(
            "/lookup/remove",
            &[
                ("csrf_token", &token),
                ("list", "spam_reports"),
                ("id", &spam_id.to_string()),
                ("address", "dave@example.com"),
            ],
        );
        assert_eq!(done.status, 303);
        assert_eq!(app.count("SELECT COUNT(*) AS n FROM spam_reports"), 0);
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM unsubscribes"),
            1,
            "only the chosen entry"
        );
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'list.remove'"),
            1
        );
        let after = client.get(done.location());
        assert!(after.body.contains("id=\"removed-notice\""));
        assert!(
            after.body.contains("it is on the Unsubscribes"),
            "the unsubscribe still blocks"
        );
    }
);

both_backends!(another_account_cannot_see_or_remove_entries, |db| {
    let (app, mut owner, account_id) = setup(db);
    let id = bounce(&app, account_id, "erin@example.com", 5 * HOUR);
    let other = app.account("other");
    app.user(&other, "owner@other.test", Role::Owner, "pw2");
    let staff_home = app.account("support");
    app.user(&staff_home, "staff@mt.test", Role::Staff, "pw3");
    let mut intruder = app.client();
    intruder.login("owner@other.test", "pw2");
    let page = intruder.get("/lookup?address=erin@example.com");
    assert!(page.body.contains("data-blocked=\"false\""));
    assert!(!page.body.contains(&format!("data-id=\"{id}\"")));
    assert_eq!(
        intruder
            .get(&format!(
                "/lookup/remove?list=bounces&id={id}&address=erin@example.com"
            ))
            .status,
        404
    );
    let token = intruder.token();
    let res = intruder.post_form(
        "/lookup/remove",
        &[
            ("csrf_token", &token),
            ("list", "bounces"),
            ("id", &id.to_string()),
            ("address", "erin@example.com"),
        ],
    );
    assert_eq!(res.status, 404);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM bounces"), 1);

    // Staff can look, read-only.
    let mut staff = app.client();
    staff.login("staff@mt.test", "pw3");
    let view = staff.get(&format!(
        "/lookup?address=erin@example.com&account={account_id}"
    ));
    assert!(view.body.contains("data-blocked=\"true\""));
    assert!(!view.body.contains("class=\"remove\""));
    assert_eq!(
        staff
            .get(&format!(
                "/lookup/remove?list=bounces&id={id}&address=erin@example.com&account={account_id}"
            ))
            .status,
        403
    );
    let _ = owner.get("/");
});
