//! `/status` first-page speed against the bare SQL query for the same rows, measured in the
//! same run (DESIGN §10).
//!
//!     cargo bench --bench status -- [--database URL] [--messages N] [--runs R] [--only TEXT]
//!
//! Fills an account `bench` with N generated messages over 30 days (default 10,000,000; an
//! existing database with enough messages is reused), starts the real server on 127.0.0.1:0,
//! signs in, and for each filter reports the median server time of the first page
//! (`Server-Timing`, so loopback is not counted) next to the median time of the bare SQL query
//! that selects the same page of rows. The providers pages are set against the provider
//! rollup reads they make (no bare query stands for a page of counts), timed in the same run.
//! `--only TEXT` runs the cases whose name holds TEXT (e.g. `--only providers`).

use std::net::TcpListener;
use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use mailtrail::db::DbConn;
use mailtrail::demo::generate;
use mailtrail::domain::{day_start, hash_password, Role};
use mailtrail::store::{accounts, AccountScope};
use mailtrail::{AppState, Settings};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Pick {
    #[diesel(sql_type = diesel::sql_types::Text)]
    recipient: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    email_id: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let url = arg("--database").unwrap_or_else(|| "sqlite:///tmp/mailtrail-bench.db".into());
    let want: i64 = arg("--messages")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000_000);
    let runs: usize = arg("--runs").map(|s| s.parse()).transpose()?.unwrap_or(15);
    let mut settings = Settings::new(url.clone());
    settings.data_dir = std::env::temp_dir().join("mailtrail-bench-data");
    let state = AppState::open(settings)?;
    let mut conn = state.pool.get()?;
    let conn: &mut DbConn = &mut conn;
    let account = match accounts::find_account_by_name(conn, "bench")? {
        Some(a) => a,
        None => accounts::create_account(conn, "bench")?,
    };
    if accounts::find_user_by_email(conn, "bench@example.com")?.is_none() {
        accounts::create_user(
            conn,
            account.id,
            "bench@example.com",
            Role::Owner,
            &hash_password("bench"),
        )?;
    }
    let scope = AccountScope::new(account.id);
    let have = diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM messages WHERE account_id = {}",
        account.id
    ))
    .get_result::<N>(conn)?
    .n;
    if have < want {
        let started = Instant::now();
        let mut left = want - have;
        while left > 0 {
            let n = left;
            generate::generate(conn, &scope, n as u64, 30, (want - left) as u64 + 11)?;
            left -= n;
            eprintln!(
                "generated {} of {} messages ({:.0} s)",
                want - left,
                want,
                started.elapsed().as_secs_f64()
            );
        }
    }
    // Fresh statistics, as a production database would have; no VACUUM: a freshly loaded
    // database is measured as it is.
    diesel::sql_query("ANALYZE").execute(conn)?;
    let pick: Pick = diesel::sql_query(format!(
        "SELECT recipient, email_id FROM messages WHERE account_id = {} ORDER BY requested_at DESC, id DESC LIMIT 1",
        account.id
    ))
    .get_result(conn)?;

    let zone = account.zone();
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    let (t0, t1) = (
        day_start(&zone, today),
        day_start(&zone, today + chrono::Duration::days(1)),
    );
    let m30 = day_start(&zone, today - chrono::Duration::days(29));
    let from30 = (today - chrono::Duration::days(29)).to_string();
    let a = account.id;
    let q = |s: &str| s.replace('\'', "''");
    // (name, query string of the page, the bare SQL for the same first page)
    let cases: Vec<(&str, String, String)> = vec![
        ("today (default)", String::new(), format!("SELECT * FROM messages WHERE account_id = {a} AND requested_at >= {t0} AND requested_at < {t1} ORDER BY requested_at DESC, id DESC LIMIT 21")),
        ("30 days", format!("from={from30}"), format!("SELECT * FROM messages WHERE account_id = {a} AND requested_at >= {m30} AND requested_at < {t1} ORDER BY requested_at DESC, id DESC LIMIT 21")),
        ("status=invalid", "status=invalid".into(), format!("SELECT * FROM messages WHERE account_id = {a} AND status = 3 AND requested_at >= {t0} AND requested_at < {t1} ORDER BY requested_at DESC, id DESC LIMIT 21")),
        ("status+reason", "status=invalid&reason=address_not_found".into(), format!("SELECT * FROM messages WHERE account_id = {a} AND status = 3 AND reason = 6 AND requested_at >= {t0} AND requested_at < {t1} ORDER BY requested_at DESC, id DESC LIMIT 21")),
        ("recipient (30 d)", format!("from={from30}&recipient={}", pick.recipient), format!("SELECT * FROM messages WHERE account_id = {a} AND recipient = '{}' AND requested_at >= {m30} AND requested_at < {t1} ORDER BY requested_at DESC, id DESC LIMIT 21", q(&pick.recipient))),
        ("emailId", format!("email_id={}", pick.email_id.replace('$', "%24")), format!("SELECT * FROM messages WHERE account_id = {a} AND email_id = '{}' AND requested_at >= {t0} AND requested_at < {t1} ORDER BY requested_at DESC, id DESC LIMIT 21", q(&pick.email_id))),
        ("mail_type=batch", "mail_type=batch".into(), format!("SELECT * FROM messages WHERE account_id = {a} AND mail_type = 2 AND requested_at >= {t0} AND requested_at < {t1} ORDER BY requested_at DESC, id DESC LIMIT 21")),
        ("api_user=billing", "api_user=billing".into(), format!("SELECT * FROM messages WHERE account_id = {a} AND api_user = 'billing' AND requested_at >= {t0} AND requested_at < {t1} ORDER BY requested_at DESC, id DESC LIMIT 21")),
        ("tag=promo_1111", "tag=promo_1111".into(), format!("SELECT m.* FROM messages m JOIN message_tags t ON t.message_id = m.id WHERE t.account_id = {a} AND t.tag = 'promo_1111' AND t.requested_at >= {t0} AND t.requested_at < {t1} AND m.account_id = {a} ORDER BY t.requested_at DESC, t.message_id DESC LIMIT 21")),
        // Thirty days cross a month, so the tag page reads two partitions of the tag index.
        ("tag=promo_1111, 30 d", format!("from={from30}&tag=promo_1111"), format!("SELECT m.* FROM messages m JOIN message_tags t ON t.message_id = m.id AND t.requested_at = m.requested_at WHERE t.account_id = {a} AND t.tag = 'promo_1111' AND t.requested_at >= {m30} AND t.requested_at < {t1} AND m.account_id = {a} ORDER BY t.requested_at DESC, t.message_id DESC LIMIT 21")),
        ("status=soft_bounce, 30 d", format!("from={from30}&status=soft_bounce"), format!("SELECT * FROM messages WHERE account_id = {a} AND status = 2 AND requested_at >= {m30} AND requested_at < {t1} ORDER BY requested_at DESC, id DESC LIMIT 21")),
        // Mailbox providers: the filter on its index, and the pages of the provider rollup
        // (a path of its own; no bare query stands for a whole page of counts).
        ("provider=netease", "provider=netease".into(), format!("SELECT * FROM messages WHERE account_id = {a} AND provider = 'netease' AND requested_at >= {t0} AND requested_at < {t1} ORDER BY requested_at DESC, id DESC LIMIT 21")),
        ("provider=example-corp.cn, 30 d", format!("from={from30}&provider=example-corp.cn"), format!("SELECT * FROM messages WHERE account_id = {a} AND provider = 'example-corp.cn' AND requested_at >= {m30} AND requested_at < {t1} ORDER BY requested_at DESC, id DESC LIMIT 21")),
        ("/providers 1 d", "/providers?days=1".into(), "rollup:1".into()),
        ("/providers 7 d", "/providers?days=7".into(), "rollup:7".into()),
        ("/providers 30 d", "/providers?days=30".into(), "rollup:30".into()),
        ("/providers/netease 7 d", "/providers/netease?days=7".into(), "rollup:7:netease".into()),
        ("/providers/netease 30 d", "/providers/netease?days=30".into(), "rollup:30:netease".into()),
    ];
    let only = arg("--only");
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|(name, _, _)| only.as_deref().is_none_or(|o| name.contains(o)))
        .collect();

    // The real server, in process, on a port of its own.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let server_state = state.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = mailtrail::launch(listener, server_state).expect("launch");
            tx.send(server.handle()).expect("handle");
            let _ = server.await;
        })
    });
    let handle = rx.recv()?;
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let cookie = login(&agent, &base)?;

    println!(
        "backend: {}  messages: {}  runs per case: {runs}",
        conn.backend_name(),
        want.max(have)
    );
    println!(
        "{:<26} {:>8} {:>12} {:>12} {:>7}",
        "filter", "rows", "page ms", "bare SQL ms", "ratio"
    );
    let mut pages: Vec<(&str, f64)> = Vec::new();
    for (name, query, sql) in &cases {
        let mut page_ms = Vec::new();
        let mut rows = 0;
        for i in 0..runs + 2 {
            let path = if query.starts_with('/') {
                query.clone()
            } else {
                format!("/status?{query}")
            };
            let res = agent
                .get(&format!("{base}{path}"))
                .set("Cookie", &cookie)
                .call()?;
            let timing = res.header("server-timing").unwrap_or("").to_string();
            let body = res.into_string()?;
            rows =
                body.matches("<tr data-id=").count() + body.matches("<tr data-provider=").count();
            if i >= 2 {
                let ms: f64 = timing
                    .trim_start_matches("app;dur=")
                    .parse()
                    .unwrap_or(f64::NAN);
                page_ms.push(ms);
            }
        }
        let mut sql_ms = Vec::new();
        for i in 0..if sql.is_empty() { 0 } else { runs + 2 } {
            let started = Instant::now();
            let found = match sql.strip_prefix("rollup:") {
                Some(spec) => rollup_reads(conn, &scope, &zone, spec)?,
                None => {
                    let page: Vec<mailtrail::store::models::Message> =
                        diesel::sql_query(sql.as_str()).load(conn)?;
                    page.len()
                }
            };
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if i >= 2 {
                sql_ms.push(ms);
            }
            assert!(
                found >= rows.min(20),
                "{name}: the bare query finds the page's rows"
            );
        }
        if sql.is_empty() {
            println!(
                "{name:<26} {rows:>8} {:>12.2} {:>12} {:>7}",
                median(page_ms),
                "-",
                "-"
            );
            continue;
        }
        let (p, s) = (median(page_ms), median(sql_ms));
        if !sql.starts_with("rollup:") {
            pages.push((name, p));
        }
        println!(
            "{name:<26} {rows:>8} {p:>12.2} {s:>12.2} {:>7.2}",
            p / s.max(0.001)
        );
    }
    actix_web::rt::System::new().block_on(handle.stop(true));
    // Every filter is one index range read: none may be far slower than the typical one.
    if pages.is_empty() {
        return Ok(());
    }
    let typical = median(pages.iter().map(|(_, p)| *p).collect());
    let slow: Vec<String> = pages
        .iter()
        .filter(|(_, p)| *p > (3.0 * typical).max(3.0))
        .map(|(name, p)| format!("{name} ({p:.2} ms)"))
        .collect();
    if !slow.is_empty() {
        anyhow::bail!(
            "slower than 3x the median page ({typical:.2} ms) and 3 ms: {}",
            slow.join(", ")
        );
    }
    println!("every page within 3x the median page ({typical:.2} ms) or 3 ms");
    Ok(())
}

