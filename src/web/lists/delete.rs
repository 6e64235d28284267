//! `POST /{list}/delete`: the chosen entries or every entry the filter matches, always
//! asked about first.

use actix_web::{web, Either, HttpResponse};
use askama::Template;
use askama_web::WebTemplate;

use super::add::pairs;
use super::{list_from_path, path_of};
use crate::domain::{now_ms, ListKind};
use crate::store::lists::{self, ListFilter, Selection};
use crate::web::auth::{redirect, Viewer};
use crate::web::filters::ListForm;
use crate::web::layout::{grouped, PageCtx};
use crate::web::{with_db, AppError, AppResult};

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
    if !fields.iter().any(|(k, v)| k == "confirmed" && v == "1") {
        return Ok(Either::Left(
            ask(&viewer, list, &form, fields, selection).await?,
        ));
    }
    let scope = viewer.scope();
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

/// The question before a delete: counts what the selection holds and, when it is one entry,
/// names it.
async fn ask(
    viewer: &Viewer,
    list: ListKind,
    form: &ListForm,
    fields: Vec<(String, String)>,
    selection: Selection,
) -> AppResult<ConfirmPage> {
    let scope = viewer.scope();
    let (count, spam, only) = with_db(viewer.state(), move |conn| {
        let now = now_ms();
        let (count, spam) = lists::count_selection(conn, &scope, list, &selection, now)?;
        // One entry: the question names it.
        let only = match (&selection, count) {
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
    Ok(confirm_page(viewer, list, form, fields, count, spam, only))
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
                .replace("{n}", &grouped(count))
                .replace("{list}", list.label(lang.code())),
        },
        spam_warning: spam > 0,
        hidden,
        back: format!("{}?{}", path_of(list), form.query(&[])),
    }
}
