//! The answers' envelope: `result`, `statusCode`, `message`, `info`; errors as SendCloud
//! words them, and our own failures as 5xx in the same envelope.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::code;
use crate::web::AppError;

/// An answer with `result: false`.
#[derive(Debug)]
pub struct SendCloudError {
    pub(super) code: u32,
    message: String,
    status: StatusCode,
}

pub(super) type Answer = Result<HttpResponse, SendCloudError>;

impl SendCloudError {
    pub(super) fn new(code: u32, message: impl Into<String>) -> Self {
        SendCloudError {
            code,
            message: message.into(),
            status: StatusCode::OK,
        }
    }
}

impl std::fmt::Display for SendCloudError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl ResponseError for SendCloudError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut answer = HttpResponse::build(self.status);
        if self.code == code::RATE_LIMITED {
            answer.insert_header((header::RETRY_AFTER, "60"));
        }
        answer.json(envelope(false, self.code, &self.message, json!({})))
    }
}

/// Whatever fails below the web layer is ours, not the caller's: logged, answered 5xx.
impl From<AppError> for SendCloudError {
    fn from(e: AppError) -> Self {
        log::error!("apiv2: {e}");
        let (status, message) = match e {
            AppError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "服务暂时不可用, 请稍后重试",
            ),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "服务器内部错误"),
        };
        SendCloudError {
            code: code::SERVER_ERROR,
            message: message.into(),
            status,
        }
    }
}

pub(super) fn envelope(result: bool, status_code: u32, message: &str, info: Value) -> Value {
    json!({"result": result, "statusCode": status_code, "message": message, "info": info})
}

pub(super) fn success(info: Value) -> HttpResponse {
    HttpResponse::Ok().json(envelope(true, code::OK, "请求成功", info))
}

pub(super) fn auth_failed() -> SendCloudError {
    SendCloudError::new(code::AUTH_FAILED, "认证失败")
}

/// A list call's `info`: `count` and `dataList`.
pub(super) fn data_list<T: serde::Serialize>(data: &[T]) -> HttpResponse {
    success(json!({"count": data.len(), "dataList": data}))
}