/// The provider rollup reads a providers page makes (`spec`: days, then `:provider` for a
/// provider page), as the page makes them; answers the rows read.
fn rollup_reads(
    conn: &mut DbConn,
    scope: &AccountScope,
    zone: &chrono_tz::Tz,
    spec: &str,
) -> anyhow::Result<usize> {
    use mailtrail::store::providers as p;
    const HOUR: i64 = 3_600_000;
    let mut parts = spec.splitn(2, ':');
    let days: i64 = parts.next().unwrap_or("7").parse()?;
    let provider = parts.next();
    let to = chrono::Utc::now().with_timezone(zone).date_naive();
    let from = to - chrono::Duration::days(days - 1);
    let from_hour = day_start(zone, from).div_euclid(HOUR);
    let to_hour = (day_start(zone, to + chrono::Duration::days(1)) + HOUR - 1).div_euclid(HOUR);
    let bounds: Vec<i64> = if days > 1 {
        (0..days)
            .map(|i| day_start(zone, from + chrono::Duration::days(i)).div_euclid(HOUR))
            .chain([to_hour])
            .collect()
    } else {
        (from_hour..=to_hour).collect()
    };
    Ok(match provider {
        Some(id) => {
            let period = p::period(conn, scope, &bounds, Some(id))?;
            period.totals.len()
                + period.buckets.len()
                + p::recent_failures(conn, scope, id, from_hour * HOUR, to_hour * HOUR, 500)?.len()
        }
        None => {
            let before_hour = from_hour - (to_hour - from_hour);
            let period = p::period(conn, scope, &bounds, None)?;
            period.totals.len()
                + period.buckets.len()
                + p::totals(conn, scope, before_hour, from_hour, None)?.len()
                + p::account_domains(conn, scope)?.len()
        }
    })
}

fn login(agent: &ureq::Agent, base: &str) -> anyhow::Result<String> {
    let page = agent.get(&format!("{base}/login")).call()?;
    let session = page
        .header("set-cookie")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    let body = page.into_string()?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = body
        .find(marker)
        .ok_or_else(|| anyhow::anyhow!("no csrf token"))?
        + marker.len();
    let token = &body[start..start + body[start..].find('"').unwrap_or(0)];
    let res = match agent
        .post(&format!("{base}/login"))
        .set("Cookie", &session)
        .send_form(&[
            ("email", "bench@example.com"),
            ("password", "bench"),
            ("csrf_token", token),
        ]) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.into()),
    };
    Ok(res
        .header("set-cookie")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .to_string())
}
