//! An export's rows, from the database to the sink: read step by step (or streamed through
//! PostgreSQL's COPY) on the job's side, presented and written on a thread of their own, with
//! progress and cancel noticed between steps.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::super::sink::Sink;
#[cfg(debug_assertions)]
use super::DRILL_HOLD_ENV;
use super::STEP;
use crate::db::DbConn;
use crate::domain::{now_ms, ListEntry, ListKind};
use crate::store::exports::{self, ExportSpec, Presenter};
use crate::store::lists;
use crate::store::models::StatusRow;
use crate::store::status::{self, Direction, StatusFilter};
use crate::store::tracking::{self, TrackingRow};
use crate::store::AccountScope;

/// One step's rows, on their way from the reading side to the writing side.
pub(super) enum Batch {
    Header(Vec<String>),
    Status(Vec<StatusRow>),
    List(ListKind, Vec<ListEntry>),
    Tracking(Vec<TrackingRow>),
}

impl Batch {
    fn write(self, presenter: &Presenter, sink: &mut Sink) -> anyhow::Result<()> {
        match self {
            Batch::Header(names) => sink.header(names),
            Batch::Status(rows) => rows
                .iter()
                .try_for_each(|m| sink.record(&presenter.status_record(m))),
            Batch::List(list, entries) => entries
                .iter()
                .try_for_each(|e| sink.record(&presenter.list_record(list, e))),
            Batch::Tracking(rows) => rows
                .iter()
                .try_for_each(|r| sink.record(&presenter.tracking_record(r))),
        }
    }
}

/// Runs `read` while a thread of its own presents and writes what it reads, so that writing
/// one step overlaps reading the next (on PostgreSQL, the server's work for it). At most two
/// steps wait in between, so memory stays flat. Answers what `read` answered and the sink,
/// or the first error of either side.
pub(super) fn write_behind(
    mut sink: Sink,
    presenter: &Presenter,
    read: impl FnOnce(&mut dyn FnMut(Batch) -> anyhow::Result<()>) -> anyhow::Result<bool>,
) -> anyhow::Result<(bool, Sink)> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(1);
        let writer = scope.spawn(move || -> anyhow::Result<Sink> {
            for batch in rx {
                batch.write(presenter, &mut sink)?;
            }
            Ok(sink)
        });
        let read_outcome = read(&mut |batch| {
            tx.send(batch)
                .map_err(|_| anyhow::anyhow!("the export writer stopped"))
        });
        drop(tx);
        // The writer's own error says more than the reader's failed hand-over.
        let sink = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the export writer stopped unexpectedly"))??;
        Ok((read_outcome?, sink))
    })
}

/// The rows a job has done, written to the job now and then.
pub(super) struct Progress<'a> {
    id: i64,
    every: Duration,
    shutdown: &'a CancellationToken,
    /// See [`super::WorkerSettings::copy_from`].
    copy_from: Option<&'a str>,
    rows: &'a mut i64,
    reported: Instant,
    figures: &'a mut crate::web::metrics::ExportRun,
}

