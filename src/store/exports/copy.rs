//! A status export's rows through PostgreSQL's `COPY (SELECT …) TO STDOUT`: one statement
//! streams every row of the filter, as the server's own text, instead of a keyset query per
//! step whose values are decoded field by field. The rows are then presented and written by
//! the same code as every other export, so the file is the same byte for byte.
//!
//! `COPY` takes no bind parameters, so the filter's text values travel as settings of the
//! COPY's own connection (`set_config` with binds) and the statement reads them with
//! `current_setting`; only numbers (the account, the period, codes) are written into it.
//!
//! libpq ends a `COPY` the same way whether it finished or the server stopped it half-way
//! (a cancel, a timeout, an administrator ending the session), and diesel's reader gives no
//! access to the end's status. So the statement ends with a row of NULLs of its own, and a
//! stream without that row as its last is an error, never a shorter file.

use std::cell::RefCell;
use std::io::BufRead;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::super::status::{contains_pattern, StatusFilter};
use super::super::AccountScope;
use crate::db::schema::messages;
use crate::store::models::StatusRow;

/// The columns of a [`StatusRow`], in its field order.
const COLUMNS: &str = "m.id, m.email_id, m.recipient, m.api_user, m.mail_type, m.tags, m.status, \
     m.reason, m.smtp_reply, m.requested_at, m.updated_at, m.provider";
const WIDTH: usize = 12;

/// The COPY connection's session: no statement timeout (an export is one long statement),
/// backslashes in literals taken literally, and no parallel plan, so that the end row comes
/// last as written.
const SESSION: &str = "SET statement_timeout = 0; SET standard_conforming_strings = on; \
     SET max_parallel_workers_per_gather = 0; SET jit = off";

thread_local! {
    /// The statement [`StatusCopy`] writes: diesel builds a `COPY` from a type, not a value.
    static STATEMENT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// `COPY (` the statement in [`STATEMENT`] `) TO STDOUT`.
struct StatusCopy;

impl diesel::pg::CopyTarget for StatusCopy {
    type Table = messages::table;
    type SqlType = Text;

    fn walk_target(
        mut pass: diesel::query_builder::AstPass<'_, '_, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        STATEMENT.with(|s| pass.push_sql(&s.borrow()));
        Ok(())
    }
}

/// Streams the filter's rows newest first, as `status::page` orders them, into `each`, on a
/// connection of its own to `url`; `each` answers false to stop. Answers true when every row
/// was read, false when `each` stopped it.
pub fn status_rows(
    url: &str,
    scope: &AccountScope,
    filter: &StatusFilter,
    each: &mut dyn FnMut(StatusRow) -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    let mut conn = PgConnection::establish(url)?;
    conn.batch_execute(SESSION)?;
    let (statement, values) = statement(scope, filter);
    for (name, value) in values {
        diesel::sql_query("SELECT set_config($1, $2, false)")
            .bind::<Text, _>(name)
            .bind::<Text, _>(value)
            .execute(&mut conn)?;
    }
    STATEMENT.with(|s| *s.borrow_mut() = statement);
    let mut out = diesel::copy_to(StatusCopy).load_raw(&mut conn)?;
    let mut line = Vec::with_capacity(512);
    let mut ended = false;
    loop {
        line.clear();
        if out.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        anyhow::ensure!(!ended, "the database sent rows after the export's end");
        match parse_row(&line)? {
            Some(row) => {
                if !each(row)? {
                    return Ok(false);
                }
            }
            None => ended = true,
        }
    }
    anyhow::ensure!(
        ended,
        "the database stopped sending the export's rows before their end"
    );
    Ok(true)
}

/// The `COPY` statement's query and the settings it reads, as (name, value).
fn statement(scope: &AccountScope, f: &StatusFilter) -> (String, Vec<(&'static str, String)>) {
    // Every field, so that a new one cannot be forgotten here.
    let StatusFilter {
        from_ms,
        to_ms,
        recipient,
        email_id,
        mail_type,
        tag,
        api_user,
        status,
        reason,
        subject,
        sender,
        provider,
    } = f;
    let account = scope.account_id();
    let mut values = Vec::new();
    let mut wheres = vec![
        format!("m.account_id = {account}"),
        format!("m.requested_at >= {from_ms}"),
        format!("m.requested_at < {to_ms}"),
    ];
    let mut text = |column: &str, name: &'static str, value: &Option<String>, like: bool| {
        if let Some(v) = value {
            let setting = format!("current_setting('{name}')");
            wheres.push(if like {
                values.push((name, contains_pattern(v)));
                format!("lower({column}) LIKE {setting} ESCAPE '\\'")
            } else {
                values.push((name, v.clone()));
                format!("{column} = {setting}")
            });
        }
    };
    text(
        "m.recipient",
        "mailtrail.export_recipient",
        recipient,
        false,
    );
    text("m.email_id", "mailtrail.export_email_id", email_id, false);
    text("m.api_user", "mailtrail.export_api_user", api_user, false);
    text("m.provider", "mailtrail.export_provider", provider, false);
    text("m.subject", "mailtrail.export_subject", subject, true);
    text("m.sender", "mailtrail.export_sender", sender, true);
    let codes = [
        ("m.mail_type", mail_type.map(|m| m.as_i16())),
        ("m.status", status.map(|s| s.as_i16())),
        ("m.reason", reason.map(|r| r.as_i16())),
    ];
    for (column, code) in codes {
        if let Some(code) = code {
            wheres.push(format!("{column} = {code}"));
        }
    }
    let (join, order) = match tag {
        None => (String::new(), "m.requested_at DESC, m.id DESC"),
        Some(tag) => {
            values.push(("mailtrail.export_tag", tag.clone()));
            (
                format!(
                    " JOIN message_tags t ON t.message_id = m.id AND t.requested_at = m.requested_at \
                     AND t.account_id = {account} AND t.tag = current_setting('mailtrail.export_tag') \
                     AND t.requested_at >= {from_ms} AND t.requested_at < {to_ms}"
                ),
                "t.requested_at DESC, t.message_id DESC",
            )
        }
    };
    let nulls = ["NULL"; WIDTH].join(", ");
    (
        format!(
            "((SELECT {COLUMNS} FROM messages m{join} WHERE {} ORDER BY {order}) \
             UNION ALL SELECT {nulls})",
            wheres.join(" AND ")
        ),
        values,
    )
}

/// One row of COPY's text format (tab-separated, `\N` for NULL, backslash escapes); `None`
/// for the end row.
fn parse_row(line: &[u8]) -> anyhow::Result<Option<StatusRow>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut fields: [Option<String>; WIDTH] = Default::default();
    let mut n = 0;
    for raw in line.split(|b| *b == b'\t') {
        anyhow::ensure!(n < WIDTH, "an export row with more than {WIDTH} fields");
        fields[n] = field(raw)?;
        n += 1;
    }
    anyhow::ensure!(n == WIDTH, "an export row with {n} fields, not {WIDTH}");
    let [id, email_id, recipient, api_user, mail_type, tags, status, reason, smtp_reply, requested_at, updated_at, provider] =
        fields;
    let Some(email_id) = email_id else {
        return Ok(None);
    };
    let text = |v: Option<String>| v.ok_or_else(|| anyhow::anyhow!("a NULL in an export row"));
    Ok(Some(StatusRow {
        id: text(id)?.parse()?,
        email_id,
        recipient: text(recipient)?,
        api_user: text(api_user)?,
        mail_type: text(mail_type)?.parse()?,
        tags: text(tags)?,
        status: text(status)?.parse()?,
        reason: reason.map(|r| r.parse()).transpose()?,
        smtp_reply,
        requested_at: text(requested_at)?.parse()?,
        updated_at: text(updated_at)?.parse()?,
        provider: text(provider)?,
    }))
}

