//! The delivery-response lists: `/bounces` (退信列表), `/spam-reports` (垃圾举报列表),
//! `/unsubscribes` (取消订阅列表), `/blacklist` (黑名单) and `/opens-clicks` (打开点击数据):
//! filters, keyset paging, adds, deletes (selected or by filter, always confirmed), and the
//! CSV download of the current filter.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use super::auth::{redirect, Viewer};
use super::layout::PageCtx;
use super::status::ONLINE_EXPORT_LIMIT;
use super::{with_db, AppError, AppResult};
use crate::domain::{
    browser_and_os, day_start, format_in_zone, now_ms, EmailAddress, Period, PeriodError,
    UnsubscribeReason,
};
use crate::store::list_pages::{self, ListFilter, ListPosition, ManualEntry, TrackingFilter};
use crate::store::lists::{ListEntry, ListKind};

const PER_PAGE: i64 = 50;

/// The URL path of a list.
pub fn path_of(list: ListKind) -> &'static str {
    match list {
        ListKind::Bounces => "/bounces",
        ListKind::SpamReports => "/spam-reports",
        ListKind::Unsubscribes => "/unsubscribes",
        ListKind::Blacklist => "/blacklist",
    }
}

fn list_from_path(segment: &str) -> AppResult<ListKind> {
    ListKind::from_code(segment).ok_or(AppError::NotFound)
}

/// The query string of a list page, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListForm {
    pub address: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub api_user: Option<String>,
    pub tag: Option<String>,
    pub kind: Option<String>,
    pub cursor: Option<String>,
    pub account: Option<String>,
    pub deleted: Option<String>,
    pub added: Option<String>,
}

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl ListForm {
    fn from_pairs(pairs: &[(String, String)]) -> ListForm {
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        ListForm {
            address: get("address"),
            from: get("from"),
            to: get("to"),
            api_user: get("api_user"),
            tag: get("tag"),
            kind: get("kind"),
            cursor: None,
            account: get("account"),
            deleted: None,
            added: None,
        }
    }

    /// The filter's fields as a query string (paging and notices left out).
    fn query(&self, extra: &[(&str, String)]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("address", &self.address),
            ("from", &self.from),
            ("to", &self.to),
            ("api_user", &self.api_user),
            ("tag", &self.tag),
            ("kind", &self.kind),
            ("account", &self.account),
        ] {
            if let Some(v) = text(v) {
                s.append_pair(k, &v);
            }
        }
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        s.finish()
    }

    /// The filter, or the message of the field that is wrong.
    pub fn filter(&self, viewer: &Viewer) -> Result<ListFilter, (&'static str, String)> {
        let lang = viewer.lang;
        let zone = viewer.account.zone();
        let date = |v: &Option<String>, field| match text(v) {
            None => Ok(None),
            Some(s) => NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| (field, lang.t("filter.bad_date"))),
        };
        let from = date(&self.from, "from")?;
        let to = date(&self.to, "to")?;
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                return Err(("to", lang.t("filter.reversed")));
            }
        }
        let address = match text(&self.address) {
            None => None,
            Some(a) if a.starts_with('@') && a.len() > 1 => Some(a.to_lowercase()),
            Some(a) => Some(
                EmailAddress::parse(&a)
                    .ok_or(("address", lang.t("lookup.bad_address")))?
                    .as_str()
                    .to_string(),
            ),
        };
        Ok(ListFilter {
            address,
            from_ms: from.map(|d| day_start(&zone, d)),
            to_ms: to.map(|d| day_start(&zone, d + chrono::Duration::days(1))),
            api_user: text(&self.api_user),
            tag: text(&self.tag),
        })
    }
}

fn encode(p: ListPosition) -> String {
    format!("{}_{}_{}", p.at, p.rank, p.id)
}

