//! What every handler can reach: the pool, the settings, the login limiter, and the means to
//! stop the background work.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::{self, Pool};
use crate::settings::Settings;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    pub login_limiter: Arc<super::auth::LoginLimiter>,
    /// SendCloud API v2 calls per API_USER.
    pub apiv2_limiter: Arc<super::sendcloud_api::CallLimiter>,
    /// Cancelled when the process is asked to stop (SIGTERM or SIGINT): the HTTP server then
    /// finishes the requests in flight and the background workers put their work down.
    pub shutdown: CancellationToken,
    /// The background workers, so that a stopping server can wait for them to finish.
    pub tasks: TaskTracker,
}

impl AppState {
    /// Opens the database named by the settings and brings its schema up to date.
    pub fn open(settings: Settings) -> anyhow::Result<Self> {
        let pool = db::open_pool(&settings.database_url, settings.pool_size)?;
        let mut conn = pool.get()?;
        db::migrate(&mut conn)?;
        crate::store::partitions::ensure_ahead(&mut conn, crate::domain::now_ms())?;
        // The daily provider rollup counts the days of each account's zone.
        crate::store::providers::realign_all(&mut conn)?;
        drop(conn);
        let login_limiter = Arc::new(super::auth::LoginLimiter::new(&settings));
        let apiv2_limiter = Arc::new(super::sendcloud_api::CallLimiter::new(&settings));
        Ok(AppState {
            pool,
            settings: Arc::new(settings),
            login_limiter,
            apiv2_limiter,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }
}
