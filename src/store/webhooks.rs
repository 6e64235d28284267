//! What the webhook receiver needs from the database: whose post it is, and whether its token
//! was seen before.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::models::ApiUser;
use super::{AccountScope, StoreResult};
use crate::db::schema::{accounts, api_users};
use crate::db::{placeholders, DbConn};
use crate::domain::Millis;

/// The live API users with this name, in any account. Only for the webhook receiver, which
/// must find the account a post belongs to before it can check the post's signature.
pub fn api_users_named(conn: &mut DbConn, name: &str) -> StoreResult<Vec<ApiUser>> {
    api_users::table
        .filter(api_users::name.eq(name))
        .filter(api_users::revoked_at.is_null())
        .select(ApiUser::as_select())
        .load(conn)
}

/// Records `token` as seen at `now`; false when it was already seen within `window`.
/// One statement, so that two deliveries of the same post cannot both claim it.
pub fn claim_token(
    conn: &mut DbConn,
    scope: &AccountScope,
    token: &str,
    now: Millis,
    window: Millis,
) -> StoreResult<bool> {
    let sql = placeholders(
        "INSERT INTO webhook_tokens (account_id, token, received_at) VALUES (?, ?, ?) \
         ON CONFLICT (account_id, token) DO UPDATE SET received_at = excluded.received_at \
         WHERE webhook_tokens.received_at < ?",
        !conn.is_sqlite(),
    );
    let claimed = diesel::sql_query(sql)
        .bind::<BigInt, _>(scope.account_id())
        .bind::<Text, _>(token)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(now - window)
        .execute(conn)?;
    Ok(claimed > 0)
}

/// Why a pasted APP KEY cannot be right; the key itself is never repeated.
pub fn check_app_key(key: &str) -> Result<(), &'static str> {
    if key.len() < 16 || key.len() > 256 {
        return Err(
            "The APP KEY must be 16 to 256 characters long, as SendCloud's console shows it.",
        );
    }
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err("The APP KEY may contain only visible ASCII characters, without spaces.");
    }
    Ok(())
}

/// Stores the APP KEY that SendCloud issued for this account, pasted by its owner.
pub fn set_app_key(conn: &mut DbConn, scope: &AccountScope, key: &str) -> StoreResult<()> {
    diesel::update(accounts::table.find(scope.account_id()))
        .set(accounts::webhook_app_key.eq(key))
        .execute(conn)
        .map(|_| ())
}
