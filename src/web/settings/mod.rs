//! `/settings` for account owners: time zone, masking, exports, the SendCloud webhook app
//! key, users and API users. Secrets are shown once, on the page that made them. Every change
//! is written to the audit log. Staff switch the S+ features.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::auth::{redirect, Viewer};
use super::layout::PageCtx;
use super::{with_db, AppError, AppResult};
use crate::domain::{format_in_zone, hash_password, parse_zone, EmailAddress, MailType, Role};
use crate::store::accounts::{self, AccountSettings};
use crate::store::models::{ApiUser, User};
use crate::store::webhooks;

/// Only owners change settings; staff may look (and switch S+), members may not enter.
fn require_owner(viewer: &Viewer) -> AppResult<()> {
    match viewer.role() {
        Role::Owner if !viewer.is_staff_view() => Ok(()),
        _ => Err(AppError::forbidden(viewer.lang.t("settings.owners_only"))),
    }
}

pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub is_me: bool,
}

pub struct ApiUserRow {
    pub id: i64,
    pub name: String,
    pub mail_type: String,
    pub key_hint: String,
    pub created: String,
    pub revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "settings/page.html")]
struct SettingsPage {
    ctx: PageCtx,
    time_zone: String,
    /// The name recipients know the account by (the unsubscribe page); empty: unset.
    display_name: String,
    account_name: String,
    zones: Vec<&'static str>,
    mask_addresses: bool,
    export_allowed: bool,
    splus_content: bool,
    splus_log: bool,
    can_switch_splus: bool,
    is_owner: bool,
    webhook_key_set: bool,
    users: Vec<UserRow>,
    api_users: Vec<ApiUserRow>,
    /// A secret made by the action that led here, shown this once.
    secret: Option<(String, String)>,
    message: Option<String>,
    error: Option<String>,
    account_param: String,
}

async fn render(
    viewer: &Viewer,
    secret: Option<(String, String)>,
    message: Option<String>,
    error: Option<String>,
) -> AppResult<HttpResponse> {
    let scope = viewer.scope();
    let account_id = viewer.account.id;
    let (users, api_users, display_name): (Vec<User>, Vec<ApiUser>, Option<String>) =
        with_db(viewer.state(), move |conn| {
            Ok((
                accounts::list_users(conn, &scope)?,
                accounts::list_api_users(conn, &scope)?,
                accounts::display_name(conn, account_id)?,
            ))
        })
        .await?;
    let lang = viewer.lang;
    let zone = viewer.account.zone();
    let page = SettingsPage {
        ctx: viewer.page("/settings"),
        time_zone: viewer.account.time_zone.clone(),
        display_name: display_name.unwrap_or_default(),
        account_name: viewer.account.name.clone(),
        zones: chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect(),
        mask_addresses: viewer.account.mask_addresses,
        export_allowed: viewer.account.export_allowed,
        splus_content: viewer.account.splus_content,
        splus_log: viewer.account.splus_log,
        can_switch_splus: viewer.is_staff(),
        is_owner: viewer.role() == Role::Owner && !viewer.is_staff_view(),
        webhook_key_set: viewer.account.webhook_app_key.is_some(),
        users: users
            .into_iter()
            .map(|u| UserRow {
                id: u.id,
                is_me: u.id == viewer.user.id,
                role: u.role().label(lang.code()).to_string(),
                email: u.email,
            })
            .collect(),
        api_users: api_users
            .into_iter()
            .map(|a| ApiUserRow {
                id: a.id,
                mail_type: MailType::from_i16(a.mail_type)
                    .map(|m| m.label(lang.code()))
                    .unwrap_or("")
                    .to_string(),
                key_hint: a.key_hint,
                created: format_in_zone(a.created_at, &zone),
                revoked: a.revoked_at.map(|t| format_in_zone(t, &zone)),
                name: a.name,
            })
            .collect(),
        secret,
        message,
        error: error.clone(),
        account_param: if viewer.is_staff_view() {
            format!("?account={}", viewer.account.id)
        } else {
            String::new()
        },
    };
    let shows_secret = page.secret.is_some();
    let html = page.render().map_err(AppError::internal)?;
    let status = if error.is_some() { 400 } else { 200 };
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default());
    response.content_type("text/html; charset=utf-8");
    if shows_secret {
        // A key shown once is not kept by the browser's cache either.
        response.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    }
    Ok(response.body(html))
}

