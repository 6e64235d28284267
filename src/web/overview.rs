//! `/`: counts per status and the top reasons, today and over the last 7 days, with a chart,
//! from the status rollup, cut into days in the account's time zone.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use askama::Template;
use chrono::{Duration, Utc};

use super::auth::Viewer;
use super::layout::PageCtx;
use super::{with_db, AppError, AppResult};
use crate::domain::{day_start, format_in_zone, Reason, Status};
use crate::store::messages;
use crate::store::models::Message;
use crate::store::rollup::{self, HOUR_MS};

const DAYS: usize = 7;

pub struct StatusCount {
    pub status: Status,
    pub label: String,
    pub count: i64,
    /// Share of the period's total, in percent with one decimal.
    pub share: String,
}

pub struct ReasonCount {
    pub status: Status,
    pub reason: Reason,
    pub label: String,
    pub count: i64,
}

pub struct Period {
    pub title: String,
    pub total: i64,
    pub statuses: Vec<StatusCount>,
    pub reasons: Vec<ReasonCount>,
}

/// One bar segment of the chart, in SVG user units.
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub height: i64,
    pub tone: &'static str,
    pub title: String,
}

pub struct DayLabel {
    pub x: i64,
    pub text: String,
    pub total: i64,
}

pub struct LatestRow {
    pub id: i64,
    pub recipient: String,
    pub status: Status,
    pub status_label: String,
    pub reason_label: String,
    pub requested: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    ctx: PageCtx,
    periods: Vec<Period>,
    bars: Vec<Bar>,
    days: Vec<DayLabel>,
    legend: Vec<(&'static str, String)>,
    latest: Vec<LatestRow>,
    empty: bool,
    account_param: String,
}

pub const CHART_HEIGHT: i64 = 160;
const BAR_WIDTH: i64 = 48;
const BAR_GAP: i64 = 24;

fn period(title: String, counts: &BTreeMap<(i16, i16), i64>, lang: super::lang::Lang) -> Period {
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
                share: if total > 0 {
                    format!("{:.1}", count as f64 * 100.0 / total as f64)
                } else {
                    "0.0".into()
                },
            }
        })
        .collect();
    let mut reasons: Vec<ReasonCount> = counts
        .iter()
        .filter_map(|(&(status, reason), &count)| {
            let status = Status::from_i16(status)?;
            let reason = Reason::from_i16(reason)?;
            Some(ReasonCount {
                status,
                reason,
                label: format!(
                    "{} · {}",
                    status.label(lang.code()),
                    reason.label(lang.code())
                ),
                count,
            })
        })
        .collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.count));
    reasons.truncate(6);
    Period {
        title,
        total,
        statuses,
        reasons,
    }
}

pub async fn page(viewer: Viewer) -> AppResult<HttpResponse> {
    let zone = viewer.account.zone();
    let lang = viewer.lang;
    let today = Utc::now().with_timezone(&zone).date_naive();
    let first_day = today - Duration::days(DAYS as i64 - 1);
    let starts: Vec<i64> = (0..=DAYS)
        .map(|i| day_start(&zone, first_day + Duration::days(i as i64)))
        .collect();
    let from_hour = starts[0].div_euclid(HOUR_MS);
    let to_hour = starts[DAYS].div_euclid(HOUR_MS);
    let scope = viewer.scope();
    let (hours, latest, empty) = with_db(viewer.state(), move |conn| {
        let hours = rollup::hourly(conn, &scope, from_hour, to_hour)?;
        let latest = messages::latest(conn, &scope, 10)?;
        let empty = latest.is_empty();
        Ok::<_, AppError>((hours, latest, empty))
    })
    .await?;

    // Per day: (status, reason) → count.
    let mut per_day: Vec<BTreeMap<(i16, i16), i64>> = vec![BTreeMap::new(); DAYS];
    for h in &hours {
        let at = h.hour * HOUR_MS;
        if let Some(day) = (0..DAYS).find(|&d| at >= starts[d] && at < starts[d + 1]) {
            *per_day[day].entry((h.status, h.reason)).or_default() += h.count;
        }
    }
    let mut week_counts: BTreeMap<(i16, i16), i64> = BTreeMap::new();
    for day in &per_day {
        for (k, v) in day {
            *week_counts.entry(*k).or_default() += v;
        }
    }
    let today_period = period(lang.t("overview.today"), &per_day[DAYS - 1], lang);
    let week_period = period(lang.t("overview.week"), &week_counts, lang);

    let max_day: i64 = per_day
        .iter()
        .map(|d| d.values().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut bars = Vec::new();
    let mut days = Vec::new();
    for (i, day) in per_day.iter().enumerate() {
        let x = BAR_GAP + i as i64 * (BAR_WIDTH + BAR_GAP);
        let date = first_day + Duration::days(i as i64);
        let day_total: i64 = day.values().sum();
        days.push(DayLabel {
            x: x + BAR_WIDTH / 2,
            text: date.format("%m-%d").to_string(),
            total: day_total,
        });
        let mut y = CHART_HEIGHT;
        for &status in Status::ALL {
            let count: i64 = day
                .iter()
                .filter(|((s, _), _)| *s == status.as_i16())
                .map(|(_, n)| n)
                .sum();
            if count == 0 {
                continue;
            }
            let height = (count * CHART_HEIGHT / max_day).max(1);
            y -= height;
            bars.push(Bar {
                x,
                y,
                height,
                tone: status.tone(),
                title: format!(
                    "{} {}: {}",
                    date.format("%Y-%m-%d"),
                    status.label(lang.code()),
                    count
                ),
            });
        }
    }
    let legend = Status::ALL
        .iter()
        .map(|s| (s.tone(), s.label(lang.code()).to_string()))
        .collect();
    let latest = latest
        .into_iter()
        .map(|m: Message| LatestRow {
            id: m.id,
            recipient: if viewer.account.mask_addresses {
                crate::domain::mask_address(&m.recipient)
            } else {
                m.recipient.clone()
            },
            status: m.status(),
            status_label: m.status().label(lang.code()).to_string(),
            reason_label: m
                .reason()
                .map(|r| r.label(lang.code()).to_string())
                .unwrap_or_default(),
            requested: format_in_zone(m.requested_at, &zone),
        })
        .collect();
    let account_param = if viewer.is_staff_view() {
        format!("?account={}", viewer.account.id)
    } else {
        String::new()
    };
    let page = OverviewPage {
        ctx: viewer.page("/"),
        periods: vec![today_period, week_period],
        bars,
        days,
        legend,
        latest,
        empty,
        account_param,
    };
    let html = page.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}
