//! The offline export worker: claims a job, streams its rows (by keyset cursor, or through
//! PostgreSQL's COPY for the status table; see `walk`) into a temporary file (CSV with BOM,
//! optionally gzip, or XLSX; see `sink`), renames it when complete, and reports progress as
//! it goes. Memory stays flat however many rows; a crash leaves no partial file under the
//! final name, and the job is queued again at the next start.

mod walk;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::sink::Sink;
use crate::db::{DatabaseUrl, DbConn, Pool};
use crate::domain::{now_ms, ExportFormat};
use crate::store::exports::{self, ExportJob, JobFilter, Presenter};
use crate::store::{accounts, AccountScope};
use crate::Settings;
use walk::{estimate, walk, write_behind, Progress};

/// Files are kept this long after a job succeeds.
pub const KEEP_MS: i64 = 7 * 24 * 3_600_000;
/// Rows read per keyset step.
const STEP: i64 = 5_000;
/// A running job whose lease is this old belongs to a server that died: it is queued again.
pub const LEASE_MS: i64 = 60_000;
/// How often a running job's lease is renewed, whatever the job is doing.
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// A failure that cannot be recorded at once (the database is gone too) is tried again this
/// long, well inside the lease, so that the job is retried soon rather than taken over late.
const RECORD_FAILURE_FOR: Duration = Duration::from_secs(30);

/// The drill's hold point, in debug builds only (`scripts/drill` runs the debug binary that
/// `cargo test` builds; release builds do not have it, so no setting of a production server
/// can stall its exports): while the file this variable names exists, a running export stops
/// after its first step, with its progress written and its `.part` file open, so that a fault
/// lands mid-export however fast the machine is.
#[cfg(debug_assertions)]
pub const DRILL_HOLD_ENV: &str = "MAILTRAIL_DRILL_EXPORT_HOLD";

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub dir: PathBuf,
    pub poll: Duration,
    /// Progress is written, and a cancel noticed, between keyset steps but at most this often.
    pub progress_every: Duration,
    /// Cancelled when the server stops: a running job is put back in the queue for the next
    /// server, and the worker ends.
    pub shutdown: CancellationToken,
    /// The PostgreSQL database's URL: status exports stream through the server's COPY, on a
    /// connection of their own. `None` (SQLite, or to read by keyset cursor as every other
    /// export does): step by step on the job's connection.
    pub copy_from: Option<String>,
}

impl WorkerSettings {
    pub fn new(settings: &Settings) -> WorkerSettings {
        WorkerSettings {
            dir: settings.exports_dir(),
            poll: Duration::from_millis(settings.export_poll_ms),
            progress_every: Duration::from_millis(settings.export_progress_ms),
            shutdown: CancellationToken::new(),
            copy_from: match DatabaseUrl::parse(&settings.database_url) {
                Ok(DatabaseUrl::Postgres(url)) => Some(url),
                _ => None,
            },
        }
    }
}

/// The file a job's export lives in once complete.
pub fn final_name(job: &ExportJob, format: ExportFormat) -> String {
    format!("export-{}.{}", job.id, format.extension(job.gzip))
}

/// The file a job writes into until it is complete.
fn part_path(dir: &Path, id: i64) -> PathBuf {
    dir.join(format!("export-{id}.part"))
}

/// Starts `count` workers on the current actix runtime; 0 starts none. Each is tracked by
/// `tasks`, so that a stopping server can wait until its workers have put their jobs down.
pub fn start(pool: Pool, settings: WorkerSettings, count: usize, tasks: &TaskTracker) {
    if count == 0 {
        return;
    }
    if let Some(problem) = folder_problem(&settings.dir) {
        log::error!("{problem}; exports wait in the queue until it is");
    }
    for n in 0..count {
        let pool = pool.clone();
        let settings = settings.clone();
        actix_web::rt::spawn(tasks.track_future(async move {
            // Jobs are claimed only while the folder takes files; a change is logged once.
            let mut blocked = false;
            while !settings.shutdown.is_cancelled() {
                let (pool2, settings2) = (pool.clone(), settings.clone());
                let worked = actix_web::web::block(move || match folder_problem(&settings2.dir) {
                    Some(problem) => Err(problem),
                    None => Ok(work_once(&pool2, &settings2)),
                })
                .await;
                match worked {
                    Ok(Ok(worked)) => {
                        if blocked {
                            log::info!("export worker {n}: the export folder is writable again");
                            blocked = false;
                        }
                        if worked {
                            continue;
                        }
                    }
                    Ok(Err(problem)) => {
                        if !blocked && n == 0 {
                            log::error!("{problem}; exports wait in the queue until it is");
                        }
                        blocked = true;
                    }
                    Err(e) => log::error!("export worker {n}: {e}"),
                }
                tokio::select! {
                    _ = settings.shutdown.cancelled() => {}
                    _ = actix_web::rt::time::sleep(settings.poll) => {}
                }
            }
            log::info!("export worker {n}: stopped");
        }));
    }
}

