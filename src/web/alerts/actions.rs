//! The changes an owner makes on `/alerts`: rules added, changed, switched and deleted, where
//! notifications go, the webhook's secret, and a notification sent again.

use super::*;
use crate::domain::alerts::{RuleError, RuleSpec};

/// Checks a rule's form, a typed domain read with the account's own domains on top of the
/// list (a domain the owner maps to "bigcorp" means "bigcorp").
async fn check_rule(
    viewer: &Viewer,
    fields: &RuleFields,
) -> AppResult<Result<RuleSpec, RuleError>> {
    let scope = viewer.scope();
    let map = with_db(viewer.state(), move |conn| {
        Ok(crate::store::providers::map_for(conn, &scope)?)
    })
    .await?;
    Ok(fields.form().check_with(&map))
}

pub(super) fn saved(what: &str) -> HttpResponse {
    redirect(&format!("/alerts?saved={what}"))
}

/// A rule form's refusal, shown beside the form it came from (`new` or the rule's id).
fn problem(viewer: &Viewer, form: String, e: RuleError) -> Problem {
    Problem {
        form,
        field: e.field.into(),
        message: viewer.lang.t(e.key),
    }
}

/// One change of rule `id` of the viewer's account, audited as `action`; `change` answers
/// whether the account has that rule (another account's id is a 404 like a missing one).
async fn change_rule<F>(
    viewer: &Viewer,
    id: i64,
    action: &str,
    change: F,
) -> AppResult<HttpResponse>
where
    F: FnOnce(
            &mut crate::db::DbConn,
            &crate::store::AccountScope,
        ) -> crate::store::StoreResult<bool>
        + Send
        + 'static,
{
    let scope = viewer.scope();
    let found = with_db(viewer.state(), move |conn| Ok(change(conn, &scope)?)).await?;
    if !found {
        return Err(AppError::NotFound);
    }
    viewer.audit(action, id.to_string()).await?;
    Ok(saved("rule"))
}

pub async fn create_rule(viewer: Viewer, form: web::Form<RuleFields>) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let fields = form.into_inner();
    let spec = match check_rule(&viewer, &fields).await? {
        Ok(spec) => spec,
        Err(e) => {
            let problem = problem(&viewer, "new".into(), e);
            return render(&viewer, fields, None, Some(problem), None).await;
        }
    };
    let scope = viewer.scope();
    with_db(viewer.state(), move |conn| {
        Ok(store::create_rule(conn, &scope, &spec, true, now_ms())?)
    })
    .await?;
    viewer.audit("alerts.rule_add", String::new()).await?;
    Ok(saved("rule"))
}

pub async fn update_rule(
    viewer: Viewer,
    path: web::Path<i64>,
    form: web::Form<RuleFields>,
) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let id = path.into_inner();
    let fields = form.into_inner();
    let spec = match check_rule(&viewer, &fields).await? {
        Ok(spec) => spec,
        Err(e) => {
            let problem = problem(&viewer, id.to_string(), e);
            return render(&viewer, RuleFields::default(), None, Some(problem), None).await;
        }
    };
    change_rule(&viewer, id, "alerts.rule_change", move |conn, scope| {
        store::update_rule(conn, scope, id, &spec, now_ms())
    })
    .await
}

#[derive(Deserialize)]
pub struct SwitchForm {
    enabled: String,
}

pub async fn switch_rule(
    viewer: Viewer,
    path: web::Path<i64>,
    form: web::Form<SwitchForm>,
) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let id = path.into_inner();
    let enabled = match form.enabled.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(AppError::bad_request(viewer.lang.t("alerts.error.switch"))),
    };
    let action = if enabled {
        "alerts.rule_on"
    } else {
        "alerts.rule_off"
    };
    change_rule(&viewer, id, action, move |conn, scope| {
        store::set_enabled(conn, scope, id, enabled, now_ms())
    })
    .await
}

pub async fn delete_rule(viewer: Viewer, path: web::Path<i64>) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let id = path.into_inner();
    change_rule(&viewer, id, "alerts.rule_delete", move |conn, scope| {
        store::delete_rule(conn, scope, id)
    })
    .await
}

#[derive(Deserialize)]
pub struct TargetsForm {
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    emails: String,
}

pub async fn save_targets(viewer: Viewer, form: web::Form<TargetsForm>) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let TargetsForm {
        webhook_url,
        emails,
    } = form.into_inner();
    let url = webhook_url.trim().to_string();
    let problem = |field: &str, key: &str| Problem {
        form: "targets".into(),
        field: field.into(),
        message: viewer.lang.t(key),
    };
    if !url.is_empty() {
        if let Some(key) = webhook_url_problem(&url) {
            let p = problem("webhook_url", key);
            return render(
                &viewer,
                RuleFields::default(),
                Some((webhook_url, emails)),
                Some(p),
                None,
            )
            .await;
        }
    }
    let mut addresses = Vec::new();
    for part in emails
        .split([',', '\n', ';', ' ', '\r'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        match EmailAddress::parse(part) {
            Some(a) => addresses.push(a.as_str().to_string()),
            None => {
                let mut p = problem("emails", "alerts.error.email");
                p.message = format!("{} {part}", p.message);
                return render(
                    &viewer,
                    RuleFields::default(),
                    Some((webhook_url, emails)),
                    Some(p),
                    None,
                )
                .await;
            }
        }
    }
    if addresses.len() > 20 {
        let p = problem("emails", "alerts.error.too_many_emails");
        return render(
            &viewer,
            RuleFields::default(),
            Some((webhook_url, emails)),
            Some(p),
            None,
        )
        .await;
    }
    addresses.dedup();
    let scope = viewer.scope();
    let joined = addresses.join(", ");
    let saved_url = (!url.is_empty()).then_some(url);
    with_db(viewer.state(), move |conn| {
        Ok(store::save_targets(
            conn,
            &scope,
            saved_url.as_deref(),
            &joined,
            now_ms(),
        )?)
    })
    .await?;
    viewer.audit("alerts.targets", String::new()).await?;
    Ok(saved("targets"))
}

pub async fn rotate_secret(viewer: Viewer) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let scope = viewer.scope();
    with_db(viewer.state(), move |conn| {
        Ok(store::rotate_secret(conn, &scope, now_ms())?)
    })
    .await?;
    viewer.audit("alerts.secret", String::new()).await?;
    Ok(saved("secret"))
}

pub async fn retry_delivery(viewer: Viewer, path: web::Path<i64>) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let id = path.into_inner();
    let scope = viewer.scope();
    let found = with_db(viewer.state(), move |conn| {
        Ok(store::retry_delivery(conn, &scope, id, now_ms())?)
    })
    .await?;
    if !found {
        return Err(AppError::NotFound);
    }
    Ok(saved("retry"))
}