/// What a settings POST that worked leaves for the page it redirects to (303): a sentence,
/// and a secret to show this once. It lives in the session until that page takes it.
#[derive(Serialize, Deserialize, Default)]
struct Flash {
    /// A text key of the message.
    message: Option<String>,
    /// (label, value) of a new key.
    secret: Option<(String, String)>,
}

const FLASH_KEY: &str = "settings_flash";

/// Ends a settings POST that worked: the outcome goes to the session, the browser to
/// `/settings` (303), so that a reload shows the page again instead of repeating the action.
fn done(
    viewer: &Viewer,
    message: Option<&str>,
    secret: Option<(String, String)>,
) -> AppResult<HttpResponse> {
    let flash = Flash {
        message: message.map(str::to_string),
        secret,
    };
    viewer
        .session
        .insert(FLASH_KEY, flash)
        .map_err(AppError::internal)?;
    Ok(redirect("/settings"))
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn page(viewer: Viewer, query: web::Query<SavedQuery>) -> AppResult<HttpResponse> {
    if viewer.role() == Role::Member {
        return Err(AppError::forbidden(viewer.lang.t("settings.owners_only")));
    }
    let flash = viewer
        .session
        .remove_as::<Flash>(FLASH_KEY)
        .and_then(Result::ok)
        .unwrap_or_default();
    let message = flash
        .message
        .or_else(|| query.saved.as_ref().map(|_| "settings.saved".to_string()))
        .map(|key| viewer.lang.t(&key));
    render(&viewer, flash.secret, message, None).await
}

#[derive(Deserialize)]
pub struct AccountForm {
    time_zone: String,
    #[serde(default)]
    display_name: String,
    mask_addresses: Option<String>,
    export_allowed: Option<String>,
}

pub async fn save_account(viewer: Viewer, form: web::Form<AccountForm>) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let form = form.into_inner();
    if parse_zone(&form.time_zone).is_none() {
        return render(
            &viewer,
            None,
            None,
            Some(viewer.lang.t("settings.bad_zone")),
        )
        .await;
    }
    let display_name = form.display_name.trim().to_string();
    if display_name.chars().count() > 100 || display_name.chars().any(char::is_control) {
        return render(
            &viewer,
            None,
            None,
            Some(viewer.lang.t("settings.bad_display_name")),
        )
        .await;
    }
    let scope = viewer.scope();
    let (zone, mask, export) = (
        form.time_zone.clone(),
        form.mask_addresses.is_some(),
        form.export_allowed.is_some(),
    );
    let shown = display_name.clone();
    with_db(viewer.state(), move |conn| {
        accounts::update_settings(
            conn,
            &scope,
            &AccountSettings {
                time_zone: &zone,
                mask_addresses: mask,
                export_allowed: export,
            },
        )?;
        let name = Some(shown.as_str()).filter(|n| !n.is_empty());
        Ok(accounts::set_display_name(conn, &scope, name)?)
    })
    .await?;
    viewer
        .audit(
            "settings.account",
            format!(
                "time_zone={} mask={} export={} display_name={:?}",
                form.time_zone, mask, export, display_name
            ),
        )
        .await?;
    Ok(redirect("/settings?saved=1"))
}

#[derive(Deserialize)]
pub struct SplusForm {
    splus_content: Option<String>,
    splus_log: Option<String>,
}

/// Staff switch the S+ features of the account they look at.
pub async fn save_splus(viewer: Viewer, form: web::Form<SplusForm>) -> AppResult<HttpResponse> {
    if !viewer.is_staff() {
        return Err(AppError::forbidden(viewer.lang.t("settings.staff_only")));
    }
    let (content, log) = (form.splus_content.is_some(), form.splus_log.is_some());
    let id = viewer.account.id;
    with_db(viewer.state(), move |conn| {
        Ok(accounts::set_splus(conn, id, content, log)?)
    })
    .await?;
    viewer
        .audit("settings.splus", format!("content={content} log={log}"))
        .await?;
    Ok(redirect(&format!("/settings?account={id}")))
}

