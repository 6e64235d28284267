//! The view model of `/providers/{id}`: its key figures, trend, reasons, replies and failures.

use super::*;

/// A bar of the provider page's trend.
pub struct TrendBar {
    pub x: String,
    pub width: String,
    pub ok_y: String,
    pub ok_h: String,
    pub fail_y: String,
    pub fail_h: String,
    pub title: String,
    pub label: Option<String>,
    /// The bucket's start as the page names it (a day, or a day and an hour), and its counts,
    /// for scripts reading the page.
    pub start: String,
    pub all: i64,
    pub failed: i64,
}

pub struct ReasonRow {
    pub status: Status,
    pub reason: Reason,
    pub label: String,
    pub count: String,
    pub share: String,
    pub href: String,
}

pub struct ReplyRow {
    pub text: String,
    pub count: String,
    pub status: Status,
    pub last: String,
}

pub struct FailureRow {
    pub id: i64,
    pub recipient: String,
    pub status: Status,
    pub status_label: String,
    pub reason: String,
    pub reply: String,
    pub requested: String,
    pub account_param: String,
}

pub struct Kpi {
    pub code: &'static str,
    pub label: String,
    pub value: String,
    pub href: Option<String>,
}

#[derive(Template)]
#[template(path = "providers/page.html")]
pub(super) struct ProviderPage {
    pub(super) ctx: PageCtx,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) known: bool,
    pub(super) domains: String,
    pub(super) ranges: Vec<RangeChoice>,
    pub(super) period: String,
    pub(super) kpis: Vec<Kpi>,
    pub(super) trend_title: String,
    pub(super) trend: Vec<TrendBar>,
    pub(super) reasons: Vec<ReasonRow>,
    pub(super) replies: Vec<ReplyRow>,
    pub(super) replies_note: String,
    pub(super) failures: Vec<FailureRow>,
    pub(super) failures_href: String,
    pub(super) back_href: String,
}

// The trend chart's geometry, in SVG user units.
pub(super) const TREND_W: f64 = 720.0;
pub(super) const TREND_H: f64 = 160.0;

pub(super) fn trend_bars(
    window: &Window,
    per_bucket: &HashMap<i64, (i64, i64)>,
    lang: crate::web::lang::Lang,
    zone: &chrono_tz::Tz,
) -> Vec<TrendBar> {
    let buckets: Vec<i64> = window.buckets().collect();
    let n = buckets.len().max(1) as f64;
    let max = buckets
        .iter()
        .map(|b| per_bucket.get(b).map(|c| c.0).unwrap_or(0))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let w = TREND_W / n;
    let every = (buckets.len() / 8).max(1);
    buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let (all, failed) = per_bucket.get(b).copied().unwrap_or((0, 0));
            let ok = all - failed;
            let ok_h = ok as f64 / max * TREND_H;
            let fail_h = failed as f64 / max * TREND_H;
            let when = if window.by_day() {
                (window.from + Duration::days(i as i64)).to_string()
            } else {
                let start_ms = window.bounds[i] * HOUR_MS;
                format_in_zone(start_ms, zone).chars().take(16).collect()
            };
            TrendBar {
                x: format!("{:.1}", i as f64 * w),
                width: format!("{:.1}", (w - 1.0).max(1.0)),
                ok_y: format!("{:.1}", TREND_H - ok_h - fail_h),
                ok_h: format!("{ok_h:.1}"),
                fail_y: format!("{:.1}", TREND_H - fail_h),
                fail_h: format!("{fail_h:.1}"),
                title: lang
                    .t("providers.trend_bar")
                    .replace("{when}", &when)
                    .replace("{all}", &grouped(all))
                    .replace("{failed}", &grouped(failed)),
                label: (i % every == 0).then(|| {
                    if window.by_day() {
                        when.chars().skip(5).take(5).collect()
                    } else {
                        when.chars().skip(11).take(5).collect()
                    }
                }),
                start: when,
                all,
                failed,
            }
        })
        .collect()
}

