//! API errors: one JSON shape, `{"error": {"code", "message"}}`, with the right status code.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// Everything the API can refuse, each with a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "missing or unknown API token: send `Authorization: Bearer <token>` with a token from COMFY_FLEET_API_TOKENS"
    )]
    Unauthorized,
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Duration,
    },
    #[error("{0}")]
    QueueFull(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Upstream(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::BadRequest { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::QueueFull(_) => "queue_full",
            Self::Conflict(_) => "conflict",
            Self::Unavailable(_) => "unavailable",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Upstream(_) => "upstream_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::QueueFull(_) | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        let mut response = HttpResponse::build(self.status_code());
        if let Self::RateLimited { retry_after, .. } = self {
            let secs = retry_after.as_secs_f64().ceil() as u64;
            body["error"]["retry_after_seconds"] = json!(secs);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.insert_header((header::RETRY_AFTER, v));
            }
        }
        response.json(body)
    }
}
