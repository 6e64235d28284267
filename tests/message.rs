//! `/status/{id}`: the message page, its log details, and the S+ send log and content, gated
//! per account and isolated between accounts.

mod common;

use common::TestApp;
use mailtrail::demo::generate;
use mailtrail::domain::Role;
use mailtrail::store::{accounts, AccountScope};

struct Setup {
    app: TestApp,
    client: common::Client,
    id: i64,
    account_id: i64,
}

fn setup(db: common::TestDb, splus: bool) -> Setup {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "pw");
    app.generate(&account, 300, 1);
    let scope = AccountScope::new(account.id);
    generate::sample_content(&mut app.conn(), &scope, 5).unwrap();
    if splus {
        accounts::set_splus(&mut app.conn(), account.id, true, true).unwrap();
    }
    let id = app.count(&format!(
        "SELECT MAX(message_id) AS n FROM message_contents WHERE account_id = {}",
        account.id
    ));
    let mut client = app.client();
    client.accept_language = Some("en".into());
    assert_eq!(client.login("owner@acme.test", "pw").status, 303);
    Setup {
        app,
        client,
        id,
        account_id: account.id,
    }
}

both_backends!(without_splus_the_content_routes_answer_403, |db| {
    let mut s = setup(db, false);
    let page = s.client.get(&format!("/status/{}", s.id));
    assert_eq!(page.status, 200);
    assert_eq!(
        page.body.matches("class=\"muted splus-off\"").count(),
        2,
        "a clear note for log and content"
    );
    assert!(page.body.contains("Not enabled for this account"));
    for route in ["content.html", "message.eml", "send-log.txt"] {
        assert_eq!(
            s.client.get(&format!("/status/{}/{route}", s.id)).status,
            403,
            "{route}"
        );
    }
});

both_backends!(with_splus_the_content_is_shown_safely, |db| {
    let mut s = setup(db, true);
    let page = s.client.get(&format!("/status/{}", s.id));
    assert!(page.body.contains("id=\"send-log\""));
    assert!(
        page.body.contains("<pre class=\"send-log\">"),
        "the send log lines"
    );
    let log_at = page.body.find("<pre class=\"send-log\">").unwrap();
    assert!(
        !page.body[log_at..].contains("to=<"),
        "escaped, never raw: {}",
        &page.body[log_at..log_at + 300]
    );
    assert!(page.body.contains("<iframe class=\"mail-html\" sandbox="));
    assert!(page.body.contains("List-Unsubscribe"));

    let html = s.client.get(&format!("/status/{}/content.html", s.id));
    assert_eq!(html.status, 200);
    assert!(!html.body.contains("<script"), "scripts removed");
    assert!(
        !html.body.contains("track.example.cn"),
        "no remote image loads"
    );
    assert!(html.body.contains("https://shop.example.cn/"), "links kept");
    let csp = html.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp} {}", html.body);
    assert_eq!(html.header("x-frame-options"), Some("SAMEORIGIN"));

    let eml = s.client.get(&format!("/status/{}/message.eml", s.id));
    assert_eq!(eml.status, 200);
    assert!(eml
        .header("content-disposition")
        .unwrap()
        .contains(&format!("message-{}.eml", s.id)));
    assert!(eml.body.contains("MIME-Version: 1.0"));
    let log = s.client.get(&format!("/status/{}/send-log.txt", s.id));
    assert_eq!(log.status, 200);
    assert!(log.body.contains(" request to=<"));
});

both_backends!(another_accounts_user_gets_404_for_content_and_page, |db| {
    let s = setup(db, true);
    let other = s.app.account("other");
    accounts::set_splus(&mut s.app.conn(), other.id, true, true).unwrap();
    s.app.user(&other, "owner@other.test", Role::Owner, "pw2");
    let mut intruder = s.app.client();
    intruder.login("owner@other.test", "pw2");
    for path in ["", "/content.html", "/message.eml", "/send-log.txt"] {
        assert_eq!(
            intruder.get(&format!("/status/{}{path}", s.id)).status,
            404,
            "{path}"
        );
    }
    assert_eq!(
        intruder
            .get(&format!("/status/{}?account={}", s.id, s.account_id))
            .status,
        403
    );
});

both_backends!(the_page_explains_the_reason_with_its_evidence, |db| {
    let mut s = setup(db, false);
    let failed = s.app.count(&format!(
        "SELECT MIN(id) AS n FROM messages WHERE account_id = {} AND status = 3 AND smtp_reply IS NOT NULL",
        s.account_id
    ));
    assert!(
        failed > 0,
        "300 generated messages include invalid ones with a reply"
    );
    let page = s.client.get(&format!("/status/{failed}"));
    assert!(page.body.contains("id=\"reason-explained\""));
    assert!(page.body.contains("class=\"smtp\""), "the MP's reply");
    assert!(page.body.contains("Classified by"));
    assert!(
        page.body.contains("href=\"/lookup?address="),
        "the address links to its diagnosis"
    );
});