fn decode(s: &str) -> Option<ListPosition> {
    let mut parts = s.split('_');
    let p = ListPosition {
        at: parts.next()?.parse().ok()?,
        rank: parts.next()?.parse().ok()?,
        id: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(p)
}

pub struct EntryRow {
    pub key: String,
    pub list_code: &'static str,
    pub id: i64,
    pub address: String,
    /// The `/lookup` query for the address (an opaque entry reference when masked).
    pub lookup: String,
    pub cells: Vec<String>,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "lists/page.html")]
struct ListPage {
    ctx: PageCtx,
    list: &'static str,
    path: &'static str,
    title: String,
    intro: String,
    form: ListForm,
    error: Option<(&'static str, String)>,
    notice: Option<String>,
    headers: Vec<String>,
    rows: Vec<EntryRow>,
    next_href: Option<String>,
    csv_href: String,
    filter_fields: Vec<(String, String)>,
    show_api_user: bool,
    show_tag: bool,
    can_add: bool,
    can_edit: bool,
    unsubscribe_reasons: Vec<(&'static str, &'static str)>,
    account_param: String,
    export_allowed: bool,
    export_kind: &'static str,
    export_fields: Vec<(String, String)>,
}

impl ListPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
    fn value(&self, field: &str) -> String {
        match field {
            "address" => self.form.address.clone(),
            "from" => self.form.from.clone(),
            "to" => self.form.to.clone(),
            "api_user" => self.form.api_user.clone(),
            "tag" => self.form.tag.clone(),
            _ => None,
        }
        .unwrap_or_default()
    }
}

fn account_param(viewer: &Viewer) -> String {
    if viewer.is_staff_view() {
        format!("account={}", viewer.account.id)
    } else {
        String::new()
    }
}

pub async fn page(
    viewer: Viewer,
    segment: web::Path<String>,
    form: web::Query<ListForm>,
) -> AppResult<HttpResponse> {
    let list = list_from_path(&segment)?;
    let form = form.into_inner();
    let lang = viewer.lang;
    let parsed = form.filter(&viewer);
    let mut notice = None;
    if let Some(n) = &form.deleted {
        notice = Some(lang.t("lists.deleted").replace("{n}", n));
    }
    if form.added.is_some() {
        notice = Some(lang.t("lists.added"));
    }
    let after = match text(&form.cursor) {
        Some(c) => match decode(&c) {
            Some(p) => Some(p),
            None => {
                notice = Some(lang.t("filter.bad_cursor"));
                None
            }
        },
        None => None,
    };
    let (rows, error) = match &parsed {
        Ok(filter) => {
            let scope = viewer.scope();
            let filter = filter.clone();
            let rows = with_db(viewer.state(), move |conn| {
                Ok(list_pages::page(
                    conn,
                    &scope,
                    list,
                    &filter,
                    after,
                    PER_PAGE + 1,
                    now_ms(),
                )?)
            })
            .await?;
            (rows, None)
        }
        Err(e) => (Vec::new(), Some(e.clone())),
    };
    let more = rows.len() as i64 > PER_PAGE;
    let rows: Vec<ListEntry> = rows.into_iter().take(PER_PAGE as usize).collect();
    let next_href = if more {
        rows.last().map(|e| {
            format!(
                "{}?{}",
                path_of(list),
                form.query(&[("cursor", encode(list_pages::position(e)))])
            )
        })
    } else {
        None
    };
    let now = now_ms();
    let presenter = viewer.presenter();
    let page = ListPage {
        ctx: viewer.page(path_of(list)),
        list: list.code(),
        path: path_of(list),
        title: list.label(lang.code()).to_string(),
        intro: lang.t(&format!("lists.intro_{}", list.code())),
        headers: viewer.presenter().list_header(list),
        rows: rows
            .iter()
            .map(|e| EntryRow {
                key: format!("{}:{}", e.list.code(), e.id),
                list_code: e.list.code(),
                id: e.id,
                address: viewer.show_address(&e.address),
                lookup: viewer.entry_lookup_query(&e.address, e.list.code(), e.id),
                cells: presenter
                    .list_record(list, e)
                    .iter()
                    .map(|c| viewer.show_text(c))
                    .collect(),
                active: e.is_active(now),
            })
            .collect(),
        next_href,
        csv_href: format!("{}.csv?{}", path_of(list), form.query(&[])),
        filter_fields: url::form_urlencoded::parse(form.query(&[]).as_bytes())
            .into_owned()
            .collect(),
        show_api_user: list != ListKind::Bounces,
        show_tag: list == ListKind::Unsubscribes,
        can_add: list != ListKind::SpamReports && !viewer.is_staff_view(),
        can_edit: !viewer.is_staff_view(),
        unsubscribe_reasons: UnsubscribeReason::ALL
            .iter()
            .map(|r| (r.code(), r.label(lang.code())))
            .collect(),
        account_param: account_param(&viewer),
        export_allowed: viewer.account.export_allowed,
        export_kind: list.code(),
        export_fields: url::form_urlencoded::parse(form.query(&[]).as_bytes())
            .into_owned()
            .filter(|(k, _)| k != "account")
            .collect(),
        error,
        notice,
        form,
    };
    let status = if page.error.is_some() { 400 } else { 200 };
    let html = page.render().map_err(AppError::internal)?;
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
}

