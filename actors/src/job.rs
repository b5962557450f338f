//! What a job is from its submitter's point of view: its state and the events it emits.

use serde::{Deserialize, Serialize};

use crate::ids::{InstanceId, JobId};

/// The states a submitter can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    /// Whether the job can no longer change.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

/// One file a finished job produced, as ComfyUI reports it (`/history` outputs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOutput {
    /// The output node that produced the file.
    pub node_id: String,
    pub filename: String,
    pub subfolder: String,
    /// ComfyUI's folder type: `output` (SaveImage) or `temp` (PreviewImage).
    #[serde(rename = "type")]
    pub kind: String,
}

/// Everything a submitter is told about its job, in order. `Done`, `Failed` and `Cancelled`
/// are final: nothing follows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, actix::Message)]
#[rtype(result = "()")]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    /// Waiting in the fleet queue; `position` 0 means next.
    Queued {
        job: JobId,
        position: usize,
        #[serde(with = "humantime_serde", default)]
        eta: Option<std::time::Duration>,
    },
    /// Placed on an instance and submitted to its ComfyUI.
    Started {
        job: JobId,
        instance: InstanceId,
        attempt: u32,
    },
    /// A node began executing.
    Executing {
        job: JobId,
        node: String,
        title: Option<String>,
    },
    /// Step progress inside a node (samplers and some image operations).
    Progress {
        job: JobId,
        node: String,
        value: u64,
        max: u64,
    },
    /// A preview image (JPEG or PNG bytes) sent while sampling.
    Preview {
        job: JobId,
        mime: String,
        #[serde(skip)]
        bytes: Vec<u8>,
    },
    /// The instance failed under the job (crash, hang, unreachable); it is queued again.
    Retrying {
        job: JobId,
        attempt: u32,
        reason: String,
    },
    /// Finished with these outputs.
    Done { job: JobId, outputs: Vec<JobOutput> },
    /// Failed for good; `message` says what was wrong and what to do.
    Failed {
        job: JobId,
        message: String,
        retriable: bool,
    },
    /// Cancelled by its submitter or an operator.
    Cancelled { job: JobId },
}

impl JobEvent {
    /// The job this event belongs to.
    pub fn job(&self) -> JobId {
        match self {
            Self::Queued { job, .. }
            | Self::Started { job, .. }
            | Self::Executing { job, .. }
            | Self::Progress { job, .. }
            | Self::Preview { job, .. }
            | Self::Retrying { job, .. }
            | Self::Done { job, .. }
            | Self::Failed { job, .. }
            | Self::Cancelled { job } => *job,
        }
    }

    /// Whether this event ends the job's stream.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Done { .. } | Self::Failed { .. } | Self::Cancelled { .. }
        )
    }
}
