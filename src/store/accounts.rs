//! Accounts, their users and their API users.

use diesel::prelude::*;

use super::models::*;
use super::{AccountScope, StoreResult};
use crate::db::schema::{accounts, api_users, users};
use crate::db::DbConn;
use crate::domain::{hash_api_key, new_api_key, now_ms, MailType, Role, DEFAULT_TIME_ZONE};

pub fn create_account(conn: &mut DbConn, name: &str) -> StoreResult<Account> {
    diesel::insert_into(accounts::table)
        .values(NewAccount {
            name,
            time_zone: DEFAULT_TIME_ZONE,
            created_at: now_ms(),
        })
        .execute(conn)?;
    find_account_by_name(conn, name)?.ok_or(diesel::result::Error::NotFound)
}

pub fn find_account_by_name(conn: &mut DbConn, name: &str) -> StoreResult<Option<Account>> {
    accounts::table
        .filter(accounts::name.eq(name))
        .select(Account::as_select())
        .first(conn)
        .optional()
}

pub fn get_account(conn: &mut DbConn, id: i64) -> StoreResult<Option<Account>> {
    accounts::table
        .find(id)
        .select(Account::as_select())
        .first(conn)
        .optional()
}

/// Every account, for staff choosing whose data to look at.
pub fn list_accounts(conn: &mut DbConn) -> StoreResult<Vec<Account>> {
    accounts::table
        .order(accounts::name.asc())
        .select(Account::as_select())
        .load(conn)
}

pub fn create_user(
    conn: &mut DbConn,
    account_id: i64,
    email: &str,
    role: Role,
    password_hash: &str,
) -> StoreResult<User> {
    let now = now_ms();
    let email = crate::domain::normalize_address(email);
    diesel::insert_into(users::table)
        .values(NewUser {
            account_id,
            email: &email,
            password_hash,
            role: role.code(),
            created_at: now,
            password_changed_at: now,
        })
        .execute(conn)?;
    find_user_by_email(conn, &email)?.ok_or(diesel::result::Error::NotFound)
}

pub fn find_user_by_email(conn: &mut DbConn, email: &str) -> StoreResult<Option<User>> {
    users::table
        .filter(users::email.eq(crate::domain::normalize_address(email)))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// The signed-in user and their account, read once per request.
pub fn user_with_account(conn: &mut DbConn, user_id: i64) -> StoreResult<Option<(User, Account)>> {
    users::table
        .inner_join(accounts::table)
        .filter(users::id.eq(user_id))
        .select((User::as_select(), Account::as_select()))
        .first(conn)
        .optional()
}

/// Creates an API user and returns it with its key, which is stored only as a hash.
pub fn create_api_user(
    conn: &mut DbConn,
    scope: &AccountScope,
    name: &str,
    mail_type: MailType,
) -> StoreResult<(ApiUser, String)> {
    let key = new_api_key();
    let hash = hash_api_key(&key);
    let hint = format!("{}…", &key[..7]);
    diesel::insert_into(api_users::table)
        .values(NewApiUser {
            account_id: scope.account_id(),
            name,
            key_hash: &hash,
            key_hint: &hint,
            mail_type: mail_type.as_i16(),
            created_at: now_ms(),
        })
        .execute(conn)?;
    let api_user = api_users::table
        .filter(api_users::key_hash.eq(&hash))
        .select(ApiUser::as_select())
        .first(conn)?;
    Ok((api_user, key))
}

/// The live API user a key belongs to; a revoked key finds nothing.
pub fn api_user_by_key(conn: &mut DbConn, key: &str) -> StoreResult<Option<ApiUser>> {
    api_users::table
        .filter(api_users::key_hash.eq(hash_api_key(key)))
        .filter(api_users::revoked_at.is_null())
        .select(ApiUser::as_select())
        .first(conn)
        .optional()
}

pub fn list_api_users(conn: &mut DbConn, scope: &AccountScope) -> StoreResult<Vec<ApiUser>> {
    api_users::table
        .filter(api_users::account_id.eq(scope.account_id()))
        .order(api_users::name.asc())
        .select(ApiUser::as_select())
        .load(conn)
}

/// Switches the S+ features of an account (staff only, in the web layer).
pub fn set_splus(conn: &mut DbConn, account_id: i64, content: bool, log: bool) -> StoreResult<()> {
    diesel::update(accounts::table.find(account_id))
        .set((
            accounts::splus_content.eq(content),
            accounts::splus_log.eq(log),
        ))
        .execute(conn)
        .map(|_| ())
}
