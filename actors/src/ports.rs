//! The ports: the few traits through which actors reach the world.
//!
//! `comfy-fleet` implements them with real adapters (awc for [`Backend`], child processes for
//! [`Launcher`], NVML for [`GpuProbe`], Discord's REST API for [`Chat`] and the running fleet
//! for [`FleetPort`] (the Discord session's two ports), a shared board for
//! [`PhaseObserver`]); tests implement them with the fake ComfyUI process or small in-memory
//! fakes. Futures are local (`!Send`): actix actors and
//! awc clients live on one arbiter thread each.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{GpuId, InstanceId, JobId};
use crate::job::JobOutput;
use crate::messages::InstanceUpdate;

// ---------------------------------------------------------------------------------------------
// Backend: one ComfyUI server's API
// ---------------------------------------------------------------------------------------------

/// One prompt to run on a backend.
#[derive(Debug, Clone)]
pub struct PromptRun {
    /// The fleet job this prompt is an attempt of (`None` for the warm-up prompt): adapters
    /// file what the run leaves behind (its output files) under it.
    pub job: Option<JobId>,
    /// Our own id, sent as ComfyUI's `prompt_id` (canonical lower-case UUID).
    pub prompt_id: Uuid,
    /// The API-format prompt (`{node_id: {class_type, inputs}}`).
    pub prompt: serde_json::Value,
    /// Kept verbatim by ComfyUI in its queue and history (`extra_data`).
    pub extra_data: serde_json::Value,
}

/// One input file to upload before a prompt runs (ComfyUI's `/upload/image`).
#[derive(Debug, Clone)]
pub struct InputFile {
    /// The name a `LoadImage` node will refer to (no path separators).
    pub name: String,
    /// Sub-folder of the input directory; empty for none.
    pub subfolder: String,
    pub bytes: Arc<[u8]>,
    /// Replace a file of the same name instead of letting ComfyUI rename the upload.
    pub overwrite: bool,
}

/// What ComfyUI says while a prompt runs, reduced to what the fleet uses.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionEvent {
    /// `execution_start`.
    Started,
    /// `execution_cached`: these nodes were served from ComfyUI's cache.
    Cached { nodes: Vec<String> },
    /// `executing` with a node id.
    Executing { node: String },
    /// `progress`.
    Progress { node: String, value: u64, max: u64 },
    /// Binary preview frame: image bytes and their MIME type.
    Preview { mime: String, bytes: Vec<u8> },
    /// `executed` for an output node.
    Executed {
        node: String,
        outputs: Vec<JobOutput>,
    },
}

/// Receives execution events as they arrive.
pub type EventSink = Box<dyn FnMut(ExecutionEvent)>;

/// How a prompt ended well.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunResult {
    /// Files, reconciled from `/history` (never only from the websocket).
    pub outputs: Vec<JobOutput>,
    /// Text outputs (`{"text": [...]}`) by node id.
    pub texts: Vec<(String, Vec<String>)>,
    /// Node ids ComfyUI served from its cache.
    pub cached_nodes: Vec<String>,
}

/// Where a prompt stands, asked without the websocket (used by the watchdog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Neither queued nor in history: the server lost it (restart, queue cleared).
    Unknown,
}

/// One input of one node that ComfyUI refused, in its own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeError {
    pub node_id: String,
    pub class_type: String,
    /// ComfyUI's error type, e.g. `value_bigger_than_max`.
    pub kind: String,
    pub message: String,
    pub details: String,
    /// The input concerned, when ComfyUI names one (`extra_info.input_name`).
    pub input: Option<String>,
}

/// `node 4 (LoadImage), input `image`: Custom validation failed for node: image - Invalid…`:
/// the one wording of a refused node input, for the connector's and the actors' errors.
impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {}", self.node_id)?;
        if !self.class_type.is_empty() {
            write!(f, " ({})", self.class_type)?;
        }
        if let Some(input) = &self.input {
            write!(f, ", input `{input}`")?;
        }
        write!(f, ": {}", self.message)?;
        // `details` often only repeats the input name; say it once.
        if !self.details.is_empty() && Some(&self.details) != self.input.as_ref() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

