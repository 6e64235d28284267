//! `mailtrail ingest-postfix`: a Postfix mail log with sent, deferred-then-sent,
//! deferred-then-expired, bounced and multi-recipient mail, rotated mid-way, read by a follower
//! that is restarted in the middle; and the command line on a gzip-rotated file. Both backends.

mod common;

use std::io::Write;
use std::path::Path;

use common::TestApp;
use mailtrail::domain::MailType;
use mailtrail::feeds::postfix::{Follower, Reader};
use mailtrail::ingest::Sender;
use mailtrail::store::AccountScope;

/// Lines as Postfix 3 writes them through syslog (classic stamps) and journald (`-o short`).
const PART1: &str = "\
Mar  1 10:00:00 mx1 postfix/smtpd[100]: 1A2B3C4D5E: client=app.shop.example[198.51.100.2]
Mar  1 10:00:00 mx1 postfix/cleanup[101]: 1A2B3C4D5E: message-id=<20260301100000.1@shop.example>
Mar  1 10:00:00 mx1 postfix/qmgr[102]: 1A2B3C4D5E: from=<news@shop.example>, size=2048, nrcpt=1 (queue active)
Mar  1 10:00:02 mx1 postfix/smtp[103]: 1A2B3C4D5E: to=<alice@example.com>, relay=mx.example.com[192.0.2.7]:25, delay=2.1, delays=0.1/0.01/0.5/1.5, dsn=2.0.0, status=sent (250 2.0.0 OK 1709287202 q1-20020a)
Mar  1 10:00:02 mx1 postfix/qmgr[102]: 1A2B3C4D5E: removed
Mar  1 10:01:00 mx1 postfix/cleanup[101]: 2B3C4D5E6F: message-id=<20260301100100.2@shop.example>
Mar  1 10:01:00 mx1 postfix/qmgr[102]: 2B3C4D5E6F: from=<news@shop.example>, size=2100, nrcpt=1 (queue active)
Mar  1 10:01:03 mx1 postfix/smtp[104]: 2B3C4D5E6F: to=<carol@example.org>, relay=mx.example.org[192.0.2.8]:25, delay=3, delays=0.1/0/1.2/1.7, dsn=4.2.2, status=deferred (host mx.example.org[192.0.2.8] said: 452 4.2.2 <carol@example.org>: Mailbox full (in reply to end of DATA command))
Mar  1 10:02:00 mx1 postfix/cleanup[101]: 3C4D5E6F7A: message-id=<20260301100200.3@shop.example>
Mar  1 10:02:00 mx1 postfix/qmgr[102]: 3C4D5E6F7A: from=<news@shop.example>, size=1900, nrcpt=1 (queue active)
Mar  1 10:02:30 mx1 postfix/smtp[105]: 3C4D5E6F7A: to=<dave@example.net>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to mx.example.net[192.0.2.9]:25: Connection timed out)
this line is not syslog at all
Mar 01 10:03:00 mx1 postfix/cleanup[101]: 4D5E6F7A8B: message-id=<20260301100300.4@shop.example>
Mar 01 10:03:00 mx1 postfix/qmgr[102]: 4D5E6F7A8B: from=<news@shop.example>, size=1800, nrcpt=1 (queue active)
Mar 01 10:03:01 mx1 postfix/smtp[106]: 4D5E6F7A8B: to=<bob@example.com>, relay=mx.example.com[192.0.2.7]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.7] said: 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))
-- Boot 0f3c9a7e5b2d4c1e8f6a9b0c1d2e3f4a --
";

/// Written after the first follower stopped, before the rotation.
const TAIL_BEFORE_ROTATION: &str = "\
Mar  1 10:31:03 mx1 postfix/smtp[107]: 2B3C4D5E6F: to=<carol@example.org>, relay=mx.example.org[192.0.2.8]:25, delay=1803, delays=1800/0/1.2/1.8, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9F8E7D)
";

