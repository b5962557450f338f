//! [`ComfyClient::run_prompt`]: runs one prompt to its end and reconciles its outputs.
//!
//! 1. Open `/ws?clientId=<fresh id>` and wait for the server's first frame (registered).
//! 2. `POST /prompt` with our own `prompt_id` and that `client_id`. A 200 that carries
//!    `node_errors` is a rejection: the valid part that was queued is removed/interrupted.
//! 3. Follow the websocket ([`PromptTracker`]) and hand every event about the prompt to the
//!    caller, until `executing{node:null}` (or an error / interrupt message).
//! 4. Read the outputs from `/history/{id}` — never from the websocket alone.
//!
//! If the websocket drops, the client reconnects with the same client id and checks
//! `/history` and `/queue`; while the socket cannot be reopened it polls them. Connection
//! refused (the process died) ends the run with [`ComfyError::Disconnected`]. A prompt removed
//! from the queue before it started ends with [`ComfyError::Dequeued`]. With
//! [`RunOptions::silence_timeout`], a websocket silent for that long ends it with
//! [`ComfyError::Silent`]; without it, dropping the future is the way to stop waiting.
//!
//! Each run uses its own client id (ComfyUI sends a prompt's events only to the socket of the
//! prompt's `client_id`, and a second socket with the same id replaces the first), so several
//! prompts can run concurrently on one [`ComfyClient`].

use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use super::client::ComfyClient;
use super::error::{ComfyError, ExecutionFailure, PromptRejection};
use super::events::{ServerEvent, WsMessage};
use super::prompt_tracker::{PromptTracker, Relevance};
use super::protocol::{ApiError, FileRef, HistoryEnding, HistoryEntry, PromptRequest};
use super::websocket::EventSocket;

/// How to run one prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// Give up with [`ComfyError::Silent`] when the websocket sends nothing for this long.
    /// `None` waits as long as the server stays reachable. Any frame counts as a sign of life
    /// (queue `status` too), and a prompt waiting behind a long one receives few frames: set
    /// it above the longest expected node plus queue wait, or use it on an instance that runs
    /// one prompt at a time.
    pub silence_timeout: Option<Duration>,
    /// The websocket client id; `None` makes a fresh one for this run (recommended).
    pub client_id: Option<String>,
}

/// How a prompt ended well, reconciled from `/history`.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptOutcome {
    pub prompt_id: String,
    /// Files by output node, in node order.
    pub files: Vec<(String, FileRef)>,
    /// Text outputs by node.
    pub texts: Vec<(String, Vec<String>)>,
    /// Nodes served from ComfyUI's cache.
    pub cached_nodes: Vec<String>,
    /// Whether the websocket dropped during the run (the outcome then came from resync).
    pub resynced: bool,
    /// The full history entry.
    pub history: HistoryEntry,
}

/// What a resync found.
enum Resync {
    /// The prompt is in history: stop following.
    Finished,
    /// The socket is back and the prompt still queued or running: keep following.
    Reconnected(Box<EventSocket>),
}