/// Why a backend call failed. [`BackendError::is_retriable`] says whether another instance
/// might succeed where this one failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error("ComfyUI at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("ComfyUI answered HTTP {status} to {route}: {body}")]
    Http {
        route: String,
        status: u16,
        body: String,
    },
    #[error("ComfyUI rejected the workflow: {message}{}", describe_node_errors(.node_errors))]
    Rejected {
        kind: String,
        message: String,
        node_errors: Vec<NodeError>,
    },
    #[error("node {node_id} ({node_type}) failed: {exception_type}: {message}")]
    Execution {
        node_id: String,
        node_type: String,
        exception_type: String,
        message: String,
    },
    #[error("the prompt was interrupted")]
    Interrupted,
    #[error("ComfyUI sent nothing for {}", crate::duration_text::rounded(*.silent_for))]
    Silent { silent_for: Duration },
    #[error("the ComfyUI connection broke: {0}")]
    Disconnected(String),
    #[error("unexpected answer from ComfyUI: {0}")]
    Protocol(String),
}

impl BackendError {
    /// Whether the job may succeed on another instance (the server, not the job, was at fault).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Silent { .. } | Self::Disconnected(_) => true,
            Self::Http { status, .. } => *status >= 500,
            Self::Rejected { .. }
            | Self::Execution { .. }
            | Self::Interrupted
            | Self::Protocol(_) => false,
        }
    }
}

/// Node errors as indented lines, one per refused input, each starting with a newline.
pub fn describe_node_errors(errors: &[NodeError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}

/// One ComfyUI server's API, as the instance actor uses it.
pub trait Backend {
    /// The server's base URL, for logs and status.
    fn url(&self) -> &str;
    /// Whether the server answers (`GET /system_stats`).
    fn ping(&self) -> LocalBoxFuture<'_, Result<(), BackendError>>;
    /// Loads `GET /object_info` and returns how many node classes the server knows; the
    /// instance uses it as a readiness check, so adapters need not keep the document.
    fn object_info(&self) -> LocalBoxFuture<'_, Result<usize, BackendError>>;
    /// Uploads an input image; returns the name to put in `LoadImage` (`sub/name.png`).
    fn upload(&self, input: InputFile) -> LocalBoxFuture<'_, Result<String, BackendError>>;
    /// The attempt of `job` that uploaded `inputs` has ended (however it ended): its uploads
    /// are no longer needed. Adapters that can reach the server's files delete them.
    fn release_inputs(&self, _job: JobId, _inputs: &[InputFile]) {}
    /// Runs one prompt to its end: opens the websocket before submitting, submits with
    /// `prompt_id`, streams events into `sink`, and reconciles outputs from `/history`.
    fn run(
        &self,
        run: PromptRun,
        sink: EventSink,
    ) -> LocalBoxFuture<'_, Result<RunResult, BackendError>>;
    /// Where a prompt stands according to `/queue` and `/history`.
    fn prompt_status(
        &self,
        prompt_id: Uuid,
    ) -> LocalBoxFuture<'_, Result<PromptStatus, BackendError>>;
    /// Interrupts `prompt_id` if it is the one running, and removes it if it is pending.
    fn cancel(&self, prompt_id: Uuid) -> LocalBoxFuture<'_, Result<(), BackendError>>;
    /// `POST /free`.
    fn free(
        &self,
        unload_models: bool,
        free_memory: bool,
    ) -> LocalBoxFuture<'_, Result<(), BackendError>>;
    /// Downloads one output file (`GET /view`).
    fn download(&self, output: &JobOutput) -> LocalBoxFuture<'_, Result<Vec<u8>, BackendError>>;
}

// ---------------------------------------------------------------------------------------------
// Launcher: start and stop one ComfyUI process
// ---------------------------------------------------------------------------------------------

/// Everything needed to start one managed ComfyUI process.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub instance: InstanceId,
    /// Program and leading arguments, e.g. `["python", "main.py"]` or `["fake-comfyui"]`.
    pub command: Vec<String>,
    /// Working directory of the process (the ComfyUI checkout).
    pub working_dir: Option<PathBuf>,
    /// Extra arguments appended after the ones the launcher computes.
    pub extra_args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The GPU to pin to with `CUDA_VISIBLE_DEVICES`; `None` runs with `--cpu`.
    pub gpu: Option<GpuId>,
    /// Address to listen on (`127.0.0.1` unless the operator says otherwise).
    pub listen: String,
    /// Port to listen on; 0 lets the launcher pick a free one by binding.
    pub port: u16,
    /// The instance's own folder: `input/`, `output/`, `temp/`, `user/` and `comfyui.db` go here.
    pub state_dir: PathBuf,
}

