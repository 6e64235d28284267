//! `/settings` for account owners: time zone, masking, exports, the SendCloud webhook app
//! key, users and API users. Secrets are shown once, on the page that made them. Every change
//! is written to the audit log. Staff switch the S+ features.

mod account;
mod users;
mod view;

pub use account::{rotate_webhook_key, save_account, save_splus};
pub use users::{
    add_api_user, add_user, remove_user, reset_password, revoke_api_user, rotate_api_key,
};
pub use view::{ApiUserRow, UserRow};

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::{redirect, Viewer};
use super::{with_db, AppError, AppResult};
use crate::domain::Role;
use view::render;

/// Only owners change settings; staff may look (and switch S+), members may not enter.
fn require_owner(viewer: &Viewer) -> AppResult<()> {
    match viewer.role() {
        Role::Owner if !viewer.is_staff_view() => Ok(()),
        _ => Err(AppError::forbidden(viewer.lang.t("settings.owners_only"))),
    }
}

/// Answers a settings POST that was refused with the page and `message` (400).
async fn refuse(viewer: &Viewer, message: String) -> AppResult<HttpResponse> {
    render(viewer, None, None, Some(message)).await
}

/// Ends a settings POST that changes one row of the account, found by `change`: 404 when
/// there is no such row; otherwise the change is audited and the page says `message`.
async fn change_one<F>(
    viewer: &Viewer,
    change: F,
    action: &str,
    target: String,
    message: &str,
) -> AppResult<HttpResponse>
where
    F: FnOnce(&mut crate::db::DbConn) -> AppResult<bool> + Send + 'static,
{
    if !with_db(viewer.state(), change).await? {
        return Err(AppError::NotFound);
    }
    viewer.audit(action, target).await?;
    done(viewer, Some(message), None)
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