/// The new file after the rotation.
const PART2: &str = "\
Mar  6 10:02:31 mx1 postfix/qmgr[102]: 3C4D5E6F7A: from=<news@shop.example>, status=expired, returned to sender
Mar  6 10:05:00 mx1 postfix/cleanup[101]: 5E6F7A8B9C: message-id=<20260306100500.5@shop.example>
Mar  6 10:05:00 mx1 postfix/qmgr[102]: 5E6F7A8B9C: from=<digest@shop.example>, size=4096, nrcpt=2 (queue active)
Mar  6 10:05:02 mx1 postfix/smtp[108]: 5E6F7A8B9C: to=<erin@example.com>, relay=mx.example.com[192.0.2.7]:25, delay=2, delays=0.1/0/0.5/1.4, dsn=2.0.0, status=sent (250 2.0.0 OK)
Mar  6 10:05:02 mx1 postfix/smtp[109]: 5E6F7A8B9C: to=<frank@example.org>, relay=mx.example.org[192.0.2.8]:25, delay=2, delays=0.1/0/0.5/1.4, dsn=5.7.1, status=bounced (host mx.example.org[192.0.2.8] said: 554 5.7.1 Message rejected as spam by content filter (in reply to end of DATA command))
";

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn reader(account_id: i64) -> Reader {
    Reader::new(
        AccountScope::new(account_id),
        Sender {
            api_user: "postfix".into(),
            mail_type: MailType::Trigger,
        },
        chrono_tz::UTC,
    )
}

/// status and reason (-1 for none) of a message.
fn state(app: &TestApp, email_id: &str) -> (i64, i64) {
    let q = |c: &str| {
        app.count(&format!(
            "SELECT CAST(COALESCE({c}, -1) AS BIGINT) AS n FROM messages WHERE email_id = '{email_id}'"
        ))
    };
    (q("status"), q("reason"))
}

fn events(app: &TestApp, email_id: &str, kind: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) AS n FROM message_events WHERE email_id = '{email_id}' AND kind = '{kind}'"
    ))
}

