//! The error answers of Discord's HTTP API: a status, a JSON `{"code", "message"}` (codes from
//! the documentation's "JSON Error Codes" table) and, for refused bodies, the `errors` tree.

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::form_errors::FormErrors;

/// One error answer, as Discord sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscordError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    pub errors: Option<Value>,
}

impl DiscordError {
    fn new(status: StatusCode, code: u32, message: &str) -> Self {
        Self {
            status,
            code,
            message: message.to_string(),
            errors: None,
        }
    }

    /// 400 / 50035 with the tree of refused fields.
    pub fn invalid_form_body(errors: &FormErrors) -> Self {
        Self {
            errors: Some(errors.to_tree()),
            ..Self::new(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body")
        }
    }

    pub fn invalid_json() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            50109,
            "The request body contains invalid JSON.",
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized")
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, 0, "404: Not Found")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, 0, "405: Method Not Allowed")
    }

    pub fn invalid_api_version() -> Self {
        Self::new(StatusCode::BAD_REQUEST, 50041, "Invalid API version")
    }

    pub fn unknown_channel() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10003, "Unknown Channel")
    }

    pub fn unknown_message() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10008, "Unknown Message")
    }

    pub fn unknown_webhook() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10015, "Unknown Webhook")
    }

    pub fn unknown_interaction() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10062, "Unknown interaction")
    }

    pub fn unknown_command() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10063, "Unknown application command")
    }

    pub fn not_authorized_for_application() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            20012,
            "You are not authorized to perform this action on this application",
        )
    }

    pub fn missing_access() -> Self {
        Self::new(StatusCode::FORBIDDEN, 50001, "Missing Access")
    }

    pub fn cannot_edit_others_message() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            50005,
            "Cannot edit a message authored by another user",
        )
    }

    pub fn empty_message() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        )
    }

    pub fn invalid_webhook_token() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token")
    }

    pub fn already_acknowledged() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            40060,
            "Interaction has already been acknowledged.",
        )
    }

    pub fn entity_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            40005,
            "Request entity too large",
        )
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> Value {
        let mut body = json!({"message": self.message, "code": self.code});
        if let (Some(errors), Some(fields)) = (&self.errors, body.as_object_mut()) {
            fields.insert("errors".into(), errors.clone());
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form_errors::FieldError;

    #[test]
    fn form_errors_travel_in_the_body() {
        let mut errors = FormErrors::default();
        errors.push(&["content".into()], FieldError::required());
        let answer = DiscordError::invalid_form_body(&errors);
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            answer.body(),
            json!({"message": "Invalid Form Body", "code": 50035,
                   "errors": {"content": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}}})
        );
        assert_eq!(
            DiscordError::unknown_interaction().body(),
            json!({"message": "Unknown interaction", "code": 10062})
        );
    }
}
