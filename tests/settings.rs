//! `/settings`, `/staff` and the audit log: who may change what, secrets shown once, and
//! every staff look at customer data audited.

mod common;

use common::TestApp;
use mailtrail::domain::Role;
use mailtrail::store::accounts;

struct Team {
    app: TestApp,
    owner: common::Client,
    account_id: i64,
}

fn team(db: common::TestDb) -> Team {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "owner pass 1");
    app.user(&account, "member@acme.test", Role::Member, "member pass 1");
    let mut owner = app.client();
    owner.accept_language = Some("en".into());
    assert_eq!(owner.login("owner@acme.test", "owner pass 1").status, 303);
    Team {
        app,
        owner,
        account_id: account.id,
    }
}

/// The value shown in the one-time secret box of a page.
fn secret(body: &str) -> String {
    let start = body
        .find("<code id=\"secret-value\">")
        .expect("a secret is shown")
        + "<code id=\"secret-value\">".len();
    body[start..start + body[start..].find('<').unwrap()].to_string()
}

/// A settings POST that worked answers 303 to `/settings` (a reload does not repeat it); the
/// page it leads to says what happened, this once.
fn followed(client: &mut common::Client, res: common::Resp) -> common::Resp {
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), "/settings");
    let page = client.get("/settings");
    assert_eq!(page.status, 200);
    page
}

both_backends!(members_cannot_change_settings_or_reach_staff_pages, |db| {
    let t = team(db);
    let mut member = t.app.client();
    assert_eq!(
        member.login("member@acme.test", "member pass 1").status,
        303
    );
    let home = member.get("/");
    assert!(
        !home.body.contains("href=\"/settings\""),
        "no link to what they cannot use"
    );
    assert!(!home.body.contains("href=\"/staff\""));
    assert_eq!(member.get("/settings").status, 403);
    assert_eq!(member.get("/staff").status, 403);
    assert_eq!(member.get("/staff/audit").status, 403);
    let token = member.token();
    let res = member.post_form(
        "/settings/account",
        &[
            ("csrf_token", &token),
            ("time_zone", "UTC"),
            ("mask_addresses", "1"),
        ],
    );
    assert_eq!(res.status, 403);
    let res = member.post_form(
        "/settings/api-users",
        &[
            ("csrf_token", &token),
            ("name", "sneaky"),
            ("mail_type", "trigger"),
        ],
    );
    assert_eq!(res.status, 403);
    let account = accounts::get_account(&mut t.app.conn(), t.account_id)
        .unwrap()
        .unwrap();
    assert_eq!(account.time_zone, "Asia/Shanghai");
    assert!(!account.mask_addresses);
    assert_eq!(t.app.count("SELECT COUNT(*) AS n FROM api_users"), 0);
});

