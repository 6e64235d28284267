//! The account's users and API users: adding, removing, new passwords and keys.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{change_one, done, refuse, require_owner};
use crate::domain::{hash_password, EmailAddress, MailType, Role};
use crate::store::accounts;
use crate::web::auth::{redirect, Viewer};
use crate::web::{with_db, AppError, AppResult};

#[derive(Deserialize)]
pub struct NewUserForm {
    email: String,
    password: String,
    role: String,
}

pub async fn add_user(viewer: Viewer, form: web::Form<NewUserForm>) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let form = form.into_inner();
    let lang = viewer.lang;
    let Some(email) = EmailAddress::parse(&form.email) else {
        return refuse(&viewer, lang.t("settings.bad_email")).await;
    };
    let role = match Role::from_code(&form.role) {
        Some(r @ (Role::Owner | Role::Member)) => r,
        _ => return refuse(&viewer, lang.t("settings.bad_role")).await,
    };
    if form.password.chars().count() < 10 {
        return refuse(&viewer, lang.t("settings.short_password")).await;
    }
    let account_id = viewer.account.id;
    let hash = hash_password(&form.password);
    let wanted = email.as_str().to_string();
    let created = with_db(viewer.state(), move |conn| {
        if accounts::find_user_by_email(conn, &wanted)?.is_some() {
            return Ok(false);
        }
        accounts::create_user(conn, account_id, &wanted, role, &hash)?;
        Ok(true)
    })
    .await?;
    if !created {
        return refuse(&viewer, lang.t("settings.email_taken")).await;
    }
    viewer
        .audit("settings.user_add", format!("{} {}", email, role.code()))
        .await?;
    done(&viewer, Some("settings.user_added"), None)
}

#[derive(Deserialize)]
pub struct UserIdForm {
    user_id: i64,
    password: Option<String>,
}

pub async fn remove_user(viewer: Viewer, form: web::Form<UserIdForm>) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    if form.user_id == viewer.user.id {
        return refuse(&viewer, viewer.lang.t("settings.not_yourself")).await;
    }
    let scope = viewer.scope();
    let id = form.user_id;
    change_one(
        &viewer,
        move |conn| Ok(accounts::remove_user(conn, &scope, id)?),
        "settings.user_remove",
        format!("user #{id}"),
        "settings.user_removed",
    )
    .await
}

/// Sets a new password for a user of the account; their sessions end at once.
pub async fn reset_password(
    viewer: Viewer,
    form: web::Form<UserIdForm>,
) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let password = form.password.clone().unwrap_or_default();
    if password.chars().count() < 10 {
        return refuse(&viewer, viewer.lang.t("settings.short_password")).await;
    }
    let scope = viewer.scope();
    let id = form.user_id;
    let hash = hash_password(&password);
    if !with_db(viewer.state(), move |conn| {
        Ok(accounts::reset_password(conn, &scope, id, &hash)?)
    })
    .await?
    {
        return Err(AppError::NotFound);
    }
    viewer
        .audit("settings.password_reset", format!("user #{id}"))
        .await?;
    if id == viewer.user.id {
        return Ok(redirect("/login"));
    }
    done(&viewer, Some("settings.password_reset"), None)
}

#[derive(Deserialize)]
pub struct NewApiUserForm {
    name: String,
    mail_type: String,
}

pub async fn add_api_user(
    viewer: Viewer,
    form: web::Form<NewApiUserForm>,
) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let lang = viewer.lang;
    let name = form.name.trim().to_string();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if !valid {
        return refuse(&viewer, lang.t("settings.bad_api_user")).await;
    }
    let Some(mail_type) = MailType::from_code(&form.mail_type) else {
        return refuse(&viewer, lang.t("filter.bad_mail_type")).await;
    };
    let scope = viewer.scope();
    let wanted = name.clone();
    let key = with_db(viewer.state(), move |conn| {
        if accounts::list_api_users(conn, &scope)?
            .iter()
            .any(|a| a.name == wanted)
        {
            return Ok(None);
        }
        Ok(Some(
            accounts::create_api_user(conn, &scope, &wanted, mail_type)?.1,
        ))
    })
    .await?;
    let Some(key) = key else {
        return refuse(&viewer, lang.t("settings.api_user_taken")).await;
    };
    viewer.audit("settings.api_user_add", name.clone()).await?;
    done(&viewer, None, Some((format!("API_USER {name}"), key)))
}

#[derive(Deserialize)]
pub struct ApiUserIdForm {
    api_user_id: i64,
}

pub async fn rotate_api_key(
    viewer: Viewer,
    form: web::Form<ApiUserIdForm>,
) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let scope = viewer.scope();
    let id = form.api_user_id;
    let (name, key) = with_db(viewer.state(), move |conn| {
        let name = accounts::list_api_users(conn, &scope)?
            .into_iter()
            .find(|a| a.id == id)
            .map(|a| a.name);
        Ok(name.zip(accounts::rotate_api_key(conn, &scope, id)?))
    })
    .await?
    .ok_or(AppError::NotFound)?;
    viewer
        .audit("settings.api_key_rotate", format!("api user #{id}"))
        .await?;
    done(&viewer, None, Some((format!("API_USER {name}"), key)))
}

pub async fn revoke_api_user(
    viewer: Viewer,
    form: web::Form<ApiUserIdForm>,
) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let scope = viewer.scope();
    let id = form.api_user_id;
    change_one(
        &viewer,
        move |conn| Ok(accounts::revoke_api_user(conn, &scope, id)?),
        "settings.api_user_revoke",
        format!("api user #{id}"),
        "settings.api_user_revoked",
    )
    .await
}
