//! Read-only pictures of the scheduler for `/v1/status` and the metrics line.

use serde::{Deserialize, Serialize};

use crate::ids::{GpuId, InstanceId, JobId};
use crate::messages::InstancePhase;

use super::job_table::JobCounts;
use super::recent_jobs::LatencySummary;

/// One instance as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSnapshot {
    pub id: InstanceId,
    pub gpu: Option<GpuId>,
    pub phase: InstancePhase,
    pub url: Option<String>,
    pub detail: Option<String>,
    /// Jobs handed to it and not finished (running or waiting in its ComfyUI queue).
    pub running: Vec<JobId>,
    /// Models it probably has loaded, most recently used first.
    pub loaded_models: Vec<String>,
}

/// The whole scheduler at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerSnapshot {
    pub queue_depth: usize,
    pub queue_capacity: usize,
    /// Jobs in the job table by state (finished ones within the retention limit).
    pub jobs: JobCounts,
    pub instances: Vec<InstanceSnapshot>,
    pub latency: LatencySummary,
    pub shutting_down: bool,
    /// An operator paused the queue: jobs are queued, none is dispatched.
    pub paused: bool,
}
