//! The queries, one module per area. Every query of customer data takes an [`AccountScope`].

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod events;
pub mod exports;
pub mod feeds;
pub mod lease;
pub mod lists;
pub mod messages;
pub mod models;
pub mod partitions;
pub mod providers;
pub mod refs;
pub mod retention;
pub mod rollup;
pub mod sessions;
pub mod status;
pub mod suppressed;
pub mod tracking;
pub mod webhooks;

pub use diesel::result::Error as StoreError;
pub type StoreResult<T> = Result<T, StoreError>;

/// Answers once the database does: one round trip, nothing read.
pub fn ping(conn: &mut crate::db::DbConn) -> StoreResult<()> {
    use diesel::RunQueryDsl;
    diesel::sql_query("SELECT 1").execute(conn).map(|_| ())
}

/// The one account whose data a query may read or change. The web layer builds it from the
/// signed-in user (staff: from the account they chose, audited); the CLI from an account name.
/// Store functions filter by it; none takes a bare account id from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountScope {
    account_id: i64,
}

impl AccountScope {
    pub fn new(account_id: i64) -> Self {
        AccountScope { account_id }
    }

    pub fn account_id(&self) -> i64 {
        self.account_id
    }
}

/// A page by offset, the way SendCloud's API pages: skip `start` rows, take at most `limit`.
/// Only for bounded windows or selective filters: the skipped rows are still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPage {
    pub start: i64,
    pub limit: i64,
}
