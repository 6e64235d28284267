//! Guards that hold for every request, in one place rather than per handler: a staff view
//! of a customer account is read-only (DESIGN §9), and the access log never writes a secret.

use actix_session::SessionExt;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{Logger, Next};
use actix_web::web;
use diesel::prelude::*;

use super::session_store::USER_KEY;
use super::{with_db, AppError};
use crate::db::schema::users;
use crate::domain::Role;
use crate::web::AppState;

/// The only POSTs staff make: signing out, revealing masked addresses (audited) and switching
/// an account's S+ features. Everything else a staff user posts is refused.
const STAFF_POSTS: &[&str] = &["/login", "/logout", "/reveal", "/settings/splus"];

/// Refuses every POST of a signed-in staff user except [`STAFF_POSTS`], before any handler
/// runs, whatever account it names.
pub async fn staff_read_only(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.method() == Method::GET
        || req.method() == Method::HEAD
        || STAFF_POSTS.contains(&req.path())
        || super::csrf::exempt(req.path())
    {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let user_id = req.get_session().get::<i64>(USER_KEY).ok().flatten();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    if let (Some(user_id), Some(state)) = (user_id, state) {
        let role = with_db(&state, move |conn| {
            Ok(users::table
                .find(user_id)
                .select(users::role)
                .first::<String>(conn)
                .optional()?)
        })
        .await?;
        if role.as_deref() == Some(Role::Staff.code()) {
            log::warn!(
                "staff user #{user_id} refused: {} {}",
                req.method(),
                req.path()
            );
            let lang = super::lang::Lang::from_request(req.request());
            let err = AppError::forbidden(lang.t("error.staff_read_only"));
            return Ok(req.error_response(err).map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The access log: client, method, path with its query redacted, status, size, time.
pub fn access_log() -> Logger {
    Logger::new("%a \"%{request}xi\" %s %b %Dms").custom_request_replace("request", |req| {
        let target = match req.uri().query() {
            Some(q) => format!("{}?{}", req.path(), q),
            None => req.path().to_string(),
        };
        format!(
            "{} {} {:?}",
            req.method(),
            crate::domain::redact_target(&target),
            req.version()
        )
    })
}
