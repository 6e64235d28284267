//! The view model of `/status`: the page struct the template reads, built from the parsed
//! form and what the database answered.

use askama::Template;

use super::choices::{
    mail_type_choices, per_page_choices, presets, reason_groups, status_choices, summary,
};
use super::tabs::{count_of, row, show_count, tabs, Row, Tab};
use super::{Fetched, Viewer};
use crate::domain::format_in_zone;
use crate::store::status::{self, Direction, Position};
use crate::web::filters::{
    account_query, encode_cursor, text, Choice, ChoiceGroup, Parsed, Preset, StatusFieldError,
    StatusForm, ONLINE_EXPORT_LIMIT,
};
use crate::web::layout::{grouped, PageCtx};

#[derive(Template)]
#[template(path = "status/list.html")]
pub(super) struct StatusPage {
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

/// The view model of the page.
pub(super) fn view(
    viewer: &Viewer,
    form: StatusForm,
    parsed: Parsed,
    fetched: Fetched,
) -> StatusPage {
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
        range(viewer, start, shown, &shown_count)
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
        account_param: account_query(viewer),
        export_allowed: viewer.account.export_allowed,
        export_kind: "status",
        export_fields: export_fields(&form),
        provider_name,
        form,
    }
}

/// "Rows 1–50 of 1,234": where the shown rows stand among all the filter's rows.
fn range(viewer: &Viewer, start: i64, shown: i64, total: &status::Count) -> String {
    viewer
        .lang
        .t("status.range")
        .replace("{first}", &grouped(start + 1))
        .replace("{last}", &grouped(start + shown))
        .replace("{total}", &show_count(total))
}

/// The filter as the fields of the offline-export form (without the account and the page).
fn export_fields(form: &StatusForm) -> Vec<(String, String)> {
    url::form_urlencoded::parse(
        form.query_with(&[("account", ""), ("start", "")])
            .as_bytes(),
    )
    .into_owned()
    .collect()
}
