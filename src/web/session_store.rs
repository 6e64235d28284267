//! actix-session's store over our `sessions` table, so that a session can be ended
//! server-side (logout, password reset) on both backends.

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

use crate::db::Pool;
use crate::domain::{now_ms, random_token};
use crate::store::sessions;

/// The state key holding the signed-in user's id.
pub const USER_KEY: &str = "user_id";

#[derive(Clone)]
pub struct DbSessionStore {
    pool: Pool,
}

impl DbSessionStore {
    pub fn new(pool: Pool) -> Self {
        DbSessionStore { pool }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::db::DbConn) -> Result<T, diesel::result::Error> + Send + 'static,
    ) -> anyhow::Result<T> {
        let pool = self.pool.clone();
        let result = actix_web::web::block(move || {
            let mut conn = pool.get()?;
            f(&mut conn).map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        result
    }
}

fn expiry(ttl: &Duration) -> i64 {
    now_ms() + ttl.whole_milliseconds() as i64
}

fn user_of(state: &HashMap<String, String>) -> Option<i64> {
    state
        .get(USER_KEY)
        .and_then(|v| serde_json::from_str::<i64>(v).ok())
}

impl SessionStore for DbSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let id = key.as_ref().to_string();
        let state = self
            .run(move |conn| sessions::load(conn, &id))
            .await
            .map_err(LoadError::Other)?;
        match state {
            None => Ok(None),
            Some(s) => serde_json::from_str(&s)
                .map(Some)
                .map_err(|e| LoadError::Deserialization(e.into())),
        }
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let body = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let id = random_token(64);
        let key = SessionKey::try_from(id.clone()).map_err(|e| SaveError::Other(e.into()))?;
        let user = user_of(&state);
        let expires = expiry(ttl);
        self.run(move |conn| sessions::insert(conn, &id, user, &body, expires))
            .await
            .map_err(SaveError::Other)?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let body =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let id = key.as_ref().to_string();
        let user = user_of(&state);
        let expires = expiry(ttl);
        let body2 = body.clone();
        let updated = self
            .run(move |conn| sessions::update(conn, &id, user, &body2, expires))
            .await
            .map_err(UpdateError::Other)?;
        if updated {
            return Ok(key);
        }
        // The row is gone (ended elsewhere, e.g. logout in another tab): start a fresh,
        // signed-out session rather than resurrect the old one.
        let mut state = state;
        state.remove(USER_KEY);
        let body =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let user = None;
        let id = random_token(64);
        let new_key = SessionKey::try_from(id.clone()).map_err(|e| UpdateError::Other(e.into()))?;
        self.run(move |conn| sessions::insert(conn, &id, user, &body, expires))
            .await
            .map_err(UpdateError::Other)?;
        Ok(new_key)
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let id = key.as_ref().to_string();
        let expires = expiry(ttl);
        self.run(move |conn| sessions::touch(conn, &id, expires))
            .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        let id = key.as_ref().to_string();
        self.run(move |conn| sessions::delete(conn, &id)).await
    }
}
