//! The overview's numbers: counts per status and the top reasons of a period, the headline
//! rates of the range, and the links into `/status` that each of them is.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::Span;
use crate::domain::{Reason, Status};
use crate::web::lang::Lang;
use crate::web::layout::grouped;

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

pub fn percent(part: i64, whole: i64) -> String {
    if whole > 0 {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    } else {
        "—".into()
    }
}

/// Links into `/status` with a filter.
pub struct Links {
    pub account: Option<i64>,
}

impl Links {
    pub fn status(
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

/// A period's card: its counts per status and its six most frequent reasons.
pub fn period(
    id: &'static str,
    title: String,
    counts: &BTreeMap<(i16, i16), i64>,
    lang: Lang,
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
    Period {
        id,
        title,
        total,
        total_shown: grouped(total),
        total_href: links.status(from, to, None, None),
        statuses,
        reasons: top_reasons(counts, lang, links, (from, to)),
    }
}

fn top_reasons(
    counts: &BTreeMap<(i16, i16), i64>,
    lang: Lang,
    links: &Links,
    (from, to): (NaiveDate, NaiveDate),
) -> Vec<ReasonCount> {
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
    reasons.into_iter().map(|(_, r)| r).collect()
}

/// The headline numbers of the range: requests, the rates of each outcome among the
/// finished, and opens and clicks among the delivered.
pub fn kpis(
    range: &Period,
    (opened, clicked): (i64, i64),
    span: &Span,
    lang: Lang,
    links: &Links,
) -> Vec<Kpi> {
    let count = |s: Status| {
        range
            .statuses
            .iter()
            .find(|c| c.status == s)
            .map(|c| c.count)
            .unwrap_or(0)
    };
    let (from, to) = (span.first_day, span.today);
    let total = range.total;
    let delivered = count(Status::Delivered);
    let finished = total - count(Status::Requesting);
    let mut kpis = vec![Kpi {
        code: "total",
        label: lang.t("overview.requested"),
        value: grouped(total),
        sub: range.title.clone(),
        tone: "",
        href: links.status(from, to, None, None),
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
            href: links.status(from, to, Some(s), None),
        });
    }
    for (code, n, rate, word) in [
        ("opened", opened, "overview.open_rate", "overview.opened"),
        (
            "clicked",
            clicked,
            "overview.click_rate",
            "overview.clicked",
        ),
    ] {
        kpis.push(Kpi {
            code,
            label: lang.t(rate),
            value: percent(n, delivered),
            sub: format!("{} {}", grouped(n), lang.t(word)),
            tone: "",
            href: String::new(),
        });
    }
    kpis
}
