//! The suppression lists' pages: `/bounces` (退信列表), `/spam-reports` (垃圾举报列表),
//! `/unsubscribes` (取消订阅列表), `/blacklist` (黑名单): filters, keyset paging, adds, deletes
//! (selected or by filter, always confirmed), and the CSV download of the current filter.

use actix_web::{web, Either, HttpResponse, Responder};
use askama::Template;
use askama_web::WebTemplate;
use chrono::{NaiveDate, Utc};

use super::auth::{redirect, Viewer};
use super::filters::{
    account_param, decode_list_cursor, encode_list_cursor, text, FormError, ListForm,
};
use super::layout::{csv_download, PageCtx};
use super::status::ONLINE_EXPORT_LIMIT;
use super::{with_db, AppError, AppResult};
use crate::domain::{day_start, now_ms, EmailAddress, ListEntry, ListKind, UnsubscribeReason};
use crate::store::lists::{self, ListFilter, ListPosition, ManualEntry, Selection};

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

#[derive(Template, WebTemplate)]
#[template(path = "lists/page.html")]
pub struct ListPage {
    ctx: PageCtx,
    list: &'static str,
    path: &'static str,
    title: String,
    intro: String,
    form: ListForm,
    error: FormError,
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
    /// What went wrong with the last action on the page (a delete with nothing ticked).
    problem: Option<String>,
    /// More rows match than a download carries: the offline export instead of the link.
    over_limit: bool,
}

impl ListPage {
    fn over_limit_text(&self) -> String {
        self.ctx
            .t("export.over_limit")
            .replace("{limit}", &super::layout::grouped(ONLINE_EXPORT_LIMIT))
    }
}

/// `?nothing=1`: a delete was sent with nothing ticked.
#[derive(serde::Deserialize)]
pub struct NothingTicked {
    nothing: Option<String>,
}

/// `GET /{list}`: one page of the list, newest first.
pub async fn page(
    viewer: Viewer,
    segment: web::Path<String>,
    form: web::Query<ListForm>,
    nothing: web::Query<NothingTicked>,
) -> AppResult<impl Responder> {
    let list = list_from_path(&segment)?;
    let form = form.into_inner();
    let (after, notice) = page_position(&viewer, &form);
    let problem = nothing
        .nothing
        .as_ref()
        .map(|_| viewer.lang.t("lists.nothing_selected"));
    let export_allowed = viewer.account.export_allowed;
    let (entries, over_limit, error) = match form.filter(&viewer) {
        Ok(filter) => {
            let scope = viewer.scope();
            let (entries, over_limit) = with_db(viewer.state(), move |conn| {
                let now = now_ms();
                let entries = lists::page(conn, &scope, list, &filter, after, PER_PAGE + 1, now)?;
                // Beyond one page the download may be too large: count, and offer the
                // offline export instead of a link that would be refused.
                let over_limit = export_allowed
                    && entries.len() as i64 > PER_PAGE
                    && lists::count_selection(
                        conn,
                        &scope,
                        list,
                        &Selection::Matching(filter),
                        now,
                    )?
                    .0 > ONLINE_EXPORT_LIMIT;
                Ok((entries, over_limit))
            })
            .await?;
            (entries, over_limit, FormError(None))
        }
        Err(e) => (Vec::new(), false, FormError(Some(e))),
    };
    let status = error.status();
    let mut page = list_page(&viewer, list, form, entries, error, notice);
    page.problem = problem;
    page.over_limit = over_limit;
    Ok(page.customize().with_status(status))
}

/// Where the page starts (its cursor) and the notice it shows: after a delete or an add, or
/// about a cursor that no longer reads.
fn page_position(viewer: &Viewer, form: &ListForm) -> (Option<ListPosition>, Option<String>) {
    let lang = viewer.lang;
    let mut notice = None;
    if let Some(n) = &form.deleted {
        notice = Some(lang.t("lists.deleted").replace("{n}", n));
    }
    if form.added.is_some() {
        notice = Some(lang.t("lists.added"));
    }
    let after = text(&form.cursor).and_then(|c| {
        let p = decode_list_cursor(&c);
        if p.is_none() {
            notice = Some(lang.t("filter.bad_cursor"));
        }
        p
    });
    (after, notice)
}

