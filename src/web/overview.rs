//! `/`: counts per status, rates and the top reasons over today, 7 or 30 days, with a chart
//! drawn on the server (axes, ticks, a delivery-rate line, hover values as SVG `<title>`),
//! from the status rollup, cut into days (or, for one day, hours) in the account's time zone.
//! Every number leads to `/status` with the matching filter.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::auth::Viewer;
use super::layout::{grouped, PageCtx};
use super::{with_db, AppError, AppResult};
use crate::domain::{day_start, format_in_zone, Reason, Status};
use crate::store::messages;
use crate::store::models::Message;
use crate::store::rollup::{self, HOUR_MS};
use crate::store::status as status_store;

/// The ranges the switch offers, in days.
pub const RANGES: &[i64] = &[1, 7, 30];
const DEFAULT_DAYS: i64 = 7;

#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    pub days: Option<String>,
}

pub struct StatusCount {
    pub status: Status,
    pub label: String,
    pub count: i64,
    pub shown: String,
    /// Share of the period's total, in percent with one decimal.
    pub share: String,
    pub href: String,
}

pub struct ReasonCount {
    pub status: Status,
    pub reason: Reason,
    pub label: String,
    pub shown: String,
    pub href: String,
}

pub struct Period {
    pub id: &'static str,
    pub title: String,
    pub total: i64,
    pub total_shown: String,
    pub total_href: String,
    pub statuses: Vec<StatusCount>,
    pub reasons: Vec<ReasonCount>,
}

/// A headline number of the chosen range.
pub struct Kpi {
    pub code: &'static str,
    pub label: String,
    pub value: String,
    pub sub: String,
    pub tone: &'static str,
    pub href: String,
}

/// One bar segment of the chart, in SVG user units.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub tone: &'static str,
    pub title: String,
    pub href: String,
}

/// A bucket's whole column: hover shows its summary.
pub struct Column {
    pub x: String,
    pub width: String,
    pub title: String,
    pub href: String,
}

pub struct Tick {
    pub y: String,
    pub text: String,
}

