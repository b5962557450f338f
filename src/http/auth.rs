//! API authentication: bearer tokens (from `COMFY_FLEET_API_TOKENS`) map to user ids.

use std::collections::BTreeMap;

use actix_web::HttpRequest;
use actix_web::http::header;
use comfy_fleet_actors::UserId;

use crate::http::error::ApiError;

/// Who may call the API.
#[derive(Debug, Clone)]
pub struct TokenMap {
    tokens: BTreeMap<String, String>,
    anonymous: String,
}

impl TokenMap {
    /// With no tokens, every request is `anonymous` (the API listens on loopback by default).
    pub fn new(tokens: BTreeMap<String, String>, anonymous: impl Into<String>) -> Self {
        Self {
            tokens,
            anonymous: anonymous.into(),
        }
    }

    /// Whether requests must carry a token (and users see only their own jobs).
    pub fn enforced(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The user a request acts as.
    pub fn user(&self, req: &HttpRequest) -> Result<UserId, ApiError> {
        if self.tokens.is_empty() {
            return Ok(UserId::new(self.anonymous.clone()));
        }
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = value.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        match token.and_then(|t| self.tokens.get(t)) {
            Some(user) => Ok(UserId::new(user.clone())),
            None => Err(ApiError::Unauthorized),
        }
    }
}