impl ComfyClient {
    /// Runs one API-format prompt to its end (see the module documentation). `on_event`
    /// receives every websocket event about the prompt (plus queue status and connection
    /// notices), binary previews included.
    pub async fn run_prompt(
        &self,
        prompt_id: Uuid,
        prompt: &Value,
        extra_data: Option<&Value>,
        options: &RunOptions,
        mut on_event: impl FnMut(&ServerEvent),
    ) -> Result<PromptOutcome, ComfyError> {
        let pid = prompt_id.as_hyphenated().to_string();
        let client_id = options
            .client_id
            .clone()
            .unwrap_or_else(|| Uuid::new_v4().simple().to_string());

        let mut socket = self.connect_events(&client_id).await?;
        let response = self
            .submit(&PromptRequest {
                prompt: prompt.clone(),
                client_id: Some(client_id.clone()),
                prompt_id: Some(pid.clone()),
                extra_data: extra_data.cloned(),
                front: None,
                number: None,
            })
            .await?;
        if !response.node_errors.is_empty() {
            // Only the valid outputs were queued: take them back, the workflow is broken. The
            // rejection is what the caller needs to hear, even if the withdrawal fails.
            if let Err(e) = self.withdraw(&pid).await {
                tracing::warn!(prompt_id = %pid, error = %e, "cannot withdraw a partly rejected prompt");
            }
            return Err(ComfyError::Rejected(Box::new(PromptRejection {
                status: 200,
                error: ApiError {
                    kind: "prompt_outputs_failed_validation".into(),
                    message: "Prompt outputs failed validation".into(),
                    ..ApiError::default()
                },
                node_errors: response.node_errors,
            })));
        }

        let mut tracker = PromptTracker::new(pid.clone());
        let mut resynced = false;
        while !tracker.finished() {
            let next = match options.silence_timeout {
                None => socket.next_event().await,
                Some(limit) => actix_rt::time::timeout(limit, socket.next_event())
                    .await
                    .map_err(|_| ComfyError::Silent {
                        url: self.url().to_owned(),
                        silent_for: limit,
                    })?,
            };
            let lost = match next {
                Ok(event) => {
                    let relevance = tracker.observe(&event);
                    if relevance == Relevance::Other {
                        continue;
                    }
                    on_event(&event);
                    let is_status = matches!(event, ServerEvent::Message(WsMessage::Status(_)));
                    if !is_status || tracker.started() {
                        continue;
                    }
                    // Still waiting: make sure the prompt was not dropped from the queue.
                    match self.vanished(&pid).await {
                        Ok(true) => return Err(ComfyError::Dequeued { prompt_id: pid }),
                        Ok(false) => continue,
                        // The server went away while we asked: the same as a dropped socket.
                        Err(
                            e @ (ComfyError::Unreachable { .. } | ComfyError::Disconnected { .. }),
                        ) => e.to_string(),
                        Err(e) => return Err(e),
                    }
                }
                Err(reason) => reason,
            };
            resynced = true;
            on_event(&ServerEvent::ConnectionLost { reason: lost });
            match self.resync(&pid, &client_id).await? {
                Resync::Finished => break,
                Resync::Reconnected(s) => {
                    socket = *s;
                    on_event(&ServerEvent::Reconnected);
                }
            }
        }
        self.reconcile(&tracker, resynced).await
    }

    /// Removes a prompt wherever it is: out of the queue if pending, interrupted if running.
    /// Deleting first leaves no gap: a prompt that starts after the delete is interrupted.
    pub async fn withdraw(&self, prompt_id: &str) -> Result<(), ComfyError> {
        self.delete_from_queue(&[prompt_id.to_owned()]).await?;
        self.interrupt(Some(prompt_id)).await
    }