/// Why export files cannot be written into `dir` now, or `None` when they can: the folder is
/// created when missing and a file is written into it and removed. Checked before each claim
/// and by the jobs page, which says so.
pub fn folder_problem(dir: &Path) -> Option<String> {
    // A name of its own per check: workers and pages of several servers may check at once.
    let probe = dir.join(format!(".write-check-{:016x}", rand::random::<u64>()));
    let checked = std::fs::create_dir_all(dir).and_then(|()| {
        use std::io::Write;
        std::fs::File::create(&probe)?.write_all(b"ok")?;
        std::fs::remove_file(&probe)
    });
    checked.err().map(|e| {
        let _ = std::fs::remove_file(&probe);
        format!("the export folder {} is not writable: {e}", dir.display())
    })
}

/// Sweeps expired files, then runs one job if one is due; true when it ran one.
pub fn work_once(pool: &Pool, settings: &WorkerSettings) -> bool {
    let mut conn = match pool.get() {
        Ok(c) => c,
        Err(e) => {
            log::warn!("export worker: no database connection: {e}");
            return false;
        }
    };
    sweep(&mut conn, &settings.dir);
    // A job whose server died (or hangs) is taken over once its lease runs out.
    let job = match exports::claim(&mut conn, now_ms(), LEASE_MS) {
        Ok(Some(job)) => job,
        Ok(None) => return false,
        Err(e) => {
            log::warn!("export worker: claim: {e}");
            return false;
        }
    };
    let id = job.id;
    log::info!("export {id}: started (attempt {})", job.attempts);
    let outcome = std::thread::scope(|scope| {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        scope.spawn(move || keep_lease(pool, id, &stopped));
        // A panic must fail the attempt like any error, not leave the job `running` until its
        // lease runs out (the writing thread's panics, e.g. rust_xlsxwriter's on I/O errors of
        // its spill files, come back from its join as errors already).
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&mut conn, &job, settings)))
            .unwrap_or_else(|_| {
                let _ = std::fs::remove_file(part_path(&settings.dir, id));
                Err(anyhow::anyhow!("the export writer stopped unexpectedly"))
            });
        drop(stop);
        outcome
    });
    crate::web::metrics::export_ended(match &outcome {
        Ok(Some(_)) => "succeeded",
        Ok(None) => "cancelled",
        Err(_) => "failed",
    });
    match outcome {
        Ok(Some(rows)) => log::info!("export {id}: {rows} rows"),
        Ok(None) if settings.shutdown.is_cancelled() => {
            match exports::release(&mut conn, id, now_ms()) {
                Ok(true) => {
                    log::info!("export {id}: put back in the queue, the server is stopping")
                }
                Ok(false) => log::info!("export {id}: cancelled"),
                Err(e) => log::error!("export {id}: putting it back: {e}"),
            }
        }
        Ok(None) => log::info!("export {id}: cancelled"),
        Err(e) => {
            log::warn!("export {id}: {e}");
            record_failure(pool, conn, id, &e.to_string(), &settings.shutdown);
        }
    }
    true
}

/// Records a failed attempt; when the database is gone as well (the failure may be that), tries
/// again on fresh connections for a while rather than leave the job `running` until its lease
/// runs out.
fn record_failure(
    pool: &Pool,
    mut conn: crate::db::PooledConn,
    id: i64,
    error: &str,
    shutdown: &CancellationToken,
) {
    let started = Instant::now();
    loop {
        match exports::fail(&mut conn, id, error, now_ms()) {
            Ok(()) => return,
            Err(e) if started.elapsed() >= RECORD_FAILURE_FOR || shutdown.is_cancelled() => {
                log::error!("export {id}: recording the failure: {e}; the job is taken up again once its lease runs out");
                return;
            }
            Err(e) => log::warn!("export {id}: recording the failure: {e}; trying again"),
        }
        std::thread::sleep(Duration::from_secs(2));
        match pool.get() {
            Ok(fresh) => conn = fresh,
            Err(e) => log::warn!("export {id}: recording the failure: {e}"),
        }
    }
}

