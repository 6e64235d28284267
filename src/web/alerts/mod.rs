//! `/alerts`: the alerts fired and recovered, the rules that fire them, where notifications go
//! and how their delivery went. Everyone of the account sees it; only owners change it.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::auth::{redirect, Viewer};
use super::lang::Lang;
use super::layout::PageCtx;
use super::{with_db, AppError, AppResult};
use crate::domain::alerts::{format_bp, Metric, RuleForm, MAX_WINDOW_MINUTES, MIN_WINDOW_MINUTES};
use crate::domain::{format_in_zone, now_ms, EmailAddress, Reason, Role, Status};
use crate::jobs::alerts::{target_for_people, webhook_url_problem};
use crate::store::alerts::{
    self as store, Alert, AlertRule, AlertTargets, Delivery, DeliveryAttempt,
};

mod actions;
mod rows;

pub use actions::*;
pub use rows::*;

/// How many alerts, notifications and attempts the page lists.
const LIST: i64 = 50;
/// How many alerts the overview shows.
const OVERVIEW: i64 = 5;

fn is_owner(viewer: &Viewer) -> bool {
    viewer.role() == Role::Owner && !viewer.is_staff_view()
}

fn require_owner(viewer: &Viewer) -> AppResult<()> {
    if is_owner(viewer) {
        Ok(())
    } else {
        Err(AppError::forbidden(viewer.lang.t("alerts.owners_only")))
    }
}
/// The rule form's fields as typed, for showing them again with a message.
#[derive(Deserialize, Default, Clone)]
pub struct RuleFields {
    #[serde(default)]
    pub metric: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub threshold: String,
    #[serde(default)]
    pub recover: String,
    #[serde(default)]
    pub window_minutes: String,
    #[serde(default)]
    pub min_requests: String,
}

impl RuleFields {
    fn form(&self) -> RuleForm<'_> {
        RuleForm {
            metric: &self.metric,
            reason: &self.reason,
            provider: &self.provider,
            threshold: &self.threshold,
            recover: &self.recover,
            window_minutes: &self.window_minutes,
            min_requests: &self.min_requests,
        }
    }
}

/// A choice of a select: value, label.
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "alerts/page.html")]
struct AlertsPage {
    ctx: PageCtx,
    is_owner: bool,
    firing: Vec<RuleRow>,
    alerts: Vec<AlertRow>,
    rules: Vec<RuleRow>,
    deliveries: Vec<DeliveryRow>,
    attempts: Vec<AttemptRow>,
    metrics: Vec<Choice>,
    reasons: Vec<Choice>,
    providers: Vec<Choice>,
    /// The new-rule form as typed, and the field a problem is in, with its message.
    new_rule: RuleFields,
    /// Which form the error is about: "new", a rule's id, or "targets".
    error_form: String,
    error_field: String,
    error: Option<String>,
    webhook_url: String,
    emails: String,
    secret: String,
    smtp_configured: bool,
    message: Option<String>,
    min_window: i32,
    max_window: i32,
}

struct Problem {
    form: String,
    field: String,
    message: String,
}

/// The choices of the new-rule form: metrics, reasons and providers.
fn rule_choices(lang: Lang) -> (Vec<Choice>, Vec<Choice>, Vec<Choice>) {
    let metrics = Metric::ALL
        .iter()
        .map(|m| Choice {
            value: m.code().into(),
            label: lang.t(m.label_key()),
        })
        .collect();
    let reasons = Reason::ALL
        .iter()
        .map(|r| Choice {
            value: r.code().into(),
            label: r.label(lang.code()).into(),
        })
        .collect();
    let providers = crate::domain::providers::known_providers()
        .iter()
        .map(|p| Choice {
            value: p.id.to_string(),
            label: p.name(lang.code()).to_string(),
        })
        .collect();
    (metrics, reasons, providers)
}

/// What the page shows of the account: its rules, the latest alerts, notifications and
/// attempts, and its targets.
type Loaded = (
    Vec<AlertRule>,
    Vec<Alert>,
    Vec<Delivery>,
    Vec<DeliveryAttempt>,
    AlertTargets,
);

