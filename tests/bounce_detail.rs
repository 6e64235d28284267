//! The classifier's finer `detail` of a bounce (mailbox full, expired, ...) travels from a raw
//! bounce message to the message page, on both backends.

mod common;

use common::TestApp;
use mailtrail::domain::{now_ms, MailType, Role};
use mailtrail::store::{accounts, AccountScope};

/// Exim's documented wording for a full mailbox refused at RCPT TO (own fixture).
const EXIM_MAILBOX_FULL: &str = "From: Mail Delivery System <Mailer-Daemon@mx.example.org>\r
To: news@acme.test\r
Subject: Mail delivery failed: returning message to sender\r
Auto-Submitted: auto-replied\r
\r
This message was created automatically by mail delivery software.\r
\r
A message that you sent could not be delivered to one or more of its\r
recipients. This is a permanent error. The following address(es) failed:\r
\r
  erin@example.net\r
    host mx.example.net [192.0.2.3]\r
    SMTP error from remote mail server after RCPT TO:<erin@example.net>:\r
    552 5.2.2 <erin@example.net>: mailbox is full\r
\r
------ This is a copy of the message, including all the headers. ------\r
\r
X-Mailtrail-Email-Id: full-1\r
Subject: Hello\r
";

both_backends!(a_bounce_detail_is_shown_on_the_message_page, |db| {
    let app = TestApp::start(db);
    let account = app.account("acme");
    app.user(&account, "owner@acme.test", Role::Owner, "pw");
    let (_, key) = accounts::create_api_user(
        &mut app.conn(),
        &AccountScope::new(account.id),
        "notify",
        MailType::Trigger,
    )
    .expect("api user");
    let auth = format!("Bearer {key}");
    let mut api = app.client();
    let at = chrono::DateTime::from_timestamp_millis(now_ms() - 60_000)
        .unwrap()
        .to_rfc3339();
    let request = serde_json::json!([{"event": "request", "email_id": "full-1",
        "recipient": "erin@example.net", "timestamp": at, "subject": "Hello"}]);
    let r = api.post_raw(
        "/api/v1/events",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        request.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let r = api.post_raw(
        "/api/v1/bounce-messages",
        &[("Authorization", &auth), ("Content-Type", "message/rfc822")],
        EXIM_MAILBOX_FULL.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(answer["classification"]["reason"], "other", "{answer}");
    assert_eq!(
        answer["classification"]["detail"], "mailbox_full",
        "{answer}"
    );
    assert_eq!(answer["reason_after"], "other", "{answer}");
    // A full mailbox is a soft signal: the address stays off the bounce list.
    assert!(answer["lists"].as_array().unwrap().is_empty(), "{answer}");

    let id = app.count(&format!(
        "SELECT CAST(id AS BIGINT) AS n FROM messages WHERE account_id = {} AND email_id = 'full-1'",
        account.id
    ));
    let mut owner = app.client();
    owner.accept_language = Some("en".into());
    assert_eq!(owner.login("owner@acme.test", "pw").status, 303);
    let page = owner.get(&format!("/status/{id}"));
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<span class=\"detail\" id=\"reason-detail\">mailbox full</span>"),
        "{}",
        page.body
    );
    // The log line keeps the provider's codes apart from the detail.
    assert!(
        page.body.contains("<code>552 5.2.2</code>"),
        "{}",
        page.body
    );
});