fn pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// `POST /{list}/add`: a manual entry (source `ui`).
pub async fn add(
    viewer: Viewer,
    segment: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let list = list_from_path(&segment)?;
    if viewer.is_staff_view() {
        return Err(AppError::forbidden(viewer.lang.t("staff.read_only")));
    }
    if list == ListKind::SpamReports {
        return Err(AppError::forbidden(viewer.lang.t("lists.no_add_spam")));
    }
    let fields = pairs(&body);
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let lang = viewer.lang;
    let raw = get("address").unwrap_or_default();
    let address = if list == ListKind::Blacklist
        && raw.starts_with('@')
        && raw.len() > 2
        && raw[1..].contains('.')
    {
        raw.to_lowercase()
    } else {
        match EmailAddress::parse(&raw) {
            Some(a) => a.as_str().to_string(),
            None => {
                return Err(AppError::bad_request(lang.t(
                    if list == ListKind::Blacklist {
                        "lists.bad_address_or_domain"
                    } else {
                        "lookup.bad_address"
                    },
                )))
            }
        }
    };
    let reason = match list {
        ListKind::Unsubscribes => {
            let code = get("reason").unwrap_or_else(|| "not_wanted".into());
            if UnsubscribeReason::from_code(&code).is_none() {
                return Err(AppError::bad_request(
                    lang.t("lists.bad_unsubscribe_reason"),
                ));
            }
            Some(code)
        }
        ListKind::Bounces => Some(get("reason").unwrap_or_else(|| lang.t("lists.added_by_hand"))),
        _ => None,
    };
    let zone = viewer.account.zone();
    let expires_at = match get("expires") {
        None => None,
        Some(d) => match NaiveDate::parse_from_str(&d, "%Y-%m-%d") {
            Ok(day) if day_start(&zone, day) > now_ms() => Some(day_start(&zone, day)),
            _ => return Err(AppError::bad_request(lang.t("lists.bad_expiry"))),
        },
    };
    let entry = ManualEntry {
        list,
        address: address.clone(),
        reason,
        expires_at,
        api_user: None,
        source: "ui",
    };
    let scope = viewer.scope();
    with_db(viewer.state(), move |conn| {
        Ok(list_pages::add(conn, &scope, &entry, now_ms())?)
    })
    .await?;
    viewer
        .audit("list.add", format!("{} {address}", list.code()))
        .await?;
    Ok(redirect(&format!("{}?added=1", path_of(list))))
}

#[derive(Template)]
#[template(path = "lists/confirm.html")]
struct ConfirmPage {
    ctx: PageCtx,
    path: &'static str,
    count: i64,
    message: String,
    spam_warning: bool,
    hidden: Vec<(String, String)>,
    back: String,
}

