//! The suppression lists' pages: `/bounces` (退信列表), `/spam-reports` (垃圾举报列表),
//! `/unsubscribes` (取消订阅列表), `/blacklist` (黑名单): filters, keyset paging, adds, deletes
//! (selected or by filter, always confirmed), and the CSV download of the current filter.

mod add;
mod delete;

pub use add::add;
pub use delete::{delete, ConfirmPage};

use actix_web::{web, HttpResponse, Responder};
use askama::Template;
use askama_web::WebTemplate;
use chrono::Utc;

use super::auth::Viewer;
use super::filters::{
    account_param, decode_list_cursor, encode_list_cursor, text, FormError, ListForm,
};
use super::layout::{csv_download, PageCtx};
use super::status::ONLINE_EXPORT_LIMIT;
use super::{with_db, AppError, AppResult};
use crate::domain::{now_ms, ListEntry, ListKind, UnsubscribeReason};
use crate::store::lists::{self, ListPosition, Selection};

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