both_backends!(a_followed_log_rotated_and_restarted_mid_way, |db| {
    let app = TestApp::start(db);
    let account = app.account("shop");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, PART1);

    // First run: reads what is there, then stops.
    let mut conn = app.conn();
    let mut r = reader(account.id);
    let mut follower = Follower::open(&mut conn, &mut r, &log).unwrap();
    assert!(follower.poll(&mut conn, &mut r).unwrap());
    assert_eq!(r.stats.lines, PART1.lines().count() as u64);
    assert_eq!(r.stats.unparseable, 1, "the one line that is not syslog");
    assert_eq!(r.stats.rejected, 0);
    drop(follower);

    assert_eq!(state(&app, "1A2B3C4D5E$alice@example.com"), (1, -1), "sent");
    assert_eq!(
        state(&app, "2B3C4D5E6F$carol@example.org"),
        (0, -1),
        "deferred: still requesting"
    );
    assert_eq!(events(&app, "2B3C4D5E6F$carol@example.org", "deferred"), 1);
    assert_eq!(state(&app, "3C4D5E6F7A$dave@example.net"), (0, -1));
    // Bounced during the SMTP dialogue: invalid, address not found, on the bounce list.
    assert_eq!(state(&app, "4D5E6F7A8B$bob@example.com"), (3, 6));
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM bounces WHERE address = 'bob@example.com'"),
        1
    );
    // The reply keeps its SMTP stage; the relay and the attempt are on the log.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM message_events WHERE email_id = '4D5E6F7A8B$bob@example.com' \
             AND kind = 'invalid' AND smtp_reply LIKE '550 5.1.1 %(in reply to RCPT TO command)' \
             AND mx = 'mx.example.com[192.0.2.7]:25' AND attempt = 1"
        ),
        1
    );
    // The deferral's reply and relay are on the log.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM message_events WHERE email_id = '2B3C4D5E6F$carol@example.org' \
             AND kind = 'deferred' AND smtp_reply LIKE '452 4.2.2%' AND mx LIKE 'mx.example.org%'"
        ),
        1
    );
    // The sender came from qmgr.
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM messages WHERE sender = 'news@shop.example' AND api_user = 'postfix'"),
        4
    );

    // While stopped: one more line, then logrotate moves the file and Postfix starts a new one.
    append(&log, TAIL_BEFORE_ROTATION);
    std::fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    append(&log, PART2);

    // Restart: finishes the rotated file where it stopped, then reads the new one.
    let mut r = reader(account.id);
    let mut follower = Follower::open(&mut conn, &mut r, &log).unwrap();
    follower.poll(&mut conn, &mut r).unwrap();
    assert_eq!(
        r.stats.lines,
        (TAIL_BEFORE_ROTATION.lines().count() + PART2.lines().count()) as u64,
        "no line skipped, none read twice"
    );
    assert_eq!(
        state(&app, "2B3C4D5E6F$carol@example.org"),
        (1, -1),
        "deferred, then sent"
    );
    assert_eq!(events(&app, "2B3C4D5E6F$carol@example.org", "deferred"), 1);
    // Deferred, then expired: invalid, with the last deferral's words deciding the reason.
    assert_eq!(
        state(&app, "3C4D5E6F7A$dave@example.net"),
        (3, 3),
        "server unreachable"
    );
    // One queue file, two recipients, two messages.
    assert_eq!(state(&app, "5E6F7A8B9C$erin@example.com"), (1, -1));
    assert_eq!(state(&app, "5E6F7A8B9C$frank@example.org"), (3, 7), "spam");

    // A rotation while following: the old file's last lines first, then the new file.
    append(
        &log,
        "Mar  6 11:00:00 mx1 postfix/cleanup[101]: 6F7A8B9C0D: message-id=<x.6@shop.example>\n",
    );
    std::fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    append(&log, "Mar  6 11:00:01 mx1 postfix/smtp[110]: 6F7A8B9C0D: to=<gina@example.com>, relay=mx.example.com[192.0.2.7]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 OK)\n");
    let before = r.stats.lines;
    follower.poll(&mut conn, &mut r).unwrap();
    assert_eq!(r.stats.lines - before, 2);
    assert_eq!(state(&app, "6F7A8B9C0D$gina@example.com"), (1, -1));

    // A line still being written is left for the next poll, then read whole.
    append(&log, "Mar  6 11:00:02 mx1 postfix/smtp[110]: 7A8B9C0D1E: to=<hal@example.com>, relay=mx.example.com[192.0.2.7]:25, ");
    let before = r.stats.lines;
    follower.poll(&mut conn, &mut r).unwrap();
    assert_eq!(r.stats.lines, before);
    append(
        &log,
        "delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 OK)\n",
    );
    follower.poll(&mut conn, &mut r).unwrap();
    assert_eq!(r.stats.lines, before + 1);
    assert_eq!(r.stats.unparseable, 0);
    assert_eq!(state(&app, "7A8B9C0D1E$hal@example.com"), (1, -1));

    // Nothing was applied twice across the restarts.
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM message_events WHERE kind = 'deliver'"),
        5
    );
});

both_backends!(the_command_reads_gzip_rotated_logs, |db| {
    let app = TestApp::start(db);
    app.account("shop");
    let url = app.db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("mail.log.2.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(PART1.as_bytes()).unwrap();
    enc.finish().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailtrail"))
        .args(["--database", &url, "--data-dir"])
        .arg(dir.path())
        .args(["ingest-postfix", "--account", "shop"])
        .arg(&gz)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 unparseable"), "{stdout}");
    assert_eq!(state(&app, "1A2B3C4D5E$alice@example.com"), (1, -1));
    assert_eq!(state(&app, "4D5E6F7A8B$bob@example.com"), (3, 6));
    // The same file again changes nothing.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_mailtrail"))
        .args(["--database", &url, "--data-dir"])
        .arg(dir.path())
        .args(["ingest-postfix", "--account", "shop"])
        .arg(&gz)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM message_events WHERE kind IN ('deliver', 'invalid', 'deferred')"),
        4
    );
});