#[derive(Deserialize)]
pub struct WebhookKeyForm {
    /// The APP KEY SendCloud shows (控制台 【发送设置】-【WebHook】); empty: generate one.
    #[serde(default)]
    app_key: String,
    /// The generate/rotate button: a new key of ours, whatever the text field holds.
    generate: Option<String>,
}

/// Sets the key that SendCloud's webhook posts are signed with: the APP KEY the owner pastes
/// from SendCloud's console, or, when the field is empty, one we generate and show this once.
/// A pasted key is never shown back.
pub async fn rotate_webhook_key(
    viewer: Viewer,
    form: web::Form<WebhookKeyForm>,
) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let scope = viewer.scope();
    let form = form.into_inner();
    let pasted = if form.generate.is_some() {
        String::new()
    } else {
        form.app_key.trim().to_string()
    };
    if !pasted.is_empty() {
        if let Err(problem) = webhooks::check_app_key(&pasted) {
            return render(&viewer, None, None, Some(problem.to_string())).await;
        }
        with_db(viewer.state(), move |conn| {
            Ok(webhooks::set_app_key(conn, &scope, &pasted)?)
        })
        .await?;
        viewer
            .audit("settings.webhook_key", "pasted".into())
            .await?;
        return done(&viewer, Some("settings.webhook_key_saved"), None);
    }
    let key = with_db(viewer.state(), move |conn| {
        Ok(accounts::rotate_webhook_key(conn, &scope)?)
    })
    .await?;
    viewer
        .audit("settings.webhook_key", "rotated".into())
        .await?;
    done(
        &viewer,
        None,
        Some((viewer.lang.t("settings.webhook_key"), key)),
    )
}

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
        return render(&viewer, None, None, Some(lang.t("settings.bad_email"))).await;
    };
    let role = match Role::from_code(&form.role) {
        Some(r @ (Role::Owner | Role::Member)) => r,
        _ => return render(&viewer, None, None, Some(lang.t("settings.bad_role"))).await,
    };
    if form.password.chars().count() < 10 {
        return render(&viewer, None, None, Some(lang.t("settings.short_password"))).await;
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
        return render(&viewer, None, None, Some(lang.t("settings.email_taken"))).await;
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
        return render(
            &viewer,
            None,
            None,
            Some(viewer.lang.t("settings.not_yourself")),
        )
        .await;
    }
    let scope = viewer.scope();
    let id = form.user_id;
    if !with_db(viewer.state(), move |conn| {
        Ok(accounts::remove_user(conn, &scope, id)?)
    })
    .await?
    {
        return Err(AppError::NotFound);
    }
    viewer
        .audit("settings.user_remove", format!("user #{id}"))
        .await?;
    done(&viewer, Some("settings.user_removed"), None)
}

/// Sets a new password for a user of the account; their sessions end at once.
pub async fn reset_password(
    viewer: Viewer,
    form: web::Form<UserIdForm>,
) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let password = form.password.clone().unwrap_or_default();
    if password.chars().count() < 10 {
        return render(
            &viewer,
            None,
            None,
            Some(viewer.lang.t("settings.short_password")),
        )
        .await;
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
        return render(&viewer, None, None, Some(lang.t("settings.bad_api_user"))).await;
    }
    let Some(mail_type) = MailType::from_code(&form.mail_type) else {
        return render(&viewer, None, None, Some(lang.t("filter.bad_mail_type"))).await;
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
        return render(&viewer, None, None, Some(lang.t("settings.api_user_taken"))).await;
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
    if !with_db(viewer.state(), move |conn| {
        Ok(accounts::revoke_api_user(conn, &scope, id)?)
    })
    .await?
    {
        return Err(AppError::NotFound);
    }
    viewer
        .audit("settings.api_user_revoke", format!("api user #{id}"))
        .await?;
    done(&viewer, Some("settings.api_user_revoked"), None)
}
