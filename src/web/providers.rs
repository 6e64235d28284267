//! `/providers` (邮箱服务商): one row per mailbox provider over 1, 7 or 30 days of the account's
//! zone — requests, delivered, soft-bounce and invalid rates, open and click rates, the top
//! reason, the change against the period before, a sparkline — and `/providers/{id}`, one
//! provider's trend, reasons, its servers' most frequent replies and its recent failures.
//! Counts come from the provider rollup; only the provider page's replies and failures read
//! messages, on the provider's own index.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::auth::Viewer;
use super::layout::{grouped, PageCtx};
use super::{with_db, AppError, AppResult};
use crate::domain::providers::{
    is_domain, is_provider_id, is_provider_name, known_provider, normalize_domain, provider_name,
};
use crate::domain::{day_start, format_in_zone, now_ms, Reason, Status};
use crate::store::providers::{self as store, CLICKED, HOURS_PER_DAY, OPENED};
use crate::store::rollup::HOUR_MS;

const RANGES: [i64; 3] = [1, 7, 30];
/// Rows shown on `/providers`; the rest are summed in one line.
const MAX_ROWS: usize = 50;
/// Failures read for the most frequent replies, newest first.
const REPLY_SAMPLE: i64 = 2_000;

#[derive(Debug, Default, Deserialize)]
pub struct ProvidersQuery {
    pub days: Option<String>,
    pub sort: Option<String>,
    pub dir: Option<String>,
    pub account: Option<String>,
}

/// The figures of one provider over a period.
#[derive(Debug, Clone, Default)]
struct Figures {
    per_status: [i64; 4],
    reasons: BTreeMap<(i16, i16), i64>,
    opened: i64,
    clicked: i64,
}

impl Figures {
    fn add(&mut self, status: i16, reason: i16, n: i64) {
        match status {
            OPENED => self.opened += n,
            CLICKED => self.clicked += n,
            s if (0..4).contains(&s) => {
                self.per_status[s as usize] += n;
                if reason != 0 {
                    *self.reasons.entry((s, reason)).or_default() += n;
                }
            }
            _ => {}
        }
    }

    fn requests(&self) -> i64 {
        self.per_status.iter().sum()
    }

    fn count(&self, s: Status) -> i64 {
        self.per_status[s.as_i16() as usize]
    }

    fn rate(&self, part: i64) -> Option<f64> {
        let all = self.requests();
        (all > 0).then(|| part as f64 * 100.0 / all as f64)
    }

    /// Opens and clicks against the delivered messages.
    fn engagement(&self, part: i64) -> Option<f64> {
        let delivered = self.count(Status::Delivered);
        (delivered > 0).then(|| part as f64 * 100.0 / delivered as f64)
    }

    fn failures(&self) -> i64 {
        self.count(Status::SoftBounce) + self.count(Status::Invalid)
    }

    /// The most frequent (status, reason) among the failures, with its count.
    fn top_reason(&self) -> Option<(Status, Reason, i64)> {
        self.reasons
            .iter()
            .filter(|((s, _), _)| {
                *s == Status::SoftBounce.as_i16() || *s == Status::Invalid.as_i16()
            })
            .max_by_key(|(k, n)| (**n, std::cmp::Reverse(**k)))
            .and_then(|((s, r), n)| Some((Status::from_i16(*s)?, Reason::from_i16(*r)?, *n)))
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "–".into())
}

/// The period of `days` days ending today in the account's zone, and the one before it.
struct Window {
    days: i64,
    from: NaiveDate,
    to: NaiveDate,
    from_hour: i64,
    to_hour: i64,
    before_hour: i64,
}

impl Window {
    fn of(viewer: &Viewer, days: i64) -> Window {
        let zone = viewer.account.zone();
        let to = Utc::now().with_timezone(&zone).date_naive();
        let from = to - Duration::days(days - 1);
        let from_ms = day_start(&zone, from);
        let to_ms = day_start(&zone, to + Duration::days(1));
        let from_hour = from_ms.div_euclid(HOUR_MS);
        let to_hour = (to_ms + HOUR_MS - 1).div_euclid(HOUR_MS);
        Window {
            days,
            from,
            to,
            from_hour,
            to_hour,
            before_hour: from_hour - (to_hour - from_hour),
        }
    }