/// One field of COPY's text format.
fn field(raw: &[u8]) -> anyhow::Result<Option<String>> {
    if raw == b"\\N" {
        return Ok(None);
    }
    if !raw.contains(&b'\\') {
        return Ok(Some(std::str::from_utf8(raw)?.to_owned()));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        // COPY TO writes only these escapes (never octal or hex ones).
        out.push(match bytes.next() {
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'v') => 0x0b,
            Some(&other) => other,
            None => anyhow::bail!("an export field ends in a backslash"),
        });
    }
    Ok(Some(String::from_utf8(out)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_fields_are_read_back() {
        assert_eq!(field(b"\\N").unwrap(), None);
        assert_eq!(field(b"plain").unwrap().as_deref(), Some("plain"));
        assert_eq!(
            field(b"a\\tb\\nc\\\\d\\re").unwrap().as_deref(),
            Some("a\tb\nc\\d\re")
        );
        assert_eq!(
            field("邮件\\n".as_bytes()).unwrap().as_deref(),
            Some("邮件\n")
        );
        assert!(field(b"bad\\").is_err());
    }

    #[test]
    fn rows_and_the_end_row_are_told_apart() {
        let row = parse_row(b"7\te1\ta@b.cn\tu\t0\t\t4\t\\N\t\\N\t10\t11\tqq\n")
            .unwrap()
            .unwrap();
        assert_eq!((row.id, row.email_id.as_str(), row.reason), (7, "e1", None));
        assert_eq!((row.tags.as_str(), row.smtp_reply), ("", None));
        let end = ["\\N"; WIDTH].join("\t") + "\n";
        assert!(parse_row(end.as_bytes()).unwrap().is_none());
        assert!(parse_row(b"1\t2\n").is_err());
    }
}
