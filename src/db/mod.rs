//! The database: one connection type over SQLite and PostgreSQL, chosen by the URL scheme,
//! pooled with r2d2, migrated from the embedded migrations of its backend.

pub mod schema;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// SQLite settings applied to every pooled connection (DESIGN §6). `busy_timeout` comes first
/// so that two pools opening the same file at once wait instead of failing.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; \
     PRAGMA temp_store = MEMORY;";

/// PostgreSQL settings of every pooled connection. No JIT: our queries are short index reads
/// whose estimated cost over partitioned tables can pass `jit_above_cost`, and compiling them
/// (tens of milliseconds) costs many times more than running them.
const POSTGRES_SESSION: &str = "SET jit = off;";

/// Inside a transaction: PostgreSQL plans each statement for its values until the end of it.
/// After five runs of a prepared statement it may otherwise switch to a generic plan, which
/// cannot prune partitions by the values at plan time; for the tag page that plan took 150 ms
/// where a custom one takes 1, and it slowed ingestion by a third. Pages that only read keep
/// the cached plans: planning over the partitions on every request costs them more.
const CUSTOM_PLANS: &str = "SET LOCAL plan_cache_mode = force_custom_plan";

/// For reads through the tag index that stop after a page (the `/status` tag page, an export's
/// keyset steps), on top of [`CUSTOM_PLANS`]. PostgreSQL estimates the join of a tag row to its
/// message on two columns, `id` and `requested_at`, as if they were independent, so it expects
/// about one row out of the join; with one row, a LIMIT saves nothing, and it sorted every
/// tagged row of the period instead of reading the tag index in order and stopping. On a freshly
/// generated million messages the tag page took 93 ms that way, and 0.3 ms read in index order.
/// It chose the sort whenever the period crossed a month's partition (vacuumed or not). A sort
/// is still made where no index gives the order. A page is too small for parallel workers: starting
/// them cost 20 ms.
const INDEX_ORDER: &str = "SET LOCAL enable_sort = off; \
     SET LOCAL max_parallel_workers_per_gather = 0";

/// Each pooled SQLite connection's page cache: 64 MiB.
const SQLITE_CACHE_SIZE: &str = "PRAGMA cache_size = -65536;";

/// Runs diesel code on the backend's own connection, for what does not compile through
/// [`DbConn`]: batch inserts of many rows, `returning`, `on_conflict` upserts, `SKIP LOCKED`.
/// This is how code chooses a backend, everywhere.
///
/// SQL written by hand marks its values PostgreSQL's way, `$1, $2, …`, each number first
/// used in that order: SQLite reads `$1` as a parameter named "1" and numbers parameters in
/// the order they first appear, so the same text binds the same values on both backends.
///
/// - `db_run!(conn, |c| …)`: the same code, compiled once for each backend.
/// - `db_run!(conn, sqlite: |c| …, postgres: |c| …)`: where the two truly differ, both side by
///   side (either arm may be `Ok(())` when the other backend has nothing to do).
macro_rules! db_run {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Postgres($c) => $body,
        }
    };
    ($conn:expr, sqlite: |$s:pat_param| $sqlite:expr, postgres: |$p:pat_param| $postgres:expr $(,)?) => {
        match $conn {
            $crate::db::DbConn::Sqlite($s) => $sqlite,
            $crate::db::DbConn::Postgres($p) => $postgres,
        }
    };
}
pub(crate) use db_run;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// Where the data lives, parsed from a `sqlite://PATH` or `postgres://…` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH (for example sqlite://data/mailtrail.db) or postgres://USER@HOST/DB")]
    BadUrl(String),
    #[error("cannot create the folder {0} for the SQLite database: {1}")]
    Folder(String, std::io::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("migrations failed: {0}")]
    Migrate(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, DbError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(DbError::BadUrl(url.to_string()));
            }
            Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_string()))
        } else {
            Err(DbError::BadUrl(url.to_string()))
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, DatabaseUrl::Sqlite(_))
    }
}

/// An r2d2 manager that opens the backend the URL names, never guessing.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
}

