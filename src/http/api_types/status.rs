//! What operators and load balancers read: `/v1/status`, `/healthz` and `/readyz`.

use std::collections::{BTreeMap, BTreeSet};

use comfy_fleet_actors::messages::InstancePhase;
use comfy_fleet_actors::ports::GpuInfo;
use comfy_fleet_actors::scheduling::JobRecord;
use comfy_fleet_actors::scheduling::{JobCounts, LatencySummary, SchedulerSnapshot};
use comfy_fleet_actors::{InstanceId, JobState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::fleet::watch::InstanceView;
use crate::gpu::GpuSource;

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// Whether the instances are the demo backend (`fake-comfyui`, no GPU work).
    pub demo_backend: bool,
    /// What the instances are, in words.
    pub backend: String,
    pub gpu_source: GpuSourceView,
    pub gpus: Vec<GpuStatus>,
    pub instances: Vec<InstanceStatus>,
    pub queue: QueueStatus,
    /// Jobs the job table holds, by state (finished ones within `scheduler.job_retention`): the
    /// caller's own unless they see the whole fleet.
    pub jobs: JobsByState,
    /// Over the recently finished jobs.
    pub latency: Latencies,
    pub shutting_down: bool,
}

/// Where the list of GPUs came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuSourceView {
    Nvml,
    Declared,
    CpuOnly,
}

impl From<GpuSource> for GpuSourceView {
    fn from(source: GpuSource) -> Self {
        match source {
            GpuSource::Nvml => Self::Nvml,
            GpuSource::Declared => Self::Declared,
            GpuSource::CpuOnly => Self::CpuOnly,
        }
    }
}

/// One GPU and its current use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuStatus {
    pub index: u32,
    /// The NVML UUID (`GPU-…`), or the name declared in the config.
    pub id: String,
    pub name: String,
    pub pci_bus_id: String,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub memory_free_bytes: u64,
    pub utilization_percent: Option<u32>,
    pub temperature_celsius: Option<u32>,
    /// Processes using it.
    pub processes: Vec<GpuProcessStatus>,
}

/// A process on a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcessStatus {
    pub pid: u32,
    pub used_memory_bytes: Option<u64>,
}

impl From<&GpuInfo> for GpuStatus {
    fn from(gpu: &GpuInfo) -> Self {
        Self {
            index: gpu.index,
            id: gpu.id.0.clone(),
            name: gpu.name.clone(),
            pci_bus_id: gpu.pci_bus_id.clone(),
            memory_total_bytes: gpu.memory_total_bytes,
            memory_used_bytes: gpu.memory_used_bytes,
            memory_free_bytes: gpu.memory_free_bytes,
            utilization_percent: gpu.utilization_percent,
            temperature_celsius: gpu.temperature_celsius,
            processes: gpu
                .processes
                .iter()
                .map(|p| GpuProcessStatus {
                    pid: p.pid,
                    used_memory_bytes: p.used_memory_bytes,
                })
                .collect(),
        }
    }
}

/// An instance's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseView {
    Starting,
    /// Up and taking jobs.
    Ready,
    /// Finishing its jobs; takes no new ones.
    Draining,
    Crashed,
    Restarting,
    /// Crashed too often; excluded until its cooldown ends.
    Quarantined,
    Stopped,
}

impl From<InstancePhase> for PhaseView {
    fn from(phase: InstancePhase) -> Self {
        match phase {
            InstancePhase::Starting => Self::Starting,
            InstancePhase::Ready => Self::Ready,
            InstancePhase::Draining => Self::Draining,
            InstancePhase::Crashed => Self::Crashed,
            InstancePhase::Restarting => Self::Restarting,
            InstancePhase::Quarantined => Self::Quarantined,
            InstancePhase::Stopped => Self::Stopped,
        }
    }
}

