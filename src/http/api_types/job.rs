//! A job on the wire: the body of `POST /v1/jobs`, its answer, and the `GET /v1/jobs/{id}` view.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use comfy_fleet_actors::scheduling::JobRecord;
use comfy_fleet_actors::{JobId, JobOutput, JobState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The JSON body of `POST /v1/jobs` (or the `request` part of a multipart body): a template
/// name or a whole workflow (UI or API format), and parameter values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Read strictly: an object that names a key twice (two nodes `"5"`) is refused.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::workflow::strict_json::optional"
    )]
    pub workflow: Option<serde_json::Value>,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Passed to ComfyUI with the prompt (`extra_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_data: Option<serde_json::Value>,
}

/// `201` answer of `POST /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedJob {
    pub id: Uuid,
    /// Place in the queue when accepted; 0 means next.
    pub position: usize,
    /// The seed the job runs with, when its workflow has one.
    pub seed: Option<u64>,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStateView {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobStateView {
    /// The name used on the wire (`queued`, `running`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl From<JobState> for JobStateView {
    fn from(state: JobState) -> Self {
        match state {
            JobState::Queued => Self::Queued,
            JobState::Running => Self::Running,
            JobState::Done => Self::Done,
            JobState::Failed => Self::Failed,
            JobState::Cancelled => Self::Cancelled,
        }
    }
}

/// One file a job produced, and where to download it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputView {
    /// `n` of `/v1/jobs/{id}/outputs/{n}`.
    pub index: usize,
    /// The workflow node that saved it.
    pub node_id: String,
    pub filename: String,
    /// The download path on this server.
    pub url: String,
}

impl OutputView {
    /// The views of a job's outputs, in order.
    pub fn list(job: JobId, outputs: &[JobOutput]) -> Vec<Self> {
        outputs
            .iter()
            .enumerate()
            .map(|(index, output)| Self {
                index,
                node_id: output.node_id.clone(),
                filename: output.filename.clone(),
                url: format!("/v1/jobs/{job}/outputs/{index}"),
            })
            .collect()
    }
}

/// `GET /v1/jobs/{id}` (and the answer of `DELETE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: Uuid,
    pub state: JobStateView,
    /// The template name, or `workflow` for a submitted workflow.
    pub template: String,
    pub user: String,
    /// Place in the queue while queued (0 = next).
    pub position: Option<usize>,
    /// Expected seconds until the job is done, while queued and once the fleet has finished a
    /// job to estimate from.
    pub eta_seconds: Option<f64>,
    /// The instance running it, or that ran its last attempt.
    pub instance: Option<String>,
    /// Attempts started so far (0 while first queued).
    pub attempt: u32,
    pub outputs: Vec<OutputView>,
    /// Why it failed, in words for the user.
    pub error: Option<String>,
    /// When it was submitted, in seconds since the Unix epoch.
    pub queued_at: f64,
    /// When its last attempt started, in seconds since the Unix epoch.
    pub started_at: Option<f64>,
    /// When it ended, in seconds since the Unix epoch.
    pub finished_at: Option<f64>,
}

/// Seconds since the Unix epoch (0 for an instant before it, which a clock never gives).
pub fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

impl From<&JobRecord> for JobView {
    fn from(record: &JobRecord) -> Self {
        Self {
            id: record.id.0,
            state: record.state.into(),
            template: record.template.clone(),
            user: record.user.0.clone(),
            position: record.position,
            eta_seconds: record.eta.map(|eta| eta.as_secs_f64()),
            instance: record.instance.as_ref().map(|i| i.0.clone()),
            attempt: record.attempt,
            outputs: OutputView::list(record.id, &record.outputs),
            error: record.error.clone(),
            queued_at: unix_seconds(record.queued_at),
            started_at: record.started_at.map(unix_seconds),
            finished_at: record.finished_at.map(unix_seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use comfy_fleet_actors::{InstanceId, UserId};
    use serde_json::json;

    use super::*;

    fn record() -> JobRecord {
        JobRecord {
            id: JobId(Uuid::nil()),
            user: UserId::new("alice"),
            template: "demo".into(),
            priority: 0,
            state: JobState::Done,
            instance: Some(InstanceId("gpu0".into())),
            attempt: 2,
            position: None,
            eta: None,
            queued_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
            started_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_001)),
            finished_at: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_003_500)),
            outputs: vec![JobOutput {
                node_id: "9".into(),
                filename: "out_00001_.png".into(),
                subfolder: "".into(),
                kind: "output".into(),
            }],
            error: None,
        }
    }

    #[test]
    fn a_finished_job_shows_numbers_for_times_and_download_paths_for_outputs() {
        let view = JobView::from(&record());
        let wire = serde_json::to_value(&view).unwrap();
        assert_eq!(
            wire,
            json!({
                "id": "00000000-0000-0000-0000-000000000000",
                "state": "done",
                "template": "demo",
                "user": "alice",
                "position": null,
                "eta_seconds": null,
                "instance": "gpu0",
                "attempt": 2,
                "outputs": [{
                    "index": 0,
                    "node_id": "9",
                    "filename": "out_00001_.png",
                    "url": "/v1/jobs/00000000-0000-0000-0000-000000000000/outputs/0",
                }],
                "error": null,
                "queued_at": 1_700_000_000.25,
                "started_at": 1_700_000_001.0,
                "finished_at": 1_700_000_003.5,
            })
        );
        let parsed: JobView = serde_json::from_value(wire).unwrap();
        assert_eq!(parsed, view);
    }

    #[test]
    fn a_queued_job_has_its_eta_in_seconds() {
        let mut queued = record();
        queued.state = JobState::Queued;
        queued.position = Some(3);
        queued.eta = Some(Duration::from_micros(407_166));
        let wire = serde_json::to_value(JobView::from(&queued)).unwrap();
        assert_eq!(wire["state"], "queued");
        assert_eq!(wire["position"], 3);
        assert_eq!(wire["eta_seconds"], json!(0.407166));
    }

    #[test]
    fn every_state_has_its_wire_name() {
        for state in [
            JobState::Queued,
            JobState::Running,
            JobState::Done,
            JobState::Failed,
            JobState::Cancelled,
        ] {
            let view = JobStateView::from(state);
            assert_eq!(serde_json::to_value(view).unwrap(), json!(view.as_str()));
        }
    }
}
