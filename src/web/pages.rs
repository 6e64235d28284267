//! Small routes: health, embedded static files, not found.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::{with_db, AppError, AppResult};
use crate::app::AppState;

/// 200 once the database answers (scripts wait on it after a start).
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let ok = with_db(&state, |conn| {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("SELECT 1").map_err(AppError::from)
    })
    .await;
    match ok {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ok"),
        Err(_) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("database unavailable"),
    }
}

/// Static files are compiled into the binary so that it runs from any folder.
const STATIC_FILES: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../static/favicon.svg"),
    ),
];

pub async fn static_file(name: web::Path<String>) -> AppResult<HttpResponse> {
    let (_, mime, body) = STATIC_FILES
        .iter()
        .find(|(n, _, _)| *n == name.as_str())
        .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, *mime))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(*body))
}

pub async fn not_found() -> AppResult<HttpResponse> {
    Err(AppError::NotFound)
}
