//! What the webhook receiver needs from the database: whose post it is, and whether its token
//! was seen before.

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::models::ApiUser;
use super::{AccountScope, StoreResult};
use crate::db::schema::{accounts, api_users, webhook_tokens};
use crate::db::{db_run, DbConn};
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
    let row = (
        webhook_tokens::account_id.eq(scope.account_id()),
        webhook_tokens::token.eq(token),
        webhook_tokens::received_at.eq(now),
    );
    let stale = webhook_tokens::received_at.lt(now - window);
    let claimed = db_run!(conn, |c| {
        let upsert = diesel::insert_into(webhook_tokens::table)
            .values(row)
            .on_conflict((webhook_tokens::account_id, webhook_tokens::token))
            .do_update()
            .set(webhook_tokens::received_at.eq(excluded(webhook_tokens::received_at)));
        diesel::query_dsl::methods::FilterDsl::filter(upsert, stale).execute(c)
    })?;
    Ok(claimed > 0)
}

/// Forgets the tokens received before `before` (past the replay window), in every account.
pub fn purge_tokens(conn: &mut DbConn, before: Millis) -> StoreResult<usize> {
    diesel::delete(webhook_tokens::table.filter(webhook_tokens::received_at.le(before)))
        .execute(conn)
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
