//! Offline export speed and memory against the database's own CSV dump of the same rows,
//! measured in the same run (DESIGN §10: ≥ 0.5× the dump's speed, ≤ 64 MiB RSS growth).
//!
//!     cargo bench --bench export -- [--database URL] [--messages N] [--runs R]
//!
//! Fills an account `bench` with N generated messages (default 1,000,000; an existing
//! database with enough messages is reused), then exports every status row of the account:
//! - to CSV through the worker's own code path — a real job, created, claimed and run by
//!   `jobs::exports::run`, with its progress writes and its rename — for rows/s and wall time,
//!   while a thread samples the process's RSS;
//! - with the database's own client as the baseline: `sqlite3 -csv` on SQLite, psql's
//!   `\copy (SELECT …) TO FILE CSV` on PostgreSQL, of the stored columns the export's
//!   columns are made from, same rows, same order, into a file;
//! - to XLSX through the same path, for information (no target).
//!
//! The CSV export and the baseline run R times in turn (default 3); medians are reported.
//! `--csv-only` runs the CSV export once and nothing else, for a profiler.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use mailtrail::db::{DatabaseUrl, DbConn};
use mailtrail::demo::generate;
use mailtrail::domain::{hash_password, now_ms, ExportFormat, Role};
use mailtrail::jobs::exports::{self as worker, WorkerSettings};
use mailtrail::store::exports;
use mailtrail::store::exports::{ExportSpec, JobFilter};
use mailtrail::store::status::StatusFilter;
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
struct Span {
    #[diesel(sql_type = BigInt)]
    first: i64,
    #[diesel(sql_type = BigInt)]
    last: i64,
}

/// One measured export: how long, how many rows, how big, how much the RSS grew.
struct Measured {
    seconds: f64,
    rows: i64,
    bytes: u64,
    rss_growth_kib: Option<u64>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.seconds
    }
}

fn main() -> anyhow::Result<()> {
    let url = arg("--database").unwrap_or_else(|| "sqlite:///tmp/mailtrail-export-bench.db".into());
    let want: i64 = arg("--messages")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let runs: usize = arg("--runs")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3)
        .max(1);
    let mut settings = Settings::new(url.clone());
    settings.data_dir = std::env::temp_dir().join("mailtrail-export-bench");
    let worker_settings = WorkerSettings::new(&settings);
    let dir = worker_settings.dir.clone();
    std::fs::create_dir_all(&dir)?;
    let state = AppState::open(settings)?;
    let mut pooled = state.pool.get()?;
    let conn: &mut DbConn = &mut pooled;
    let account = match accounts::find_account_by_name(conn, "bench")? {
        Some(a) => a,
        None => accounts::create_account(conn, "bench")?,
    };
    let user = match accounts::find_user_by_email(conn, "bench@example.com")? {
        Some(u) => u,
        None => accounts::create_user(
            conn,
            account.id,
            "bench@example.com",
            Role::Owner,
            &hash_password("bench"),
        )?,
    };
    let scope = AccountScope::new(account.id);
    let a = account.id;
    let have = diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM messages WHERE account_id = {a}"
    ))
    .get_result::<N>(conn)?
    .n;
    let generated_here = have < want;
    if generated_here {
        let started = Instant::now();
        generate::generate(conn, &scope, (want - have) as u64, 30, have as u64 + 11)?;
        eprintln!(
            "generated {} messages ({:.0} s)",
            want - have,
            started.elapsed().as_secs_f64()
        );
        diesel::sql_query("ANALYZE").execute(conn)?;
    }
    // Every message of the account, whatever its age: the export's filter is not limited
    // to the 30 days a page allows.
    let span: Span = diesel::sql_query(format!(
        "SELECT MIN(requested_at) AS first, MAX(requested_at) AS last FROM messages WHERE account_id = {a}"
    ))
    .get_result(conn)?;
    let filter = StatusFilter {
        from_ms: span.first,
        to_ms: span.last + 1,
        ..StatusFilter::default()
    };
    // Earlier runs' jobs must not be claimed in place of this run's.
    diesel::sql_query(format!("DELETE FROM export_jobs WHERE account_id = {a}")).execute(conn)?;

    let backend = conn.backend_name();
    let select = format!(
        "SELECT email_id, status, reason, api_user, recipient, mail_type, tags, requested_at, updated_at, smtp_reply \
         FROM messages WHERE account_id = {a} AND requested_at >= {} AND requested_at < {} \
         ORDER BY requested_at DESC, id DESC",
        filter.from_ms, filter.to_ms
    );
    if std::env::args().any(|a| a == "--csv-only") {
        // For a profiler: the CSV export alone.
        let ours = export(
            conn,
            &scope,
            user.id,
            &filter,
            ExportFormat::Csv,
            &worker_settings,
        )?;
        println!("{} rows in {:.2} s", ours.rows, ours.seconds);
        return Ok(());
    }
    // Ours and the baseline take turns, so that both see the same load on the machine; the
    // medians are reported.
    let mut ours_runs = Vec::new();
    let mut baseline_runs = Vec::new();
    let mut baseline_name = "";
    for _ in 0..runs {
        ours_runs.push(export(
            conn,
            &scope,
            user.id,
            &filter,
            ExportFormat::Csv,
            &worker_settings,
        )?);
        let (name, m) = dump(&url, &select, &dir.join("baseline.csv"))?;
        baseline_name = name;
        baseline_runs.push(m);
    }
    // Memory is the worst run's, not the median's.
    let peak = ours_runs.iter().filter_map(|m| m.rss_growth_kib).max();
    let ours = Measured {
        rss_growth_kib: peak,
        ..median(ours_runs)
    };
    let baseline = median(baseline_runs);
    let xlsx = export(
        conn,
        &scope,
        user.id,
        &filter,
        ExportFormat::Xlsx,
        &worker_settings,
    )?;

    println!(
        "backend: {backend}  messages in the account: {}  CSV runs: {runs} (median)",
        ours.rows
    );
    if generated_here {
        println!("(generated in this run: RSS growth is more honest on a second run)");
    }
    println!(
        "{:<34} {:>9} {:>11} {:>10} {:>16}",
        "export of every status row", "wall s", "rows/s", "file MiB", "RSS growth MiB"
    );
    for (name, m) in [
        ("mailtrail CSV (worker)", &ours),
        (baseline_name, &baseline),
        ("mailtrail XLSX (worker)", &xlsx),
    ] {
        println!(
            "{name:<34} {:>9.2} {:>11.0} {:>10.1} {:>16}",
            m.seconds,
            m.rate(),
            m.bytes as f64 / 1_048_576.0,
            m.rss_growth_kib
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or_else(|| "-".into())
        );
    }
    println!(
        "CSV speed ratio mailtrail/baseline: {:.2} (target >= 0.50)",
        ours.rate() / baseline.rate()
    );
    if baseline.rows != ours.rows {
        anyhow::bail!(
            "the baseline dumped {} rows, mailtrail {}",
            baseline.rows,
            ours.rows
        );
    }
    Ok(())
}

