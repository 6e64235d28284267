//! The rows of the status table and the tabs above it, each with its count.

use super::Viewer;
use crate::domain::{format_in_zone, Reason, Status};
use crate::store::models::StatusRow;
use crate::store::status::{self, Count, COUNT_CAP};
use crate::web::filters::Parsed;
use crate::web::filters::StatusForm;
use crate::web::layout::grouped;

pub struct Row {
    pub id: i64,
    pub status: Status,
    pub status_label: String,
    pub reason_code: String,
    pub reason_label: String,
    pub api_user: String,
    pub recipient_shown: String,
    pub recipient_query: String,
    pub subject: String,
    pub requested: String,
    pub requested_iso: String,
    pub updated: String,
    pub has_send_log: bool,
    pub has_content: bool,
}

pub struct Tab {
    pub code: String,
    pub label: String,
    /// As shown: "12,345" or "10,000+".
    pub count: String,
    /// As data: "12345" or "10000+".
    pub count_raw: String,
    pub href: String,
    pub active: bool,
    pub tone: &'static str,
}

fn format_count(c: &Count) -> String {
    if c.capped {
        format!("{COUNT_CAP}+")
    } else {
        c.n.to_string()
    }
}

pub(super) fn show_count(c: &Count) -> String {
    if c.capped {
        format!("{}+", grouped(COUNT_CAP))
    } else {
        grouped(c.n)
    }
}

/// The count of one status (or of all, `None`) in `counts`.
pub(super) fn count_of(
    counts: &[(Status, Option<Reason>, Count)],
    status: Option<Status>,
) -> Count {
    let mut n = 0;
    let mut capped = false;
    for (s, r, c) in counts {
        if r.is_none() && status.is_none_or(|x| x == *s) {
            n += c.n;
            capped |= c.capped;
        }
    }
    Count { n, capped }
}

/// "All" and one tab per status, each with its count and link.
pub(super) fn tabs(
    viewer: &Viewer,
    form: &StatusForm,
    parsed: &Parsed,
    counts: &[(Status, Option<Reason>, Count)],
    reason_counts: &[(Status, Option<Reason>, Count)],
) -> Vec<Tab> {
    let lang = viewer.lang;
    let (chosen_status, chosen_reason) = (parsed.filter.status, parsed.filter.reason);
    let all_count = count_of(counts, None);
    let mut tabs = vec![Tab {
        code: String::new(),
        label: lang.t("status.all"),
        count: show_count(&all_count),
        count_raw: format_count(&all_count),
        href: format!(
            "/status?{}",
            form.query_with(&[("status", ""), ("reason", "")])
        ),
        active: chosen_status.is_none(),
        tone: "all",
    }];
    for &s in Status::ALL {
        // With a reason chosen, a status where it occurs counts only that reason and keeps it.
        let keeps_reason = chosen_reason.filter(|r| s.allowed_reasons().contains(r));
        let count = match keeps_reason {
            Some(_) => count_of(reason_counts, Some(s)),
            None => count_of(counts, Some(s)),
        };
        tabs.push(Tab {
            code: s.code().to_string(),
            label: s.label(lang.code()).to_string(),
            count: show_count(&count),
            count_raw: format_count(&count),
            href: format!(
                "/status?{}",
                form.query_with(&[
                    ("status", s.code()),
                    ("reason", keeps_reason.map(|r| r.code()).unwrap_or("")),
                ])
            ),
            active: chosen_status == Some(s),
            tone: s.tone(),
        });
    }
    tabs
}

pub(super) fn row(
    viewer: &Viewer,
    m: &StatusRow,
    zone: &chrono_tz::Tz,
    extras: &status::PageExtras,
) -> Row {
    let lang = viewer.lang;
    let status = m.status();
    Row {
        id: m.id,
        status,
        status_label: status.label(lang.code()).to_string(),
        reason_code: m.reason().map(|r| r.code().to_string()).unwrap_or_default(),
        reason_label: m
            .reason()
            .map(|r| r.label_in(status, lang.code()).to_string())
            .unwrap_or_default(),
        api_user: m.api_user.clone(),
        recipient_shown: viewer.show_address(&m.recipient),
        recipient_query: viewer.lookup_query(&m.recipient, m.id),
        subject: viewer.show_text(extras.subjects.get(&m.id).map_or("", String::as_str)),
        requested: format_in_zone(m.requested_at, zone),
        requested_iso: chrono::DateTime::from_timestamp_millis(m.requested_at)
            .map(|t| t.with_timezone(zone).to_rfc3339())
            .unwrap_or_default(),
        updated: format_in_zone(m.updated_at, zone),
        has_send_log: extras.with_send_log.contains(&m.id),
        has_content: extras.with_content.contains(&m.id),
    }
}
