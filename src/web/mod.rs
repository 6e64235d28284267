//! HTTP only: sessions, CSRF, the pages, the JSON API and SendCloud's API v2. Handlers extract, authorise,
//! call one store function and render.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod body;
pub mod content;
pub mod csrf;
pub mod error;
pub mod exports;
pub mod feeds;
pub mod filters;
pub mod guard;
pub mod headers;
pub mod lang;
pub mod layout;
pub mod lists;
pub mod lookup;
pub mod message;
pub mod metrics;
pub mod opens_clicks;
pub mod overview;
pub mod pages;
pub mod providers;
pub mod sendcloud_api;
pub mod session_store;
pub mod settings;
pub mod staff;
pub mod state;
pub mod status;
pub mod status_csv;
pub mod suppressions;
pub mod tracking;
pub mod webhooks;

pub use error::{AppError, AppResult};
pub use state::AppState;

use crate::db::DbConn;

/// Runs blocking database work off the async executor with a pooled connection.
pub async fn with_db<T, F>(state: &AppState, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let pool = state.pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get().map_err(AppError::unavailable)?;
        f(&mut conn)
    })
    .await
    .map_err(AppError::internal)?
}
