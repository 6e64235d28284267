//! `/status` (邮件状态): the filter form, the table of messages with keyset paging, counts per
//! status as tabs, and the online CSV export of the same filter.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::auth::Viewer;
use super::filters::{period_error, text};
use super::layout::{grouped, PageCtx};
use super::{with_db, AppError, AppResult};
use crate::domain::{format_in_zone, MailType, Period, Reason, Status};
use crate::store::models::StatusRow;
use crate::store::status::{self, Count, Direction, Position, StatusFilter, COUNT_CAP};

pub const PER_PAGE_CHOICES: &[i64] = &[20, 50, 100];
/// The most rows a download of the current filter carries; beyond it, offline export.
pub const ONLINE_EXPORT_LIMIT: i64 = 10_000;

/// The query string of `/status`, as typed: every field a string, so that nothing the user
/// typed is lost to a parse error.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusForm {
    pub from: Option<String>,
    pub to: Option<String>,
    pub recipient: Option<String>,
    pub email_id: Option<String>,
    pub mail_type: Option<String>,
    pub tag: Option<String>,
    pub api_user: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub cursor: Option<String>,
    pub per_page: Option<String>,
    pub account: Option<String>,
    /// Part of the subject.
    pub subject: Option<String>,
    /// Part of the sender address.
    pub sender: Option<String>,
    /// How many rows come before this page (for "21–40 of 193"); carried by the pager links.
    pub start: Option<String>,
}

/// A message for one field of the form.
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

pub struct Parsed {
    pub filter: StatusFilter,
    pub period: Period,
    pub from: Option<(Position, Direction)>,
    pub per_page: i64,
    pub errors: Vec<FieldError>,
    /// A notice that is not any one field's fault (a stale page link).
    pub notice: Option<String>,
}

/// `n1764201600000_42` (older than) or `p…` (newer than): a position and a direction.
pub fn encode_cursor(p: Position, d: Direction) -> String {
    let tag = match d {
        Direction::Older => 'n',
        Direction::Newer => 'p',
    };
    format!("{tag}{}_{}", p.at, p.id)
}

pub fn decode_cursor(s: &str) -> Option<(Position, Direction)> {
    let direction = match s.chars().next()? {
        'n' => Direction::Older,
        'p' => Direction::Newer,
        _ => return None,
    };
    let (at, id) = s[1..].split_once('_')?;
    Some((
        Position {
            at: at.parse().ok()?,
            id: id.parse().ok()?,
        },
        direction,
    ))
}

