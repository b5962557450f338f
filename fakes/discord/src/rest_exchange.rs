//! The path every REST request takes through the fake, as through Discord: authentication (the
//! route's `security` in the OpenAPI description says whether a bot token is needed), the rate
//! limiter (a 429 stops the request before anything happens), reading the body, the route's own
//! logic, the `X-RateLimit-*` headers, and an entry in the request log with the body, any
//! refusal, and a check of the fake's own answer against Discord's response schema.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::discord_error::DiscordError;
use crate::form_errors::FormErrors;
use crate::rate_limits::{BucketHeaders, Decision, LimitedRoute};
use crate::request_body::{self, IncomingBody};
use crate::request_log::{FileSummary, RequestRecord};
use crate::spec::{ApiSpec, BodyKind};
use crate::world::{Shared, World};

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Json(StatusCode, Value),
    NoContent,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self::Json(StatusCode::OK, body)
    }
}

/// One REST request, as the route logic sees it.
#[derive(Debug)]
pub struct RestCall {
    pub method: &'static str,
    pub template: &'static str,
    pub path: String,
    pub query: String,
    pub body: IncomingBody,
    /// When the request arrived.
    pub now: Instant,
}

impl RestCall {
    /// The body's JSON checked against the route's request schema plus `extra` refusals
    /// (Discord's rules beyond the schema); a refusal is 400 / 50035 with the `errors` tree.
    pub fn validated(
        &self,
        extra: impl FnOnce(&Value) -> FormErrors,
    ) -> Result<Value, DiscordError> {
        let spec = ApiSpec::get();
        let kind = if self.body.multipart {
            BodyKind::Multipart
        } else {
            BodyKind::Json
        };
        let Some(json) = self.body.json.clone() else {
            if self.body.multipart {
                // Files alone (no payload_json) are a valid body for the upload routes.
                return Ok(json!({}));
            }
            let mut errors = FormErrors::default();
            errors.push(
                &[],
                crate::form_errors::FieldError::new("BASE_TYPE_REQUIRED", "This field is required"),
            );
            return Err(DiscordError::invalid_form_body(&errors));
        };
        let mut errors = match spec.request_schema(self.method, self.template, kind) {
            Some(schema) => spec.validator().validate(schema, &json),
            None => FormErrors::default(),
        };
        if errors.is_empty() {
            errors.extend(extra(&json));
        }
        if errors.is_empty() {
            Ok(json)
        } else {
            Err(DiscordError::invalid_form_body(&errors))
        }
    }

    /// A boolean query parameter (`True`, `true` or `1`, as the reference says).
    pub fn query_flag(&self, name: &str) -> bool {
        self.query.split('&').any(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            k == name && matches!(v, "True" | "true" | "1")
        })
    }
}

/// A snowflake from the path; Discord answers 404 for ids that are not numbers.
pub fn path_id(raw: &str) -> Result<u64, DiscordError> {
    raw.parse().map_err(|_| DiscordError::not_found())
}

