//! Discord's REST API v10, the few routes the bot uses, over reqwest (the HTTP client serenity
//! brings, with its TLS): JSON or multipart bodies, Discord's error answers typed, and rate limits
//! honoured here ([`RateLimitBook`]: a 429's `retry_after` waited out and retried, a bounded
//! number of times; empty buckets waited for). serenity's own `Http` cannot do this behind
//! `discord.api_proxy` (its rate limiter ignores the proxy) and never hands a 429's body over.
//!
//! URLs carry interaction tokens, so errors and logs name the route, never the URL.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use comfy_fleet_actors::discord::message::ChatFile;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use super::rate_limits::{LimitHeaders, RateLimitBook, refusal};

/// Discord's API base when no proxy is configured.
pub const DISCORD_BASE: &str = "https://discord.com";
/// 429s retried per request before giving up.
const MAX_RETRIES: u32 = 4;
/// Longest single wait a 429 may impose before the request is given up.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Interaction callbacks must land within 3 seconds: they wait at most this long.
const URGENT_MAX_WAIT: Duration = Duration::from_secs(2);
/// Longest time one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a REST call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestError {
    /// Discord answered with an error (`code` and `message` from its JSON, 0 when it had none).
    #[error("{route} answered {status} (code {code}): {message}{}", errors.as_ref().map(|e| format!(" {e}")).unwrap_or_default())]
    Status {
        route: &'static str,
        status: u16,
        code: i64,
        message: String,
        errors: Option<Value>,
    },
    /// Still rate-limited after the retries (or a wait longer than the bot accepts).
    #[error("{route} is rate-limited for {}", humantime::format_duration(*retry_after))]
    RateLimited {
        route: &'static str,
        retry_after: Duration,
    },
    #[error("{route} could not be reached: {reason}")]
    Transport { route: &'static str, reason: String },
    #[error("{route} answered something unreadable: {reason}")]
    Decode { route: &'static str, reason: String },
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    /// `payload_json` plus `files[n]` parts.
    Multipart {
        payload: Value,
        files: Vec<ChatFile>,
    },
}

/// One request: where, what, and which bucket it counts against.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The path under `/api/v10` (with ids and tokens filled in).
    pub path: String,
    /// The route template, for errors and logs (no token).
    pub route: &'static str,
    /// The bucket: method, route and major parameter.
    pub bucket: String,
    pub body: Body,
    /// An interaction callback: due within Discord's 3 seconds.
    pub urgent: bool,
}

/// The REST client.
pub struct DiscordRest {
    http: reqwest::Client,
    api: String,
    authorization: String,
    limits: RefCell<RateLimitBook>,
}

impl DiscordRest {
    /// A client of `base` (`https://discord.com`, or the proxy) with the bot's token.
    pub fn new(http: reqwest::Client, base: &str, token: &str) -> Self {
        let token = token.trim();
        let authorization = if token.starts_with("Bot ") {
            token.to_string()
        } else {
            format!("Bot {token}")
        };
        Self {
            http,
            api: format!("{}/api/v10", base.trim_end_matches('/')),
            authorization,
            limits: RefCell::new(RateLimitBook::default()),
        }
    }

    /// Sends a request, waiting out rate limits; the answer's JSON (`None` for 204).
    pub async fn send(&self, request: Request) -> Result<Option<Value>, RestError> {
        let route = request.route;
        let mut attempt = 0;
        loop {
            let wait = self
                .limits
                .borrow()
                .wait_before(&request.bucket, Instant::now());
            if let Some(wait) = wait {
                if request.urgent && wait > URGENT_MAX_WAIT {
                    return Err(RestError::RateLimited {
                        route,
                        retry_after: wait,
                    });
                }
                tokio::time::sleep(wait).await;
            }
            let response = self
                .build(&request)
                .map_err(|reason| RestError::Transport { route, reason })?
                .send()
                .await
                .map_err(|e| RestError::Transport {
                    route,
                    reason: e.without_url().to_string(),
                })?;
            let status = response.status().as_u16();
            let headers = LimitHeaders::read(|name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            });
            let body = response.bytes().await.map_err(|e| RestError::Transport {
                route,
                reason: e.without_url().to_string(),
            })?;
            let now = Instant::now();
            if status == 429 {
                let refused = refusal(&headers, &body);
                let wait = self
                    .limits
                    .borrow_mut()
                    .refused(&request.bucket, refused, now);
                attempt += 1;
                let limit = if request.urgent {
                    URGENT_MAX_WAIT
                } else {
                    MAX_WAIT
                };
                if attempt > MAX_RETRIES || wait > limit {
                    return Err(RestError::RateLimited {
                        route,
                        retry_after: wait,
                    });
                }
                tracing::info!(
                    target: "fleet.discord",
                    route,
                    retry_after = %humantime::format_duration(wait),
                    global = refused.global,
                    "Discord rate-limited a request; retrying after the wait it asked for"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            self.limits
                .borrow_mut()
                .record(&request.bucket, &headers, now);
            if (200..300).contains(&status) {
                if body.is_empty() {
                    return Ok(None);
                }
                return serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| RestError::Decode {
                        route,
                        reason: e.to_string(),
                    });
            }
            let error: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            return Err(RestError::Status {
                route,
                status,
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect()),
                errors: error.get("errors").cloned(),
            });
        }
    }

    fn build(&self, request: &Request) -> Result<reqwest::RequestBuilder, String> {
        let builder = self
            .http
            .request(
                request.method.clone(),
                format!("{}{}", self.api, request.path),
            )
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(
                reqwest::header::USER_AGENT,
                concat!(
                    "DiscordBot (https://github.com/comfy-fleet, ",
                    env!("CARGO_PKG_VERSION"),
                    ")"
                ),
            )
            .timeout(REQUEST_TIMEOUT);
        Ok(match &request.body {
            Body::None => builder,
            Body::Json(value) => builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(value.to_string()),
            Body::Multipart { payload, files } => {
                let mut form = Form::new().part(
                    "payload_json",
                    Part::text(payload.to_string())
                        .mime_str("application/json")
                        .map_err(|e| e.to_string())?,
                );
                for (i, file) in files.iter().enumerate() {
                    let mime = mime_guess::from_path(&file.name).first_or_octet_stream();
                    let part = Part::bytes(Arc::clone(&file.bytes).to_vec())
                        .file_name(file.name.clone())
                        .mime_str(mime.essence_str())
                        .map_err(|e| e.to_string())?;
                    form = form.part(format!("files[{i}]"), part);
                }
                builder.multipart(form)
            }
        })
    }
}