impl StatusForm {
    pub fn parse(&self, viewer: &Viewer) -> Parsed {
        let lang = viewer.lang;
        let zone = viewer.account.zone();
        let today = Utc::now().with_timezone(&zone).date_naive();
        let mut errors = Vec::new();
        let period = match Period::parse(self.from.as_deref(), self.to.as_deref(), today) {
            Ok(p) => p,
            Err(e) => {
                let (field, key) = period_error(e);
                errors.push(FieldError {
                    field,
                    message: lang.t(key),
                });
                Period::today(today)
            }
        };
        let (from_ms, to_ms) = period.bounds(&zone);
        // The grouped reason list sends `status:reason`; the status select may be left at "any".
        let (reason_status, reason_text) = match text(&self.reason) {
            Some(r) => match r.split_once(':') {
                Some((st, rs)) => (Status::from_code(st), Some(rs.to_string())),
                None => (None, Some(r)),
            },
            None => (None, None),
        };
        let status = text(&self.status).or_else(|| reason_status.map(|s| s.code().to_string()));
        let status = status.and_then(|s| match Status::from_code(&s) {
            Some(st) => Some(st),
            None => {
                errors.push(FieldError {
                    field: "status",
                    message: lang.t("filter.bad_status"),
                });
                None
            }
        });
        let reason = reason_text.and_then(|r| match (Reason::from_code(&r), status) {
            (None, _) => {
                errors.push(FieldError {
                    field: "reason",
                    message: lang.t("filter.bad_reason"),
                });
                None
            }
            (Some(_), None) => {
                errors.push(FieldError {
                    field: "reason",
                    message: lang.t("filter.reason_needs_status"),
                });
                None
            }
            (Some(reason), Some(st)) if !st.allowed_reasons().contains(&reason) => {
                errors.push(FieldError {
                    field: "reason",
                    message: lang.t("filter.reason_not_in_status"),
                });
                None
            }
            (Some(reason), Some(_)) => Some(reason),
        });
        let mail_type = text(&self.mail_type).and_then(|m| match MailType::from_code(&m) {
            Some(mt) => Some(mt),
            None => {
                errors.push(FieldError {
                    field: "mail_type",
                    message: lang.t("filter.bad_mail_type"),
                });
                None
            }
        });
        let per_page = match text(&self.per_page) {
            None => PER_PAGE_CHOICES[0],
            Some(p) => match p
                .parse::<i64>()
                .ok()
                .filter(|n| PER_PAGE_CHOICES.contains(n))
            {
                Some(n) => n,
                None => {
                    errors.push(FieldError {
                        field: "per_page",
                        message: lang.t("filter.bad_per_page"),
                    });
                    PER_PAGE_CHOICES[0]
                }
            },
        };
        let mut notice = None;
        let from = text(&self.cursor).and_then(|c| {
            let decoded = decode_cursor(&c);
            if decoded.is_none() {
                notice = Some(lang.t("filter.bad_cursor"));
            }
            decoded
        });
        let filter = StatusFilter {
            from_ms,
            to_ms,
            recipient: text(&self.recipient).map(|r| crate::domain::normalize_address(&r)),
            email_id: text(&self.email_id),
            mail_type,
            tag: text(&self.tag),
            api_user: text(&self.api_user),
            status,
            reason,
            subject: text(&self.subject),
            sender: text(&self.sender),
        };
        Parsed {
            filter,
            period,
            from,
            per_page,
            errors,
            notice,
        }
    }

    /// This form's query string with some fields replaced (empty value: left out).
    pub fn query_with(&self, changes: &[(&str, &str)]) -> String {
        let fields: [(&str, &Option<String>); 13] = [
            ("from", &self.from),
            ("to", &self.to),
            ("recipient", &self.recipient),
            ("subject", &self.subject),
            ("sender", &self.sender),
            ("email_id", &self.email_id),
            ("mail_type", &self.mail_type),
            ("tag", &self.tag),
            ("api_user", &self.api_user),
            ("status", &self.status),
            ("reason", &self.reason),
            ("per_page", &self.per_page),
            ("account", &self.account),
        ];
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            let value = match changes.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => v.to_string(),
                None => value.clone().unwrap_or_default(),
            };
            if !value.trim().is_empty() {
                out.append_pair(name, value.trim());
            }
        }
        for (name, value) in changes
            .iter()
            .filter(|(n, _)| *n == "cursor" || *n == "start")
        {
            if !value.is_empty() {
                out.append_pair(name, value);
            }
        }
        out.finish()
    }

    fn value(&self, field: &str) -> String {
        let v = match field {
            "from" => &self.from,
            "to" => &self.to,
            "recipient" => &self.recipient,
            "subject" => &self.subject,
            "sender" => &self.sender,
            "email_id" => &self.email_id,
            "tag" => &self.tag,
            "api_user" => &self.api_user,
            _ => &None,
        };
        v.clone().unwrap_or_default()
    }
}

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

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Reason choices under one status (an unlabelled group holds "any").
pub struct ChoiceGroup {
    pub label: String,
    pub choices: Vec<Choice>,
}

/// A period preset beside the dates: today, 24 hours, 7 days, 30 days.
pub struct Preset {
    pub code: &'static str,
    pub label: String,
    pub href: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "status/list.html")]
struct StatusPage {
    ctx: PageCtx,
    form: StatusForm,
    errors: Vec<FieldError>,
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

pub async fn page(viewer: Viewer, form: web::Query<StatusForm>) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let parsed = form.parse(&viewer);
    let lang = viewer.lang;
    let zone = viewer.account.zone();
    let scope = viewer.scope();
    let failed = !parsed.errors.is_empty();

