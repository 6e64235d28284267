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

/// A provider id as people read it: the provider's name in the mapping, or the domain.
fn provider_label(id: &str, lang: Lang) -> String {
    crate::domain::providers::provider_name(id, lang.code())
}

/// "Invalid rate of NetEase Mail", "Share of “Spam” of all mail".
fn rule_title(metric: &str, reason: Option<i16>, provider: Option<&str>, lang: Lang) -> String {
    let what = match (Metric::from_code(metric), reason.and_then(Reason::from_i16)) {
        (Some(Metric::ReasonShare), Some(r)) => lang
            .t("alerts.share_of")
            .replace("{reason}", r.label(lang.code())),
        (Some(m), _) => lang.t(m.label_key()),
        (None, _) => metric.to_string(),
    };
    let whose = match provider {
        Some(p) => provider_label(p, lang),
        None => lang.t("alerts.all_mail"),
    };
    lang.t("alerts.title_of")
        .replace("{what}", &what)
        .replace("{whose}", &whose)
}

/// The `/status` link that shows the messages an alert is about.
fn status_href(metric: &str, reason: Option<i16>, provider: Option<&str>, account: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    match Metric::from_code(metric) {
        Some(Metric::InvalidRate) => {
            q.append_pair("status", Status::Invalid.code());
        }
        Some(Metric::SoftBounceRate) => {
            q.append_pair("status", Status::SoftBounce.code());
        }
        Some(Metric::ReasonShare) => {
            if let Some(r) = reason.and_then(Reason::from_i16) {
                q.append_pair("reason", r.code());
            }
        }
        None => {}
    }
    if let Some(p) = provider {
        q.append_pair("provider", p);
    }
    if !account.is_empty() {
        q.append_pair("account", account);
    }
    format!("/status?{}", q.finish())
}

fn url_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub struct AlertRow {
    pub id: i64,
    pub kind: String,
    pub kind_label: String,
    pub title: String,
    pub provider: String,
    pub value: String,
    pub level: String,
    pub counts: String,
    pub window: String,
    pub at: String,
    pub href: String,
    /// The provider's page, for a provider's rule.
    pub provider_href: String,
}

fn alert_row(a: &Alert, viewer: &Viewer, account: &str) -> AlertRow {
    let lang = viewer.lang;
    let fired = a.kind == "fired";
    AlertRow {
        id: a.id,
        kind: a.kind.clone(),
        kind_label: lang.t(if fired {
            "alerts.kind.fired"
        } else {
            "alerts.kind.recovered"
        }),
        title: rule_title(&a.metric, a.reason, a.provider.as_deref(), lang),
        provider: a.provider.clone().unwrap_or_default(),
        value: format!("{} %", format_bp(a.value_bp)),
        level: lang
            .t(if fired {
                "alerts.above"
            } else {
                "alerts.below"
            })
            .replace("{n}", &format_bp(a.threshold_bp)),
        counts: lang
            .t("alerts.of_requests")
            .replace("{m}", &super::layout::grouped(a.matched))
            .replace("{n}", &super::layout::grouped(a.requests)),
        window: lang
            .t("alerts.minutes")
            .replace("{n}", &a.window_minutes.to_string()),
        at: format_in_zone(a.occurred_at, &viewer.account.zone()),
        href: status_href(&a.metric, a.reason, a.provider.as_deref(), account),
        provider_href: match (&a.provider, account.is_empty()) {
            (Some(p), true) => format!("/providers/{}", url_segment(p)),
            (Some(p), false) => format!("/providers/{}?account={account}", url_segment(p)),
            (None, _) => String::new(),
        },
    }
}

pub struct RuleRow {
    pub id: i64,
    pub title: String,
    pub state: String,
    pub enabled: bool,
    pub threshold: String,
    pub recover: String,
    pub window_minutes: i32,
    pub min_requests: i64,
    pub last: String,
    pub metric: String,
    pub reason: String,
    pub provider: String,
    /// The rule as its edit form's fields.
    pub fields: RuleFields,
}

fn rule_row(r: &AlertRule, viewer: &Viewer) -> RuleRow {
    let lang = viewer.lang;
    RuleRow {
        id: r.id,
        title: rule_title(&r.metric, r.reason, r.provider.as_deref(), lang),
        state: if !r.enabled {
            "off".into()
        } else {
            r.state.clone()
        },
        enabled: r.enabled,
        threshold: format_bp(r.threshold_bp),
        recover: format_bp(r.recover_bp),
        window_minutes: r.window_minutes,
        min_requests: r.min_requests,
        last: match (r.last_value_bp, r.last_requests, r.last_evaluated_at) {
            (Some(v), Some(n), Some(at)) if r.enabled => lang
                .t("alerts.last")
                .replace("{v}", &format_bp(v))
                .replace("{n}", &super::layout::grouped(n))
                .replace("{at}", &format_in_zone(at, &viewer.account.zone())),
            _ => String::new(),
        },
        metric: r.metric.clone(),
        reason: r
            .reason
            .and_then(Reason::from_i16)
            .map(|r| r.code().to_string())
            .unwrap_or_default(),
        provider: r.provider.clone().unwrap_or_default(),
        fields: RuleFields {
            metric: r.metric.clone(),
            reason: r
                .reason
                .and_then(Reason::from_i16)
                .map(|r| r.code().to_string())
                .unwrap_or_default(),
            provider: r.provider.clone().unwrap_or_default(),
            threshold: format_bp(r.threshold_bp),
            recover: format_bp(r.recover_bp),
            window_minutes: r.window_minutes.to_string(),
            min_requests: r.min_requests.to_string(),
        },
    }
}

