//! API authentication: bearer tokens (from `COMFY_FLEET_API_TOKENS`) map to user ids, and the
//! users named in `http.operators` see the whole fleet and may change the model library.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::HttpRequest;
use actix_web::http::header;
use comfy_fleet_actors::UserId;

use crate::http::error::ApiError;

/// Who may call the API.
#[derive(Debug, Clone)]
pub struct TokenMap {
    tokens: BTreeMap<String, String>,
    anonymous: String,
    operators: BTreeSet<String>,
}

/// Who a request acts as, and what it may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    /// Sees every job and the instances' URLs and models: an operator, or anyone when no
    /// tokens are set (every request is then the one anonymous user).
    pub sees_everything: bool,
}

impl TokenMap {
    /// With no tokens, every request is `anonymous` (the API listens on loopback by default).
    pub fn new(tokens: BTreeMap<String, String>, anonymous: impl Into<String>) -> Self {
        Self {
            tokens,
            anonymous: anonymous.into(),
            operators: BTreeSet::new(),
        }
    }

    /// These users (as tokens map them, or the anonymous user) see the whole fleet and may
    /// change the model library.
    pub fn with_operators(mut self, operators: impl IntoIterator<Item = String>) -> Self {
        self.operators = operators.into_iter().collect();
        self
    }

    /// The user a request acts as, when that user is an operator.
    pub fn operator(&self, req: &HttpRequest) -> Result<UserId, ApiError> {
        let user = self.user(req)?;
        if self.operators.contains(&user.0) {
            Ok(user)
        } else {
            Err(ApiError::Forbidden(format!(
                "only operators may change the model library, and `{}` is not one; list the user in http.operators",
                user.0
            )))
        }
    }

    /// Whether requests must carry a token (and users see only their own jobs).
    pub fn enforced(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The user a request acts as.
    pub fn user(&self, req: &HttpRequest) -> Result<UserId, ApiError> {
        self.caller(req).map(|c| c.user)
    }

    /// Who the request acts as and what it may see. The scheme is matched without regard to
    /// case (`Bearer`, `bearer`), as HTTP says.
    pub fn caller(&self, req: &HttpRequest) -> Result<Caller, ApiError> {
        if self.tokens.is_empty() {
            return Ok(Caller {
                user: UserId::new(self.anonymous.clone()),
                sees_everything: true,
            });
        }
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim();
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match token.and_then(|t| self.tokens.get(t)) {
            Some(user) => Ok(Caller {
                sees_everything: self.operators.contains(user),
                user: UserId::new(user.clone()),
            }),
            None => Err(ApiError::Unauthorized),
        }
    }
}
