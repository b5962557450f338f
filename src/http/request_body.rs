//! Reading a request body whole, bounded: a body the `Content-Length` says is too large is
//! refused before a byte of it is read, and any other as soon as it passes the bound.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::http::error::ApiError;

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the request is larger than the {} MiB allowed for a whole request, images included \
         (http.max_body_mb)",
        limit / (1024 * 1024)
    ))
}

/// The body of `req`, at most `limit` bytes.
pub async fn read_bounded(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let mut body = BytesMut::with_capacity(declared.map_or(0, |n| n as usize).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("bad_body", format!("the request body broke off: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
