//! `/`: counts per status, rates and the top reasons over today, 7 or 30 days, with a chart
//! drawn on the server (axes, ticks, a delivery-rate line, hover values as SVG `<title>`),
//! from the status rollup, cut into days (or, for one day, hours) in the account's time zone.
//! Every number leads to `/status` with the matching filter.
//!
//! The handler reads the range, loads what the page shows ([`load`]) and builds the page
//! from it ([`OverviewPage::build`]); the numbers are in `counts`, the chart in `chart`.

mod chart;
mod counts;

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest};
use askama::Template;
use askama_web::WebTemplate;
use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

pub use chart::{tick_step, Bar, Chart, Column, Tick, XLabel};
pub use counts::{Kpi, Period, ReasonCount, StatusCount};

use self::chart::chart;
use self::counts::{kpis, period, Links};
use super::auth::Viewer;
use super::filters::account_param;
use super::lang::Lang;
use super::{with_db, AppError, AppResult};
use crate::domain::{day_start, format_in_zone, Role, Status};
use crate::store::models::Message;
use crate::store::rollup::{self, HourCount, HOUR_MS};
use crate::store::{messages, status as status_store};

/// The ranges the switch offers, in days.
pub const RANGES: &[i64] = &[1, 7, 30];
const DEFAULT_DAYS: i64 = 7;

#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    pub days: Option<String>,
}

pub struct RangeChoice {
    pub days: i64,
    pub label: String,
    pub href: String,
    pub active: bool,
}

pub struct LatestRow {
    pub id: i64,
    pub recipient: String,
    pub status: Status,
    pub status_label: String,
    pub reason_label: String,
    pub requested: String,
}

/// What an empty account's owner does next.
pub struct Onboarding {
    pub webhook_url: String,
    pub events_url: String,
    pub can_configure: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    ctx: super::layout::PageCtx,
    ranges: Vec<RangeChoice>,
    kpis: Vec<Kpi>,
    periods: Vec<Period>,
    chart: Chart,
    /// The same chart drawn for a phone: fewer, larger labels.
    chart_small: Chart,
    legend: Vec<(&'static str, String, String)>,
    latest: Vec<LatestRow>,
    empty: Option<Onboarding>,
    account_param: String,
    /// Firing rules and the latest alerts (templates/alerts/_overview.html).
    alerts: crate::web::alerts::OverviewAlerts,
}

/// `GET /`.
pub async fn page(
    viewer: Viewer,
    req: HttpRequest,
    query: web::Query<OverviewQuery>,
) -> AppResult<OverviewPage> {
    let span = Span::new(viewer.account.zone(), days_of(&query));
    let data = load(&viewer, &span).await?;
    let alerts = crate::web::alerts::for_overview(&viewer).await?;
    Ok(OverviewPage::build(&viewer, &req, &span, data, alerts))
}

/// The range asked for, one of [`RANGES`]; anything else is the default.
fn days_of(query: &OverviewQuery) -> i64 {
    query
        .days
        .as_deref()
        .and_then(|d| d.parse::<i64>().ok())
        .filter(|d| RANGES.contains(d))
        .unwrap_or(DEFAULT_DAYS)
}

/// The days of the range, ending today, in the account's zone, and the chart's buckets: the
/// hours of today for one day, else the days.
pub struct Span {
    zone: Tz,
    days: i64,
    today: NaiveDate,
    first_day: NaiveDate,
    /// The starts of the days and the end of the last, in UTC milliseconds.
    day_starts: Vec<i64>,
    bucket_starts: Vec<i64>,
}

impl Span {
    fn new(zone: Tz, days: i64) -> Self {
        let today = Utc::now().with_timezone(&zone).date_naive();
        let first_day = today - Duration::days(days - 1);
        let day_starts: Vec<i64> = (0..=days)
            .map(|i| day_start(&zone, first_day + Duration::days(i)))
            .collect();
        let bucket_starts = if days == 1 {
            (0..=24).map(|h| day_starts[0] + h * HOUR_MS).collect()
        } else {
            day_starts.clone()
        };
        Span {
            zone,
            days,
            today,
            first_day,
            day_starts,
            bucket_starts,
        }
    }

    fn day(&self, i: usize) -> NaiveDate {
        self.first_day + Duration::days(i as i64)
    }