/// The provider page's key figures, linked to their messages where a status names them.
pub(super) fn kpis(
    f: &Figures,
    href: &dyn Fn(Option<Status>, Option<Reason>) -> String,
    lang: crate::web::lang::Lang,
) -> Vec<Kpi> {
    vec![
        Kpi {
            code: "requests",
            label: lang.t("providers.requests"),
            value: grouped(f.requests()),
            href: Some(href(None, None)),
        },
        Kpi {
            code: "delivered",
            label: lang.t("providers.delivered"),
            value: pct(f.rate(f.count(Status::Delivered))),
            href: Some(href(Some(Status::Delivered), None)),
        },
        Kpi {
            code: "soft_bounce",
            label: lang.t("providers.soft_bounce"),
            value: pct(f.rate(f.count(Status::SoftBounce))),
            href: Some(href(Some(Status::SoftBounce), None)),
        },
        Kpi {
            code: "invalid",
            label: lang.t("providers.invalid"),
            value: pct(f.rate(f.count(Status::Invalid))),
            href: Some(href(Some(Status::Invalid), None)),
        },
        Kpi {
            code: "open",
            label: lang.t("providers.open"),
            value: pct(f.engagement(f.opened)),
            href: None,
        },
        Kpi {
            code: "click",
            label: lang.t("providers.click"),
            value: pct(f.engagement(f.clicked)),
            href: None,
        },
    ]
}

/// The provider page's failure reasons, the most frequent first.
pub(super) fn reason_rows(
    f: &Figures,
    href: &dyn Fn(Option<Status>, Option<Reason>) -> String,
    lang: crate::web::lang::Lang,
) -> Vec<ReasonRow> {
    let failures_total = f.failures().max(1);
    let mut reasons: Vec<ReasonRow> = f
        .reasons
        .iter()
        .filter_map(|(&(s, r), &n)| {
            let status = Status::from_i16(s)?;
            let reason = Reason::from_i16(r)?;
            Some(ReasonRow {
                status,
                reason,
                label: format!(
                    "{} · {}",
                    status.label(lang.code()),
                    reason.label_in(status, lang.code())
                ),
                count: grouped(n),
                share: pct(Some(n as f64 * 100.0 / failures_total as f64)),
                href: href(Some(status), Some(reason)),
            })
        })
        .collect();
    reasons.sort_by_key(|r| {
        std::cmp::Reverse(
            f.reasons
                .get(&(r.status.as_i16(), r.reason.as_i16()))
                .copied()
                .unwrap_or(0),
        )
    });
    reasons
}

/// The servers' own words, grouped by their shape, the most frequent first.
pub(super) fn reply_rows(
    viewer: &Viewer,
    failures: &[store::Failure],
    zone: &chrono_tz::Tz,
) -> Vec<ReplyRow> {
    let mut shapes: HashMap<String, (i64, Status, i64)> = HashMap::new();
    for m in failures {
        let Some(reply) = m.smtp_reply.as_deref().filter(|r| !r.trim().is_empty()) else {
            continue;
        };
        let status = Status::from_i16(m.status).unwrap_or(Status::Invalid);
        let e = shapes
            .entry(reply_shape(reply))
            .or_insert((0, status, m.updated_at));
        e.0 += 1;
        e.2 = e.2.max(m.updated_at);
    }
    let mut shapes: Vec<(String, (i64, Status, i64))> = shapes.into_iter().collect();
    shapes.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    shapes
        .into_iter()
        .take(10)
        .map(|(text, (n, status, last))| ReplyRow {
            text: viewer.show_text(&text),
            count: grouped(n),
            status,
            last: format_in_zone(last, zone),
        })
        .collect()
}

/// The provider page's most recent failures.
pub(super) fn failure_rows(
    viewer: &Viewer,
    failures: &[store::Failure],
    zone: &chrono_tz::Tz,
    account_param: &str,
) -> Vec<FailureRow> {
    let lang = viewer.lang;
    failures
        .iter()
        .take(20)
        .map(|m| {
            let status = Status::from_i16(m.status).unwrap_or(Status::Invalid);
            FailureRow {
                id: m.id,
                recipient: viewer.show_address(&m.recipient),
                status,
                status_label: status.label(lang.code()).to_string(),
                reason: m
                    .reason
                    .and_then(Reason::from_i16)
                    .map(|r| r.label_in(status, lang.code()).to_string())
                    .unwrap_or_default(),
                reply: viewer.show_text(m.smtp_reply.as_deref().unwrap_or("")),
                requested: format_in_zone(m.requested_at, zone),
                account_param: account_param.to_string(),
            }
        })
        .collect()
}