/// `POST /{list}/delete`: the selected entries (`ids`, each `list:id`) or every entry matching
/// the filter (`all=1`); without `confirmed=1` it only says how many would go and asks.
pub async fn delete(
    viewer: Viewer,
    segment: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let list = list_from_path(&segment)?;
    let lang = viewer.lang;
    if viewer.is_staff_view() {
        return Err(AppError::forbidden(lang.t("staff.read_only")));
    }
    let fields = pairs(&body);
    let form = ListForm::from_pairs(&fields);
    let all = fields.iter().any(|(k, v)| k == "all" && v == "1");
    let confirmed = fields.iter().any(|(k, v)| k == "confirmed" && v == "1");
    let ids: Vec<(ListKind, i64)> = fields
        .iter()
        .filter(|(k, _)| k == "ids")
        .filter_map(|(_, v)| {
            let (kind, id) = v.split_once(':')?;
            let kind = ListKind::from_code(kind)?;
            // A list page only deletes what it shows.
            let shown = kind == list
                || (list == ListKind::Blacklist
                    && matches!(kind, ListKind::Bounces | ListKind::SpamReports));
            shown.then_some((kind, id.parse().ok()?))
        })
        .collect();
    let filter = form
        .filter(&viewer)
        .map_err(|(_, m)| AppError::bad_request(m))?;
    let back = format!("{}?{}", path_of(list), form.query(&[]));
    if !all && ids.is_empty() {
        return Err(AppError::bad_request(lang.t("lists.nothing_selected")));
    }
    let scope = viewer.scope();
    if !confirmed {
        let (count, spam) = if all {
            let f = filter.clone();
            with_db(viewer.state(), move |conn| {
                let now = now_ms();
                let count = list_pages::count(conn, &scope, list, &f, now)?;
                let spam = match list {
                    ListKind::SpamReports => count,
                    ListKind::Blacklist => list_pages::count(
                        conn,
                        &scope,
                        ListKind::SpamReports,
                        &ListFilter { ..f.clone() },
                        now,
                    )?,
                    _ => 0,
                };
                Ok((count, spam))
            })
            .await?
        } else {
            (
                ids.len() as i64,
                ids.iter()
                    .filter(|(k, _)| *k == ListKind::SpamReports)
                    .count() as i64,
            )
        };
        let mut hidden: Vec<(String, String)> = fields
            .into_iter()
            .filter(|(k, _)| k != "csrf_token" && k != "confirmed")
            .collect();
        hidden.push(("confirmed".into(), "1".into()));
        let page = ConfirmPage {
            ctx: viewer.page(path_of(list)),
            path: path_of(list),
            count,
            message: lang
                .t("lists.confirm_count")
                .replace("{n}", &count.to_string())
                .replace("{list}", list.label(lang.code())),
            spam_warning: spam > 0,
            hidden,
            back,
        };
        let html = page.render().map_err(AppError::internal)?;
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(html));
    }
    let deleted = with_db(viewer.state(), move |conn| {
        use diesel::Connection;
        conn.transaction(|conn| {
            if all {
                list_pages::delete_matching(conn, &scope, list, &filter, now_ms())
            } else {
                list_pages::delete_ids(conn, &scope, &ids)
            }
        })
        .map_err(AppError::from)
    })
    .await?;
    viewer
        .audit(
            "list.delete",
            format!(
                "{} {} entries{}",
                list.code(),
                deleted,
                if all { " (by filter)" } else { "" }
            ),
        )
        .await?;
    Ok(redirect(&format!(
        "{}?{}",
        path_of(list),
        form.query(&[("deleted", deleted.to_string())])
    )))
}

