//! One error type for the web layer. Handlers return it; pages render it inside the layout
//! (see [`render_error_page`]), the machine answers as `{"error": {"code", "message"}}`.
//! Which answers are for machines is said where their routes are registered
//! ([`MachineAnswers`]), not by a second list of paths here.

use actix_web::body::MessageBody;
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
                    || info.message().contains("readonly database")
                    // PostgreSQL going away under a pooled connection.
                    || info.message().contains("terminating connection")
                    || info.message().contains("server closed the connection")
                    || info.message().contains("connection to server") =>
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
    signed_in: bool,
    /// Where trying again goes, when it may help (the database away, too many requests, a
    /// failure of ours) and the request was a page (GET).
    retry: Option<String>,
    /// The page of this site the viewer came from.
    back: Option<String>,
}

/// Renders every 4xx/5xx response of a page as a friendly page in the layout, with the
/// navigation and sign-out of whoever is signed in. Answers of the machine API (and
/// redirects, and pages that rendered their own form with its message) are left as they are.
/// It runs inside the session middleware, so that the session is still there to read.
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
    let detail = res
        .response()
        .extensions()
        .get::<ErrorDetail>()
        .map(|d| d.0.clone())
        .unwrap_or_default();
    let (req, _) = res.into_parts();
    Ok(ErrorHandlerResponse::Future(Box::pin(async move {
        // While the database is away there is nobody to look up: the page is anonymous.
        let ctx = if status == StatusCode::SERVICE_UNAVAILABLE {
            None
        } else {
            super::auth::error_page_ctx(&req).await
        };
        let response = error_page(Asked::of(&req), status, detail, ctx);
        Ok(ServiceResponse::new(req, response).map_into_right_body())
    })))
}

/// What an error page needs to know of the request it answers.
pub struct Asked {
    lang: Lang,
    /// Path and query.
    here: String,
    is_get: bool,
    /// The page of this site the viewer came from.
    back: Option<String>,
}

impl Asked {
    pub fn of(req: &actix_web::HttpRequest) -> Asked {
        let here = match req.uri().query() {
            Some(q) => format!("{}?{q}", req.path()),
            None => req.path().to_string(),
        };
        Asked {
            lang: Lang::from_request(req),
            back: same_site_referer(req).filter(|b| *b != here),
            is_get: req.method() == actix_web::http::Method::GET,
            here,
        }
    }
}