/// The view of one page of `list`: `entries` holds one more than a page when there is more.
fn list_page(
    viewer: &Viewer,
    list: ListKind,
    form: ListForm,
    mut entries: Vec<ListEntry>,
    error: FormError,
    notice: Option<String>,
) -> ListPage {
    let lang = viewer.lang;
    let path = path_of(list);
    let more = entries.len() as i64 > PER_PAGE;
    entries.truncate(PER_PAGE as usize);
    let next_href = entries.last().filter(|_| more).map(|e| {
        let cursor = encode_list_cursor(lists::position(e));
        format!("{path}?{}", form.query(&[("cursor", cursor)]))
    });
    let now = now_ms();
    let presenter = viewer.presenter();
    let rows = entries
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
        .collect();
    ListPage {
        ctx: viewer.page(path),
        list: list.code(),
        path,
        title: list.label(lang.code()).to_string(),
        intro: lang.t(&format!("lists.intro_{}", list.code())),
        headers: presenter.list_header(list),
        rows,
        next_href,
        csv_href: format!("{path}.csv?{}", form.query(&[])),
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
        account_param: account_param(viewer),
        export_allowed: viewer.account.export_allowed,
        export_kind: list.code(),
        export_fields: form.export_fields(),
        error,
        notice,
        problem: None,
        over_limit: false,
        form,
    }
}

fn pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A posted field, trimmed; None when blank.
fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
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
    let entry = manual_entry(&viewer, list, &pairs(&body))?;
    let address = entry.address.clone();
    let scope = viewer.scope();
    with_db(viewer.state(), move |conn| {
        Ok(lists::add(conn, &scope, &entry, now_ms())?)
    })
    .await?;
    viewer
        .audit("list.add", format!("{} {address}", list.code()))
        .await?;
    Ok(redirect(&format!("{}?added=1", path_of(list))))
}

/// The entry the add form describes, or what is wrong with it.
fn manual_entry(
    viewer: &Viewer,
    list: ListKind,
    fields: &[(String, String)],
) -> AppResult<ManualEntry> {
    let lang = viewer.lang;
    let raw = field(fields, "address").unwrap_or_default();
    let domain = list == ListKind::Blacklist
        && raw.starts_with('@')
        && raw.len() > 2
        && raw[1..].contains('.');
    let address = if domain {
        raw.to_lowercase()
    } else {
        let key = match list {
            ListKind::Blacklist => "lists.bad_address_or_domain",
            _ => "lookup.bad_address",
        };
        EmailAddress::parse(&raw)
            .ok_or_else(|| AppError::bad_request(lang.t(key)))?
            .as_str()
            .to_string()
    };
    let reason = match list {
        ListKind::Unsubscribes => {
            let code = field(fields, "reason").unwrap_or_else(|| "not_wanted".into());
            if UnsubscribeReason::from_code(&code).is_none() {
                return Err(AppError::bad_request(
                    lang.t("lists.bad_unsubscribe_reason"),
                ));
            }
            Some(code)
        }
        ListKind::Bounces => {
            Some(field(fields, "reason").unwrap_or_else(|| lang.t("lists.added_by_hand")))
        }
        _ => None,
    };
    Ok(ManualEntry {
        list,
        address,
        reason,
        expires_at: expiry(viewer, field(fields, "expires"))?,
        api_user: None,
        source: "ui",
    })
}

/// An optional expiry date, which must lie in the future (the start of that day in the
/// account's zone).
fn expiry(viewer: &Viewer, typed: Option<String>) -> AppResult<Option<i64>> {
    let Some(d) = typed else {
        return Ok(None);
    };
    let zone = viewer.account.zone();
    match NaiveDate::parse_from_str(&d, "%Y-%m-%d") {
        Ok(day) if day_start(&zone, day) > now_ms() => Ok(Some(day_start(&zone, day))),
        _ => Err(AppError::bad_request(viewer.lang.t("lists.bad_expiry"))),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "lists/confirm.html")]
