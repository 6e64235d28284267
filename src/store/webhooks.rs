//! What the webhook receiver needs from the database: whose post it is, and whether its token
//! was seen before.

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::models::ApiUser;
use super::{AccountScope, StoreResult};
use crate::db::schema::{api_users, webhook_tokens};
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