async fn load(viewer: &Viewer) -> AppResult<Loaded> {
    let scope = viewer.scope();
    with_db(viewer.state(), move |conn| {
        Ok((
            store::list_rules(conn, &scope)?,
            store::list_alerts(conn, &scope, LIST)?,
            store::list_deliveries(conn, &scope, LIST)?,
            store::list_attempts(conn, &scope, LIST)?,
            store::targets(conn, &scope, now_ms())?,
        ))
    })
    .await
}

async fn render(
    viewer: &Viewer,
    new_rule: RuleFields,
    targets_typed: Option<(String, String)>,
    problem: Option<Problem>,
    message: Option<String>,
) -> AppResult<HttpResponse> {
    let (rules, alerts, deliveries, attempts, targets) = load(viewer).await?;
    let lang = viewer.lang;
    let account = account_param(viewer);
    let owner = is_owner(viewer);
    let rule_rows: Vec<RuleRow> = rules.iter().map(|r| rule_row(r, viewer)).collect();
    let (webhook_url, emails) = targets_typed.unwrap_or_else(|| {
        (
            targets.webhook_url.clone().unwrap_or_default(),
            targets.emails.clone(),
        )
    });
    let status = if problem.is_some() { 400 } else { 200 };
    let (metrics, reasons, providers) = rule_choices(lang);
    let page = AlertsPage {
        ctx: viewer.page("/alerts"),
        is_owner: owner,
        firing: rules
            .iter()
            .filter(|r| r.enabled && r.state == "firing")
            .map(|r| rule_row(r, viewer))
            .collect(),
        alerts: alerts
            .iter()
            .map(|a| alert_row(a, viewer, &account))
            .collect(),
        rules: rule_rows,
        deliveries: deliveries.iter().map(|d| delivery_row(d, viewer)).collect(),
        attempts: attempts.iter().map(|a| attempt_row(a, viewer)).collect(),
        metrics,
        reasons,
        providers,
        new_rule,
        error_form: problem.as_ref().map(|p| p.form.clone()).unwrap_or_default(),
        error_field: problem
            .as_ref()
            .map(|p| p.field.clone())
            .unwrap_or_default(),
        error: problem.map(|p| p.message),
        webhook_url: if owner { webhook_url } else { String::new() },
        emails: if owner { emails } else { String::new() },
        secret: if owner {
            targets.webhook_secret.clone()
        } else {
            String::new()
        },
        smtp_configured: viewer.state().settings.alerts.smtp_url.is_some(),
        message,
        min_window: MIN_WINDOW_MINUTES,
        max_window: MAX_WINDOW_MINUTES,
    };
    let html = page.render().map_err(AppError::internal)?;
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
}

fn account_param(viewer: &Viewer) -> String {
    if viewer.is_staff_view() {
        viewer.account.id.to_string()
    } else {
        String::new()
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    saved: Option<String>,
}

pub async fn page(viewer: Viewer, query: web::Query<PageQuery>) -> AppResult<HttpResponse> {
    let message = query.saved.as_deref().map(|what| {
        viewer.lang.t(match what {
            "targets" => "alerts.saved_targets",
            "secret" => "alerts.saved_secret",
            "retry" => "alerts.saved_retry",
            _ => "alerts.saved_rule",
        })
    });
    let fresh = RuleFields {
        metric: Metric::InvalidRate.code().into(),
        threshold: "5".into(),
        window_minutes: "60".into(),
        min_requests: "200".into(),
        ..RuleFields::default()
    };
    render(&viewer, fresh, None, None, message).await
}

/// What the overview shows of alerts: the rules firing now and the latest alerts.
pub struct OverviewAlerts {
    pub firing: Vec<RuleRow>,
    pub latest: Vec<AlertRow>,
    pub href: String,
}

/// One call for the overview's handler.
pub async fn for_overview(viewer: &Viewer) -> AppResult<OverviewAlerts> {
    let scope = viewer.scope();
    let (firing, latest) = with_db(viewer.state(), move |conn| {
        Ok((
            store::firing_rules(conn, &scope)?,
            store::list_alerts(conn, &scope, OVERVIEW)?,
        ))
    })
    .await?;
    let account = account_param(viewer);
    Ok(OverviewAlerts {
        firing: firing.iter().map(|r| rule_row(r, viewer)).collect(),
        latest: latest
            .iter()
            .map(|a| alert_row(a, viewer, &account))
            .collect(),
        href: if account.is_empty() {
            "/alerts".into()
        } else {
            format!("/alerts?account={account}")
        },
    })
}
