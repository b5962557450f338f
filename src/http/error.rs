//! API errors: one JSON shape, `{"error": {"code", "message"}}`, with the right status code.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use crate::http::api_types::{ErrorBody, ErrorDetail};

/// Everything the API can refuse, each with a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "missing or unknown API token: send `Authorization: Bearer <token>` with a token from COMFY_FLEET_API_TOKENS"
    )]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Duration,
    },
    #[error("{message}")]
    QueueFull {
        message: String,
        retry_after: Duration,
    },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Internal(String),
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
            Self::Forbidden(_) => "forbidden",
            Self::BadRequest { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::QueueFull { .. } => "queue_full",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Conflict(_) => "conflict",
            Self::Unavailable(_) => "unavailable",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Upstream(_) => "upstream_error",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::QueueFull { .. } | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        let retry_after_seconds = match self {
            Self::RateLimited { retry_after, .. } | Self::QueueFull { retry_after, .. } => {
                let secs = retry_after.as_secs_f64().ceil() as u64;
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    response.insert_header((header::RETRY_AFTER, v));
                }
                Some(secs)
            }
            _ => None,
        };
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code().into(),
                message: self.to_string(),
                retry_after_seconds,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(error: ApiError) -> (u16, Option<String>, ErrorBody) {
        let response = error.error_response();
        let status = response.status().as_u16();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        (status, retry, serde_json::from_slice(&body).unwrap())
    }

    #[actix_rt::test]
    async fn a_refusal_has_its_code_and_message_and_a_rate_limit_its_wait() {
        let (status, retry, body) = answer(ApiError::RateLimited {
            message: "2 jobs per hour".into(),
            retry_after: Duration::from_millis(1_200),
        })
        .await;
        assert_eq!((status, retry.as_deref()), (429, Some("2")));
        assert_eq!(
            body.error,
            ErrorDetail {
                code: "rate_limited".into(),
                message: "2 jobs per hour".into(),
                retry_after_seconds: Some(2),
            }
        );

        let (status, retry, body) = answer(ApiError::NotFound("no job x".into())).await;
        assert_eq!((status, retry), (404, None));
        assert_eq!(body.error.code, "not_found");
        assert_eq!(body.error.retry_after_seconds, None);
    }
}
