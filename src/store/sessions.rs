//! Server-side session state, so that logout and password resets end a session everywhere.

use diesel::prelude::*;

use super::StoreResult;
use crate::db::schema::sessions;
use crate::db::DbConn;
use crate::domain::now_ms;

/// The state of a live (unexpired) session.
pub fn load(conn: &mut DbConn, id: &str) -> StoreResult<Option<String>> {
    sessions::table
        .filter(sessions::id.eq(id))
        .filter(sessions::expires_at.gt(now_ms()))
        .select(sessions::state)
        .first(conn)
        .optional()
}

pub fn insert(
    conn: &mut DbConn,
    id: &str,
    user_id: Option<i64>,
    state: &str,
    expires_at: i64,
) -> StoreResult<()> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(id),
            sessions::user_id.eq(user_id),
            sessions::state.eq(state),
            sessions::expires_at.eq(expires_at),
            sessions::created_at.eq(now_ms()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Rewrites a live session; answers false when it no longer exists.
pub fn update(
    conn: &mut DbConn,
    id: &str,
    user_id: Option<i64>,
    state: &str,
    expires_at: i64,
) -> StoreResult<bool> {
    diesel::update(sessions::table.filter(sessions::id.eq(id)))
        .set((
            sessions::user_id.eq(user_id),
            sessions::state.eq(state),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(|n| n > 0)
}

pub fn touch(conn: &mut DbConn, id: &str, expires_at: i64) -> StoreResult<()> {
    diesel::update(sessions::table.filter(sessions::id.eq(id)))
        .set(sessions::expires_at.eq(expires_at))
        .execute(conn)
        .map(|_| ())
}

pub fn delete(conn: &mut DbConn, id: &str) -> StoreResult<()> {
    diesel::delete(sessions::table.filter(sessions::id.eq(id)))
        .execute(conn)
        .map(|_| ())
}

/// Ends every session of a user (password reset, removal).
pub fn delete_for_user(conn: &mut DbConn, user_id: i64) -> StoreResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
}

pub fn purge_expired(conn: &mut DbConn) -> StoreResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.le(now_ms()))).execute(conn)
}
