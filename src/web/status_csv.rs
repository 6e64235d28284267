//! `GET /status.csv`: the filter of `/status` as a CSV download, up to 10,000 rows.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::auth::Viewer;
use super::filters::{StatusForm, ONLINE_EXPORT_LIMIT};
use super::{with_db, AppError, AppResult};
use crate::store::status::{self, Direction};

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