    let (page, counts, reason_counts, extras) = if failed {
        (None, Vec::new(), Vec::new(), Default::default())
    } else {
        let filter = parsed.filter.clone();
        let from = parsed.from;
        let per_page = parsed.per_page;
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
            Ok((Some(page), counts, reason_counts, extras))
        })
        .await?
    };

    let account_param = if viewer.is_staff_view() {
        format!("?account={}", viewer.account.id)
    } else {
        String::new()
    };
    let rows: Vec<Row> = page
        .as_ref()
        .map(|p| {
            p.rows
                .iter()
                .map(|m| row(&viewer, m, &zone, &extras))
                .collect()
        })
        .unwrap_or_default();

    // Where this page starts among all the filter's rows, carried by the pager links.
    let came_newer = matches!(parsed.from, Some((_, Direction::Newer)));
    let mut start: i64 = text(&form.start)
        .and_then(|s| s.parse().ok())
        .filter(|n: &i64| *n >= 0)
        .unwrap_or(0);
    if parsed.from.is_none() || (came_newer && page.as_ref().is_some_and(|p| p.newer.is_none())) {
        start = 0;
    }
    let shown = rows.len() as i64;
    let older_href = page.as_ref().and_then(|p| p.older).map(|pos| {
        format!(
            "/status?{}",
            form.query_with(&[
                ("cursor", &encode_cursor(pos, Direction::Older)),
                ("start", &(start + shown).to_string()),
            ])
        )
    });
    let newer_href = page.as_ref().and_then(|p| p.newer).map(|pos| {
        format!(
            "/status?{}",
            form.query_with(&[
                ("cursor", &encode_cursor(pos, Direction::Newer)),
                ("start", &(start - parsed.per_page).max(0).to_string()),
            ])
        )
    });

    let chosen_status = parsed.filter.status;
    let chosen_reason = parsed.filter.reason;
    let all_count = count_of(&counts, None);
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
            Some(_) => count_of(&reason_counts, Some(s)),
            None => count_of(&counts, Some(s)),
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
    let over_limit = shown_count.capped || shown_count.n > ONLINE_EXPORT_LIMIT;

    let statuses = std::iter::once(Choice {
        value: String::new(),
        label: lang.t("filter.any"),
        selected: chosen_status.is_none(),
    })
    .chain(Status::ALL.iter().map(|s| Choice {
        value: s.code().into(),
        label: s.label(lang.code()).into(),
        selected: chosen_status == Some(*s),
    }))
    .collect();
    // The reasons come grouped under the status they occur with; with a status chosen, only
    // its own reasons are offered.
    let reason_label = |s: Status, r: Reason| {
        let count = counts
            .iter()
            .find(|(st, rr, _)| *st == s && *rr == Some(r))
            .map(|(_, _, c)| format!(" ({})", show_count(c)))
            .unwrap_or_default();
        format!("{}{count}", r.label_in(s, lang.code()))
    };
    let mut reason_groups = vec![ChoiceGroup {
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
    for s in offered {
        if s.allowed_reasons().is_empty() {
            continue;
        }
        reason_groups.push(ChoiceGroup {
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
    let mail_type_value = text(&form.mail_type).unwrap_or_default();
    let mail_types = std::iter::once(Choice {
        value: String::new(),
        label: lang.t("filter.any"),
        selected: mail_type_value.is_empty(),
    })
    .chain(MailType::ALL.iter().map(|m| Choice {
        value: m.code().into(),
        label: m.label(lang.code()).into(),
        selected: mail_type_value == m.code(),
    }))
    .collect();
    let per_pages = PER_PAGE_CHOICES
        .iter()
        .map(|n| Choice {
            value: n.to_string(),
            label: n.to_string(),
            selected: *n == parsed.per_page,
        })
        .collect();

    // Presets beside the dates: whole days in the account's time zone.
    let today = Utc::now().with_timezone(&zone).date_naive();
    let presets = [
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
            label: lang.t(key),
            active: !failed
                && parsed.period.from.to_string() == from
                && parsed.period.to.to_string() == to,
            href: format!(
                "/status?{}",
                form.query_with(&[("from", &from), ("to", &to)])
            ),
        }
    })
    .collect();

    // One line that says what the folded filter holds.
    let mut summary = vec![format!("{} – {}", parsed.period.from, parsed.period.to)];
    if let Some(s) = chosen_status {
        summary.push(s.label(lang.code()).to_string());
    }
    if let Some(r) = chosen_reason {
        summary.push(r.label(lang.code()).to_string());
    }
    for v in [
        &parsed.filter.recipient,
        &parsed.filter.subject,
        &parsed.filter.sender,
        &parsed.filter.email_id,
        &parsed.filter.tag,
        &parsed.filter.api_user,
    ]
    .into_iter()
    .flatten()
    {
        summary.push(v.clone());
    }
    if let Some(m) = parsed.filter.mail_type {
        summary.push(m.label(lang.code()).to_string());
    }

    let page = StatusPage {
        ctx: viewer.page("/status"),
        csv_href: format!("/status.csv?{}", form.query_with(&[])),
        over_limit,
        over_limit_text: lang
            .t("export.over_limit")
            .replace("{limit}", &grouped(ONLINE_EXPORT_LIMIT)),
        period_from: parsed.period.from.to_string(),
        period_to: parsed.period.to.to_string(),
        presets,
        active_summary: summary.join(" · "),
        retention_notice: retention_notice(&viewer, parsed.filter.from_ms),
        errors: parsed.errors,
        notice: parsed.notice,
        statuses,
        reason_groups,
        mail_types,
        per_pages,
        tabs,
        rows,
        older_href,
        newer_href,
        range,
        splus_log: viewer.account.splus_log,
        splus_content: viewer.account.splus_content,
        account_param,
        export_allowed: viewer.account.export_allowed,
        export_kind: "status",
        export_fields: url::form_urlencoded::parse(
            form.query_with(&[("account", ""), ("start", "")])
                .as_bytes(),
        )
        .into_owned()
        .collect(),
        form,
    };
    let html = page.render().map_err(AppError::internal)?;
    let status = if failed { 400 } else { 200 };
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
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

/// `GET /status.csv`: the current filter as CSV (UTF-8 with BOM, so Excel shows Chinese), at
/// most 10,000 rows; a larger result sends the browser back to the page of the same filter,
/// which offers the offline export, instead of a cut file.
pub async fn csv(viewer: Viewer, form: web::Query<StatusForm>) -> AppResult<HttpResponse> {
    if !viewer.account.export_allowed {
        return Err(AppError::forbidden(viewer.lang.t("export.forbidden")));
    }
    let form = form.into_inner();
    let parsed = form.parse(&viewer);
    if let Some(e) = parsed.errors.first() {
        return Err(AppError::bad_request(e.message.clone()));
    }
    let scope = viewer.scope();
    let filter = parsed.filter;
    let rows = with_db(viewer.state(), move |conn| {
        let mut rows = Vec::new();
        let mut from = None;
        loop {
            let page = status::page(conn, &scope, &filter, from, 1_000)?;
            rows.extend(page.rows);
            if rows.len() as i64 > ONLINE_EXPORT_LIMIT {
                return Ok(None);
            }
            match page.older {
                Some(p) => from = Some((p, Direction::Older)),
                None => return Ok(Some(rows)),
            }
        }
    })
    .await?;
    let Some(rows) = rows else {
        // Too many to download here: back to the page of the same filter, which offers the
        // offline export instead (a bookmarked link is no dead end).
        return Ok(super::auth::redirect(&format!(
            "/status?{}",
            form.query_with(&[])
        )));
    };
    let presenter = viewer.presenter();
    let mut out = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    out.write_record(presenter.status_header())
        .map_err(AppError::internal)?;
    for m in &rows {
        out.write_record(crate::domain::export_record(
            presenter.status_record(m),
            presenter.mask,
        ))
        .map_err(AppError::internal)?;
    }
    let body = out.into_inner().map_err(AppError::internal)?;
    let name = format!(
        "mail-status-{}-{}.csv",
        parsed.period.from, parsed.period.to
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body))
}