/// One ComfyUI server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub id: String,
    pub gpu: Option<String>,
    pub phase: PhaseView,
    pub url: Option<String>,
    /// What it is doing or what went wrong, in words.
    pub detail: Option<String>,
    /// Jobs handed to it and not finished.
    pub running_jobs: Vec<Uuid>,
    /// Models it probably has loaded, most recently used first.
    pub loaded_models: Vec<String>,
    /// `comfyui`, or `demo (fake-comfyui)`.
    pub backend: String,
}

/// The fleet queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// Jobs waiting.
    pub depth: usize,
    /// Most jobs it holds.
    pub capacity: usize,
    /// An operator paused it: jobs are taken and queued, none is started until it is resumed.
    pub paused: bool,
}

/// Jobs by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobsByState {
    pub queued: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl From<JobCounts> for JobsByState {
    fn from(counts: JobCounts) -> Self {
        Self {
            queued: counts.queued,
            running: counts.running,
            done: counts.done,
            failed: counts.failed,
            cancelled: counts.cancelled,
        }
    }
}

/// Wait (submit to start) and run (start to done) times in seconds, over recent jobs; `null`
/// before any job has finished.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// Jobs the figures are made of.
    pub samples: usize,
    pub wait_p50_seconds: Option<f64>,
    pub wait_p95_seconds: Option<f64>,
    pub run_p50_seconds: Option<f64>,
    pub run_p95_seconds: Option<f64>,
    pub jobs_per_minute: f64,
}

impl From<&LatencySummary> for Latencies {
    fn from(l: &LatencySummary) -> Self {
        let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64());
        Self {
            samples: l.samples,
            wait_p50_seconds: secs(l.wait_p50),
            wait_p95_seconds: secs(l.wait_p95),
            run_p50_seconds: secs(l.run_p50),
            run_p95_seconds: secs(l.run_p95),
            jobs_per_minute: l.jobs_per_minute,
        }
    }
}

/// Everything `/v1/status` is made of.
pub struct StatusSources<'a> {
    pub snapshot: &'a SchedulerSnapshot,
    /// The instances' latest reports (their `detail` is fresher than the scheduler's).
    pub board: &'a BTreeMap<InstanceId, InstanceView>,
    pub gpus: &'a [GpuInfo],
    pub gpu_source: GpuSource,
    pub demo: bool,
}

impl From<StatusSources<'_>> for StatusView {
    fn from(s: StatusSources<'_>) -> Self {
        let instance_backend = if s.demo {
            "demo (fake-comfyui)"
        } else {
            "comfyui"
        };
        let instances = s
            .snapshot
            .instances
            .iter()
            .map(|i| InstanceStatus {
                id: i.id.0.clone(),
                gpu: i.gpu.as_ref().map(|g| g.0.clone()),
                phase: i.phase.into(),
                url: i.url.clone(),
                detail: s
                    .board
                    .get(&i.id)
                    .and_then(|v| v.detail.clone())
                    .or_else(|| i.detail.clone()),
                running_jobs: i.running.iter().map(|j| j.0).collect(),
                loaded_models: i.loaded_models.clone(),
                backend: instance_backend.into(),
            })
            .collect();
        Self {
            demo_backend: s.demo,
            backend: if s.demo {
                "DEMO: instances are fake-comfyui (no GPU work); set comfyui.path to run ComfyUI"
            } else {
                "ComfyUI"
            }
            .into(),
            gpu_source: s.gpu_source.into(),
            gpus: s.gpus.iter().map(GpuStatus::from).collect(),
            instances,
            queue: QueueStatus {
                depth: s.snapshot.queue_depth,
                capacity: s.snapshot.queue_capacity,
                paused: s.snapshot.paused,
            },
            jobs: s.snapshot.jobs.into(),
            latency: (&s.snapshot.latency).into(),
            shutting_down: s.snapshot.shutting_down,
        }
    }
}

