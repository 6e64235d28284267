//! The settings page as the template reads it: the account's switches, its users and API users.

use actix_web::HttpResponse;
use askama::Template;

use super::Viewer;
use crate::domain::{format_in_zone, MailType, Role};
use crate::store::accounts;
use crate::store::models::{ApiUser, User};
use crate::web::filters::account_query;
use crate::web::layout::PageCtx;
use crate::web::{with_db, AppError, AppResult};

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

pub(super) async fn render(
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
        account_param: account_query(viewer),
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