/// Where and how the process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(sig)) => write!(f, "signal {sig}"),
            (None, None) => f.write_str("unknown exit"),
        }
    }
}

/// Stops a launched process group: SIGTERM, `grace`, then SIGKILL. Idempotent.
pub trait ProcessStopper {
    fn stop(&self, grace: Duration) -> LocalBoxFuture<'static, ()>;
}

/// A running process as the launcher hands it over.
pub struct Launched {
    pub pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub port: u16,
    /// Resolves once the process has exited, for any reason.
    pub exited: LocalBoxFuture<'static, ExitInfo>,
    pub stopper: Box<dyn ProcessStopper>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot start `{command}` for instance {instance}: {reason}")]
    Spawn {
        instance: InstanceId,
        command: String,
        reason: String,
    },
    #[error("cannot prepare the folders of instance {instance}: {reason}")]
    Folders {
        instance: InstanceId,
        reason: String,
    },
    #[error("no free port for instance {instance}: {reason}")]
    Port {
        instance: InstanceId,
        reason: String,
    },
}

/// Starts managed ComfyUI processes.
pub trait Launcher {
    fn launch(&self, spec: LaunchSpec) -> LocalBoxFuture<'_, Result<Launched, LaunchError>>;
}

// ---------------------------------------------------------------------------------------------
// GpuProbe: the machine's GPUs
// ---------------------------------------------------------------------------------------------

/// A process using GPU memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    pub used_memory_bytes: Option<u64>,
}

/// One GPU and its current use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub index: u32,
    pub id: GpuId,
    pub name: String,
    pub pci_bus_id: String,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub memory_free_bytes: u64,
    pub utilization_percent: Option<u32>,
    pub temperature_celsius: Option<u32>,
    pub processes: Vec<GpuProcess>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GpuProbeError {
    #[error("NVML is not available: {0}")]
    Unavailable(String),
    #[error("NVML failed: {0}")]
    Failed(String),
}

/// Lists GPUs and samples their use. Calls may block briefly (NVML): call from a sync arbiter.
pub trait GpuProbe: Send {
    fn gpus(&self) -> Result<Vec<GpuInfo>, GpuProbeError>;
}

// ---------------------------------------------------------------------------------------------
// Chat and FleetPort: the Discord session's ports
// ---------------------------------------------------------------------------------------------

/// The Discord session talks to Discord through [`Chat`] and to the fleet through
/// [`FleetPort`]; both live with the session in [`crate::discord`], beside the plain types they
/// carry.
pub use crate::discord::{Chat, ChatError, FleetPort};

// ---------------------------------------------------------------------------------------------
// PhaseObserver: instance phases for readers outside the actor system
// ---------------------------------------------------------------------------------------------

/// Told every instance phase the scheduler applied, in the order it applied them, on the
/// scheduler's thread; keep it quick (record it, wake waiters). `/readyz`, `/v1/status`,
/// `comfy-fleet run` and tests read phases and wait for readiness through it.
pub trait PhaseObserver {
    fn phase_applied(&self, update: &InstanceUpdate);
}