pub struct DeliveryRow {
    pub id: i64,
    pub alert_id: i64,
    pub channel: String,
    pub target: String,
    pub state: String,
    pub state_label: String,
    pub attempts: i32,
    pub last: String,
    pub created: String,
}

fn delivery_row(d: &Delivery, viewer: &Viewer) -> DeliveryRow {
    let lang = viewer.lang;
    DeliveryRow {
        id: d.id,
        alert_id: d.alert_id,
        channel: lang.t(if d.channel == "webhook" {
            "alerts.channel.webhook"
        } else {
            "alerts.channel.email"
        }),
        target: viewer.show_text(&target_for_people(&d.channel, &d.target)),
        state: d.state.clone(),
        state_label: lang.t(&format!("alerts.delivery.{}", d.state)),
        attempts: d.attempts,
        last: match (d.last_status, d.last_error.as_deref()) {
            (_, Some(e)) => viewer.show_text(e),
            (Some(s), None) => s.to_string(),
            (None, None) => String::new(),
        },
        created: format_in_zone(d.created_at, &viewer.account.zone()),
    }
}

pub struct AttemptRow {
    pub delivery_id: i64,
    pub ok: bool,
    pub at: String,
    pub status: String,
    pub error: String,
}

fn attempt_row(a: &DeliveryAttempt, viewer: &Viewer) -> AttemptRow {
    AttemptRow {
        delivery_id: a.delivery_id,
        ok: a.ok,
        at: format_in_zone(a.attempted_at, &viewer.account.zone()),
        status: a.status_code.map(|s| s.to_string()).unwrap_or_default(),
        error: a
            .error
            .as_deref()
            .map(|e| viewer.show_text(e))
            .unwrap_or_default(),
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

async fn render(
    viewer: &Viewer,
    new_rule: RuleFields,
    targets_typed: Option<(String, String)>,
    problem: Option<Problem>,
    message: Option<String>,
) -> AppResult<HttpResponse> {
    let scope = viewer.scope();
    let (rules, alerts, deliveries, attempts, targets): (
        Vec<AlertRule>,
        Vec<Alert>,
        Vec<Delivery>,
        Vec<DeliveryAttempt>,
        AlertTargets,
    ) = with_db(viewer.state(), move |conn| {
        Ok((
            store::list_rules(conn, &scope)?,
            store::list_alerts(conn, &scope, LIST)?,
            store::list_deliveries(conn, &scope, LIST)?,
            store::list_attempts(conn, &scope, LIST)?,
            store::targets(conn, &scope, now_ms())?,
        ))
    })
    .await?;
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

fn saved(what: &str) -> HttpResponse {
    redirect(&format!("/alerts?saved={what}"))
}

pub async fn create_rule(viewer: Viewer, form: web::Form<RuleFields>) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let fields = form.into_inner();
    let spec = match fields.form().check() {
        Ok(spec) => spec,
        Err(e) => {
            let problem = Problem {
                form: "new".into(),
                field: e.field.into(),
                message: viewer.lang.t(e.key),
            };
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
    let spec = match fields.form().check() {
        Ok(spec) => spec,
        Err(e) => {
            let problem = Problem {
                form: id.to_string(),
                field: e.field.into(),
                message: viewer.lang.t(e.key),
            };
            return render(&viewer, RuleFields::default(), None, Some(problem), None).await;
        }
    };
    let scope = viewer.scope();
    let found = with_db(viewer.state(), move |conn| {
        Ok(store::update_rule(conn, &scope, id, &spec, now_ms())?)
    })
    .await?;
    if !found {
        return Err(AppError::NotFound);
    }
    viewer.audit("alerts.rule_change", id.to_string()).await?;
    Ok(saved("rule"))
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
    let scope = viewer.scope();
    let found = with_db(viewer.state(), move |conn| {
        Ok(store::set_enabled(conn, &scope, id, enabled, now_ms())?)
    })
    .await?;
    if !found {
        return Err(AppError::NotFound);
    }
    viewer
        .audit(
            if enabled {
                "alerts.rule_on"
            } else {
                "alerts.rule_off"
            },
            id.to_string(),
        )
        .await?;
    Ok(saved("rule"))
}

pub async fn delete_rule(viewer: Viewer, path: web::Path<i64>) -> AppResult<HttpResponse> {
    require_owner(&viewer)?;
    let id = path.into_inner();
    let scope = viewer.scope();
    let found = with_db(viewer.state(), move |conn| {
        Ok(store::delete_rule(conn, &scope, id)?)
    })
    .await?;
    if !found {
        return Err(AppError::NotFound);
    }
    viewer.audit("alerts.rule_delete", id.to_string()).await?;
    Ok(saved("rule"))
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