impl<'a> Progress<'a> {
    pub(super) fn new(
        id: i64,
        settings: &'a super::WorkerSettings,
        rows: &'a mut i64,
        figures: &'a mut crate::web::metrics::ExportRun,
    ) -> Progress<'a> {
        Progress {
            id,
            every: settings.progress_every,
            shutdown: &settings.shutdown,
            copy_from: settings.copy_from.as_deref(),
            rows,
            reported: Instant::now(),
            figures,
        }
    }

    /// Counts a step's rows and writes the count when it is time; false once the job is no
    /// longer running (cancelled).
    fn step(&mut self, conn: &mut DbConn, rows: usize) -> anyhow::Result<bool> {
        *self.rows += rows as i64;
        self.figures.rows(*self.rows);
        #[cfg(debug_assertions)]
        self.drill_hold(conn)?;
        if self.shutdown.is_cancelled() {
            return Ok(false);
        }
        if self.reported.elapsed() < self.every {
            return Ok(true);
        }
        self.reported = Instant::now();
        Ok(exports::progress(conn, self.id, *self.rows, now_ms())?)
    }

    /// See [`DRILL_HOLD_ENV`]: writes the progress, then waits while the hold file exists
    /// (or until the server stops).
    #[cfg(debug_assertions)]
    fn drill_hold(&mut self, conn: &mut DbConn) -> anyhow::Result<()> {
        let Some(hold) = std::env::var_os(DRILL_HOLD_ENV).map(std::path::PathBuf::from) else {
            return Ok(());
        };
        if !hold.exists() {
            return Ok(());
        }
        exports::progress(conn, self.id, *self.rows, now_ms())?;
        log::info!(
            "export {}: held by the drill at {} rows",
            self.id,
            self.rows
        );
        while hold.exists() && !self.shutdown.is_cancelled() {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

/// Reads the spec's rows step by step by keyset cursor (or streams a status table through
/// COPY) and hands each step to `write`. Between steps it counts progress and notices a
/// cancel; `Ok(false)` when cancelled.
pub(super) fn walk(
    conn: &mut DbConn,
    scope: &AccountScope,
    spec: &ExportSpec,
    presenter: &Presenter,
    progress: &mut Progress,
    write: &mut dyn FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    let copy_from = progress.copy_from;
    let mut checkpoint = |conn: &mut DbConn, step: usize| progress.step(conn, step);
    match spec {
        ExportSpec::Status { filter } => {
            write(Batch::Header(presenter.status_header()))?;
            if let Some(url) = copy_from {
                return copied(url, conn, scope, filter, &mut checkpoint, write);
            }
            let mut from = None;
            loop {
                let page = status::page(conn, scope, filter, from, STEP)?;
                let step = page.rows.len();
                write(Batch::Status(page.rows))?;
                if !checkpoint(conn, step)? {
                    return Ok(false);
                }
                match page.older {
                    Some(p) => from = Some((p, Direction::Older)),
                    None => return Ok(true),
                }
            }
        }
        ExportSpec::List { list, filter } => {
            let list =
                ListKind::from_code(list).ok_or_else(|| anyhow::anyhow!("unknown list {list}"))?;
            write(Batch::Header(presenter.list_header(list)))?;
            let now = now_ms();
            let mut after = None;
            loop {
                let page = lists::page(conn, scope, list, filter, after, STEP, now)?;
                let step = page.len();
                after = page.last().map(lists::position);
                write(Batch::List(list, page))?;
                if !checkpoint(conn, step)? {
                    return Ok(false);
                }
                if step < STEP as usize {
                    return Ok(true);
                }
            }
        }
        ExportSpec::OpensClicks { filter } => {
            write(Batch::Header(presenter.tracking_header()))?;
            let mut after = None;
            loop {
                let page = tracking::page(conn, scope, filter, after, STEP)?;
                let step = page.len();
                after = page.last().map(|r| (r.occurred_at, r.id));
                write(Batch::Tracking(page))?;
                if !checkpoint(conn, step)? {
                    return Ok(false);
                }
                if step < STEP as usize {
                    return Ok(true);
                }
            }
        }
    }
}

/// A status table streamed through the server's COPY, handed on in steps of [`STEP`] rows;
/// progress is written on the job's connection meanwhile.
fn copied(
    url: &str,
    conn: &mut DbConn,
    scope: &AccountScope,
    filter: &StatusFilter,
    checkpoint: &mut dyn FnMut(&mut DbConn, usize) -> anyhow::Result<bool>,
    write: &mut dyn FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    let step = STEP as usize;
    let mut rows = Vec::with_capacity(step);
    let complete = exports::copy_status_rows(url, scope, filter, &mut |row| {
        rows.push(row);
        if rows.len() < step {
            return Ok(true);
        }
        write(Batch::Status(std::mem::replace(
            &mut rows,
            Vec::with_capacity(step),
        )))?;
        checkpoint(conn, step)
    })?;
    if !complete {
        return Ok(false);
    }
    let last = rows.len();
    write(Batch::Status(rows))?;
    checkpoint(conn, last)
}

/// How many rows the export will have, when that is cheap to know: the rollup for the status
/// table, a count for the lists; opens and clicks are not counted ahead.
pub(super) fn estimate(
    conn: &mut DbConn,
    scope: &AccountScope,
    spec: &ExportSpec,
) -> anyhow::Result<Option<i64>> {
    Ok(match spec {
        ExportSpec::Status { filter } => {
            let counts = status::counts(
                conn,
                scope,
                &StatusFilter {
                    status: None,
                    reason: None,
                    ..filter.clone()
                },
            )?;
            let total = counts
                .iter()
                .filter(|(s, r, _)| filter.status.is_none_or(|f| f == *s) && *r == filter.reason)
                .map(|(_, _, c)| c.n)
                .sum();
            Some(total)
        }
        ExportSpec::List { list, filter } => match ListKind::from_code(list) {
            Some(list) => Some(lists::count(conn, scope, list, filter, now_ms())?),
            None => None,
        },
        ExportSpec::OpensClicks { .. } => None,
    })
}
