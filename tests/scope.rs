//! Account scope: a customer sees only their own account; staff see any, audited.

mod common;

use common::TestApp;
use mailtrail::domain::Role;

struct TwoAccounts {
    app: TestApp,
    /// A message id of account B.
    b_message: i64,
    a_id: i64,
    b_id: i64,
}

fn two_accounts(db: common::TestDb) -> TwoAccounts {
    let app = TestApp::start(db);
    let a = app.account("alpha");
    let b = app.account("beta");
    app.user(&a, "member@alpha.test", Role::Member, "pw-alpha");
    app.user(&b, "owner@beta.test", Role::Owner, "pw-beta");
    app.user(&a, "staff@mailtrail.test", Role::Staff, "pw-staff");
    app.generate(&a, 30, 2);
    app.generate(&b, 30, 2);
    let b_message = app.count(&format!(
        "SELECT MIN(id) AS n FROM messages WHERE account_id = {}",
        b.id
    ));
    TwoAccounts {
        app,
        b_message,
        a_id: a.id,
        b_id: b.id,
    }
}

both_backends!(a_member_cannot_read_another_account_by_changing_ids, |db| {
    let t = two_accounts(db);
    let mut owner_b = t.app.client();
    owner_b.login("owner@beta.test", "pw-beta");
    let own = owner_b.get(&format!("/status/{}", t.b_message));
    assert_eq!(own.status, 200, "the owner reads their message");
    assert!(own.body.contains(&format!("data-id=\"{}\"", t.b_message)));

    let mut member_a = t.app.client();
    member_a.login("member@alpha.test", "pw-alpha");
    let other = member_a.get(&format!("/status/{}", t.b_message));
    assert_eq!(
        other.status, 404,
        "another account's message does not exist for this user"
    );
    assert!(!other.body.contains("beta"));
    let switch = member_a.get(&format!("/?account={}", t.b_id));
    assert_eq!(switch.status, 403, "a member cannot choose another account");
    let own_account = member_a.get(&format!("/?account={}", t.a_id));
    assert_eq!(own_account.status, 200);
    assert_eq!(member_a.get("/status/not-a-number").status, 404);
    assert_eq!(t.app.count("SELECT COUNT(*) AS n FROM audit_log"), 0);
});

both_backends!(staff_can_read_any_account_and_it_is_audited, |db| {
    let t = two_accounts(db);
    let mut staff = t.app.client();
    staff.login("staff@mailtrail.test", "pw-staff");
    let page = staff.get(&format!("/status/{}", t.b_message));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("staff-banner"),
        "a banner says whose data this is"
    );
    assert!(page.body.contains("beta"));
    assert_eq!(
        t.app.count(&format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE account_id = {} AND action = 'staff.view' AND actor_email = 'staff@mailtrail.test'",
            t.b_id
        )),
        1
    );
    let overview = staff.get(&format!("/?account={}", t.b_id));
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("staff-banner"));
    assert_eq!(t.app.count("SELECT COUNT(*) AS n FROM audit_log"), 2);
    assert_eq!(staff.get("/?account=999999").status, 404);
});
