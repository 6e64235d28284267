//! The S+ features' data for demo messages: a sent message and its send log.

use std::collections::HashSet;

use diesel::prelude::*;

use crate::db::DbConn;
use crate::store::{messages, AccountScope, StoreResult};

/// Keeps a sent message and a send log (the S+ features) for the newest `limit` messages
/// of the account that have none, as an MTA posting them would; answers how many.
pub fn sample_content(conn: &mut DbConn, scope: &AccountScope, limit: i64) -> StoreResult<usize> {
    use crate::db::schema::{message_contents, send_logs};
    let latest = messages::latest(conn, scope, limit)?;
    let mut contents = Vec::new();
    let mut logs = Vec::new();
    for m in &latest {
        let events = messages::events(conn, scope, m.id)?;
        let raw = format!(
            "From: {sender}\r\nTo: {rcpt}\r\nSubject: =?UTF-8?B?{subject}?=\r\nMessage-ID: <{id}@mailtrail.example>\r\n\
             Date: {date}\r\nList-Unsubscribe: <https://mail.example.cn/u/demo>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/alternative; boundary=\"mt-{id}\"\r\n\r\n\
             --mt-{id}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n您好，\r\n\r\n{plain}\r\n\r\n退订: https://mail.example.cn/u/demo\r\n\
             --mt-{id}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
             <html><body><h2>{plain}</h2><p>您好，感谢您的关注。</p>\
             <p><img src=\"https://track.example.cn/o/{id}.gif\" alt=\"\"> <a href=\"https://shop.example.cn/?utm_source=email\">查看详情</a></p>\
             <script>document.title='x'</script></body></html>\r\n--mt-{id}--\r\n",
            sender = m.sender,
            rcpt = m.recipient,
            subject = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, m.subject.as_bytes()),
            id = m.email_id.split('$').next().unwrap_or("x"),
            date = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(m.requested_at)
                .map(|t| t.to_rfc2822())
                .unwrap_or_default(),
            plain = m.subject,
        );
        contents.push((
            message_contents::message_id.eq(m.id),
            message_contents::account_id.eq(m.account_id),
            message_contents::size.eq(raw.len() as i64),
            message_contents::raw.eq(raw.into_bytes()),
        ));
        let lines: Vec<String> = events
            .iter()
            .map(|e| {
                let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(e.occurred_at)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                    .unwrap_or_default();
                format!(
                    "{at} {kind} to=<{rcpt}> relay={mx} {reply}",
                    kind = e.kind,
                    rcpt = m.recipient,
                    mx = e.mx.as_deref().unwrap_or("-"),
                    reply = e.smtp_reply.as_deref().unwrap_or("")
                )
            })
            .collect();
        logs.push((
            send_logs::message_id.eq(m.id),
            send_logs::account_id.eq(m.account_id),
            send_logs::lines.eq(lines.join("\n")),
        ));
    }
    let existing: HashSet<i64> = message_contents::table
        .filter(message_contents::account_id.eq(scope.account_id()))
        .select(message_contents::message_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let mut written = 0;
    for ((content, log), m) in contents.into_iter().zip(logs).zip(&latest) {
        if existing.contains(&m.id) {
            continue;
        }
        diesel::insert_into(message_contents::table)
            .values(content)
            .execute(conn)?;
        diesel::insert_into(send_logs::table)
            .values(log)
            .execute(conn)?;
        written += 1;
    }
    Ok(written)
}