/// `GET /{list}.csv`: the current filter, UTF-8 with BOM, at most 10,000 rows.
pub async fn csv(
    viewer: Viewer,
    segment: web::Path<String>,
    form: web::Query<ListForm>,
) -> AppResult<HttpResponse> {
    let list = list_from_path(segment.trim_end_matches(".csv"))?;
    if !viewer.account.export_allowed {
        return Err(AppError::forbidden(viewer.lang.t("export.forbidden")));
    }
    let filter = form
        .filter(&viewer)
        .map_err(|(_, m)| AppError::bad_request(m))?;
    let scope = viewer.scope();
    let rows = with_db(viewer.state(), move |conn| {
        Ok(list_pages::page(
            conn,
            &scope,
            list,
            &filter,
            None,
            ONLINE_EXPORT_LIMIT + 1,
            now_ms(),
        )?)
    })
    .await?;
    if rows.len() as i64 > ONLINE_EXPORT_LIMIT {
        return Err(AppError::bad_request(viewer.lang.t("export.too_many_rows")));
    }
    let presenter = viewer.presenter();
    let mut out = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    out.write_record(presenter.list_header(list))
        .map_err(AppError::internal)?;
    for e in &rows {
        out.write_record(crate::domain::export_record(
            presenter.list_record(list, e),
            presenter.mask,
        ))
        .map_err(AppError::internal)?;
    }
    let body = out.into_inner().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}-{}.csv\"",
                list.code(),
                Utc::now().format("%Y%m%d")
            ),
        ))
        .body(body))
}

// ---- opens and clicks -------------------------------------------------------------------

pub struct TrackRow {
    pub id: i64,
    pub kind: &'static str,
    pub kind_label: String,
    pub time: String,
    pub url: String,
    pub ip: String,
    pub browser: &'static str,
    pub os: &'static str,
    pub recipient: String,
    pub api_user: String,
    pub email_id: String,
    pub message_id: Option<i64>,
}

