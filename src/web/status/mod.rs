//! `/status` (邮件状态): the filter form, the table of messages with keyset paging, counts per
//! status as tabs, and the online CSV export of the same filter.

mod choices;
mod tabs;
mod view;

use actix_web::{web, HttpResponse};
use askama::Template;

use super::auth::Viewer;
pub use super::filters::{
    decode_cursor, encode_cursor, Parsed, StatusFieldError, StatusForm, ONLINE_EXPORT_LIMIT,
    PER_PAGE_CHOICES,
};
pub use super::status_csv::csv;
use super::{with_db, AppError, AppResult};
use crate::domain::{Reason, Status};
use crate::store::status::{self, Count, StatusFilter};
pub use tabs::{Row, Tab};

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
    let html = view::view(&viewer, form, parsed, fetched)
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