    fn by_day(&self) -> bool {
        self.days > 1
    }

    /// The sparkline's buckets: hours of the day, or the UTC days the period touches.
    fn buckets(&self) -> std::ops::Range<i64> {
        if self.by_day() {
            self.from_hour.div_euclid(HOURS_PER_DAY)
                ..(self.to_hour - 1).div_euclid(HOURS_PER_DAY) + 1
        } else {
            self.from_hour..self.to_hour
        }
    }

    /// A link into `/status` for this period, narrowed.
    fn status_href(
        &self,
        provider: &str,
        status: Option<Status>,
        reason: Option<Reason>,
        account: &str,
    ) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("from", &self.from.to_string());
        q.append_pair("to", &self.to.to_string());
        q.append_pair("provider", provider);
        if let Some(s) = status {
            q.append_pair("status", s.code());
        }
        if let Some(r) = reason {
            q.append_pair("reason", r.code());
        }
        if !account.is_empty() {
            q.append_pair("account", account);
        }
        format!("/status?{}", q.finish())
    }
}

fn days_of(q: &ProvidersQuery) -> i64 {
    q.days
        .as_deref()
        .and_then(|d| d.parse().ok())
        .filter(|d| RANGES.contains(d))
        .unwrap_or(7)
}

/// A small SVG: requests per bucket as bars, the failure rate as a line.
pub struct Spark {
    pub bars: Vec<(String, String, String, String)>,
    pub line: String,
    pub label: String,
}

const SPARK_W: f64 = 120.0;
const SPARK_H: f64 = 28.0;

fn spark(points: &[(i64, i64)], label: String) -> Spark {
    let n = points.len().max(1) as f64;
    let max = points.iter().map(|p| p.0).max().unwrap_or(0).max(1) as f64;
    let w = SPARK_W / n;
    let mut bars = Vec::new();
    let mut line = Vec::new();
    for (i, (requests, failed)) in points.iter().enumerate() {
        let x = i as f64 * w;
        let h =
            (*requests as f64 / max * (SPARK_H - 2.0)).max(if *requests > 0 { 1.0 } else { 0.0 });
        bars.push((
            format!("{x:.1}"),
            format!("{:.1}", SPARK_H - h),
            format!("{:.1}", (w - 0.5).max(0.5)),
            format!("{h:.1}"),
        ));
        if *requests > 0 {
            let rate = *failed as f64 / *requests as f64;
            line.push(format!(
                "{:.1},{:.1}",
                x + w / 2.0,
                SPARK_H - rate * (SPARK_H - 2.0) - 1.0
            ));
        }
    }
    Spark {
        bars,
        line: line.join(" "),
        label,
    }
}

pub struct RangeChoice {
    pub days: i64,
    pub label: String,
    pub href: String,
    pub active: bool,
}

fn ranges(viewer: &Viewer, base: &str, days: i64, extra: &str) -> Vec<RangeChoice> {
    RANGES
        .iter()
        .map(|&d| RangeChoice {
            days: d,
            label: viewer.lang.t(&format!("overview.range_{d}")),
            href: format!("{base}?days={d}{extra}"),
            active: d == days,
        })
        .collect()
}

/// One row of `/providers`.
pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub href: String,
    pub requests: i64,
    pub requests_shown: String,
    pub requests_href: String,
    pub delivered: String,
    pub delivered_href: String,
    pub soft: String,
    pub soft_href: String,
    pub invalid: String,
    pub invalid_href: String,
    pub opened: String,
    pub clicked: String,
    pub top_reason: Option<(String, String, String)>,
    pub change_requests: String,
    pub change_delivered: String,
    pub change_tone: &'static str,
    pub spark: Spark,
    sort_keys: [f64; 7],
}

pub struct SortLink {
    pub key: &'static str,
    pub label: String,
    pub href: String,
    pub aria: &'static str,
    pub numeric: bool,
}

const SORTS: [(&str, &str); 8] = [
    ("provider", "providers.provider"),
    ("requests", "providers.requests"),
    ("delivered", "providers.delivered"),
    ("soft_bounce", "providers.soft_bounce"),
    ("invalid", "providers.invalid"),
    ("open", "providers.open"),
    ("click", "providers.click"),
    ("change", "providers.change"),
];