/// The error page itself: the layout (signed in when `ctx` is given), the status, a sentence
/// in the viewer's language, the detail, and the ways back.
pub fn error_page(
    asked: Asked,
    status: StatusCode,
    detail: String,
    ctx: Option<super::layout::PageCtx>,
) -> HttpResponse {
    let lang = asked.lang;
    let key = match status.as_u16() {
        400 => "error.400",
        403 => "error.403",
        404 => "error.404",
        405 => "error.405",
        413 => "error.413",
        429 => "error.429",
        503 => "error.503",
        s if s < 500 => "error.400",
        _ => "error.500",
    };
    let mut ctx = ctx.unwrap_or_else(|| super::layout::PageCtx::anonymous(lang, String::new()));
    ctx.here = asked.here.clone();
    let signed_in = ctx.user_email.is_some();
    let page = ErrorPage {
        ctx,
        status: status.as_u16(),
        title: lang.t(&format!("{key}.title")),
        message: lang.t(&format!("{key}.message")),
        detail,
        signed_in,
        retry: ((status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
            && asked.is_get)
            .then(|| asked.here.clone()),
        back: asked.back,
    };
    // The error page is the last resort: if it cannot render either, a short sentence still
    // says what happened, in the viewer's language.
    let html = page.render().unwrap_or_else(|e| {
        log::error!("the error page could not be rendered: {e}");
        format!(
            "<!DOCTYPE html><html lang=\"{}\"><meta charset=\"utf-8\"><title>{}</title><h1>{} · {}</h1><p><a href=\"/\">{}</a></p></html>",
            lang.code(),
            status.as_u16(),
            status.as_u16(),
            html_escape(&lang.t(&format!("{key}.title"))),
            html_escape(&lang.t("error.home")),
        )
    });
    let mut builder = HttpResponse::build(status);
    builder.content_type("text/html; charset=utf-8");
    if status == StatusCode::SERVICE_UNAVAILABLE {
        builder.insert_header((header::RETRY_AFTER, "5"));
    }
    builder.body(html)
}

/// The path (and query) of the page that linked here, when it is a page of this site.
fn same_site_referer(req: &actix_web::HttpRequest) -> Option<String> {
    let referer = req.headers().get(header::REFERER)?.to_str().ok()?;
    let url = url::Url::parse(referer).ok()?;
    let host = req.connection_info().host().to_string();
    let origin = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str()?),
        None => url.host_str()?.to_string(),
    };
    if origin != host {
        return None;
    }
    Some(match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The outermost safety net for errors that a middleware returned instead of a response
/// (the session store not answering, a guard's database lookup failing): they become the
/// same page as every other error rather than actix's bare, empty 500. A session store that
/// fails is the database being away: 503, "database unavailable". (The request cannot be
/// kept for the answer — routing needs it unshared — so the page is made from what was read
/// of it before, and travels as the error's own response.)
pub async fn catch_failures(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let asked = Asked::of(req.request());
    // The scopes that answer machines are known by their paths here (routing comes later).
    let machine = super::csrf::exempt(req.path()) && !req.path().starts_with("/u/");
    let err = match next.call(req).await {
        Ok(res) => return Ok(res),
        Err(err) => err,
    };
    use actix_session::storage::{LoadError, SaveError, UpdateError};
    use actix_web::error::InternalError;
    let store_failed = err.as_error::<InternalError<LoadError>>().is_some()
        || err.as_error::<InternalError<SaveError>>().is_some()
        || err.as_error::<InternalError<UpdateError>>().is_some()
        || err.as_error::<InternalError<anyhow::Error>>().is_some();
    let app = err.as_error::<AppError>();
    let status = if store_failed {
        log::error!("unavailable: the session store failed: {err}");
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        if let Some(e @ (AppError::Internal(cause) | AppError::Unavailable(cause))) = app {
            log::error!("{}: {}", e.code(), chain(cause.as_ref()));
        }
        err.as_response_error().status_code()
    };
    let mut response = if machine {
        match app {
            Some(app) => app.error_response(),
            None if store_failed => AppError::Unavailable("session store".into()).error_response(),
            None => err.error_response(),
        }
    } else {
        let detail = match app {
            Some(AppError::BadRequest(m) | AppError::Forbidden(m) | AppError::Unauthorized(m)) => {
                m.clone()
            }
            _ => String::new(),
        };
        error_page(asked, status, detail, None)
    };
    super::headers::apply_defaults(response.headers_mut());
    let line = err.to_string();
    Err(InternalError::from_response(line, response).into())
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::ErrorHandlers;
    use actix_web::{test, web, App, HttpResponse};

    /// What askama_web answers when a template fails to render: a bare text/plain 500.
    async fn failed_template() -> HttpResponse {
        HttpResponse::InternalServerError()
            .content_type("text/plain; charset=utf-8")
            .body("Template rendering error")
    }

    #[actix_web::test]
    async fn a_template_that_fails_becomes_the_error_page() {
        let app = test::init_service(
            App::new()
                .route("/page", web::get().to(failed_template))
                .wrap(ErrorHandlers::new().default_handler(super::render_error_page)),
        )
        .await;
        let req = test::TestRequest::get()
            .uri("/page")
            .insert_header(("accept-language", "zh-CN"))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), 500);
        assert!(res
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
        assert!(body.contains("500 · 出错了"), "{body}");
        assert!(body.contains("id=\"error-retry\" href=\"/page\""), "{body}");
        assert!(!body.contains("Template rendering error"));
    }
}
