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
    let account = find_account_by_name(conn, name)?.ok_or(diesel::result::Error::NotFound)?;
    super::alerts::seed_defaults(conn, &AccountScope::new(account.id), now_ms())?;
    Ok(account)
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

/// Creates an owner or member of a customer account. Staff belong to no account: they are
/// made by [`create_staff`] alone, so this refuses them.
pub fn create_user(
    conn: &mut DbConn,
    account_id: i64,
    email: &str,
    role: Role,
    password_hash: &str,
) -> StoreResult<User> {
    if role == Role::Staff {
        return Err(diesel::result::Error::QueryBuilderError(
            "staff belong to no customer account: create them with `mailtrail staff add`".into(),
        ));
    }
    insert_user(conn, Some(account_id), email, role, password_hash)
}

/// Creates a staff user: the operator's people, in no customer account (CLI only).
pub fn create_staff(conn: &mut DbConn, email: &str, password_hash: &str) -> StoreResult<User> {
    insert_user(conn, None, email, Role::Staff, password_hash)
}

fn insert_user(
    conn: &mut DbConn,
    account_id: Option<i64>,
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

/// Every staff user, for `mailtrail staff list`.
pub fn list_staff(conn: &mut DbConn) -> StoreResult<Vec<User>> {
    users::table
        .filter(users::role.eq(Role::Staff.code()))
        .filter(users::account_id.is_null())
        .order(users::email.asc())
        .select(User::as_select())
        .load(conn)
}

/// Sets a staff user's password and ends their sessions; false when no such staff user.
pub fn set_staff_password(
    conn: &mut DbConn,
    email: &str,
    password_hash: &str,
) -> StoreResult<bool> {
    let email = crate::domain::normalize_address(email);
    conn.transaction(|conn| {
        let Some(user) = find_user_by_email(conn, &email)?.filter(|u| u.role() == Role::Staff)
        else {
            return Ok(false);
        };
        diesel::update(users::table.find(user.id))
            .set((
                users::password_hash.eq(password_hash),
                users::password_changed_at.eq(now_ms()),
            ))
            .execute(conn)?;
        super::sessions::delete_for_user(conn, user.id)?;
        Ok(true)
    })
}

/// Removes a staff user and ends their sessions; false when no such staff user.
pub fn remove_staff(conn: &mut DbConn, email: &str) -> StoreResult<bool> {
    let email = crate::domain::normalize_address(email);
    conn.transaction(|conn| {
        let Some(user) = find_user_by_email(conn, &email)?.filter(|u| u.role() == Role::Staff)
        else {
            return Ok(false);
        };
        super::sessions::delete_for_user(conn, user.id)?;
        diesel::delete(users::table.find(user.id)).execute(conn)?;
        Ok(true)
    })
}

pub fn find_user_by_email(conn: &mut DbConn, email: &str) -> StoreResult<Option<User>> {
    users::table
        .filter(users::email.eq(crate::domain::normalize_address(email)))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// The signed-in user and their customer account (None for staff), read once per request.
pub fn user_with_account(
    conn: &mut DbConn,
    user_id: i64,
) -> StoreResult<Option<(User, Option<Account>)>> {
    let Some(user) = users::table
        .find(user_id)
        .select(User::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let account = match user.account_id {
        Some(id) => match get_account(conn, id)? {
            Some(account) => Some(account),
            None => return Ok(None),
        },
        None => None,
    };
    Ok(Some((user, account)))
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

/// The settings an account owner changes on `/settings`.
pub struct AccountSettings<'a> {
    pub time_zone: &'a str,
    pub mask_addresses: bool,
    pub export_allowed: bool,
}

pub fn update_settings(
    conn: &mut DbConn,
    scope: &AccountScope,
    s: &AccountSettings,
) -> StoreResult<()> {
    diesel::update(accounts::table.find(scope.account_id()))
        .set((
            accounts::time_zone.eq(s.time_zone),
            accounts::mask_addresses.eq(s.mask_addresses),
            accounts::export_allowed.eq(s.export_allowed),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The name the account's recipients know it by, when its owners set one.
pub fn display_name(conn: &mut DbConn, account_id: i64) -> StoreResult<Option<String>> {
    use crate::db::schema::account_display_names as d;
    d::table
        .find(account_id)
        .select(d::display_name)
        .first::<String>(conn)
        .optional()
}

/// Sets (or, with None, removes) the account's display name.
pub fn set_display_name(
    conn: &mut DbConn,
    scope: &AccountScope,
    name: Option<&str>,
) -> StoreResult<()> {
    use crate::db::schema::account_display_names as d;
    let account = scope.account_id();
    conn.transaction(|conn| {
        diesel::delete(d::table.find(account)).execute(conn)?;
        if let Some(name) = name {
            diesel::insert_into(d::table)
                .values((d::account_id.eq(account), d::display_name.eq(name)))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Sets a new SendCloud webhook app key and answers it (shown once to the owner).
pub fn rotate_webhook_key(conn: &mut DbConn, scope: &AccountScope) -> StoreResult<String> {
    let key = crate::domain::random_token(32);
    diesel::update(accounts::table.find(scope.account_id()))
        .set(accounts::webhook_app_key.eq(&key))
        .execute(conn)?;
    Ok(key)
}

/// The owners and members of the account (staff are in none).
pub fn list_users(conn: &mut DbConn, scope: &AccountScope) -> StoreResult<Vec<User>> {
    users::table
        .filter(users::account_id.eq(scope.account_id()))
        .filter(users::role.ne(Role::Staff.code()))
        .order(users::email.asc())
        .select(User::as_select())
        .load(conn)
}

/// Removes an owner or member of the account, then ends their sessions; false when the
/// account has no such user, and then nothing at all is changed.
pub fn remove_user(conn: &mut DbConn, scope: &AccountScope, user_id: i64) -> StoreResult<bool> {
    conn.transaction(|conn| {
        let n = diesel::delete(
            users::table
                .filter(users::account_id.eq(scope.account_id()))
                .filter(users::role.ne(Role::Staff.code()))
                .filter(users::id.eq(user_id)),
        )
        .execute(conn)?;
        if n > 0 {
            super::sessions::delete_for_user(conn, user_id)?;
        }
        Ok(n > 0)
    })
}

/// Sets the password of an owner or member of the account and ends every session they have;
/// false when the account has no such user.
pub fn reset_password(
    conn: &mut DbConn,
    scope: &AccountScope,
    user_id: i64,
    password_hash: &str,
) -> StoreResult<bool> {
    conn.transaction(|conn| {
        let n = diesel::update(
            users::table
                .filter(users::account_id.eq(scope.account_id()))
                .filter(users::role.ne(Role::Staff.code()))
                .filter(users::id.eq(user_id)),
        )
        .set((
            users::password_hash.eq(password_hash),
            users::password_changed_at.eq(now_ms()),
        ))
        .execute(conn)?;
        if n > 0 {
            super::sessions::delete_for_user(conn, user_id)?;
        }
        Ok(n > 0)
    })
}

/// Gives an API user a new key (answered once); the old key stops working at once.
pub fn rotate_api_key(
    conn: &mut DbConn,
    scope: &AccountScope,
    api_user_id: i64,
) -> StoreResult<Option<String>> {
    let key = new_api_key();
    let n = diesel::update(
        api_users::table
            .filter(api_users::account_id.eq(scope.account_id()))
            .filter(api_users::id.eq(api_user_id))
            .filter(api_users::revoked_at.is_null()),
    )
    .set((
        api_users::key_hash.eq(hash_api_key(&key)),
        api_users::key_hint.eq(format!("{}…", &key[..7])),
    ))
    .execute(conn)?;
    Ok((n > 0).then_some(key))
}

/// Revokes an API user's key for good; false when there was none to revoke.
pub fn revoke_api_user(
    conn: &mut DbConn,
    scope: &AccountScope,
    api_user_id: i64,
) -> StoreResult<bool> {
    let n = diesel::update(
        api_users::table
            .filter(api_users::account_id.eq(scope.account_id()))
            .filter(api_users::id.eq(api_user_id))
            .filter(api_users::revoked_at.is_null()),
    )
    .set(api_users::revoked_at.eq(now_ms()))
    .execute(conn)?;
    Ok(n > 0)
}