#[derive(Template)]
#[template(path = "providers/list.html")]
struct ListPage {
    ctx: PageCtx,
    ranges: Vec<RangeChoice>,
    period: String,
    columns: Vec<SortLink>,
    rows: Vec<ProviderRow>,
    others: Option<String>,
    is_owner: bool,
    domains: Vec<(String, String)>,
    message: Option<String>,
    error: Option<String>,
}

fn change_of(
    now: &Figures,
    before: &Figures,
    lang: super::lang::Lang,
) -> (String, String, &'static str) {
    let (n, b) = (now.requests(), before.requests());
    let requests = if b == 0 {
        lang.t("providers.new")
    } else {
        format!("{:+.0}%", (n - b) as f64 * 100.0 / b as f64)
    };
    let d_now = now.rate(now.count(Status::Delivered));
    let d_before = before.rate(before.count(Status::Delivered));
    match (d_now, d_before) {
        (Some(x), Some(y)) => {
            let pp = x - y;
            let tone = if pp <= -2.0 {
                "bad"
            } else if pp >= 2.0 {
                "ok"
            } else {
                "flat"
            };
            (requests, format!("{pp:+.1} pp"), tone)
        }
        _ => (requests, "–".into(), "flat"),
    }
}

fn account_query(viewer: &Viewer) -> String {
    if viewer.is_staff_view() {
        viewer.account.id.to_string()
    } else {
        String::new()
    }
}

fn is_owner(viewer: &Viewer) -> bool {
    viewer.role() == crate::domain::Role::Owner && !viewer.is_staff_view()
}

/// `GET /providers`.
pub async fn list(viewer: Viewer, query: web::Query<ProvidersQuery>) -> AppResult<HttpResponse> {
    render_list(&viewer, &query, None, None).await
}