impl StatusView {
    /// What a user who is not an operator sees: the pool's shape (instances and their phases,
    /// GPUs, the queue, latencies) and their own jobs, but no other user's job ids, no
    /// instance URLs, details or loaded models, no GPU processes.
    pub fn for_user(mut self, own: &[JobRecord]) -> Self {
        let mine: BTreeSet<Uuid> = own.iter().map(|r| r.id.0).collect();
        for gpu in &mut self.gpus {
            gpu.processes.clear();
        }
        for instance in &mut self.instances {
            instance.url = None;
            instance.detail = None;
            instance.loaded_models.clear();
            instance.running_jobs.retain(|j| mine.contains(j));
        }
        let mut jobs = JobsByState {
            queued: 0,
            running: 0,
            done: 0,
            failed: 0,
            cancelled: 0,
        };
        for record in own {
            match record.state {
                JobState::Queued => jobs.queued += 1,
                JobState::Running => jobs.running += 1,
                JobState::Done => jobs.done += 1,
                JobState::Failed => jobs.failed += 1,
                JobState::Cancelled => jobs.cancelled += 1,
            }
        }
        self.jobs = jobs;
        self
    }
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthView {
    /// `ok`.
    pub status: String,
}

/// `GET /readyz` when at least one instance takes jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessView {
    /// `ready`.
    pub status: String,
    pub ready_instances: usize,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use comfy_fleet_actors::scheduling::InstanceSnapshot;
    use comfy_fleet_actors::{GpuId, JobId};
    use serde_json::json;

    use super::*;

    #[test]
    fn latencies_and_instances_are_plain_numbers_and_names() {
        let job = JobId(Uuid::nil());
        let snapshot = SchedulerSnapshot {
            queue_depth: 4,
            queue_capacity: 100,
            jobs: JobCounts {
                queued: 4,
                running: 1,
                done: 7,
                failed: 0,
                cancelled: 1,
            },
            instances: vec![InstanceSnapshot {
                id: InstanceId("gpu0".into()),
                gpu: Some(GpuId("GPU-1".into())),
                phase: InstancePhase::Ready,
                url: Some("http://127.0.0.1:8190".into()),
                detail: Some("old".into()),
                running: vec![job],
                loaded_models: vec!["sdxl.safetensors".into()],
            }],
            latency: LatencySummary {
                samples: 7,
                wait_p50: Some(Duration::from_millis(250)),
                wait_p95: Some(Duration::from_millis(1_500)),
                run_p50: Some(Duration::from_secs(3)),
                run_p95: None,
                jobs_per_minute: 2.5,
            },
            shutting_down: false,
            paused: true,
        };
        let board = BTreeMap::from([(
            InstanceId("gpu0".into()),
            InstanceView {
                phase: InstancePhase::Ready,
                url: None,
                detail: Some("fresh".into()),
            },
        )]);
        let view = StatusView::from(StatusSources {
            snapshot: &snapshot,
            board: &board,
            gpus: &[],
            gpu_source: GpuSource::CpuOnly,
            demo: true,
        });
        let wire = serde_json::to_value(&view).unwrap();
        assert_eq!(
            wire["latency"],
            json!({
                "samples": 7,
                "wait_p50_seconds": 0.25,
                "wait_p95_seconds": 1.5,
                "run_p50_seconds": 3.0,
                "run_p95_seconds": null,
                "jobs_per_minute": 2.5,
            })
        );
        assert_eq!(
            wire["instances"][0],
            json!({
                "id": "gpu0",
                "gpu": "GPU-1",
                "phase": "ready",
                "url": "http://127.0.0.1:8190",
                "detail": "fresh",
                "running_jobs": ["00000000-0000-0000-0000-000000000000"],
                "loaded_models": ["sdxl.safetensors"],
                "backend": "demo (fake-comfyui)",
            })
        );
        assert_eq!(wire["gpu_source"], "cpu_only");
        assert_eq!(
            wire["queue"],
            json!({"depth": 4, "capacity": 100, "paused": true})
        );
        let parsed: StatusView = serde_json::from_value(wire).unwrap();
        assert_eq!(parsed, view);
    }
}
