//! Where ingestion's time goes, per phase of a batch, summed over the process's life: what
//! `cargo bench --bench ingest` prints beside its rates. A few clock reads per batch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The phases of one batch, in the order a batch runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// PostgreSQL: making sure the batch's months have their partitions.
    Partitions,
    /// Reading what the batch touches: seen event ids, messages, waiting events, list entries.
    Load,
    /// Folding every event in memory (classification of replies included).
    Fold,
    /// Inserting the new messages and their tag rows.
    Messages,
    /// Inserting the event log and attaching waiting events.
    Events,
    /// Writing the changed messages' status columns.
    Statuses,
    /// Opens and clicks, contents, send logs, and list entries.
    Tracking,
    /// The status rollup, hourly, daily and per tag.
    Rollup,
    /// The provider rollup, hourly and daily.
    ProviderRollup,
    /// Suppressing requests that entries added by the batch now cover.
    CatchUp,
    /// Committing the transaction.
    Commit,
}

pub const ALL: [Phase; 11] = [
    Phase::Partitions,
    Phase::Load,
    Phase::Fold,
    Phase::Messages,
    Phase::Events,
    Phase::Statuses,
    Phase::Tracking,
    Phase::Rollup,
    Phase::ProviderRollup,
    Phase::CatchUp,
    Phase::Commit,
];

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Partitions => "partitions",
            Phase::Load => "load",
            Phase::Fold => "fold",
            Phase::Messages => "messages",
            Phase::Events => "events",
            Phase::Statuses => "statuses",
            Phase::Tracking => "tracking+lists",
            Phase::Rollup => "status rollup",
            Phase::ProviderRollup => "provider rollup",
            Phase::CatchUp => "catch-up",
            Phase::Commit => "commit",
        }
    }
}

static NANOS: [AtomicU64; ALL.len()] = [const { AtomicU64::new(0) }; ALL.len()];
static BATCHES: AtomicU64 = AtomicU64::new(0);
static TOTAL: AtomicU64 = AtomicU64::new(0);

/// Runs `f`, adding its time to `phase`.
pub fn timed<T>(phase: Phase, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    add(phase, started.elapsed());
    out
}

pub fn add(phase: Phase, spent: Duration) {
    NANOS[phase as usize].fetch_add(spent.as_nanos() as u64, Ordering::Relaxed);
}

/// One batch done, in `spent` from its writer's turn (SQLite) to its answer, retries included.
pub fn batch_done(spent: Duration) {
    BATCHES.fetch_add(1, Ordering::Relaxed);
    TOTAL.fetch_add(spent.as_nanos() as u64, Ordering::Relaxed);
}

/// The time spent so far: batches, their whole time, and each phase's.
#[derive(Debug, Clone)]
pub struct Spent {
    pub batches: u64,
    pub total: Duration,
    pub phases: Vec<(Phase, Duration)>,
}

pub fn spent() -> Spent {
    Spent {
        batches: BATCHES.load(Ordering::Relaxed),
        total: Duration::from_nanos(TOTAL.load(Ordering::Relaxed)),
        phases: ALL
            .iter()
            .map(|p| {
                (
                    *p,
                    Duration::from_nanos(NANOS[*p as usize].load(Ordering::Relaxed)),
                )
            })
            .collect(),
    }
}