async fn render_list(
    viewer: &Viewer,
    query: &ProvidersQuery,
    message: Option<String>,
    error: Option<String>,
) -> AppResult<HttpResponse> {
    let lang = viewer.lang;
    let window = Window::of(viewer, days_of(query));
    let scope = viewer.scope();
    let (from_hour, to_hour, before_hour, by_day) = (
        window.from_hour,
        window.to_hour,
        window.before_hour,
        window.by_day(),
    );
    let (current, previous, domains) = with_db(viewer.state(), move |conn| {
        Ok((
            store::series(conn, &scope, from_hour, to_hour, by_day, None)?,
            store::totals(conn, &scope, before_hour, from_hour, None)?,
            store::account_domains(conn, &scope)?,
        ))
    })
    .await?;
    let account = account_query(viewer);
    let mut figures: HashMap<String, Figures> = HashMap::new();
    let mut points: HashMap<String, HashMap<i64, (i64, i64)>> = HashMap::new();
    for r in &current {
        figures
            .entry(r.provider.clone())
            .or_default()
            .add(r.status, r.reason, r.count);
        if (0..4).contains(&r.status) {
            let p = points
                .entry(r.provider.clone())
                .or_default()
                .entry(r.time)
                .or_default();
            p.0 += r.count;
            if r.status == Status::SoftBounce.as_i16() || r.status == Status::Invalid.as_i16() {
                p.1 += r.count;
            }
        }
    }
    let mut before: HashMap<String, Figures> = HashMap::new();
    for r in &previous {
        before
            .entry(r.provider.clone())
            .or_default()
            .add(r.status, r.reason, r.count);
    }
    let empty = Figures::default();
    let mut rows: Vec<ProviderRow> = figures
        .iter()
        .filter(|(_, f)| f.requests() > 0)
        .map(|(id, f)| {
            let b = before.get(id).unwrap_or(&empty);
            let (change_requests, change_delivered, change_tone) = change_of(f, b, lang);
            let series: Vec<(i64, i64)> = window
                .buckets()
                .map(|t| {
                    points
                        .get(id)
                        .and_then(|p| p.get(&t))
                        .copied()
                        .unwrap_or((0, 0))
                })
                .collect();
            let href =
                |s: Option<Status>, r: Option<Reason>| window.status_href(id, s, r, &account);
            let name = provider_name(id, lang.code());
            let delivered = f.rate(f.count(Status::Delivered));
            let delivered_before = b.rate(b.count(Status::Delivered));
            ProviderRow {
                href: format!(
                    "/providers/{}?days={}{}",
                    id,
                    window.days,
                    if account.is_empty() {
                        String::new()
                    } else {
                        format!("&account={account}")
                    }
                ),
                requests: f.requests(),
                requests_shown: grouped(f.requests()),
                requests_href: href(None, None),
                delivered: pct(delivered),
                delivered_href: href(Some(Status::Delivered), None),
                soft: pct(f.rate(f.count(Status::SoftBounce))),
                soft_href: href(Some(Status::SoftBounce), None),
                invalid: pct(f.rate(f.count(Status::Invalid))),
                invalid_href: href(Some(Status::Invalid), None),
                opened: pct(f.engagement(f.opened)),
                clicked: pct(f.engagement(f.clicked)),
                top_reason: f.top_reason().map(|(s, r, n)| {
                    (
                        r.label_in(s, lang.code()).to_string(),
                        pct(Some(n as f64 * 100.0 / f.failures().max(1) as f64)),
                        href(Some(s), Some(r)),
                    )
                }),
                change_requests,
                change_delivered,
                change_tone,
                spark: spark(&series, lang.t("providers.spark").replace("{name}", &name)),
                sort_keys: [
                    f.requests() as f64,
                    delivered.unwrap_or(-1.0),
                    f.rate(f.count(Status::SoftBounce)).unwrap_or(-1.0),
                    f.rate(f.count(Status::Invalid)).unwrap_or(-1.0),
                    f.engagement(f.opened).unwrap_or(-1.0),
                    f.engagement(f.clicked).unwrap_or(-1.0),
                    match (delivered, delivered_before) {
                        (Some(x), Some(y)) => x - y,
                        _ => 0.0,
                    },
                ],
                name,
                id: id.clone(),
            }
        })
        .collect();
    // The biggest first, then the sort asked for over them.
    rows.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.id.cmp(&b.id)));
    let hidden: Vec<ProviderRow> = rows.split_off(rows.len().min(MAX_ROWS));
    let sort = query
        .sort
        .as_deref()
        .filter(|s| SORTS.iter().any(|(k, _)| k == s))
        .unwrap_or("requests");
    let ascending = query.dir.as_deref() == Some("asc");
    if sort == "provider" {
        rows.sort_by_key(|a| a.name.to_lowercase());
    } else if let Some(i) = SORTS.iter().position(|(k, _)| *k == sort) {
        let i = i - 1;
        rows.sort_by(|a, b| {
            b.sort_keys[i]
                .partial_cmp(&a.sort_keys[i])
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.requests.cmp(&a.requests))
        });
    }
    if ascending != (sort == "provider") {
        rows.reverse();
    }
    let others = (!hidden.is_empty()).then(|| {
        lang.t("providers.others")
            .replace("{n}", &grouped(hidden.len() as i64))
            .replace(
                "{messages}",
                &grouped(hidden.iter().map(|r| r.requests).sum()),
            )
    });
    let extra = if account.is_empty() {
        String::new()
    } else {
        format!("&account={account}")
    };
    let columns = SORTS
        .iter()
        .map(|(key, label)| {
            let active = *key == sort;
            let next_dir = match (active, ascending, *key == "provider") {
                (true, true, _) => "desc",
                (true, false, _) => "asc",
                (false, _, true) => "asc",
                (false, _, false) => "desc",
            };
            SortLink {
                key,
                label: lang.t(label),
                href: format!(
                    "/providers?days={}&sort={key}&dir={next_dir}{extra}",
                    window.days
                ),
                aria: match (active, ascending) {
                    (false, _) => "none",
                    (true, true) => "ascending",
                    (true, false) => "descending",
                },
                numeric: *key != "provider",
            }
        })
        .collect();
    let page = ListPage {
        ctx: viewer.page("/providers"),
        ranges: ranges(viewer, "/providers", window.days, &extra),
        period: format!("{} – {}", window.from, window.to),
        columns,
        rows,
        others,
        is_owner: is_owner(viewer),
        domains: domains
            .into_iter()
            .map(|(d, p)| {
                let name = provider_name(&p, lang.code());
                (
                    d,
                    if name == p {
                        p
                    } else {
                        format!("{name} ({p})")
                    },
                )
            })
            .collect(),
        message,
        error: error.clone(),
    };
    let html = page.render().map_err(AppError::internal)?;
    let code = if error.is_some() { 400 } else { 200 };
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap_or_default())
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
}

