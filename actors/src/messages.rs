//! The messages actors exchange: submitters ↔ scheduler ↔ instances, and the GPU monitor.
//!
//! Submitters (HTTP API, Discord session, CLI) send [`Submit`] and [`Cancel`] to the scheduler
//! and receive [`JobEvent`]s. The scheduler sends [`RunJob`] and [`CancelJob`] to instances; each
//! instance sends everything it has to say — its phase ([`InstanceUpdate`]), its jobs' execution
//! events ([`JobProgress`]) and their ends ([`JobFinished`]) — as [`InstanceReport`]s on one
//! channel, so the scheduler hears them in the order they happened.

use actix::{Message, Recipient};
use serde::{Deserialize, Serialize};

use crate::ids::{GpuId, InstanceId, JobId, UserId};
use crate::job::JobEvent;
use crate::ports::{BackendError, ExecutionEvent, GpuInfo, InputFile, PromptRun, RunResult};

/// A job as the fleet holds it: the prompt is already converted, injected and validated.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub id: JobId,
    pub user: UserId,
    /// Higher runs first; 0 for ordinary users.
    pub priority: i32,
    /// The template (or `workflow` for a raw workflow), for per-template ETA averages.
    pub template: String,
    pub prompt: serde_json::Value,
    pub extra_data: serde_json::Value,
    /// Input images to upload before the prompt is submitted.
    pub inputs: Vec<InputFile>,
    /// Models (checkpoints, UNets, LoRAs…) the prompt loads, for model-affinity placement.
    pub models: Vec<String>,
}

/// What the scheduler answers to an accepted submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitReceipt {
    pub job: JobId,
    /// Position in the queue; 0 means next.
    pub position: usize,
}

/// Why the scheduler refused a submission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error(
        "the queue is full ({capacity} jobs waiting); try again in {}",
        humantime::format_duration(*retry_after)
    )]
    QueueFull {
        capacity: usize,
        /// When a place is expected to free up (the time the fleet takes per job, at least a
        /// second), or a minute before any job has finished.
        retry_after: std::time::Duration,
    },
    #[error("the fleet is shutting down and takes no new jobs")]
    ShuttingDown,
    #[error("a job with id {0} already exists")]
    Duplicate(JobId),
}

/// Why a cancel did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    #[error("no job {0}")]
    NotFound(JobId),
    #[error("job {0} has already finished")]
    AlreadyFinished(JobId),
}

/// Submitter → scheduler: queue a job; its events go to `events`.
#[derive(Message)]
#[rtype(result = "Result<SubmitReceipt, SubmitError>")]
pub struct Submit {
    pub job: JobSpec,
    pub events: Recipient<JobEvent>,
}

/// Submitter → scheduler: cancel a queued (removed) or running (interrupted) job.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<(), CancelError>")]
pub struct Cancel {
    pub job: JobId,
}

/// Submitter → scheduler: how long until the first of `user`'s unfinished jobs is expected to
/// end (`None` when nothing is known yet), for the retry-after of a user at the cap on jobs in
/// progress.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Option<std::time::Duration>")]
pub struct FirstEndOf {
    pub user: UserId,
}

/// The phases of an instance as the scheduler sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstancePhase {
    Starting,
    /// Up and accepting jobs (idle or busy: the scheduler counts its own jobs per instance).
    Ready,
    /// Finishing its jobs; takes no new ones.
    Draining,
    Crashed,
    Restarting,
    /// Crashed too often; excluded until its cooldown ends.
    Quarantined,
    Stopped,
}

impl InstancePhase {
    /// Whether the scheduler may place new jobs on it.
    pub fn accepts_jobs(self) -> bool {
        matches!(self, Self::Ready)
    }

    /// The phase in words, as `/v1/status` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Draining => "draining",
            Self::Crashed => "crashed",
            Self::Restarting => "restarting",
            Self::Quarantined => "quarantined",
            Self::Stopped => "stopped",
        }
    }
}

/// Scheduler → instance: run one attempt of a job.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct RunJob {
    pub job: JobId,
    /// 1 for the first attempt; each retry on another instance adds one.
    pub attempt: u32,
    pub run: PromptRun,
    pub inputs: Vec<InputFile>,
}

