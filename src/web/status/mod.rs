//! `/status` (邮件状态): the filter form, the table of messages with keyset paging, counts per
//! status as tabs, and the online CSV export of the same filter.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;

use super::auth::Viewer;
pub use super::filters::{
    decode_cursor, encode_cursor, Parsed, StatusFieldError, StatusForm, ONLINE_EXPORT_LIMIT,
    PER_PAGE_CHOICES,
};
use super::filters::{text, Choice, ChoiceGroup, Preset};
use super::layout::{grouped, PageCtx};
pub use super::status_csv::csv;
use super::{with_db, AppError, AppResult};
use crate::domain::{format_in_zone, MailType, Reason, Status};
use crate::store::models::StatusRow;
use crate::store::status::{self, Count, Direction, Position, StatusFilter, COUNT_CAP};

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

#[derive(Template)]
#[template(path = "status/list.html")]
struct StatusPage {
    ctx: PageCtx,
    form: StatusForm,
    errors: Vec<StatusFieldError>,
    notice: Option<String>,
    /// The period reaches back past the retention: its oldest mail may be gone.
    retention_notice: Option<String>,
    period_from: String,
    period_to: String,
    presets: Vec<Preset>,
    active_summary: String,
    statuses: Vec<Choice>,
    reason_groups: Vec<ChoiceGroup>,
    mail_types: Vec<Choice>,
    per_pages: Vec<Choice>,
    tabs: Vec<Tab>,
    rows: Vec<Row>,
    older_href: Option<String>,
    newer_href: Option<String>,
    range: String,
    csv_href: String,
    over_limit: bool,
    over_limit_text: String,
    splus_log: bool,
    splus_content: bool,
    account_param: String,
    export_allowed: bool,
    export_kind: &'static str,
    export_fields: Vec<(String, String)>,
    /// The provider filtered on, by name.
    provider_name: Option<String>,
}

impl StatusPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    fn value(&self, field: &str) -> String {
        self.form.value(field)
    }
}

fn format_count(c: &Count) -> String {
    if c.capped {
        format!("{COUNT_CAP}+")
    } else {
        c.n.to_string()
    }
}

fn show_count(c: &Count) -> String {
    if c.capped {
        format!("{}+", grouped(COUNT_CAP))
    } else {
        grouped(c.n)
    }
}

/// Says so when the period starts before the server's retention cutoff.
fn retention_notice(viewer: &Viewer, from_ms: i64) -> Option<String> {
    let days = viewer.state().settings.retention_days?;
    let cutoff = crate::store::retention::cutoff(days, crate::domain::now_ms());
    (from_ms < cutoff).then(|| {
        viewer
            .lang
            .t("status.retention")
            .replace("{days}", &days.to_string())
            .replace("{date}", &format_in_zone(cutoff, &viewer.account.zone()))
    })
}

/// The count of one status (or of all, `None`) in `counts`.
fn count_of(counts: &[(Status, Option<Reason>, Count)], status: Option<Status>) -> Count {
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

/// What the database answered for one view of the page.
#[derive(Default)]
struct Fetched {
    page: Option<status::Page>,
    counts: Vec<(Status, Option<Reason>, Count)>,
    reason_counts: Vec<(Status, Option<Reason>, Count)>,
    extras: status::PageExtras,
}

/// `GET /status`: parse the form, query, build the view model, render.
pub async fn page(viewer: Viewer, form: web::Query<StatusForm>) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let parsed = form.parse(&viewer);
    let fetched = fetch(&viewer, &parsed).await?;
    let failed = !parsed.errors.is_empty();
    let html = view(&viewer, form, parsed, fetched)
        .render()
        .map_err(AppError::internal)?;
    let status = if failed { 400 } else { 200 };
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
}

/// The page of rows, its extras and the counts of the tabs; nothing when the form is wrong.
async fn fetch(viewer: &Viewer, parsed: &Parsed) -> AppResult<Fetched> {
    if !parsed.errors.is_empty() {
        return Ok(Fetched::default());
    }
    let scope = viewer.scope();
    let filter = parsed.filter.clone();
    let (from, per_page) = (parsed.from, parsed.per_page);
    let counts_filter = StatusFilter {
        status: None,
        reason: None,
        ..filter.clone()
    };
    let reason_filter = filter.reason.map(|reason| StatusFilter {
        status: None,
        reason: Some(reason),
        ..filter.clone()
    });
    with_db(viewer.state(), move |conn| {
        let page = status::page(conn, &scope, &filter, from, per_page)?;
        let extras = status::page_extras(conn, &scope, &page.rows)?;
        let counts = status::counts(conn, &scope, &counts_filter)?;
        let reason_counts = match reason_filter {
            Some(f) => status::counts(conn, &scope, &f)?,
            None => Vec::new(),
        };
        Ok(Fetched {
            page: Some(page),
            counts,
            reason_counts,
            extras,
        })
    })
    .await
}

