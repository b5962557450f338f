//! The server's in-memory state, shared by the HTTP handlers and the worker thread: the prompt
//! queue (pending + running), the history (oldest first, capped at 10 000 like ComfyUI), the
//! prompt counter and pending `/free` requests.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::config::FakeConfig;
use crate::files::Folders;
use crate::hub::Hub;
use crate::stop_signal::StopSignal;

/// ComfyUI's history cap.
pub const MAX_HISTORY: usize = 10_000;

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One queued prompt: `[number, prompt_id, prompt, extra_data, outputs_to_execute]`.
#[derive(Debug, Clone)]
pub struct QueueItem {
    pub number: Value,
    pub prompt_id: String,
    pub prompt: Value,
    pub extra_data: Map<String, Value>,
    pub outputs: Vec<String>,
    pub create_time: u64,
    /// Insertion order, to break ties between equal numbers.
    pub seq: u64,
}

impl QueueItem {
    /// The JSON list form used by /queue and history.
    pub fn to_json(&self) -> Value {
        json!([
            self.number,
            self.prompt_id,
            self.prompt,
            self.extra_data,
            self.outputs
        ])
    }

    /// The websocket client the prompt's events go to.
    pub fn client_id(&self) -> Option<String> {
        self.extra_data
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn sort_key(&self) -> (f64, u64) {
        (self.number.as_f64().unwrap_or(0.0), self.seq)
    }
}

/// How a finished prompt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failed,
    Cancelled,
}

/// A finished prompt.
#[derive(Debug, Clone)]
pub struct HistoryRecord {
    pub item: QueueItem,
    pub outputs: Map<String, Value>,
    pub messages: Vec<(String, Value)>,
    pub meta: Map<String, Value>,
    pub outcome: Outcome,
}

impl HistoryRecord {
    /// `status` of the history entry.
    pub fn status_json(&self) -> Value {
        let success = self.outcome == Outcome::Success;
        json!({
            "status_str": if success { "success" } else { "error" },
            "completed": success,
            "messages": self.messages.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        })
    }

    /// The history entry as GET /history shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "prompt": self.item.to_json(),
            "outputs": self.outputs,
            "status": self.status_json(),
            "meta": self.meta,
        })
    }

    fn message_time(&self, kinds: &[&str]) -> Option<u64> {
        self.messages
            .iter()
            .find(|(k, _)| kinds.contains(&k.as_str()))
            .and_then(|(_, v)| v.get("timestamp"))
            .and_then(Value::as_u64)
    }

    /// `execution_start`'s timestamp.
    pub fn start_time(&self) -> Option<u64> {
        self.message_time(&["execution_start"])
    }

    /// The final message's timestamp.
    pub fn end_time(&self) -> Option<u64> {
        self.message_time(&[
            "execution_success",
            "execution_error",
            "execution_interrupted",
        ])
    }

    /// The `execution_error` data, if the prompt failed.
    pub fn execution_error(&self) -> Option<&Value> {
        self.messages
            .iter()
            .find(|(k, _)| k == "execution_error")
            .map(|(_, v)| v)
    }
}

/// The prompt being executed.
#[derive(Debug, Clone)]
pub struct Running {
    pub item: QueueItem,
    /// Last node announced with `executing` (for the reconnect resync frame).
    pub last_node: Option<String>,
}

/// A pending POST /free.
#[derive(Debug, Clone, Copy, Default)]
pub struct FreeRequest {
    pub unload_models: bool,
    pub free_memory: bool,
}

/// Mutable state behind the lock.
#[derive(Debug, Default)]
pub struct ServerState {
    pub pending: Vec<QueueItem>,
    pub running: Option<Running>,
    pub history: VecDeque<HistoryRecord>,
    pub next_number: i64,
    pub next_seq: u64,
    pub free: Option<FreeRequest>,
    /// Set when the worker stopped for good (hang fault).
    pub worker_stuck: bool,
}

impl ServerState {
    /// `queue_remaining`: pending + running.
    pub fn queue_remaining(&self) -> usize {
        self.pending.len() + usize::from(self.running.is_some())
    }

    /// `{"exec_info": {"queue_remaining": N}}`.
    pub fn queue_info(&self) -> Value {
        json!({"exec_info": {"queue_remaining": self.queue_remaining()}})
    }

    /// Removes and returns the pending item with the lowest number.
    pub fn take_next(&mut self) -> Option<QueueItem> {
        let idx = self
            .pending
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| {
                a.sort_key()
                    .partial_cmp(&b.sort_key())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .map(|(i, _)| i)?;
        Some(self.pending.remove(idx))
    }

    /// Appends a finished prompt, dropping the oldest beyond the cap.
    pub fn push_history(&mut self, record: HistoryRecord) {
        self.history
            .retain(|r| r.item.prompt_id != record.item.prompt_id);
        self.history.push_back(record);
        while self.history.len() > MAX_HISTORY {
            self.history.pop_front();
        }
    }

    /// A history record by id.
    pub fn history_entry(&self, id: &str) -> Option<&HistoryRecord> {
        self.history.iter().find(|r| r.item.prompt_id == id)
    }
}

/// Everything the handlers and the worker share.
pub struct Shared {
    pub state: Mutex<ServerState>,
    /// Wakes the worker (new item, /free).
    pub wake: Condvar,
    /// ComfyUI's global interrupt flag.
    pub interrupt: AtomicBool,
    pub hub: Hub,
    pub config: FakeConfig,
    pub folders: Folders,
    /// Raised when an in-process server stops: the worker ends.
    pub stop: StopSignal,
}

impl Shared {
    /// Locks the state (a poisoned lock is recovered: the data stays usable).
    pub fn lock(&self) -> MutexGuard<'_, ServerState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops the worker: its pauses end, and it returns instead of taking the next prompt.
    pub fn stop_worker(&self) {
        // raised under the state lock, so the worker cannot miss it between its check and its wait
        let _state = self.lock();
        self.stop.raise();
        self.wake.notify_all();
    }

    /// Broadcasts `status` with the current queue size (call with the lock held for ordering).
    pub fn broadcast_status(&self, state: &ServerState) {
        self.hub
            .send_json("status", json!({"status": state.queue_info()}), None);
    }
}
