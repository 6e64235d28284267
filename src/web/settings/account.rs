//! The account's own settings: time zone, masking, exports and the sender name; the S+
//! features (staff); the key SendCloud's webhook posts are signed with.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{done, refuse, require_owner};
use crate::domain::parse_zone;
use crate::store::accounts::{self, AccountSettings};
use crate::store::webhooks;
use crate::web::auth::{redirect, Viewer};
use crate::web::{with_db, AppError, AppResult};

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
        return refuse(&viewer, viewer.lang.t("settings.bad_zone")).await;
    }
    let display_name = form.display_name.trim().to_string();
    if display_name.chars().count() > 100 || display_name.chars().any(char::is_control) {
        return refuse(&viewer, viewer.lang.t("settings.bad_display_name")).await;
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
        accounts::set_display_name(conn, &scope, name)?;
        // The daily provider counts follow the zone's days.
        if let Some(zone) = parse_zone(&zone) {
            crate::store::providers::realign_days(conn, &scope, &zone)?;
        }
        Ok(())
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
            return refuse(&viewer, problem.to_string()).await;
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
