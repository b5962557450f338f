//! The body of every error answer: `{"error": {"code", "message"}}`.

use serde::{Deserialize, Serialize};

/// What the API answers when it refuses a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The refusal itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine-readable (`not_found`, `rate_limited`, `invalid_workflow`…).
    pub code: String,
    /// What was wrong and what to do, for a person.
    pub message: String,
    /// With `rate_limited`: whole seconds until a new job is accepted (also `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}