pub struct XLabel {
    pub x: String,
    pub text: String,
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

pub struct Chart {
    pub title: String,
    /// The SVG viewBox and the plot's edges, in its user units.
    pub view_box: String,
    pub left: String,
    pub right: String,
    pub top: String,
    pub bottom: String,
    pub plot_height: String,
    pub tick_x: String,
    pub rate_x: String,
    pub label_y: String,
    pub bars: Vec<Bar>,
    pub columns: Vec<Column>,
    pub ticks: Vec<Tick>,
    pub rate_ticks: Vec<Tick>,
    pub labels: Vec<XLabel>,
    /// The delivery-rate line, as SVG points.
    pub rate_points: String,
    pub rate_dots: Vec<(String, String, String)>,
}

/// What an empty account's owner does next.
pub struct Onboarding {
    pub webhook_url: String,
    pub events_url: String,
    pub can_configure: bool,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    ctx: PageCtx,
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
    alerts: super::alerts::OverviewAlerts,
}

// Chart geometry, in SVG user units: the wide chart is 760 units across, the phone's 360.
const HEIGHT: f64 = 250.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 44.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;

fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

/// A round step for about four ticks up to `max`: 1, 2 or 5 times a power of ten.
pub fn tick_step(max: i64) -> i64 {
    let rough = (max.max(1) as f64 / 4.0).max(1.0);
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    (step as i64).max(1)
}

fn percent(part: i64, whole: i64) -> String {
    if whole > 0 {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    } else {
        "—".into()
    }
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

/// Links into `/status` with a filter.
struct Links {
    account: Option<i64>,
}

impl Links {
    fn status(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        status: Option<Status>,
        reason: Option<Reason>,
    ) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("from", &from.to_string());
        q.append_pair("to", &to.to_string());
        if let Some(s) = status {
            q.append_pair("status", s.code());
        }
        if let Some(r) = reason {
            q.append_pair("reason", r.code());
        }
        if let Some(a) = self.account {
            q.append_pair("account", &a.to_string());
        }
        format!("/status?{}", q.finish())
    }
}

fn period(
    id: &'static str,
    title: String,
    counts: &BTreeMap<(i16, i16), i64>,
    lang: super::lang::Lang,
    links: &Links,
    (from, to): (NaiveDate, NaiveDate),
) -> Period {
    let mut per_status: BTreeMap<i16, i64> = BTreeMap::new();
    for ((status, _), n) in counts {
        *per_status.entry(*status).or_default() += n;
    }
    let total: i64 = per_status.values().sum();
    let statuses = Status::ALL
        .iter()
        .map(|&s| {
            let count = per_status.get(&s.as_i16()).copied().unwrap_or(0);
            StatusCount {
                status: s,
                label: s.label(lang.code()).to_string(),
                count,
                shown: grouped(count),
                share: if total > 0 {
                    format!("{:.1}", count as f64 * 100.0 / total as f64)
                } else {
                    "0.0".into()
                },
                href: links.status(from, to, Some(s), None),
            }
        })
        .collect();
    let mut reasons: Vec<(i64, ReasonCount)> = counts
        .iter()
        .filter_map(|(&(status, reason), &count)| {
            let status = Status::from_i16(status)?;
            let reason = Reason::from_i16(reason)?;
            Some((
                count,
                ReasonCount {
                    status,
                    reason,
                    label: format!(
                        "{} · {}",
                        status.label(lang.code()),
                        reason.label(lang.code())
                    ),
                    shown: grouped(count),
                    href: links.status(from, to, Some(status), Some(reason)),
                },
            ))
        })
        .collect();
    reasons.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    reasons.truncate(6);
    Period {
        id,
        title,
        total,
        total_shown: grouped(total),
        total_href: links.status(from, to, None, None),
        statuses,
        reasons: reasons.into_iter().map(|(_, r)| r).collect(),
    }
}

pub async fn page(
    viewer: Viewer,
    req: HttpRequest,
    query: web::Query<OverviewQuery>,
) -> AppResult<HttpResponse> {
    let zone = viewer.account.zone();
    let lang = viewer.lang;
    let days = query
        .days
        .as_deref()
        .and_then(|d| d.parse::<i64>().ok())
        .filter(|d| RANGES.contains(d))
        .unwrap_or(DEFAULT_DAYS);
    let today = Utc::now().with_timezone(&zone).date_naive();
    let first_day = today - Duration::days(days - 1);
    let n_days = days as usize;
    let starts: Vec<i64> = (0..=n_days)
        .map(|i| day_start(&zone, first_day + Duration::days(i as i64)))
        .collect();
    // Today's card is always there; with a longer range, the range's card too.
    let from_ms = starts[0];
    let to_ms = starts[n_days];
    let from_hour = from_ms.div_euclid(HOUR_MS);
    let to_hour = (to_ms + HOUR_MS - 1).div_euclid(HOUR_MS);
    let scope = viewer.scope();
    let (hours, latest, (opened, clicked)) = with_db(viewer.state(), move |conn| {
        let hours = rollup::hourly(conn, &scope, from_hour, to_hour)?;
        let latest = messages::latest(conn, &scope, 10)?;
        let engagement = status_store::engagement(conn, &scope, from_ms, to_ms)?;
        Ok::<_, AppError>((hours, latest, engagement))
    })
    .await?;
    let links = Links {
        account: viewer.is_staff_view().then_some(viewer.account.id),
    };

    // Buckets: hours of today for one day, else days.
    let bucket_starts: Vec<i64> = if days == 1 {
        (0..=24).map(|h| starts[0] + h * HOUR_MS).collect()
    } else {
        starts.clone()
    };
    let buckets = bucket_starts.len() - 1;
    let mut per_bucket: Vec<BTreeMap<(i16, i16), i64>> = vec![BTreeMap::new(); buckets];
    let mut per_day: Vec<BTreeMap<(i16, i16), i64>> = vec![BTreeMap::new(); n_days];
    for h in &hours {
        let at = h.hour * HOUR_MS;
        if let Some(b) = (0..buckets).find(|&b| at >= bucket_starts[b] && at < bucket_starts[b + 1])
        {
            *per_bucket[b].entry((h.status, h.reason)).or_default() += h.count;
        }
        if let Some(d) = (0..n_days).find(|&d| at >= starts[d] && at < starts[d + 1]) {
            *per_day[d].entry((h.status, h.reason)).or_default() += h.count;
        }
    }
    let mut range_counts: BTreeMap<(i16, i16), i64> = BTreeMap::new();
    for day in &per_day {
        for (k, v) in day {
            *range_counts.entry(*k).or_default() += v;
        }
    }
    let range_title = match days {
        1 => lang.t("overview.today"),
        7 => lang.t("overview.week"),
        _ => lang.t("overview.month"),
    };
    let mut periods = Vec::new();
    if days > 1 {
        periods.push(period(
            "period-1",
            lang.t("overview.today"),
            &per_day[n_days - 1],
            lang,
            &links,
            (today, today),
        ));
    }
    let range = period(
        "period-2",
        range_title.clone(),
        &range_counts,
        lang,
        &links,
        (first_day, today),
    );

    // Headline numbers of the range.
    let count = |s: Status| {
        range
            .statuses
            .iter()
            .find(|c| c.status == s)
            .map(|c| c.count)
            .unwrap_or(0)
    };
    let total = range.total;
    let delivered = count(Status::Delivered);
    let finished = total - count(Status::Requesting);
    let mut kpis = vec![Kpi {
        code: "total",
        label: lang.t("overview.requested"),
        value: grouped(total),
        sub: range_title.clone(),
        tone: "",
        href: links.status(first_day, today, None, None),
    }];
    for (code, s, key) in [
        ("delivered", Status::Delivered, "overview.delivery_rate"),
        (
            "soft_bounce",
            Status::SoftBounce,
            "overview.soft_bounce_rate",
        ),
        ("invalid", Status::Invalid, "overview.invalid_rate"),
    ] {
        kpis.push(Kpi {
            code,
            label: lang.t(key),
            value: percent(count(s), finished),
            sub: format!("{} {}", grouped(count(s)), s.label(lang.code())),
            tone: s.tone(),
            href: links.status(first_day, today, Some(s), None),
        });
    }
    kpis.push(Kpi {
        code: "opened",
        label: lang.t("overview.open_rate"),
        value: percent(opened, delivered),
        sub: format!("{} {}", grouped(opened), lang.t("overview.opened")),
        tone: "",
        href: String::new(),
    });
    kpis.push(Kpi {
        code: "clicked",
        label: lang.t("overview.click_rate"),
        value: percent(clicked, delivered),
        sub: format!("{} {}", grouped(clicked), lang.t("overview.clicked")),
        tone: "",
        href: String::new(),
    });
    periods.push(range);

    let chart_small = chart(&per_bucket, days, first_day, lang, &links, today, 360.0);
    let chart = chart(&per_bucket, days, first_day, lang, &links, today, 760.0);
    let legend = Status::ALL
        .iter()
        .map(|s| {
            (
                s.tone(),
                s.label(lang.code()).to_string(),
                links.status(first_day, today, Some(*s), None),
            )
        })
        .collect();
    let latest: Vec<LatestRow> = latest
        .into_iter()
        .map(|m: Message| LatestRow {
            id: m.id,
            recipient: viewer.show_address(&m.recipient),
            status: m.status(),
            status_label: m.status().label(lang.code()).to_string(),
            reason_label: m
                .reason()
                .map(|r| r.label(lang.code()).to_string())
                .unwrap_or_default(),
            requested: format_in_zone(m.requested_at, &zone),
        })
        .collect();
    let empty = latest.is_empty().then(|| {
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
            can_configure: viewer.role() != crate::domain::Role::Member,
        }
    });
    let account_param = if viewer.is_staff_view() {
        format!("?account={}", viewer.account.id)
    } else {
        String::new()
    };
    let ranges = RANGES
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
        .collect();
    let alerts = super::alerts::for_overview(&viewer).await?;
    let page = OverviewPage {
        ctx: viewer.page("/"),
        ranges,
        kpis,
        periods,
        chart,
        chart_small,
        legend,
        latest,
        empty,
        account_param,
        alerts,
    };
    let html = page.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

fn chart(
    per_bucket: &[BTreeMap<(i16, i16), i64>],
    days: i64,
    first_day: NaiveDate,
    lang: super::lang::Lang,
    links: &Links,
    today: NaiveDate,
    width: f64,
) -> Chart {
    let n = per_bucket.len().max(1);
    let plot_w = width - LEFT - RIGHT;
    let slot = plot_w / n as f64;
    let bar_w = (slot * 0.68).max(2.0);
    let totals: Vec<i64> = per_bucket.iter().map(|b| b.values().sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let step = tick_step(max);
    let top = (max + step - 1) / step * step;
    let y_of = |v: i64| TOP + plot_height() - v as f64 * plot_height() / top as f64;
    let ticks = (0..=top / step)
        .map(|i| Tick {
            y: f(y_of(i * step)),
            text: grouped(i * step),
        })
        .collect();
    let rate_ticks = [0, 50, 100]
        .into_iter()
        .map(|p| Tick {
            y: f(TOP + plot_height() - p as f64 * plot_height() / 100.0),
            text: format!("{p}%"),
        })
        .collect();
    let mut bars = Vec::new();
    let mut columns = Vec::new();
    let mut labels = Vec::new();
    let mut points = Vec::new();
    let mut rate_dots = Vec::new();
    // About 60 units per label.
    let room = (plot_w / 60.0).max(1.0) as usize;
    let label_every = [1, 2, 3, 4, 6, 7, 10, 15]
        .into_iter()
        .find(|every| n.div_ceil(*every) <= room)
        .unwrap_or(n);
    for (i, bucket) in per_bucket.iter().enumerate() {
        let slot_x = LEFT + i as f64 * slot;
        let x = slot_x + (slot - bar_w) / 2.0;
        let (date, when) = if days == 1 {
            (today, format!("{today} {i:02}:00–{:02}:00", i + 1))
        } else {
            let d = first_day + Duration::days(i as i64);
            (d, d.format("%Y-%m-%d").to_string())
        };
        if i % label_every == 0 {
            labels.push(XLabel {
                x: f(slot_x + slot / 2.0),
                text: if days == 1 {
                    format!("{i:02}:00")
                } else {
                    date.format("%m-%d").to_string()
                },
            });
        }
        let total = totals[i];
        let of = |s: Status| -> i64 {
            bucket
                .iter()
                .filter(|((st, _), _)| *st == s.as_i16())
                .map(|(_, c)| c)
                .sum()
        };
        let delivered = of(Status::Delivered);
        let finished = total - of(Status::Requesting);
        let mut summary = vec![format!(
            "{when} · {} {}",
            lang.t("overview.total"),
            grouped(total)
        )];
        let mut y = TOP + plot_height();
        for &status in Status::ALL {
            let count = of(status);
            summary.push(format!(
                "{} {} ({})",
                status.label(lang.code()),
                grouped(count),
                percent(count, total)
            ));
            if count == 0 {
                continue;
            }
            let height = (count as f64 * plot_height() / top as f64).max(1.0);
            y -= height;
            bars.push(Bar {
                x: f(x),
                y: f(y),
                width: f(bar_w),
                height: f(height),
                tone: status.tone(),
                title: format!(
                    "{when} · {} {} ({})",
                    status.label(lang.code()),
                    grouped(count),
                    percent(count, total)
                ),
                href: links.status(date, date, Some(status), None),
            });
        }
        if finished > 0 {
            let rate = delivered as f64 / finished as f64;
            let px = slot_x + slot / 2.0;
            let py = TOP + plot_height() - rate * plot_height();
            points.push(format!("{},{}", f(px), f(py)));
            rate_dots.push((
                f(px),
                f(py),
                format!(
                    "{when} · {} {}",
                    lang.t("overview.delivery_rate"),
                    percent(delivered, finished)
                ),
            ));
            summary.push(format!(
                "{} {}",
                lang.t("overview.delivery_rate"),
                percent(delivered, finished)
            ));
        }
        columns.push(Column {
            x: f(slot_x),
            width: f(slot),
            title: summary.join("\n"),
            href: links.status(date, date, None, None),
        });
    }
    Chart {
        view_box: format!("0 0 {width} {HEIGHT}"),
        left: f(LEFT),
        right: f(width - RIGHT),
        top: f(TOP),
        bottom: f(TOP + plot_height()),
        plot_height: f(plot_height()),
        tick_x: f(LEFT - 6.0),
        rate_x: f(width - RIGHT + 6.0),
        label_y: f(HEIGHT - 12.0),
        title: lang.t(match days {
            1 => "overview.chart_1",
            7 => "overview.chart_7",
            _ => "overview.chart_30",
        }),
        bars,
        columns,
        ticks,
        rate_ticks,
        labels,
        rate_points: points.join(" "),
        rate_dots,
    }
}

#[cfg(test)]
mod tests {
    use super::tick_step;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(0), 1);
        assert_eq!(tick_step(7), 2);
        assert_eq!(tick_step(40), 10);
        assert_eq!(tick_step(1234), 500);
        assert_eq!(tick_step(90_000), 50_000);
    }
}