/// Runs one REST request through the whole path. `resource` is the top-level resource (channel,
/// guild, webhook) the rate limit is counted for.
pub async fn handle(
    shared: &Shared,
    req: &HttpRequest,
    raw: Bytes,
    method: &'static str,
    template: &'static str,
    resource: String,
    logic: impl FnOnce(&mut World, &RestCall) -> Result<Reply, DiscordError>,
) -> HttpResponse {
    let now = Instant::now();
    let path = req.path().to_string();
    let query = req.query_string().trim_start_matches('&').to_string();
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let spec = ApiSpec::get();
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let authorised = shared.read(|w| match &presented {
        Some(value) => value.starts_with("Bot ") && w.config.token_matches(value),
        None => !spec.requires_auth(method, template),
    });
    let mut record = RequestRecord {
        seq: 0,
        at_ms: 0,
        method: method.to_string(),
        path: path.clone(),
        route: template.to_string(),
        status: 0,
        content_type,
        body: None,
        files: Vec::new(),
        error_code: None,
        form_errors: None,
        response_schema_errors: Vec::new(),
    };
    if !authorised {
        return shared.change(|w| {
            record.at_ms = w.ms(now);
            finish(
                w,
                record,
                method,
                template,
                Err(DiscordError::unauthorized()),
                None,
            )
        });
    }
    let decision = shared.change(|w| {
        w.rate_limits.decide(
            &LimitedRoute {
                method,
                template,
                resource: &resource,
                path: &path,
            },
            now,
        )
    });
    let headers = match decision {
        Decision::Limited(answer) => {
            return shared.change(|w| {
                record.at_ms = w.ms(now);
                record.status = 429;
                w.requests.push(record);
                rate_limited(&answer.headers, answer.retry_after, answer.global)
            });
        }
        Decision::Allowed(headers) => headers,
    };
    let body = request_body::read(req.headers(), raw).await;
    shared.change(|w| {
        record.at_ms = w.ms(now);
        let result = match body {
            Ok(body) => {
                record.body = body.json.clone();
                record.files = body
                    .files
                    .iter()
                    .map(|f| FileSummary {
                        field: f.field.clone(),
                        filename: f.filename.clone(),
                        size: f.data.len(),
                        content_type: f.content_type.clone(),
                    })
                    .collect();
                let call = RestCall {
                    method,
                    template,
                    path: path.clone(),
                    query: query.clone(),
                    body,
                    now,
                };
                logic(w, &call)
            }
            Err(error) => Err(error),
        };
        finish(w, record, method, template, result, Some(&headers))
    })
}

fn finish(
    world: &mut World,
    mut record: RequestRecord,
    method: &str,
    template: &str,
    result: Result<Reply, DiscordError>,
    headers: Option<&BucketHeaders>,
) -> HttpResponse {
    let (status, body) = match result {
        Ok(Reply::Json(status, body)) => (status, Some(body)),
        Ok(Reply::NoContent) => (StatusCode::NO_CONTENT, None),
        Err(error) => {
            record.error_code = Some(error.code);
            record.form_errors = error.errors.clone();
            (error.status, Some(error.body()))
        }
    };
    record.status = status.as_u16();
    if let Some(body) = &body {
        let spec = ApiSpec::get();
        if let Some(schema) = spec.response_schema(method, template, status.as_u16()) {
            record.response_schema_errors = spec
                .validator()
                .validate(schema, body)
                .flat()
                .into_iter()
                .map(|(path, code)| format!("{path}: {code}"))
                .collect();
        }
    }
    world.requests.push(record);
    let mut response = HttpResponse::build(status);
    if let Some(headers) = headers {
        bucket_headers(&mut response, headers);
    }
    match body {
        Some(body) => response
            .content_type("application/json")
            .body(body.to_string()),
        None => response.finish(),
    }
}

fn bucket_headers(response: &mut HttpResponseBuilder, headers: &BucketHeaders) {
    response
        .insert_header(("X-RateLimit-Limit", headers.limit.to_string()))
        .insert_header(("X-RateLimit-Remaining", headers.remaining.to_string()))
        .insert_header(("X-RateLimit-Reset", format!("{:.3}", headers.reset)))
        .insert_header((
            "X-RateLimit-Reset-After",
            format!("{:.3}", headers.reset_after),
        ))
        .insert_header(("X-RateLimit-Bucket", headers.bucket.clone()));
}

/// The 429 answer of the rate-limits documentation: `Retry-After` in whole seconds, the body
/// with `message`, `retry_after` and `global` (no `code`).
fn rate_limited(headers: &BucketHeaders, retry_after: f64, global: bool) -> HttpResponse {
    let mut response = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS);
    response.insert_header(("Retry-After", (retry_after.ceil() as u64).to_string()));
    if global {
        response
            .insert_header(("X-RateLimit-Global", "true"))
            .insert_header(("X-RateLimit-Scope", "global"));
    } else {
        bucket_headers(&mut response, headers);
        response.insert_header(("X-RateLimit-Scope", "user"));
    }
    response.content_type("application/json").body(
        json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global})
            .to_string(),
    )
}
