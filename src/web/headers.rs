//! Security headers on every response (DESIGN §9): a CSP with no inline script, no framing,
//! no sniffing.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

const HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    ),
];

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    // How long the server worked on the answer, for people and benchmarks (Server-Timing).
    if let Ok(value) = HeaderValue::from_str(&format!(
        "app;dur={:.2}",
        started.elapsed().as_secs_f64() * 1000.0
    )) {
        headers.insert(HeaderName::from_static("server-timing"), value);
    }
    apply_defaults(headers);
    Ok(res)
}

/// The security headers (and `no-store`) a response does not set itself.
pub fn apply_defaults(headers: &mut actix_web::http::header::HeaderMap) {
    // A handler may set a policy of its own (the sandboxed message content frame);
    // everything else gets the defaults.
    for (name, value) in HEADERS {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if !headers.contains_key("cache-control") {
        headers.insert(
            HeaderName::from_static("cache-control"),
            HeaderValue::from_static("no-store"),
        );
    }
}