/// Two messages to the same recipient; the DSN returns the older one, named by its Message-ID.
const TWO_TO_ALICE: &str = "\
Mar  1 10:00:00 mx1 postfix/cleanup[101]: 1A2B3C4D5E: message-id=<20260301100000.1@shop.example>
Mar  1 10:00:00 mx1 postfix/qmgr[102]: 1A2B3C4D5E: from=<news@shop.example>, size=2048, nrcpt=1 (queue active)
Mar  1 10:00:02 mx1 postfix/smtp[103]: 1A2B3C4D5E: to=<alice@example.com>, relay=mx.example.com[192.0.2.7]:25, delay=2.1, delays=0.1/0.01/0.5/1.5, dsn=2.0.0, status=sent (250 2.0.0 OK)
Mar  1 11:00:00 mx1 postfix/cleanup[101]: 7A8B9C0D1E: message-id=<20260301110000.7@shop.example>
Mar  1 11:00:00 mx1 postfix/qmgr[102]: 7A8B9C0D1E: from=<news@shop.example>, size=2048, nrcpt=1 (queue active)
Mar  1 11:00:02 mx1 postfix/smtp[103]: 7A8B9C0D1E: to=<alice@example.com>, relay=mx.example.com[192.0.2.7]:25, delay=2, delays=0.1/0.01/0.5/1.4, dsn=2.0.0, status=sent (250 2.0.0 OK)
";

/// An RFC 3464 report from the recipient's server, after it had accepted the first message.
const DSN: &str = "From: MAILER-DAEMON@mx.example.com\r
To: news@shop.example\r
Subject: Undelivered Mail Returned to Sender\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r
\r
--b1\r
Content-Type: text/plain\r
\r
Your message could not be delivered to its recipient: the mailbox is gone.\r
--b1\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.com\r
\r
Final-Recipient: rfc822; alice@example.com\r
Action: failed\r
Status: 5.1.1\r
Diagnostic-Code: smtp; 550 5.1.1 <alice@example.com>: mailbox unavailable\r
\r
--b1\r
Content-Type: text/rfc822-headers\r
\r
From: news@shop.example\r
To: alice@example.com\r
Subject: News\r
Message-ID: <20260301100000.1@shop.example>\r
\r
--b1--\r
";

both_backends!(
    a_bounce_message_finds_postfix_mail_by_its_message_id,
    |db| {
        let app = TestApp::start(db);
        let account = app.account("shop");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        append(&log, TWO_TO_ALICE);
        let mut r = reader(account.id);
        mailtrail::feeds::postfix::read_files(&mut app.conn(), &mut r, &[log]).unwrap();
        let (first, newer) = (
            "1A2B3C4D5E$alice@example.com",
            "7A8B9C0D1E$alice@example.com",
        );
        assert_eq!((state(&app, first), state(&app, newer)), ((1, -1), (1, -1)));
        let (_, key) = mailtrail::store::accounts::create_api_user(
            &mut app.conn(),
            &AccountScope::new(account.id),
            "notify",
            MailType::Trigger,
        )
        .unwrap();
        let auth = format!("Bearer {key}");
        let answer = app.client().post_raw(
            "/api/v1/bounce-messages",
            &[("Authorization", &auth), ("Content-Type", "message/rfc822")],
            DSN.as_bytes(),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let answer: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(answer["matched_by"], "message_id", "{answer}");
        assert_eq!(answer["email_id"], first, "{answer}");
        // Delivered, then bounced: a soft bounce, address not found; the newer message untouched.
        assert_eq!(state(&app, first), (2, 6));
        assert_eq!(state(&app, newer), (1, -1));
    }
);