/// Scheduler → instance: stop working on a job (targeted interrupt, or removal if pending).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct CancelJob {
    pub job: JobId,
}

/// How the scheduler reaches one instance.
#[derive(Clone)]
pub struct InstanceHandle {
    pub id: InstanceId,
    pub gpu: Option<GpuId>,
    pub run: Recipient<RunJob>,
    pub cancel: Recipient<CancelJob>,
    /// Operators' orders (drain, restart), passed on by the scheduler.
    pub operate: Recipient<crate::scheduling::InstanceOrder>,
}

/// Boot → scheduler: an instance exists (it reports its phase separately).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct RegisterInstance(pub InstanceHandle);

/// Boot → scheduler: an instance is gone for good (removed from the config, its actor
/// stopped). Jobs it still held are requeued as retriable failures.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DeregisterInstance {
    pub instance: InstanceId,
}

/// `/v1/status` and metrics → scheduler: a picture of the queue, the instances and latencies.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "crate::scheduling::snapshot::SchedulerSnapshot")]
pub struct GetSchedulerSnapshot;

/// Instance → scheduler: everything an instance reports, on one ordered channel. An instance
/// that crashed under a job reports the crash before the job's failure, so the scheduler never
/// places the retry on the instance that just went down.
#[derive(Message, Debug, Clone, PartialEq)]
#[rtype(result = "()")]
pub enum InstanceReport {
    /// Its phase changed.
    Phase(InstanceUpdate),
    /// Something happened while a job ran.
    Progress(JobProgress),
    /// An attempt ended.
    Finished(JobFinished),
}

/// An instance's phase changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceUpdate {
    pub instance: InstanceId,
    pub phase: InstancePhase,
    /// The server's URL once known.
    pub url: Option<String>,
    /// Why, in words (crash reason, quarantine cooldown…), for logs and `/v1/status`.
    pub detail: Option<String>,
}

/// Something happened while a job ran.
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    pub instance: InstanceId,
    pub job: JobId,
    pub event: ExecutionEvent,
}

/// An attempt ended. A retriable failure makes the scheduler try another instance (up to its
/// retry limit).
#[derive(Debug, Clone, PartialEq)]
pub struct JobFinished {
    pub instance: InstanceId,
    pub job: JobId,
    pub attempt: u32,
    pub result: Result<RunResult, JobFailure>,
}

/// Why an attempt ended without a result. Only a loss of the server is worth another instance;
/// a job the instance stopped itself, or one ComfyUI refused, is not blamed on the server.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobFailure {
    /// The run failed: ComfyUI refused or failed the job, or the connection to it broke.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The instance lost its server while the job was in flight (process exit, failed health
    /// checks, readiness lost, another job hung): another instance may succeed.
    #[error("instance {instance} failed under the job: {cause}")]
    ServerLost { instance: InstanceId, cause: String },
    /// The instance was not taking jobs when the job arrived (starting, crashed, draining…);
    /// nothing ran, so another instance may take it.
    #[error("instance {instance} is {} and takes no jobs", phase.name())]
    NotTaken {
        instance: InstanceId,
        phase: InstancePhase,
    },
    /// The instance stopped the job before it finished although its server was fine (its
    /// shutdown deadline passed): not retried elsewhere.
    #[error("instance {instance} stopped the job before it finished ({reason}); submit it again")]
    Aborted {
        instance: InstanceId,
        reason: String,
    },
}

impl JobFailure {
    /// Whether another instance may succeed where this one failed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Backend(error) => error.is_retriable(),
            Self::ServerLost { .. } | Self::NotTaken { .. } => true,
            Self::Aborted { .. } => false,
        }
    }
}

/// GPU monitor → scheduler and metrics: a fresh sample of every GPU.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct GpuSample {
    pub gpus: Vec<GpuInfo>,
}

/// Fleet → Scheduler: these model files were removed from the model library or replaced, so no
/// instance has them loaded any more (affinity forgets them).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ModelsRemoved {
    pub names: Vec<String>,
}

/// Anyone → an actor: stop gracefully (finish or hand back work within the deadline).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Shutdown {
    pub deadline: std::time::Duration,
}