/// Where this page starts among all the filter's rows, and the links to the older and newer pages.
fn pager_links(
    form: &StatusForm,
    parsed: &Parsed,
    page: Option<&status::Page>,
    shown: i64,
) -> (i64, Option<String>, Option<String>) {
    let came_newer = matches!(parsed.from, Some((_, Direction::Newer)));
    let mut start: i64 = text(&form.start)
        .and_then(|s| s.parse().ok())
        .filter(|n: &i64| *n >= 0)
        .unwrap_or(0);
    if parsed.from.is_none() || (came_newer && page.is_some_and(|p| p.newer.is_none())) {
        start = 0;
    }
    let pager = |pos: Position, d: Direction, at: i64| {
        format!(
            "/status?{}",
            form.query_with(&[
                ("cursor", &encode_cursor(pos, d)),
                ("start", &at.to_string())
            ])
        )
    };
    let older_href = page
        .and_then(|p| p.older)
        .map(|pos| pager(pos, Direction::Older, start + shown));
    let newer_href = page
        .and_then(|p| p.newer)
        .map(|pos| pager(pos, Direction::Newer, (start - parsed.per_page).max(0)));
    (start, older_href, newer_href)
}

/// The rows-per-page choices, the current one selected.
fn per_page_choices(per_page: i64) -> Vec<Choice> {
    PER_PAGE_CHOICES
        .iter()
        .map(|n| Choice {
            value: n.to_string(),
            label: n.to_string(),
            selected: *n == per_page,
        })
        .collect()
}

/// The view model of the page.
fn view(viewer: &Viewer, form: StatusForm, parsed: Parsed, fetched: Fetched) -> StatusPage {
    let lang = viewer.lang;
    let zone = viewer.account.zone();
    let failed = !parsed.errors.is_empty();
    let Fetched {
        page,
        counts,
        reason_counts,
        extras,
    } = fetched;
    let rows: Vec<Row> = page
        .as_ref()
        .map(|p| {
            p.rows
                .iter()
                .map(|m| row(viewer, m, &zone, &extras))
                .collect()
        })
        .unwrap_or_default();

    let shown = rows.len() as i64;
    let (start, older_href, newer_href) = pager_links(&form, &parsed, page.as_ref(), shown);

    let (chosen_status, chosen_reason) = (parsed.filter.status, parsed.filter.reason);
    let shown_count = match (chosen_status, chosen_reason) {
        (Some(s), Some(_)) => count_of(&reason_counts, Some(s)),
        (s, _) => count_of(&counts, s),
    };
    let range = if failed || rows.is_empty() {
        String::new()
    } else {
        lang.t("status.range")
            .replace("{first}", &grouped(start + 1))
            .replace("{last}", &grouped(start + shown))
            .replace("{total}", &show_count(&shown_count))
    };
    let provider_name = parsed
        .filter
        .provider
        .as_deref()
        .map(|p| crate::domain::providers::provider_name(p, lang.code()));
    StatusPage {
        ctx: viewer.page("/status"),
        csv_href: format!("/status.csv?{}", form.query_with(&[])),
        over_limit: shown_count.capped || shown_count.n > ONLINE_EXPORT_LIMIT,
        over_limit_text: lang
            .t("export.over_limit")
            .replace("{limit}", &grouped(ONLINE_EXPORT_LIMIT)),
        period_from: parsed.period.from.to_string(),
        period_to: parsed.period.to.to_string(),
        presets: presets(viewer, &form, &parsed),
        active_summary: summary(viewer, &parsed),
        retention_notice: retention_notice(viewer, parsed.filter.from_ms),
        tabs: tabs(viewer, &form, &parsed, &counts, &reason_counts),
        statuses: status_choices(viewer, chosen_status),
        reason_groups: reason_groups(viewer, chosen_status, chosen_reason, &counts),
        mail_types: mail_type_choices(viewer, &form),
        per_pages: per_page_choices(parsed.per_page),
        errors: parsed.errors,
        notice: parsed.notice,
        rows,
        older_href,
        newer_href,
        range,
        splus_log: viewer.account.splus_log,
        splus_content: viewer.account.splus_content,
        account_param: if viewer.is_staff_view() {
            format!("?account={}", viewer.account.id)
        } else {
            String::new()
        },
        export_allowed: viewer.account.export_allowed,
        export_kind: "status",
        export_fields: url::form_urlencoded::parse(
            form.query_with(&[("account", ""), ("start", "")])
                .as_bytes(),
        )
        .into_owned()
        .collect(),
        provider_name,
        form,
    }
}