/// Renews job `id`'s lease every few seconds until `stopped` says the job is over, on a
/// connection of its own: the job's connection may be inside a long read.
fn keep_lease(pool: &Pool, id: i64, stopped: &std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(LEASE_RENEW) {
        match pool.get() {
            Ok(mut conn) => {
                if let Err(e) = exports::heartbeat(&mut conn, id, now_ms()) {
                    log::warn!("export {id}: renewing its lease: {e}");
                }
            }
            Err(e) => log::warn!("export {id}: renewing its lease: {e}"),
        }
    }
}

/// Deletes the files of jobs older than seven days and marks them expired.
pub fn sweep(conn: &mut DbConn, dir: &Path) {
    let due = match exports::due_for_expiry(conn, now_ms()) {
        Ok(due) => due,
        Err(e) => {
            log::warn!("export sweep: {e}");
            return;
        }
    };
    for (id, file) in due {
        if let Some(name) = file {
            let _ = std::fs::remove_file(dir.join(name));
        }
        if let Err(e) = exports::mark_expired(conn, id) {
            log::warn!("export sweep {id}: {e}");
        }
    }
}

/// Runs one claimed job; `Ok(None)` when it was cancelled while running.
pub fn run(
    conn: &mut DbConn,
    job: &ExportJob,
    settings: &WorkerSettings,
) -> anyhow::Result<Option<i64>> {
    let dir = settings.dir.as_path();
    let desc: JobFilter = serde_json::from_str(&job.filter)?;
    let format = ExportFormat::from_code(&job.format)
        .ok_or_else(|| anyhow::anyhow!("unknown export format {:?}", job.format))?;
    let account = accounts::get_account(conn, job.account_id)?
        .ok_or_else(|| anyhow::anyhow!("the account is gone"))?;
    let scope = AccountScope::new(account.id);
    let presenter = Presenter {
        lang: if desc.lang.starts_with("zh") {
            "zh-CN"
        } else {
            "en"
        },
        zone: account.zone(),
        mask: account.mask_addresses,
    };
    if let Some(total) = estimate(conn, &scope, &desc.spec)? {
        exports::set_total(conn, job.id, total)?;
    }
    let part = part_path(dir, job.id);
    let mut sink = Sink::create(&part, format, job.gzip)?;
    sink.mask_addresses(presenter.mask);
    sink.name_sheets(&rust_i18n::t!("export.sheet", locale = presenter.lang))?;
    let mut rows: i64 = 0;
    let mut figures = crate::web::metrics::ExportRun::start();
    // Rows are read once, front to back: a big page cache would only hold them for nothing.
    let walked = conn
        .with_small_cache(|conn| {
            write_behind(sink, &presenter, |write| {
                let mut progress = Progress::new(job.id, settings, &mut rows, &mut figures);
                walk(conn, &scope, &desc.spec, &presenter, &mut progress, write)
            })
        })
        .map_err(anyhow::Error::from)
        .and_then(|walked| walked)
        .and_then(|(complete, sink)| {
            if complete {
                sink.finish().map(|()| true)
            } else {
                Ok(false)
            }
        });
    match walked {
        Ok(true) => {
            let name = final_name(job, format);
            std::fs::rename(&part, dir.join(&name))?;
            let size = std::fs::metadata(dir.join(&name))?.len() as i64;
            match exports::succeed(conn, job.id, rows, &name, size, now_ms(), KEEP_MS) {
                Ok(true) => Ok(Some(rows)),
                // Cancelled at the last moment: the file goes too.
                Ok(false) => {
                    let _ = std::fs::remove_file(dir.join(&name));
                    Ok(None)
                }
                // The database went away after the last row (a COPY stream can be read to
                // its end from the socket's buffers): no job owns the file, and the attempt is
                // made again, so no finished-looking file stays behind.
                Err(e) => {
                    let _ = std::fs::remove_file(dir.join(&name));
                    Err(e.into())
                }
            }
        }
        Ok(false) => {
            let _ = std::fs::remove_file(&part);
            Ok(None)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(explain_full(e, dir))
        }
    }
}

/// A write that failed because the folder's disk is full says so in words a user can act on.
fn explain_full(e: anyhow::Error, dir: &Path) -> anyhow::Error {
    let full = e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| matches!(io.raw_os_error(), Some(28) | Some(122)))
    }) || e.to_string().contains("No space left on device");
    if full {
        // The folder's path is for the log; the job's message is for the people who asked.
        log::warn!("export folder {}: {e:#}", dir.display());
        anyhow::anyhow!(
            "the export folder is full (no space left on the device); the partial file was \
             removed and the export is tried again later"
        )
    } else {
        e
    }
}
