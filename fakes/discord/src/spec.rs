//! Discord's official OpenAPI 3.1 description of the v10 HTTP API, vendored in `spec/` (MIT,
//! `spec/openapi.LICENSE`), loaded once per process with the `relaxations` applied. It answers
//! "which schema must this route's request (or response) body satisfy?".

use std::sync::OnceLock;

use serde_json::Value;

use crate::relaxations;
use crate::validator::Validator;

const OPENAPI_JSON: &str = include_str!("../spec/openapi.json");

/// The loaded description (with relaxations) and a validator over it.
pub struct ApiSpec {
    document: Value,
}

/// How a request body arrived; a multipart body's `payload_json` is judged by the JSON schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Multipart,
}

impl ApiSpec {
    /// The process-wide description. Parsing the vendored file cannot fail unless the crate was
    /// built from a damaged copy, which the crate's tests catch.
    pub fn get() -> &'static ApiSpec {
        static SPEC: OnceLock<ApiSpec> = OnceLock::new();
        SPEC.get_or_init(|| {
            let mut document: Value = serde_json::from_str(OPENAPI_JSON).unwrap_or_else(|e| {
                panic!("fake-discord: the vendored spec/openapi.json does not parse: {e}")
            });
            relaxations::apply(&mut document);
            ApiSpec { document }
        })
    }

    pub fn validator(&self) -> Validator<'_> {
        Validator::new(&self.document)
    }

    fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        self.document
            .get("paths")?
            .get(template)?
            .get(method.to_ascii_lowercase())
    }

    /// Whether the route needs a bot token: its `security` lists no empty (anonymous) entry.
    pub fn requires_auth(&self, method: &str, template: &str) -> bool {
        let Some(security) = self
            .operation(method, template)
            .and_then(|op| op.get("security"))
            .and_then(Value::as_array)
        else {
            return false;
        };
        !security
            .iter()
            .any(|entry| entry.as_object().is_some_and(|o| o.is_empty()))
    }

    /// Whether the description has this route and method at all.
    pub fn has_operation(&self, method: &str, template: &str) -> bool {
        self.operation(method, template).is_some()
    }

    /// The schema a request body on `method template` must satisfy.
    pub fn request_schema(&self, method: &str, template: &str, _kind: BodyKind) -> Option<&Value> {
        // Discord reads `payload_json` exactly as it reads a JSON body; the multipart schemas in
        // the description only add the `files[n]` parts, which are checked separately.
        self.operation(method, template)?
            .get("requestBody")?
            .get("content")?
            .get("application/json")?
            .get("schema")
    }

    /// The schema of the JSON answer with `status` on `method template`, if one is described.
    pub fn response_schema(&self, method: &str, template: &str, status: u16) -> Option<&Value> {
        let responses = self.operation(method, template)?.get("responses")?;
        let response = responses
            .get(status.to_string())
            .or_else(|| responses.get(format!("{}XX", status / 100)))?;
        let response = match response.get("$ref").and_then(Value::as_str) {
            Some(reference) => self.document.pointer(reference.strip_prefix('#')?)?,
            None => response,
        };
        response
            .get("content")?
            .get("application/json")?
            .get("schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_vendored_description_loads_with_its_relaxations() {
        let spec = ApiSpec::get();
        assert!(spec.has_operation("PUT", "/applications/{application_id}/commands"));
        let schema = spec
            .request_schema(
                "PATCH",
                "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
                BodyKind::Json,
            )
            .expect("edit original has a body schema");
        let errors = spec.validator().validate(
            schema,
            &json!({"content": "ok", "attachments": [{"id": 0}]}),
        );
        assert!(errors.is_empty(), "{:?}", errors.flat());
        assert!(
            spec.response_schema("GET", "/users/@me", 200).is_some(),
            "users/@me answers a user"
        );
    }
}