impl Manager {
    fn connect_now(&self) -> Result<DbConn, diesel::ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let mut conn = PgConnection::establish(url)?;
                conn.batch_execute(POSTGRES_SESSION)
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConn::Postgres(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .and_then(|()| conn.batch_execute(SQLITE_CACHE_SIZE))
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        self.connect_now()
            .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

/// Opens a pool on `url`: the SQLite file's folder is created, the file itself is created by
/// SQLite. A PostgreSQL server that does not answer is an error, never a fallback.
pub fn open_pool(url: &str, max_size: u32) -> Result<Pool, DbError> {
    let parsed = DatabaseUrl::parse(url)?;
    if let DatabaseUrl::Sqlite(path) = &parsed {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::Folder(dir.display().to_string(), e))?;
        }
    }
    let manager = Manager { url: parsed };
    // Check once by hand so that the error names the real cause rather than r2d2's timeout.
    manager
        .connect_now()
        .map_err(|e| DbError::Connect(e.to_string()))?;
    r2d2::Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(15))
        .build(manager)
        .map_err(|e| DbError::Connect(e.to_string()))
}

/// Runs the pending migrations of the connection's backend; returns how many ran.
pub fn migrate(conn: &mut DbConn) -> Result<usize, DbError> {
    let ran = db_run!(
        conn,
        sqlite: |c| c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        postgres: |c| c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()),
    );
    ran.map_err(|e| DbError::Migrate(e.to_string()))
}

impl DbConn {
    /// "SQLite" or "PostgreSQL", for people reading a report.
    pub fn backend_name(&self) -> &'static str {
        db_run!(self, sqlite: |_| "SQLite", postgres: |_| "PostgreSQL")
    }

    /// SQLite has one writer at a time: holding this turn, a writer of this process waits for
    /// the last one to commit and wakes as soon as it has, where SQLite's own busy handler
    /// would sleep in steps of up to 100 ms. PostgreSQL needs no turn (None).
    pub fn sqlite_writer_turn(&self) -> Option<MutexGuard<'static, ()>> {
        static SQLITE_WRITER: Mutex<()> = Mutex::new(());
        let turn = || SQLITE_WRITER.lock().unwrap_or_else(|p| p.into_inner());
        db_run!(self, sqlite: |_| Some(turn()), postgres: |_| None)
    }

    /// In a transaction already: plans its statements for their values (PostgreSQL; see
    /// [`CUSTOM_PLANS`]).
    pub fn prefer_custom_plans(&mut self) -> QueryResult<()> {
        db_run!(
            self,
            sqlite: |_| Ok(()),
            postgres: |c| c.batch_execute(CUSTOM_PLANS)
        )
    }

    /// Runs `read` in a transaction whose statements are planned for their values
    /// (PostgreSQL); on SQLite just runs it.
    pub fn with_custom_plans<T>(
        &mut self,
        read: impl FnOnce(&mut DbConn) -> QueryResult<T>,
    ) -> QueryResult<T> {
        if db_run!(&*self, sqlite: |_| true, postgres: |_| false) {
            return read(self);
        }
        self.transaction(|conn| {
            conn.prefer_custom_plans()?;
            read(conn)
        })
    }

    /// Like [`DbConn::with_custom_plans`], for a read that must follow its index's order and
    /// stop at its limit (PostgreSQL; see [`INDEX_ORDER`]).
    pub fn with_index_order<T>(
        &mut self,
        read: impl FnOnce(&mut DbConn) -> QueryResult<T>,
    ) -> QueryResult<T> {
        self.with_custom_plans(|conn| {
            db_run!(
                &mut *conn,
                sqlite: |_| Ok(()),
                postgres: |c| c.batch_execute(INDEX_ORDER)
            )?;
            read(conn)
        })
    }

    /// Runs `read` with a small SQLite page cache, then gives the connection its usual one
    /// back. For streaming reads (exports) that never come back to a page: with the pool's
    /// 64 MiB cache they would grow the process by the whole cache and push out the pages
    /// people read again. PostgreSQL keeps its cache in the server; nothing changes there.
    pub fn with_small_cache<T>(&mut self, read: impl FnOnce(&mut DbConn) -> T) -> QueryResult<T> {
        if db_run!(&*self, sqlite: |_| false, postgres: |_| true) {
            return Ok(read(self));
        }
        self.batch_execute("PRAGMA cache_size = -2048")?;
        let out = read(self);
        self.batch_execute(SQLITE_CACHE_SIZE)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/x.db").unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("data/x.db"))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("data/x.db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }
}