    /// After the websocket dropped: reconnect, then look at history and queue, until the
    /// prompt is found finished, the socket is back, or the server is gone.
    async fn resync(&self, pid: &str, client_id: &str) -> Result<Resync, ComfyError> {
        // Requests broken mid-way (pooled connections cut with the socket) are retried a few
        // times; a refused connection means the process is gone and ends the run at once.
        const BROKEN_REQUESTS_TOLERATED: u32 = 3;
        let mut broken = 0;
        loop {
            match self.resync_once(pid, client_id).await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(ComfyError::Unreachable { url, reason }) => {
                    return Err(ComfyError::Disconnected { url, reason });
                }
                Err(ComfyError::Disconnected { .. }) if broken < BROKEN_REQUESTS_TOLERATED => {
                    broken += 1;
                }
                Err(e) => return Err(e),
            }
            actix_rt::time::sleep(self.config().poll_interval).await;
        }
    }

    /// One resync round; `Ok(None)`: still running but the socket is not back yet.
    async fn resync_once(&self, pid: &str, client_id: &str) -> Result<Option<Resync>, ComfyError> {
        // Reconnect first, so no frame sent after the history check is missed.
        let socket = match self.connect_events(client_id).await {
            Ok(s) => Some(s),
            Err(e @ ComfyError::Unreachable { .. }) => return Err(e),
            Err(_) => None,
        };
        if self.history(pid).await?.is_some() {
            return Ok(Some(Resync::Finished));
        }
        let queue = self.queue().await?;
        if !queue.is_running(pid) && !queue.is_pending(pid) {
            // It may have finished between the two reads.
            if self.history(pid).await?.is_some() {
                return Ok(Some(Resync::Finished));
            }
            return Err(ComfyError::Lost {
                url: self.url().to_owned(),
                prompt_id: pid.to_owned(),
            });
        }
        Ok(socket.map(|s| Resync::Reconnected(Box::new(s))))
    }

    /// Whether a prompt that has not started is neither queued nor in history (removed).
    async fn vanished(&self, pid: &str) -> Result<bool, ComfyError> {
        // Two rounds: a prompt moving between queue and history is seen in one of them.
        for _ in 0..2 {
            let queue = self.queue().await?;
            if queue.is_pending(pid) || queue.is_running(pid) {
                return Ok(false);
            }
            if self.history(pid).await?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Turns the end of a prompt into its outcome, from `/history`.
    async fn reconcile(
        &self,
        tracker: &PromptTracker,
        resynced: bool,
    ) -> Result<PromptOutcome, ComfyError> {
        let pid = tracker.prompt_id();
        if let Some(e) = tracker.error() {
            return Err(ComfyError::Execution(Box::new(failure(e))));
        }
        if let Some(i) = tracker.interrupted() {
            return Err(ComfyError::Interrupted {
                node: i.node_id.clone(),
            });
        }
        // History is written before `executing{node:null}`; after a resync or an early finish
        // signal, give the server a moment (bounded by the request timeout).
        let deadline = Instant::now() + self.config().request_timeout;
        let history = loop {
            if let Some(entry) = self.history(pid).await? {
                break entry;
            }
            if Instant::now() >= deadline {
                return Err(ComfyError::Protocol {
                    route: format!("/history/{pid}"),
                    reason: "the prompt finished but its history entry never appeared".into(),
                });
            }
            actix_rt::time::sleep(self.config().poll_interval).await;
        };
        match history.ending() {
            HistoryEnding::Error(e) => return Err(ComfyError::Execution(Box::new(failure(&e)))),
            HistoryEnding::Interrupted => return Err(ComfyError::Interrupted { node: None }),
            HistoryEnding::Success => {}
            HistoryEnding::Unknown => {
                let ok = history
                    .status
                    .as_ref()
                    .is_some_and(|s| s.completed || s.status_str == "success");
                if !ok && !tracker.succeeded() {
                    return Err(ComfyError::Protocol {
                        route: format!("/history/{pid}"),
                        reason: "the history entry says neither success nor error".into(),
                    });
                }
            }
        }
        let mut cached_nodes = tracker.cached_nodes().to_vec();
        if cached_nodes.is_empty() {
            cached_nodes = cached_from_history(&history);
        }
        Ok(PromptOutcome {
            prompt_id: pid.to_owned(),
            files: history.files(),
            texts: history.texts(),
            cached_nodes,
            resynced,
            history,
        })
    }
}

fn failure(e: &super::events::ExecutionErrorData) -> ExecutionFailure {
    ExecutionFailure {
        prompt_id: e.prompt_id.clone(),
        node_id: e.node_id.clone(),
        node_type: e.node_type.clone(),
        exception_type: e.exception_type.clone(),
        exception_message: e.exception_message.clone(),
        traceback: e.traceback.clone(),
    }
}

/// The cached nodes recorded in history (`execution_cached` in `status.messages`).
fn cached_from_history(history: &HistoryEntry) -> Vec<String> {
    history
        .status
        .iter()
        .flat_map(|s| s.messages.iter())
        .filter(|(kind, _)| kind == "execution_cached")
        .filter_map(|(_, data)| data.get("nodes").and_then(Value::as_array))
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect()
}