pub struct ConfirmPage {
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
) -> AppResult<Either<ConfirmPage, HttpResponse>> {
    let list = list_from_path(&segment)?;
    if viewer.is_staff_view() {
        return Err(AppError::forbidden(viewer.lang.t("staff.read_only")));
    }
    let fields = pairs(&body);
    let form = ListForm::from_pairs(&fields);
    let by_filter = fields.iter().any(|(k, v)| k == "all" && v == "1");
    if !by_filter && !fields.iter().any(|(k, _)| k == "ids") {
        // A form sent with nothing ticked (no script to hold the button back): the list
        // again, with the same filter, saying what to do.
        let back = form.query(&[("nothing", "1".to_string())]);
        return Ok(Either::Right(redirect(&format!(
            "{}?{back}",
            path_of(list)
        ))));
    }
    let selection = selection(&viewer, list, &form, &fields)?;
    let scope = viewer.scope();
    if !fields.iter().any(|(k, v)| k == "confirmed" && v == "1") {
        let counted = selection.clone();
        let (count, spam, only) = with_db(viewer.state(), move |conn| {
            let now = now_ms();
            let (count, spam) = lists::count_selection(conn, &scope, list, &counted, now)?;
            // One entry: the question names it.
            let only = match (&counted, count) {
                (Selection::Ids(ids), 1) => {
                    let (kind, id) = ids[0];
                    lists::entry_address(conn, &scope, kind, id)?
                }
                (Selection::Matching(filter), 1) => {
                    lists::page(conn, &scope, list, filter, None, 1, now)?
                        .into_iter()
                        .next()
                        .map(|e| e.address)
                }
                _ => None,
            };
            Ok((count, spam, only))
        })
        .await?;
        let only = only.map(|a| viewer.show_address(&a));
        let page = confirm_page(&viewer, list, &form, fields, count, spam, only);
        return Ok(Either::Left(page));
    }
    let deleted = with_db(viewer.state(), move |conn| {
        Ok(lists::delete_selection(
            conn,
            &scope,
            list,
            &selection,
            now_ms(),
        )?)
    })
    .await?;
    let how = if by_filter { " (by filter)" } else { "" };
    viewer
        .audit(
            "list.delete",
            format!("{} {deleted} entries{how}", list.code()),
        )
        .await?;
    let back = form.query(&[("deleted", deleted.to_string())]);
    Ok(Either::Right(redirect(&format!(
        "{}?{back}",
        path_of(list)
    ))))
}

/// What the delete form selects: every entry matching the filter (`all=1`), or the chosen
/// entries this page shows.
fn selection(
    viewer: &Viewer,
    list: ListKind,
    form: &ListForm,
    fields: &[(String, String)],
) -> AppResult<Selection> {
    let filter: ListFilter = form
        .filter(viewer)
        .map_err(|(_, m)| AppError::bad_request(m))?;
    if fields.iter().any(|(k, v)| k == "all" && v == "1") {
        return Ok(Selection::Matching(filter));
    }
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
    if ids.is_empty() {
        return Err(AppError::bad_request(
            viewer.lang.t("lists.nothing_selected"),
        ));
    }
    Ok(Selection::Ids(ids))
}

/// The question before a delete: how many entries would go, with the form posted again.
fn confirm_page(
    viewer: &Viewer,
    list: ListKind,
    form: &ListForm,
    fields: Vec<(String, String)>,
    count: i64,
    spam: i64,
    only: Option<String>,
) -> ConfirmPage {
    let lang = viewer.lang;
    let mut hidden: Vec<(String, String)> = fields
        .into_iter()
        .filter(|(k, _)| k != "csrf_token" && k != "confirmed")
        .collect();
    hidden.push(("confirmed".into(), "1".into()));
    ConfirmPage {
        ctx: viewer.page(path_of(list)),
        path: path_of(list),
        count,
        message: match only {
            Some(address) => lang
                .t("lists.confirm_one")
                .replace("{address}", &address)
                .replace("{list}", list.label(lang.code())),
            None => lang
                .t("lists.confirm_count")
                .replace("{n}", &super::layout::grouped(count))
                .replace("{list}", list.label(lang.code())),
        },
        spam_warning: spam > 0,
        hidden,
        back: format!("{}?{}", path_of(list), form.query(&[])),
    }
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
        let limit = ONLINE_EXPORT_LIMIT + 1;
        Ok(lists::page(
            conn,
            &scope,
            list,
            &filter,
            None,
            limit,
            now_ms(),
        )?)
    })
    .await?;
    if rows.len() as i64 > ONLINE_EXPORT_LIMIT {
        return Err(AppError::bad_request(viewer.lang.t("export.too_many_rows")));
    }
    let presenter = viewer.presenter();
    let name = format!("{}-{}.csv", list.code(), Utc::now().format("%Y%m%d"));
    csv_download(
        &name,
        presenter.list_header(list),
        rows.iter().map(|e| presenter.list_record(list, e)),
        presenter.mask,
    )
}
