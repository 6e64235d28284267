//! The sign-in page, its form, and sign-out.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::limiter::{client_ip, MAX_LOGIN_EMAIL, MAX_LOGIN_PASSWORD};
use crate::domain::{dummy_password_hash, verify_password};
use crate::store::accounts;
use crate::web::lang::{safe_next, Lang};
use crate::web::layout::PageCtx;
use crate::web::session_store::USER_KEY;
use crate::web::AppState;
use crate::web::{csrf, with_db, AppError, AppResult};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: PageCtx,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn login_page(
    req: HttpRequest,
    session: Session,
    query: web::Query<LoginQuery>,
) -> AppResult<HttpResponse> {
    if session.get::<i64>(USER_KEY).ok().flatten().is_some() {
        return Ok(redirect(&safe_next(query.next.as_deref())));
    }
    let lang = Lang::from_request(&req);
    render_login(
        lang,
        &session,
        String::new(),
        safe_next(query.next.as_deref()),
        None,
        200,
    )
}

fn render_login(
    lang: Lang,
    session: &Session,
    email: String,
    next: String,
    error: Option<String>,
    status: u16,
) -> AppResult<HttpResponse> {
    let page = LoginPage {
        ctx: PageCtx::anonymous(lang, csrf::token(session)),
        email,
        next,
        error,
    };
    let html = page.render().map_err(AppError::internal)?;
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

pub async fn login_submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    let lang = Lang::from_request(&req);
    let form = form.into_inner();
    let email = crate::domain::normalize_address(&form.email);
    let next = safe_next(form.next.as_deref());
    let ip = client_ip(&req, &state);
    // Logs get the email as text of a sane length on one line, never the raw input.
    let logged = crate::domain::log_text(&email, 100);
    if !state.login_limiter.allow(&ip, &email) {
        log::warn!("login rate limit hit for {logged} from {ip}");
        let mut page = render_login(
            lang,
            &session,
            crate::domain::log_text(&form.email, MAX_LOGIN_EMAIL),
            next,
            Some(lang.t("login.too_many")),
            429,
        )?;
        page.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(state.login_limiter.retry_after_secs()),
        );
        return Ok(page);
    }
    if email.chars().count() > MAX_LOGIN_EMAIL || form.password.len() > MAX_LOGIN_PASSWORD {
        log::info!("failed login (oversized fields) for {logged} from {ip}");
        return render_login(
            lang,
            &session,
            String::new(),
            next,
            Some(lang.t("login.wrong")),
            401,
        );
    }
    let password = form.password;
    let email_for_db = email.clone();
    let user = with_db(&state, move |conn| {
        let user = accounts::find_user_by_email(conn, &email_for_db)?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| dummy_password_hash().to_string());
        let ok = verify_password(&password, &hash);
        Ok(user.filter(|_| ok))
    })
    .await?;
    let Some(user) = user else {
        log::info!("failed login for {logged} from {ip}");
        return render_login(
            lang,
            &session,
            form.email,
            next,
            Some(lang.t("login.wrong")),
            401,
        );
    };
    // A fresh session id at login defeats fixation; the CSRF token is renewed with it.
    session.renew();
    session.remove("csrf");
    session
        .insert(USER_KEY, user.id)
        .map_err(AppError::internal)?;
    log::info!("login {} from {ip}", user.email);
    Ok(redirect(&next))
}

pub async fn logout(session: Session) -> HttpResponse {
    session.purge();
    redirect("/login")
}