/// The run of median wall time.
fn median(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    runs.swap_remove(runs.len() / 2)
}

/// Runs one export job of `filter` the way the worker does, timing it and sampling RSS.
fn export(
    conn: &mut DbConn,
    scope: &AccountScope,
    user: i64,
    filter: &StatusFilter,
    format: ExportFormat,
    settings: &WorkerSettings,
) -> anyhow::Result<Measured> {
    let description = serde_json::to_string(&JobFilter {
        spec: ExportSpec::Status {
            filter: filter.clone(),
        },
        lang: "en".into(),
        summary: "bench".into(),
    })?;
    let id = exports::create(
        conn,
        scope,
        &exports::NewJob {
            requested_by: user,
            kind: "status",
            filter: &description,
            format: format.code(),
            gzip: false,
        },
        now_ms(),
    )?;
    let job = exports::claim(conn, now_ms(), mailtrail::jobs::exports::LEASE_MS)?
        .filter(|j| j.id == id)
        .ok_or_else(|| anyhow::anyhow!("another export job was queued"))?;
    let sampler = RssSampler::start();
    let started = Instant::now();
    let rows = worker::run(conn, &job, settings)?
        .ok_or_else(|| anyhow::anyhow!("the export was cancelled"))?;
    let seconds = started.elapsed().as_secs_f64();
    let rss_growth_kib = sampler.stop();
    let path = settings.dir.join(worker::final_name(&job, format));
    let bytes = std::fs::metadata(&path)?.len();
    std::fs::remove_file(&path)?;
    Ok(Measured {
        seconds,
        rows,
        bytes,
        rss_growth_kib,
    })
}

/// The baseline: the database's own command-line client writes `select` as CSV into `out`.
fn dump(url: &str, select: &str, out: &Path) -> anyhow::Result<(&'static str, Measured)> {
    let started = Instant::now();
    let (name, status) = match DatabaseUrl::parse(url)? {
        DatabaseUrl::Sqlite(path) => (
            "sqlite3 -csv (baseline)",
            Command::new("sqlite3")
                .arg("-csv")
                .arg(&path)
                .arg(select)
                .stdout(Stdio::from(std::fs::File::create(out)?))
                .status()?,
        ),
        DatabaseUrl::Postgres(url) => (
            "psql \\copy ... CSV (baseline)",
            Command::new("psql")
                .arg(url)
                .arg("-q")
                .arg("-c")
                .arg(format!("\\copy ({select}) TO '{}' CSV", out.display()))
                .status()?,
        ),
    };
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "{name} failed: {status}");
    let bytes = std::fs::metadata(out)?.len();
    let rows = count_records(out)?;
    std::fs::remove_file(out)?;
    Ok((
        name,
        Measured {
            seconds,
            rows,
            bytes,
            rss_growth_kib: None,
        },
    ))
}

/// CSV records in a file (a quoted field may hold line breaks).
fn count_records(path: &Path) -> anyhow::Result<i64> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)?;
    let mut record = csv::ByteRecord::new();
    let mut n = 0;
    while reader.read_byte_record(&mut record)? {
        n += 1;
    }
    Ok(n)
}

/// The peak of this process's resident memory over a span, above what it was at the start.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
    before: Option<u64>,
}

impl RssSampler {
    fn start() -> RssSampler {
        let before = vm_kib("VmRSS:");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(vm_kib("VmRSS:").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak.max(vm_kib("VmRSS:").unwrap_or(0))
        });
        RssSampler {
            stop,
            thread,
            before,
        }
    }

    /// The growth in KiB, when /proc could tell.
    fn stop(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.thread.join().ok()?;
        Some(peak.saturating_sub(self.before?))
    }
}

/// A `Vm…:` line of /proc/self/status, in KiB.
fn vm_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
