//! A typed client of the control API (`/_fake/...`) so tests never write its JSON by hand. Its
//! `wait_for_*` helpers wait on the fake's change notifications (a long poll that returns when
//! something changed), never on sleeps. It uses awc, so call it inside an actix system (e.g.
//! `#[actix_rt::test]`).

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::control_types::{
    ChangeVersion, CommandsView, ComponentClick, ControlError, GatewayView, Injected,
    InteractionView, MessageView, SlashCommand,
};
use crate::rate_limits::{ArmRateLimit, RateLimitedRequest};
use crate::request_log::RequestRecord;

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlClientError {
    #[error("request to {url} failed: {message}")]
    Request { url: String, message: String },
    #[error("{url} answered {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the answer of {url} could not be read: {message}")]
    Decode { url: String, message: String },
    #[error("gave up after {waited:?} waiting for {what}; the last state seen was: {last}")]
    Timeout {
        what: String,
        waited: Duration,
        last: String,
    },
}

/// A client of one fake's control API.
#[derive(Debug, Clone)]
pub struct ControlClient {
    base: String,
    wait_limit: Duration,
}

impl ControlClient {
    /// A client of the fake at `base_url` (`http://127.0.0.1:PORT`).
    pub fn new(base_url: &str) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            wait_limit: Duration::from_secs(30),
        }
    }

    /// How long `wait_for_*` keep waiting before they give up (default 30 s).
    pub fn with_wait_limit(mut self, limit: Duration) -> Self {
        self.wait_limit = limit;
        self
    }

    fn http() -> awc::Client {
        awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish()
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: awc::http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Option<T>, ControlClientError> {
        let url = format!("{}{path}", self.base);
        let request = Self::http().request(method, &url);
        let sent = match body {
            Some(body) => {
                request
                    .content_type("application/json")
                    .send_body(body)
                    .await
            }
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| ControlClientError::Request {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let status = response.status();
        let bytes = response
            .body()
            .limit(256 * 1024 * 1024)
            .await
            .map_err(|e| ControlClientError::Request {
                url: url.clone(),
                message: e.to_string(),
            })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ControlError>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ControlClientError::Refused {
                url,
                status: status.as_u16(),
                message,
            });
        }
        if status == awc::http::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ControlClientError::Decode {
                url,
                message: e.to_string(),
            })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ControlClientError> {
        self.call(awc::http::Method::GET, path, None)
            .await?
            .ok_or_else(|| ControlClientError::Decode {
                url: format!("{}{path}", self.base),
                message: "empty answer".into(),
            })
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Option<T>, ControlClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ControlClientError::Request {
            url: format!("{}{path}", self.base),
            message: format!("cannot encode the body: {e}"),
        })?;
        self.call(awc::http::Method::POST, path, Some(bytes)).await
    }

    async fn post_expecting<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ControlClientError> {
        self.post(path, body)
            .await?
            .ok_or_else(|| ControlClientError::Decode {
                url: format!("{}{path}", self.base),
                message: "empty answer".into(),
            })
    }

    /// A user runs a slash command; the fake dispatches INTERACTION_CREATE.
    pub async fn inject_command(
        &self,
        command: &SlashCommand,
    ) -> Result<Injected, ControlClientError> {
        self.post_expecting("/_fake/interactions/commands", command)
            .await
    }

    /// A user types into an option with autocomplete (mark it with `SlashCommand::focused`).
    pub async fn inject_autocomplete(
        &self,
        command: &SlashCommand,
    ) -> Result<Injected, ControlClientError> {
        self.post_expecting("/_fake/interactions/autocomplete", command)
            .await
    }

    /// A user clicks a component of one of the bot's messages.
    pub async fn click(&self, click: &ComponentClick) -> Result<Injected, ControlClientError> {
        self.post_expecting("/_fake/interactions/components", click)
            .await
    }

    pub async fn interaction(&self, id: &str) -> Result<InteractionView, ControlClientError> {
        self.get(&format!("/_fake/interactions/{id}")).await
    }

    /// Ends an interaction token's life now (instead of waiting 15 minutes).
    pub async fn expire_token(&self, id: &str) -> Result<(), ControlClientError> {
        self.post::<_, serde_json::Value>(&format!("/_fake/interactions/{id}/expire"), &())
            .await
            .map(|_| ())
    }

    pub async fn channel_messages(
        &self,
        channel_id: u64,
    ) -> Result<Vec<MessageView>, ControlClientError> {
        self.get(&format!("/_fake/channels/{channel_id}/messages"))
            .await
    }

    pub async fn commands(&self) -> Result<CommandsView, ControlClientError> {
        self.get("/_fake/commands").await
    }

    pub async fn requests(&self) -> Result<Vec<RequestRecord>, ControlClientError> {
        self.get("/_fake/requests").await
    }

    /// Arms 429 answers for the next `arm.count` matching requests.
    pub async fn arm_rate_limit(&self, arm: &ArmRateLimit) -> Result<(), ControlClientError> {
        self.post::<_, serde_json::Value>("/_fake/rate-limits", arm)
            .await
            .map(|_| ())
    }

    /// Every 429 answered, with what the client did next.
    pub async fn rate_limited(&self) -> Result<Vec<RateLimitedRequest>, ControlClientError> {
        self.get("/_fake/rate-limits").await
    }

    pub async fn gateway(&self) -> Result<GatewayView, ControlClientError> {
        self.get("/_fake/gateway").await
    }

    /// Drops the current session's socket without a close frame (the session stays resumable).
    pub async fn drop_gateway(&self) -> Result<(), ControlClientError> {
        self.post::<_, serde_json::Value>("/_fake/gateway/drop", &())
            .await
            .map(|_| ())
    }

    /// Sends RECONNECT (op 7) on the current session's socket.
    pub async fn request_reconnect(&self) -> Result<(), ControlClientError> {
        self.post::<_, serde_json::Value>("/_fake/gateway/reconnect", &())
            .await
            .map(|_| ())
    }

    /// Sends INVALID_SESSION (op 9); unless `resumable`, the session ends.
    pub async fn invalidate_session(&self, resumable: bool) -> Result<(), ControlClientError> {
        self.post::<_, serde_json::Value>(
            &format!("/_fake/gateway/invalidate?resumable={resumable}"),
            &(),
        )
        .await
        .map(|_| ())
    }

    /// Downloads a file from the fake's CDN (an attachment's `url`).
    pub async fn download(&self, url: &str) -> Result<Vec<u8>, ControlClientError> {
        let mut response =
            Self::http()
                .get(url)
                .send()
                .await
                .map_err(|e| ControlClientError::Request {
                    url: url.to_string(),
                    message: e.to_string(),
                })?;
        if !response.status().is_success() {
            return Err(ControlClientError::Refused {
                url: url.to_string(),
                status: response.status().as_u16(),
                message: "no such file on the fake CDN".into(),
            });
        }
        response
            .body()
            .limit(256 * 1024 * 1024)
            .await
            .map(|b| b.to_vec())
            .map_err(|e| ControlClientError::Request {
                url: url.to_string(),
                message: e.to_string(),
            })
    }

    /// The fake's change counter.
    pub async fn version(&self) -> Result<u64, ControlClientError> {
        self.get::<ChangeVersion>("/_fake/changes?after=0&timeout_ms=0")
            .await
            .map(|c| c.version)
    }

    /// Waits until the change counter passes `after` (or `timeout`); returns the counter.
    pub async fn wait_change(
        &self,
        after: u64,
        timeout: Duration,
    ) -> Result<u64, ControlClientError> {
        let ms = timeout.as_millis();
        self.get::<ChangeVersion>(&format!("/_fake/changes?after={after}&timeout_ms={ms}"))
            .await
            .map(|c| c.version)
    }

    /// Fetches with `fetch` until `done` holds, waking on every change of the fake.
    pub async fn wait_until<T, F, Fut>(
        &self,
        what: &str,
        mut fetch: F,
        done: impl Fn(&T) -> bool,
    ) -> Result<T, ControlClientError>
    where
        T: std::fmt::Debug,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ControlClientError>>,
    {
        let deadline = tokio::time::Instant::now() + self.wait_limit;
        loop {
            let version = self.version().await?;
            let value = fetch().await?;
            if done(&value) {
                return Ok(value);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let mut last = format!("{value:?}");
                if last.len() > 2000 {
                    last.truncate(2000);
                    last.push('…');
                }
                return Err(ControlClientError::Timeout {
                    what: what.to_string(),
                    waited: self.wait_limit,
                    last,
                });
            }
            self.wait_change(version, deadline - now).await?;
        }
    }

    /// Waits until the interaction satisfies `done`.
    pub async fn wait_for_interaction(
        &self,
        id: &str,
        done: impl Fn(&InteractionView) -> bool,
    ) -> Result<InteractionView, ControlClientError> {
        self.wait_until(&format!("interaction {id}"), || self.interaction(id), done)
            .await
    }

    /// Waits until the gateway state satisfies `done`.
    pub async fn wait_for_gateway(
        &self,
        done: impl Fn(&GatewayView) -> bool,
    ) -> Result<GatewayView, ControlClientError> {
        self.wait_until("the gateway", || self.gateway(), done)
            .await
    }

    /// Waits until the request log satisfies `done`.
    pub async fn wait_for_requests(
        &self,
        done: impl Fn(&Vec<RequestRecord>) -> bool,
    ) -> Result<Vec<RequestRecord>, ControlClientError> {
        self.wait_until("the request log", || self.requests(), done)
            .await
    }

    /// Waits until the registered commands satisfy `done`.
    pub async fn wait_for_commands(
        &self,
        done: impl Fn(&CommandsView) -> bool,
    ) -> Result<CommandsView, ControlClientError> {
        self.wait_until("the registered commands", || self.commands(), done)
            .await
    }

    /// Waits until a channel's messages satisfy `done`.
    pub async fn wait_for_channel_messages(
        &self,
        channel_id: u64,
        done: impl Fn(&Vec<MessageView>) -> bool,
    ) -> Result<Vec<MessageView>, ControlClientError> {
        self.wait_until(
            &format!("messages of channel {channel_id}"),
            || self.channel_messages(channel_id),
            done,
        )
        .await
    }

    /// Waits until the 429 records satisfy `done`.
    pub async fn wait_for_rate_limited(
        &self,
        done: impl Fn(&Vec<RateLimitedRequest>) -> bool,
    ) -> Result<Vec<RateLimitedRequest>, ControlClientError> {
        self.wait_until("the rate-limited requests", || self.rate_limited(), done)
            .await
    }
}