#[derive(Debug, Deserialize)]
pub struct DomainForm {
    pub domain: String,
    #[serde(default)]
    pub provider: String,
}

/// `POST /providers/domains`: an owner maps one of the account's own domains to a provider.
pub async fn add_domain(viewer: Viewer, form: web::Form<DomainForm>) -> AppResult<HttpResponse> {
    let lang = viewer.lang;
    if !is_owner(&viewer) {
        return Err(AppError::forbidden(lang.t("settings.owners_only")));
    }
    let domain = normalize_domain(form.domain.trim_start_matches('@'));
    let provider = form.provider.trim().to_lowercase();
    let query = ProvidersQuery::default();
    if !is_domain(&domain) {
        return render_list(&viewer, &query, None, Some(lang.t("providers.bad_domain"))).await;
    }
    if !is_provider_name(&provider) && !is_domain(&provider) {
        return render_list(&viewer, &query, None, Some(lang.t("providers.bad_name"))).await;
    }
    let scope = viewer.scope();
    let (d, p) = (domain.clone(), provider.clone());
    with_db(viewer.state(), move |conn| {
        Ok(store::set_account_domain(conn, &scope, &d, &p, now_ms())?)
    })
    .await?;
    viewer
        .audit("providers.domain_set", format!("{domain} {provider}"))
        .await?;
    render_list(
        &viewer,
        &query,
        Some(lang.t("providers.domain_saved")),
        None,
    )
    .await
}

/// `POST /providers/domains/delete`.
pub async fn remove_domain(viewer: Viewer, form: web::Form<DomainForm>) -> AppResult<HttpResponse> {
    let lang = viewer.lang;
    if !is_owner(&viewer) {
        return Err(AppError::forbidden(lang.t("settings.owners_only")));
    }
    let domain = normalize_domain(&form.domain);
    let scope = viewer.scope();
    let d = domain.clone();
    with_db(viewer.state(), move |conn| {
        Ok(store::remove_account_domain(conn, &scope, &d)?)
    })
    .await?;
    viewer.audit("providers.domain_remove", domain).await?;
    render_list(
        &viewer,
        &ProvidersQuery::default(),
        Some(lang.t("providers.domain_removed")),
        None,
    )
    .await
}

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
struct ProviderPage {
    ctx: PageCtx,
    id: String,
    name: String,
    known: bool,
    domains: String,
    ranges: Vec<RangeChoice>,
    period: String,
    kpis: Vec<Kpi>,
    trend_title: String,
    trend: Vec<TrendBar>,
    reasons: Vec<ReasonRow>,
    replies: Vec<ReplyRow>,
    replies_note: String,
    failures: Vec<FailureRow>,
    failures_href: String,
    back_href: String,
}