#[derive(Template)]
#[template(path = "lists/tracking.html")]
struct TrackingPage {
    ctx: PageCtx,
    form: ListForm,
    period_from: String,
    period_to: String,
    kind: String,
    error: Option<(&'static str, String)>,
    notice: Option<String>,
    rows: Vec<TrackRow>,
    next_href: Option<String>,
    csv_href: String,
    account_param: String,
    export_allowed: bool,
    export_kind: &'static str,
    export_fields: Vec<(String, String)>,
}

impl TrackingPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

pub fn tracking_filter(
    form: &ListForm,
    viewer: &Viewer,
) -> Result<(TrackingFilter, Period), (&'static str, String)> {
    let lang = viewer.lang;
    let zone = viewer.account.zone();
    let today = Utc::now().with_timezone(&zone).date_naive();
    let period =
        Period::parse(form.from.as_deref(), form.to.as_deref(), today).map_err(|e| match e {
            PeriodError::BadFrom => ("from", lang.t("filter.bad_date")),
            PeriodError::BadTo => ("to", lang.t("filter.bad_date")),
            PeriodError::Reversed => ("to", lang.t("filter.reversed")),
            PeriodError::TooLong => ("to", lang.t("filter.too_long")),
        })?;
    let kind = match text(&form.kind).as_deref() {
        None => None,
        Some("open") => Some(1),
        Some("click") => Some(2),
        Some(_) => return Err(("kind", lang.t("lists.bad_kind"))),
    };
    let address = match text(&form.address) {
        None => None,
        Some(a) => Some(
            EmailAddress::parse(&a)
                .ok_or(("address", lang.t("lookup.bad_address")))?
                .as_str()
                .to_string(),
        ),
    };
    let (from_ms, to_ms) = period.bounds(&zone);
    Ok((
        TrackingFilter {
            from_ms,
            to_ms,
            kind,
            address,
            api_user: text(&form.api_user),
            tag: text(&form.tag),
        },
        period,
    ))
}

fn track_row(viewer: &Viewer, r: &list_pages::TrackingRow) -> TrackRow {
    let lang = viewer.lang;
    let (browser, os) = browser_and_os(r.user_agent.as_deref().unwrap_or(""));
    let kind = if r.kind == 2 { "click" } else { "open" };
    TrackRow {
        id: r.id,
        kind,
        kind_label: lang.t(&format!("event.{kind}")),
        time: format_in_zone(r.occurred_at, &viewer.account.zone()),
        url: viewer.show_text(&r.url),
        ip: r.ip.clone().unwrap_or_default(),
        browser,
        os,
        recipient: viewer.show_address(&r.recipient),
        api_user: r.api_user.clone(),
        email_id: viewer.show_text(&r.email_id),
        message_id: r.message_id,
    }
}

pub async fn tracking(viewer: Viewer, form: web::Query<ListForm>) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let lang = viewer.lang;
    let zone = viewer.account.zone();
    let today = Utc::now().with_timezone(&zone).date_naive();
    let mut notice = None;
    let after = text(&form.cursor).and_then(|c| {
        let parsed = c
            .split_once('_')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        if parsed.is_none() {
            notice = Some(lang.t("filter.bad_cursor"));
        }
        parsed
    });
    let (rows, error, period) = match tracking_filter(&form, &viewer) {
        Ok((filter, period)) => {
            let scope = viewer.scope();
            let rows = with_db(viewer.state(), move |conn| {
                Ok(list_pages::tracking_page(
                    conn,
                    &scope,
                    &filter,
                    after,
                    PER_PAGE + 1,
                )?)
            })
            .await?;
            (rows, None, period)
        }
        Err(e) => (Vec::new(), Some(e), Period::today(today)),
    };
    let more = rows.len() as i64 > PER_PAGE;
    let rows: Vec<_> = rows.into_iter().take(PER_PAGE as usize).collect();
    let next_href = if more {
        rows.last().map(|r| {
            format!(
                "/opens-clicks?{}",
                form.query(&[("cursor", format!("{}_{}", r.occurred_at, r.id))])
            )
        })
    } else {
        None
    };
    let page = TrackingPage {
        ctx: viewer.page("/opens-clicks"),
        period_from: text(&form.from).unwrap_or_else(|| period.from.to_string()),
        period_to: text(&form.to).unwrap_or_else(|| period.to.to_string()),
        kind: text(&form.kind).unwrap_or_default(),
        rows: rows.iter().map(|r| track_row(&viewer, r)).collect(),
        next_href,
        csv_href: format!("/opens-clicks.csv?{}", form.query(&[])),
        account_param: account_param(&viewer),
        export_allowed: viewer.account.export_allowed,
        export_kind: "opens_clicks",
        export_fields: url::form_urlencoded::parse(form.query(&[]).as_bytes())
            .into_owned()
            .filter(|(k, _)| k != "account")
            .map(|(k, v)| {
                if k == "kind" {
                    ("track".to_string(), v)
                } else {
                    (k, v)
                }
            })
            .collect(),
        error,
        notice,
        form,
    };
    let status = if page.error.is_some() { 400 } else { 200 };
    let html = page.render().map_err(AppError::internal)?;
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
}

pub async fn tracking_csv(viewer: Viewer, form: web::Query<ListForm>) -> AppResult<HttpResponse> {
    if !viewer.account.export_allowed {
        return Err(AppError::forbidden(viewer.lang.t("export.forbidden")));
    }
    let (filter, _) = tracking_filter(&form, &viewer).map_err(|(_, m)| AppError::bad_request(m))?;
    let scope = viewer.scope();
    let rows = with_db(viewer.state(), move |conn| {
        Ok(list_pages::tracking_page(
            conn,
            &scope,
            &filter,
            None,
            ONLINE_EXPORT_LIMIT + 1,
        )?)
    })
    .await?;
    if rows.len() as i64 > ONLINE_EXPORT_LIMIT {
        return Err(AppError::bad_request(viewer.lang.t("export.too_many_rows")));
    }
    let presenter = viewer.presenter();
    let mut out = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    out.write_record(presenter.tracking_header())
        .map_err(AppError::internal)?;
    for r in &rows {
        out.write_record(crate::domain::export_record(
            presenter.tracking_record(r),
            presenter.mask,
        ))
        .map_err(AppError::internal)?;
    }
    let body = out.into_inner().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"opens-clicks.csv\"",
        ))
        .body(body))
}
