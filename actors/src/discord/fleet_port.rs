//! The fleet port: what the session asks of the fleet (submit a job order, follow its events,
//! fetch its results within Discord's upload limit, cancel, a status view for one user, model
//! names for autocomplete and `/loras`, the operators' operations). `comfy-fleet` implements it
//! over `FleetHandle` and the one submit path every job takes; the session's tests implement it
//! in memory.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use futures_util::stream::LocalBoxStream;
use serde_json::Value;

use crate::ids::{JobId, UserId};
use crate::job::{JobEvent, JobState};

use super::message::ChatFile;

/// A job as the bot orders it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOrder {
    pub user: UserId,
    /// The member's role ids, for the rate limiter's exemptions and the scheduler's priority.
    pub roles: Vec<String>,
    /// The template from `workflows/`.
    pub template: String,
    pub params: BTreeMap<String, Value>,
    /// Images for image parameters, downloaded from Discord.
    pub images: Vec<OrderImage>,
    /// Kept by ComfyUI with the prompt (where the job came from).
    pub note: Value,
}

/// One image of a job order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderImage {
    /// The template parameter it fills (`image`, `image2`…).
    pub param: String,
    /// The name it was attached under (for messages).
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// An accepted order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub job: JobId,
    /// Place in the queue; 0 means next.
    pub position: usize,
    /// The seed drawn or given, when the template has one.
    pub seed: Option<u64>,
}

/// Why an order was refused, in words for the user who gave it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Duration,
    },
    /// A parameter or an image was not acceptable; `param` names it when known.
    #[error("{message}")]
    Invalid {
        param: Option<String>,
        message: String,
    },
    #[error("{0}")]
    QueueFull(String),
    #[error("comfy-fleet is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    NotReady(String),
    #[error("{0}")]
    Unavailable(String),
}

/// A job's result files, ready to attach.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultFiles {
    pub files: Vec<ChatFile>,
    /// What was done to make them fit (recompressed, left out), in words.
    pub notes: Vec<String>,
}

/// Why something about an existing job could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// The fleet does not know the job (it finished long ago, or comfy-fleet restarted).
    #[error("job {0} is not known to the fleet")]
    Unknown(JobId),
    /// Only the person who started it (or an operator) may do that.
    #[error("job {0} belongs to someone else")]
    NotYours(JobId),
    #[error("job {job} has already finished ({})", state_name(*state))]
    Finished { job: JobId, state: JobState },
    #[error("{0}")]
    Unavailable(String),
}

fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Done => "done",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

/// The fleet as one user sees it in `/status`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FleetView {
    pub instances: Vec<InstanceLine>,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    /// The user's own unfinished jobs, oldest first.
    pub mine: Vec<OwnJob>,
    pub shutting_down: bool,
    pub demo: bool,
}

/// One instance in `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceLine {
    pub id: String,
    /// The GPU's name (or none for a CPU instance).
    pub gpu: Option<String>,
    /// `ready`, `starting`, `crashed`…
    pub phase: String,
    /// Templates of the jobs it runs now.
    pub running: Vec<String>,
}

/// One of the user's jobs in `/status` and `/cancel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnJob {
    pub job: JobId,
    pub template: String,
    pub state: JobState,
    pub position: Option<usize>,
    pub eta: Option<Duration>,
}

/// Kinds of model files the bot offers to choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    Checkpoint,
    Lora,
    UpscaleModel,
}

impl ModelKind {
    /// ComfyUI's model folder of this kind.
    pub fn folder(self) -> &'static str {
        match self {
            Self::Checkpoint => "checkpoints",
            Self::Lora => "loras",
            Self::UpscaleModel => "upscale_models",
        }
    }
}

/// A template as the command builder sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemplateInfo {
    pub name: String,
    pub description: String,
    pub params: Vec<ParamInfo>,
}

impl TemplateInfo {
    pub fn param(&self, name: &str) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// One parameter of a template's map.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParamInfo {
    pub name: String,
    pub kind: ParamType,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub default: Option<Value>,
    pub description: String,
    pub optional: bool,
}

/// A parameter's type, as far as the bot cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParamType {
    Integer,
    Number,
    #[default]
    Text,
    Boolean,
    Image,
}

/// What operators may ask with `/fleet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetOperation {
    PauseQueue,
    ResumeQueue,
    Drain { instance: String },
    Restart { instance: String },
    Metrics,
}

/// Why an operation was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    #[error("{0}")]
    Failed(String),
}

/// What the session asks of the fleet.
pub trait FleetPort {
    /// The templates (loaded once at start).
    fn templates(&self) -> Vec<TemplateInfo>;
    /// Checks and queues a job (rate limit, template parameters, images, queue).
    fn submit(&self, order: JobOrder) -> LocalBoxFuture<'_, Result<Accepted, OrderError>>;
    /// The job's events: those so far, then live ones, ending after the final one.
    fn follow(
        &self,
        job: JobId,
    ) -> LocalBoxFuture<'_, Result<LocalBoxStream<'static, JobEvent>, JobError>>;
    /// The files of a finished job, each at most `per_file_limit` bytes (recompressed or left
    /// out when larger, as the notes say).
    fn results(
        &self,
        job: JobId,
        per_file_limit: u64,
    ) -> LocalBoxFuture<'_, Result<ResultFiles, JobError>>;
    /// Cancels a queued or running job of `user` (any job for an operator).
    fn cancel(
        &self,
        job: JobId,
        user: &UserId,
        operator: bool,
    ) -> LocalBoxFuture<'_, Result<(), JobError>>;
    /// Instances, the queue and `user`'s own jobs.
    fn status(&self, user: &UserId) -> LocalBoxFuture<'_, Result<FleetView, JobError>>;
    /// Model files of a kind that the instances have (names as loaders take them).
    fn models(&self, kind: ModelKind) -> LocalBoxFuture<'_, Result<Vec<String>, JobError>>;
    /// An operator's operation; its outcome in words.
    fn operate(
        &self,
        operation: FleetOperation,
    ) -> LocalBoxFuture<'_, Result<String, OperationError>>;
}