/// "All" and one tab per status, each with its count and link.
fn tabs(
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

fn status_choices(viewer: &Viewer, chosen: Option<Status>) -> Vec<Choice> {
    let lang = viewer.lang;
    std::iter::once(Choice {
        value: String::new(),
        label: lang.t("filter.any"),
        selected: chosen.is_none(),
    })
    .chain(Status::ALL.iter().map(|s| Choice {
        value: s.code().into(),
        label: s.label(lang.code()).into(),
        selected: chosen == Some(*s),
    }))
    .collect()
}

/// The reasons grouped under the status they occur with; with a status chosen, only its own.
fn reason_groups(
    viewer: &Viewer,
    chosen_status: Option<Status>,
    chosen_reason: Option<Reason>,
    counts: &[(Status, Option<Reason>, Count)],
) -> Vec<ChoiceGroup> {
    let lang = viewer.lang;
    let reason_label = |s: Status, r: Reason| {
        let count = counts
            .iter()
            .find(|(st, rr, _)| *st == s && *rr == Some(r))
            .map(|(_, _, c)| format!(" ({})", show_count(c)))
            .unwrap_or_default();
        format!("{}{count}", r.label_in(s, lang.code()))
    };
    let mut groups = vec![ChoiceGroup {
        label: String::new(),
        choices: vec![Choice {
            value: String::new(),
            label: lang.t("filter.any"),
            selected: chosen_reason.is_none(),
        }],
    }];
    let offered: Vec<Status> = match chosen_status {
        Some(s) => vec![s],
        None => Status::ALL.to_vec(),
    };
    for s in offered
        .into_iter()
        .filter(|s| !s.allowed_reasons().is_empty())
    {
        groups.push(ChoiceGroup {
            label: s.label(lang.code()).to_string(),
            choices: s
                .allowed_reasons()
                .iter()
                .map(|&r| Choice {
                    value: if chosen_status.is_some() {
                        r.code().to_string()
                    } else {
                        format!("{}:{}", s.code(), r.code())
                    },
                    label: reason_label(s, r),
                    selected: chosen_status == Some(s) && chosen_reason == Some(r),
                })
                .collect(),
        });
    }
    groups
}

fn mail_type_choices(viewer: &Viewer, form: &StatusForm) -> Vec<Choice> {
    let lang = viewer.lang;
    let value = text(&form.mail_type).unwrap_or_default();
    std::iter::once(Choice {
        value: String::new(),
        label: lang.t("filter.any"),
        selected: value.is_empty(),
    })
    .chain(MailType::ALL.iter().map(|m| Choice {
        value: m.code().into(),
        label: m.label(lang.code()).into(),
        selected: value == m.code(),
    }))
    .collect()
}

/// Presets beside the dates: whole days in the account's time zone.
fn presets(viewer: &Viewer, form: &StatusForm, parsed: &Parsed) -> Vec<Preset> {
    let failed = !parsed.errors.is_empty();
    let today = Utc::now()
        .with_timezone(&viewer.account.zone())
        .date_naive();
    [
        ("today", "filter.preset_today", 0),
        ("24h", "filter.preset_24h", 1),
        ("7d", "filter.preset_7d", 6),
        ("30d", "filter.preset_30d", 29),
    ]
    .into_iter()
    .map(|(code, key, back)| {
        let from = (today - chrono::Duration::days(back)).to_string();
        let to = today.to_string();
        Preset {
            code,
            label: viewer.lang.t(key),
            active: !failed
                && parsed.period.from.to_string() == from
                && parsed.period.to.to_string() == to,
            href: format!(
                "/status?{}",
                form.query_with(&[("from", &from), ("to", &to)])
            ),
        }
    })
    .collect()
}

/// One line that says what the folded filter holds.
fn summary(viewer: &Viewer, parsed: &Parsed) -> String {
    let lang = viewer.lang;
    let f = &parsed.filter;
    let mut summary = vec![format!("{} – {}", parsed.period.from, parsed.period.to)];
    if let Some(s) = f.status {
        summary.push(s.label(lang.code()).to_string());
    }
    if let Some(r) = f.reason {
        summary.push(r.label(lang.code()).to_string());
    }
    if let Some(p) = &f.provider {
        summary.push(crate::domain::providers::provider_name(p, lang.code()));
    }
    for v in [
        &f.recipient,
        &f.subject,
        &f.sender,
        &f.email_id,
        &f.tag,
        &f.api_user,
    ]
    .into_iter()
    .flatten()
    {
        summary.push(v.clone());
    }
    if let Some(m) = f.mail_type {
        summary.push(m.label(lang.code()).to_string());
    }
    summary.join(" · ")
}

fn row(viewer: &Viewer, m: &StatusRow, zone: &chrono_tz::Tz, extras: &status::PageExtras) -> Row {
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