    /// The range in UTC milliseconds, `[from, to)`.
    fn bounds(&self) -> (i64, i64) {
        (
            self.day_starts[0],
            self.day_starts[self.day_starts.len() - 1],
        )
    }
}

/// What the page shows, as the store answers it.
pub struct Loaded {
    hours: Vec<HourCount>,
    latest: Vec<Message>,
    /// Opened and clicked messages of the range.
    engagement: (i64, i64),
}

/// The range's hourly counts, the newest messages and the range's opens and clicks.
async fn load(viewer: &Viewer, span: &Span) -> AppResult<Loaded> {
    let (from_ms, to_ms) = span.bounds();
    let from_hour = from_ms.div_euclid(HOUR_MS);
    let to_hour = (to_ms + HOUR_MS - 1).div_euclid(HOUR_MS);
    let scope = viewer.scope();
    with_db(viewer.state(), move |conn| {
        Ok::<_, AppError>(Loaded {
            hours: rollup::hourly(conn, &scope, from_hour, to_hour)?,
            latest: messages::latest(conn, &scope, 10)?,
            engagement: status_store::engagement(conn, &scope, from_ms, to_ms)?,
        })
    })
    .await
}

/// The hourly counts added up per `[starts[i], starts[i + 1])`, by status and reason.
fn fold(hours: &[HourCount], starts: &[i64]) -> Vec<BTreeMap<(i16, i16), i64>> {
    let n = starts.len() - 1;
    let mut per: Vec<BTreeMap<(i16, i16), i64>> = vec![BTreeMap::new(); n];
    for h in hours {
        let at = h.hour * HOUR_MS;
        if let Some(b) = (0..n).find(|&b| at >= starts[b] && at < starts[b + 1]) {
            *per[b].entry((h.status, h.reason)).or_default() += h.count;
        }
    }
    per
}

impl OverviewPage {
    fn build(
        viewer: &Viewer,
        req: &HttpRequest,
        span: &Span,
        data: Loaded,
        alerts: crate::web::alerts::OverviewAlerts,
    ) -> Self {
        let lang = viewer.lang;
        let links = Links {
            account: viewer.is_staff_view().then_some(viewer.account.id),
        };
        let per_bucket = fold(&data.hours, &span.bucket_starts);
        let latest = latest_rows(viewer, data.latest, &span.zone);
        let periods = periods(&data.hours, span, lang, &links);
        let range = periods.last().expect("the range's period is always there");
        OverviewPage {
            ctx: viewer.page("/"),
            ranges: ranges(span.days, &links, lang),
            kpis: kpis(range, data.engagement, span, lang, &links),
            chart: chart(&per_bucket, span, lang, &links, 760.0),
            chart_small: chart(&per_bucket, span, lang, &links, 360.0),
            legend: legend(span, lang, &links),
            empty: latest.is_empty().then(|| onboarding(viewer, req)),
            latest,
            periods,
            account_param: match account_param(viewer) {
                p if p.is_empty() => p,
                p => format!("?{p}"),
            },
            alerts,
        }
    }
}

/// Today's card when the range is longer than a day, then the range's own.
fn periods(hours: &[HourCount], span: &Span, lang: Lang, links: &Links) -> Vec<Period> {
    let per_day = fold(hours, &span.day_starts);
    let mut range_counts: BTreeMap<(i16, i16), i64> = BTreeMap::new();
    for day in &per_day {
        for (k, v) in day {
            *range_counts.entry(*k).or_default() += v;
        }
    }
    let range_title = match span.days {
        1 => lang.t("overview.today"),
        7 => lang.t("overview.week"),
        _ => lang.t("overview.month"),
    };
    let mut periods = Vec::new();
    if let (true, Some(today)) = (span.days > 1, per_day.last()) {
        let title = lang.t("overview.today");
        let days = (span.today, span.today);
        periods.push(period("period-1", title, today, lang, links, days));
    }
    let days = (span.first_day, span.today);
    periods.push(period(
        "period-2",
        range_title,
        &range_counts,
        lang,
        links,
        days,
    ));
    periods
}

fn legend(span: &Span, lang: Lang, links: &Links) -> Vec<(&'static str, String, String)> {
    Status::ALL
        .iter()
        .map(|s| {
            (
                s.tone(),
                s.label(lang.code()).to_string(),
                links.status(span.first_day, span.today, Some(*s), None),
            )
        })
        .collect()
}

fn latest_rows(viewer: &Viewer, latest: Vec<Message>, zone: &Tz) -> Vec<LatestRow> {
    let lang = viewer.lang;
    latest
        .into_iter()
        .map(|m| LatestRow {
            id: m.id,
            recipient: viewer.show_address(&m.recipient),
            status: m.status(),
            status_label: m.status().label(lang.code()).to_string(),
            reason_label: m.reason_label(lang.code()),
            requested: format_in_zone(m.requested_at, zone),
        })
        .collect()
}

/// Where an empty account's events go: this server's address as people reach it.
fn onboarding(viewer: &Viewer, req: &HttpRequest) -> Onboarding {
    let base = match &viewer.state().settings.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    let account: String =
        url::form_urlencoded::byte_serialize(viewer.account.name.as_bytes()).collect();
    Onboarding {
        webhook_url: format!("{base}/webhooks/sendcloud?account={account}"),
        events_url: format!("{base}/api/v1/events"),
        can_configure: viewer.role() != Role::Member,
    }
}

fn ranges(days: i64, links: &Links, lang: Lang) -> Vec<RangeChoice> {
    RANGES
        .iter()
        .map(|&d| RangeChoice {
            days: d,
            label: lang.t(match d {
                1 => "overview.range_1",
                7 => "overview.range_7",
                _ => "overview.range_30",
            }),
            href: match links.account {
                Some(a) => format!("/?days={d}&account={a}"),
                None => format!("/?days={d}"),
            },
            active: d == days,
        })
        .collect()
}
