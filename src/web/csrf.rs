//! CSRF protection for every state-changing form (DESIGN §9): a random token kept in the
//! session, carried by each form as the hidden field `csrf_token` (or the `X-CSRF-Token`
//! header), checked here for every POST before any handler runs.

use actix_session::{Session, SessionExt};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::Bytes;

use super::AppError;
use crate::domain::{constant_time_eq, random_token};

const SESSION_KEY: &str = "csrf";
pub const FIELD: &str = "csrf_token";

/// Machine endpoints authenticate otherwise (API keys, signatures, signed tokens) and carry
/// no session, so they are not forms.
pub fn exempt(path: &str) -> bool {
    ["/api/", "/apiv2/", "/webhooks/", "/t/", "/u/"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// The session's token, created on first use.
pub fn token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(SESSION_KEY) {
        return t;
    }
    let t = random_token(43);
    let _ = session.insert(SESSION_KEY, &t);
    t
}

fn bytes_to_payload(buf: Bytes) -> actix_web::dev::Payload {
    let (_, mut payload) = actix_http::h1::Payload::create(true);
    payload.unread_data(buf);
    actix_web::dev::Payload::from(payload)
}

pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.method() != Method::POST || exempt(req.path()) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let expected = req.get_session().get::<String>(SESSION_KEY).ok().flatten();
    let header = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req.extract::<Bytes>().await?;
    let sent = header.or_else(|| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == FIELD)
            .map(|(_, v)| v.into_owned())
    });
    let ok = matches!((&expected, &sent), (Some(e), Some(s)) if constant_time_eq(e.as_bytes(), s.as_bytes()));
    if !ok {
        log::warn!("CSRF check failed for POST {}", req.path());
        let lang = super::lang::Lang::from_request(req.request());
        let err = AppError::forbidden(lang.t("error.csrf"));
        return Ok(req.error_response(err).map_into_right_body());
    }
    req.set_payload(bytes_to_payload(body));
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}
