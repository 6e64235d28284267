//! The rows of `/alerts`: alerts, rules, notifications and their attempts, as people read them.

use super::*;

/// A provider id as people read it: the provider's name in the mapping, or the domain.
pub(super) fn provider_label(id: &str, lang: Lang) -> String {
    crate::domain::providers::provider_name(id, lang.code())
}

/// "Invalid rate of NetEase Mail", "Share of “Spam” of all mail".
pub(super) fn rule_title(
    metric: &str,
    reason: Option<i16>,
    provider: Option<&str>,
    lang: Lang,
) -> String {
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
pub(super) fn status_href(
    metric: &str,
    reason: Option<i16>,
    provider: Option<&str>,
    account: &str,
) -> String {
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

pub(super) fn url_segment(s: &str) -> String {
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

pub(super) fn alert_row(a: &Alert, viewer: &Viewer, account: &str) -> AlertRow {
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
            .replace("{m}", &crate::web::layout::grouped(a.matched))
            .replace("{n}", &crate::web::layout::grouped(a.requests)),
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

pub(super) fn rule_row(r: &AlertRule, viewer: &Viewer) -> RuleRow {
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
                .replace("{n}", &crate::web::layout::grouped(n))
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

pub(super) fn delivery_row(d: &Delivery, viewer: &Viewer) -> DeliveryRow {
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

pub(super) fn attempt_row(a: &DeliveryAttempt, viewer: &Viewer) -> AttemptRow {
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