both_backends!(owners_change_the_account_settings, |db| {
    let mut t = team(db);
    let page = t.owner.get("/settings");
    assert_eq!(page.status, 200);
    let token = page.csrf_token();
    let res = t.owner.post_form(
        "/settings/account",
        &[
            ("csrf_token", &token),
            ("time_zone", "Europe/Berlin"),
            ("mask_addresses", "1"),
        ],
    );
    assert_eq!(res.status, 303);
    let account = accounts::get_account(&mut t.app.conn(), t.account_id)
        .unwrap()
        .unwrap();
    assert_eq!(account.time_zone, "Europe/Berlin");
    assert!(account.mask_addresses);
    assert!(!account.export_allowed, "an unticked box turns exports off");
    assert!(t.owner.get(res.location()).body.contains("Settings saved."));
    let bad = t.owner.post_form(
        "/settings/account",
        &[("csrf_token", &token), ("time_zone", "Mars/Base")],
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Unknown time zone."));
    // Exports off: the CSV download is refused.
    assert_eq!(t.owner.get("/status.csv").status, 403);
    // S+ switches are for staff only.
    let res = t.owner.post_form(
        "/settings/splus",
        &[("csrf_token", &token), ("splus_content", "1")],
    );
    assert_eq!(res.status, 403);
    assert_eq!(
        t.app
            .count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'settings.account'"),
        1
    );
});

both_backends!(a_password_reset_ends_the_users_sessions, |db| {
    let mut t = team(db);
    let mut member = t.app.client();
    assert_eq!(
        member.login("member@acme.test", "member pass 1").status,
        303
    );
    assert_eq!(member.get("/").status, 200);
    let member_id = t
        .app
        .count("SELECT id AS n FROM users WHERE email = 'member@acme.test'");
    let token = t.owner.get("/settings").csrf_token();
    let short = t.owner.post_form(
        "/settings/users/password",
        &[
            ("csrf_token", &token),
            ("user_id", &member_id.to_string()),
            ("password", "short"),
        ],
    );
    assert_eq!(short.status, 400);
    let res = t.owner.post_form(
        "/settings/users/password",
        &[
            ("csrf_token", &token),
            ("user_id", &member_id.to_string()),
            ("password", "a brand new pass"),
        ],
    );
    let res = followed(&mut t.owner, res);
    assert!(res.body.contains("Password set"));
    assert!(
        !t.owner.get("/settings").body.contains("Password set"),
        "the message is said once"
    );
    assert_eq!(member.get("/").status, 303, "the old session has ended");
    assert_eq!(
        member.login("member@acme.test", "member pass 1").status,
        401
    );
    assert_eq!(
        member.login("member@acme.test", "a brand new pass").status,
        303
    );

    // Adding and removing users.
    let res = t.owner.post_form(
        "/settings/users",
        &[
            ("csrf_token", &token),
            ("email", "new@acme.test"),
            ("password", "another pass 1"),
            ("role", "member"),
        ],
    );
    let res = followed(&mut t.owner, res);
    assert!(res.body.contains("User added."));
    let dup = t.owner.post_form(
        "/settings/users",
        &[
            ("csrf_token", &token),
            ("email", "NEW@acme.test"),
            ("password", "another pass 1"),
            ("role", "member"),
        ],
    );
    assert_eq!(dup.status, 400);
    let res = t.owner.post_form(
        "/settings/users/remove",
        &[("csrf_token", &token), ("user_id", &member_id.to_string())],
    );
    let res = followed(&mut t.owner, res);
    assert!(res.body.contains("User removed"));
    assert_eq!(member.get("/").status, 303, "a removed user is signed out");
    let me = t
        .app
        .count("SELECT id AS n FROM users WHERE email = 'owner@acme.test'");
    let res = t.owner.post_form(
        "/settings/users/remove",
        &[("csrf_token", &token), ("user_id", &me.to_string())],
    );
    assert_eq!(res.status, 400);
});

both_backends!(
    api_keys_are_shown_once_and_rotation_or_revocation_is_immediate,
    |db| {
        let mut t = team(db);
        let token = t.owner.get("/settings").csrf_token();
        let created = t.owner.post_form(
            "/settings/api-users",
            &[
                ("csrf_token", &token),
                ("name", "notify_trigger"),
                ("mail_type", "trigger"),
            ],
        );
        let created = followed(&mut t.owner, created);
        assert_eq!(
            created.header("cache-control"),
            Some("no-store"),
            "a page with a key is not cached"
        );
        let key = secret(&created.body);
        assert!(key.starts_with("mt_"));
        let api_user_id = t
            .app
            .count("SELECT id AS n FROM api_users WHERE name = 'notify_trigger'");
        assert!(accounts::api_user_by_key(&mut t.app.conn(), &key)
            .unwrap()
            .is_some());
        for path in ["/settings", "/", "/staff/audit"] {
            assert!(
                !t.owner.get(path).body.contains(&key),
                "{path} never shows the key again"
            );
        }
        assert_eq!(
            t.app.count(&format!(
                "SELECT COUNT(*) AS n FROM audit_log WHERE target LIKE '%{key}%'"
            )),
            0
        );

        let rotated = t.owner.post_form(
            "/settings/api-users/rotate",
            &[
                ("csrf_token", &token),
                ("api_user_id", &api_user_id.to_string()),
            ],
        );
        let rotated = followed(&mut t.owner, rotated);
        assert!(rotated.body.contains("API_USER notify_trigger"));
        let new_key = secret(&rotated.body);
        assert_ne!(new_key, key);
        assert!(
            accounts::api_user_by_key(&mut t.app.conn(), &key)
                .unwrap()
                .is_none(),
            "the old key stops at once"
        );
        assert!(accounts::api_user_by_key(&mut t.app.conn(), &new_key)
            .unwrap()
            .is_some());
        let revoked = t.owner.post_form(
            "/settings/api-users/revoke",
            &[
                ("csrf_token", &token),
                ("api_user_id", &api_user_id.to_string()),
            ],
        );
        let revoked = followed(&mut t.owner, revoked);
        assert!(revoked.body.contains("API key revoked"));
        assert!(revoked.body.contains("data-revoked=\"true\""));
        assert!(accounts::api_user_by_key(&mut t.app.conn(), &new_key)
            .unwrap()
            .is_none());

        let hook = t
            .owner
            .post_form("/settings/webhook-key", &[("csrf_token", &token)]);
        let hook = followed(&mut t.owner, hook);
        let app_key = secret(&hook.body);
        assert_eq!(app_key.len(), 32);
        assert!(!t.owner.get("/settings").body.contains(&app_key));
        let stored = accounts::get_account(&mut t.app.conn(), t.account_id)
            .unwrap()
            .unwrap()
            .webhook_app_key;
        assert_eq!(stored.as_deref(), Some(app_key.as_str()));
    }
);

both_backends!(
    staff_search_across_accounts_and_every_view_is_audited,
    |db| {
        let t = team(db);
        let other = t.app.account("globex");
        t.app.generate(&other, 30, 1);
        let support = t.app.account("support");
        t.app
            .user(&support, "staff@mt.test", Role::Staff, "staff pass 1");
        let address = {
            use diesel::prelude::*;
            use mailtrail::db::schema::messages;
            messages::table
                .filter(messages::account_id.eq(other.id))
                .select(messages::recipient)
                .first::<String>(&mut *t.app.conn())
                .unwrap()
        };
        let mut staff = t.app.client();
        staff.accept_language = Some("en".into());
        assert_eq!(staff.login("staff@mt.test", "staff pass 1").status, 303);
        let found = staff.get(&format!("/staff?address={address}"));
        assert_eq!(found.status, 200);
        assert!(found
            .body
            .contains(&format!("data-account=\"{}\"", other.id)));
        assert_eq!(
            t.app
                .count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'staff.search_address'"),
            1
        );
        let id = t.app.count(&format!(
            "SELECT MIN(id) AS n FROM messages WHERE account_id = {} AND recipient = '{address}'",
            other.id
        ));
        let message = staff.get(&format!("/status/{id}?account={}", other.id));
        assert_eq!(message.status, 200);
        assert!(message.body.contains("staff-banner"));
        let audit = staff.get("/staff/audit?action=staff.view");
        assert!(audit.body.contains("data-action=\"staff.view\""));
        assert!(
            !audit.body.contains("data-action=\"staff.search_address\""),
            "the filter applies"
        );
        let bad = staff.get("/staff/audit?from=yesterday");
        assert_eq!(bad.status, 400);
        // Staff switch S+ features on the account they look at; owners cannot.
        let token = staff
            .get(&format!("/settings?account={}", other.id))
            .csrf_token();
        let res = staff.post_form(
            &format!("/settings/splus?account={}", other.id),
            &[("csrf_token", &token), ("splus_log", "1")],
        );
        assert_eq!(res.status, 303);
        let switched = accounts::get_account(&mut t.app.conn(), other.id)
            .unwrap()
            .unwrap();
        assert!(switched.splus_log && !switched.splus_content);
        // Staff views are read-only: settings changes are refused.
        let res = staff.post_form(
            &format!("/settings/account?account={}", other.id),
            &[("csrf_token", &token), ("time_zone", "UTC")],
        );
        assert_eq!(res.status, 403);
        // The refusal is a page of the console: navigation, sign-out, a way back.
        assert!(res.body.contains("read-only"), "{}", res.body);
        assert!(res.body.contains("action=\"/logout\""));
        assert!(res.body.contains("class=\"main-nav\""));
        assert!(res.body.contains("id=\"error-home\""));
        // … in the viewer's language.
        assert_eq!(staff.get("/lang/zh-CN?next=/staff").status, 303);
        let res = staff.post_form(
            &format!("/settings/account?account={}", other.id),
            &[("csrf_token", &token), ("time_zone", "UTC")],
        );
        assert_eq!(res.status, 403);
        assert!(res.body.contains("只读"), "{}", res.body);
        assert!(!res.body.contains("read-only"));
    }
);

both_backends!(
    the_unsubscribe_page_names_the_sender_set_in_settings,
    |db| {
        use mailtrail::domain::token::{Link, LinkKey};
        let mut t = team(db);
        let account = accounts::get_account(&mut t.app.conn(), t.account_id)
            .unwrap()
            .unwrap();
        t.app.generate(&account, 5, 1);
        let email_id = t.app.count("SELECT MIN(id) AS n FROM messages");
        let email_id = {
            use diesel::prelude::*;
            use mailtrail::db::schema::messages;
            messages::table
                .find(email_id)
                .select(messages::email_id)
                .first::<String>(&mut *t.app.conn())
                .unwrap()
        };
        let secret = t.app.settings.load_or_create_secret().unwrap();
        let token = LinkKey::derive(&secret)
            .sign(&Link::unsubscribe(t.account_id, &email_id))
            .unwrap();
        let mut recipient = t.app.client();
        recipient.accept_language = Some("en".into());
        // Unset: the account's own name; never the console's branding or links.
        let page = recipient.get(&format!("/u/{token}"));
        assert_eq!(page.status, 200);
        assert!(page
            .body
            .contains("<strong id=\"unsubscribe-sender\">acme</strong>"));
        for console in [
            "mailtrail",
            "href=\"/\"",
            "/login",
            "/status",
            "class=\"brand\"",
        ] {
            assert!(!page.body.contains(console), "{console} on the public page");
        }

        let csrf = t.owner.get("/settings").csrf_token();
        let long = "x".repeat(101);
        let bad = t.owner.post_form(
            "/settings/account",
            &[
                ("csrf_token", &csrf),
                ("time_zone", "Asia/Shanghai"),
                ("display_name", &long),
            ],
        );
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("at most 100 characters"));
        let res = t.owner.post_form(
            "/settings/account",
            &[
                ("csrf_token", &csrf),
                ("time_zone", "Asia/Shanghai"),
                ("display_name", "  Acme <Shop> & Co  "),
            ],
        );
        assert_eq!(res.status, 303);
        let settings = t.owner.get("/settings");
        assert!(
            settings
                .body
                .contains("value=\"Acme &#60;Shop&#62; &#38; Co\"")
                || settings
                    .body
                    .contains("value=\"Acme &lt;Shop&gt; &amp; Co\""),
            "{}",
            settings.body
        );
        let page = recipient.get(&format!("/u/{token}"));
        assert!(
            page.body.contains("Acme &#60;Shop&#62; &#38; Co")
                || page.body.contains("Acme &lt;Shop&gt; &amp; Co"),
            "the name, escaped: {}",
            page.body
        );
        // Emptied: back to the account's name.
        let res = t.owner.post_form(
            "/settings/account",
            &[
                ("csrf_token", &csrf),
                ("time_zone", "Asia/Shanghai"),
                ("display_name", ""),
            ],
        );
        assert_eq!(res.status, 303);
        let page = recipient.get(&format!("/u/{token}"));
        assert!(page
            .body
            .contains("<strong id=\"unsubscribe-sender\">acme</strong>"));
    }
);