/// A reply with what varies between messages (addresses, numbers, ids) put aside, so that
/// the same answer of the same server groups as one.
pub fn reply_shape(reply: &str) -> String {
    let mut out = String::with_capacity(reply.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        let digits = token.chars().filter(char::is_ascii_digit).count();
        if let Some((_, domain)) = token.rsplit_once('@') {
            out.push_str("…@");
            out.push_str(domain);
        } else if digits >= 4 || (token.len() >= 12 && digits > 0) {
            out.push('…');
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in reply.trim().chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '@' | '+' | '=') {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out.chars().take(300).collect()
}

/// `GET /providers/{id}`.
pub async fn page(
    viewer: Viewer,
    id: web::Path<String>,
    query: web::Query<ProvidersQuery>,
) -> AppResult<HttpResponse> {
    let lang = viewer.lang;
    let id = id.into_inner().to_lowercase();
    if !is_provider_id(&id) {
        return Err(AppError::NotFound);
    }
    let window = Window::of(&viewer, days_of(&query));
    let zone = viewer.account.zone();
    let scope = viewer.scope();
    let from_ms = window.from_hour * HOUR_MS;
    let to_ms = window.to_hour * HOUR_MS;
    let (from_hour, to_hour, by_day) = (window.from_hour, window.to_hour, window.by_day());
    let pid = id.clone();
    let (series, failures) = with_db(viewer.state(), move |conn| {
        Ok((
            store::series(conn, &scope, from_hour, to_hour, by_day, Some(&pid))?,
            store::recent_failures(conn, &scope, &pid, from_ms, to_ms, REPLY_SAMPLE)?,
        ))
    })
    .await?;
    let account = account_query(&viewer);
    let account_param = if account.is_empty() {
        String::new()
    } else {
        format!("?account={account}")
    };
    let extra = if account.is_empty() {
        String::new()
    } else {
        format!("&account={account}")
    };
    let mut f = Figures::default();
    let mut per_bucket: HashMap<i64, (i64, i64)> = HashMap::new();
    for r in &series {
        f.add(r.status, r.reason, r.count);
        if (0..4).contains(&r.status) {
            let b = per_bucket.entry(r.time).or_default();
            b.0 += r.count;
            if r.status == Status::SoftBounce.as_i16() || r.status == Status::Invalid.as_i16() {
                b.1 += r.count;
            }
        }
    }
    let href = |s: Option<Status>, r: Option<Reason>| window.status_href(&id, s, r, &account);
    let kpis = vec![
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
    ];
    let trend = trend_bars(&window, &per_bucket, lang, &zone);
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
    // The servers' own words, grouped by their shape.
    let mut shapes: HashMap<String, (i64, Status, i64)> = HashMap::new();
    for m in &failures {
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
    let replies = shapes
        .into_iter()
        .take(10)
        .map(|(text, (n, status, last))| ReplyRow {
            text: viewer.show_text(&text),
            count: grouped(n),
            status,
            last: format_in_zone(last, &zone),
        })
        .collect();
    let failures = failures
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
                requested: format_in_zone(m.requested_at, &zone),
                account_param: account_param.clone(),
            }
        })
        .collect();
    let known = known_provider(&id);
    let page = ProviderPage {
        ctx: viewer.page("/providers"),
        name: provider_name(&id, lang.code()),
        known: known.is_some(),
        domains: known.map(|p| p.domains.join(", ")).unwrap_or_default(),
        ranges: ranges(&viewer, &format!("/providers/{id}"), window.days, &extra),
        period: format!("{} – {}", window.from, window.to),
        kpis,
        trend_title: lang.t(if by_day {
            "providers.trend_days"
        } else {
            "providers.trend_hours"
        }),
        trend,
        reasons,
        replies,
        replies_note: lang
            .t("providers.replies_note")
            .replace("{n}", &grouped(REPLY_SAMPLE)),
        failures,
        failures_href: format!(
            "{}&status=invalid",
            window.status_href(&id, None, None, &account)
        ),
        back_href: format!("/providers?days={}{extra}", window.days),
        id,
    };
    let html = page.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

// The trend chart's geometry, in SVG user units.
const TREND_W: f64 = 720.0;
const TREND_H: f64 = 160.0;

fn trend_bars(
    window: &Window,
    per_bucket: &HashMap<i64, (i64, i64)>,
    lang: super::lang::Lang,
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
            let start_ms = if window.by_day() {
                b * HOURS_PER_DAY * HOUR_MS
            } else {
                b * HOUR_MS
            };
            let when = format_in_zone(start_ms, zone);
            let when = if window.by_day() {
                when.chars().take(10).collect::<String>()
            } else {
                when.chars().take(16).collect::<String>()
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
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::reply_shape;

    #[test]
    fn replies_group_by_shape() {
        let a =
            reply_shape("550 5.1.1 <alice.1@163.com>: Recipient address rejected: User unknown");
        let b = reply_shape("550 5.1.1 <bob.22@163.com>: Recipient address rejected: User unknown");
        assert_eq!(a, b);
        assert!(a.contains("…@163.com") && !a.contains("alice"), "{a}");
        assert_eq!(
            reply_shape("451 4.7.1 queued as 8F3A2B1C9D"),
            reply_shape("451 4.7.1 queued as 1234ABCD77")
        );
        assert_ne!(reply_shape("550 5.1.1 no"), reply_shape("554 5.7.1 spam"));
    }
}
