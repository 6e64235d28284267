//! One error type for the web layer. Handlers return it; pages render it inside the layout
//! (see [`render_error_page`]), the machine answers as `{"error": {"code", "message"}}`.
//! Which answers are for machines is said where their routes are registered
//! ([`MachineAnswers`]), not by a second list of paths here.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::lang::Lang;

#[derive(Debug)]
pub enum AppError {
    BadRequest(String),
    /// Not signed in: pages redirect to the login form, coming back to `next` afterwards.
    LoginRequired {
        next: String,
    },
    Forbidden(String),
    /// The machine API's key is missing, wrong or revoked.
    Unauthorized(String),
    NotFound,
    TooManyRequests,
    /// The database could not be reached: a brief outage, not a bug.
    Unavailable(Cause),
    Internal(Cause),
}

/// What went wrong below the web layer, kept whole so that the log shows its chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

pub type AppResult<T> = Result<T, AppError>;

/// App data of the scopes whose answers are for machines (the APIs, the webhook receiver, the
/// tracking pixel): their errors are answered as they are, never as a page.
#[derive(Debug, Clone, Copy)]
pub struct MachineAnswers;

/// The message an error response carries to the page renderer.
#[derive(Debug, Clone)]
struct ErrorDetail(String);

impl AppError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        AppError::BadRequest(msg.into())
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        AppError::Forbidden(msg.into())
    }

    pub fn internal(e: impl Into<Cause>) -> Self {
        AppError::Internal(e.into())
    }

    pub fn unavailable(e: impl Into<Cause>) -> Self {
        AppError::Unavailable(e.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::LoginRequired { .. } => "login_required",
            AppError::Forbidden(_) => "forbidden",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::NotFound => "not_found",
            AppError::TooManyRequests => "too_many_requests",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::BadRequest(m) | AppError::Forbidden(m) | AppError::Unauthorized(m) => {
                f.write_str(m)
            }
            AppError::LoginRequired { .. } => f.write_str("please sign in"),
            AppError::NotFound => f.write_str("not found"),
            AppError::TooManyRequests => f.write_str("too many attempts, try again later"),
            AppError::Unavailable(m) => write!(f, "database unavailable: {m}"),
            AppError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppError::Unavailable(cause) | AppError::Internal(cause) => Some(cause.as_ref()),
            _ => None,
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => AppError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                AppError::Unavailable(e.into())
            }
            // SQLite on a full disk or a read-only file: diesel has no kind for these, and the
            // client can retry once the disk is fixed.
            Error::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if info.message().contains("disk is full")
                    || info.message().contains("readonly database") =>
            {
                AppError::Unavailable(e.into())
            }
            other => AppError::Internal(other.into()),
        }
    }
}

/// The error and every cause under it, `: `-separated, for one log line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::LoginRequired { next } = self {
            let location = format!(
                "/login?next={}",
                percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
            );
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location))
                .finish();
        }
        if let AppError::Internal(cause) | AppError::Unavailable(cause) = self {
            log::error!("{}: {}", self.code(), chain(cause.as_ref()));
        }
        // Internal details stay in the log; people see a plain sentence.
        let public = match self {
            AppError::BadRequest(m) | AppError::Forbidden(m) | AppError::Unauthorized(m) => {
                m.clone()
            }
            _ => String::new(),
        };
        let body = serde_json::json!({"error": {"code": self.code(), "message": if public.is_empty() { self.to_string_public() } else { public.clone() }}});
        let mut res = HttpResponse::build(self.status_code())
            .content_type("application/json")
            .body(body.to_string());
        res.extensions_mut().insert(ErrorDetail(public));
        res
    }
}

impl AppError {
    fn to_string_public(&self) -> String {
        match self {
            AppError::Internal(_) => "internal error".into(),
            AppError::Unavailable(_) => "the database is unavailable; try again shortly".into(),
            other => other.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    ctx: super::layout::PageCtx,
    status: u16,
    title: String,
    message: String,
    detail: String,
}

/// Renders every 4xx/5xx response of a page as a friendly page in the layout. Answers of the
/// machine API (and redirects) are left as they are.
pub fn render_error_page<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_api = res.request().app_data::<MachineAnswers>().is_some();
    let status = res.status();
    // A handler that rendered its own page (a form with its message) keeps it.
    let is_page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_api || is_page || !(status.is_client_error() || status.is_server_error()) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let lang = Lang::from_request(res.request());
    let detail = res
        .response()
        .extensions()
        .get::<ErrorDetail>()
        .map(|d| d.0.clone())
        .unwrap_or_default();
    let key = match status.as_u16() {
        400 => "error.400",
        403 => "error.403",
        404 => "error.404",
        405 => "error.405",
        429 => "error.429",
        503 => "error.503",
        s if s < 500 => "error.400",
        _ => "error.500",
    };
    let mut ctx = super::layout::PageCtx::anonymous(lang, String::new());
    ctx.here = res.request().path().to_string();
    let page = ErrorPage {
        ctx,
        status: status.as_u16(),
        title: lang.t(&format!("{key}.title")),
        message: lang.t(&format!("{key}.message")),
        detail,
    };
    let html = page.render().unwrap_or_else(|_| "error".into());
    let (req, _) = res.into_parts();
    let response: HttpResponse<BoxBody> = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}
