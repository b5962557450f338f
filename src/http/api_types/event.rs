//! The server-sent events of `GET /v1/jobs/{id}/events`.
//!
//! Each event is sent as `event: <name>` and `data: <JSON>`; the JSON carries the name too
//! (`{"event": "queued", "position": 2, "eta_seconds": 4.5}`), so a client parses the data
//! alone into [`StreamEvent`].

use comfy_fleet_actors::JobEvent;
use serde::{Deserialize, Serialize};

use super::job::OutputView;

/// One step in a job's life, as its stream tells it. `done`, `failed` and `cancelled` are
/// final: the stream closes after them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StreamEvent {
    /// Waiting in the fleet queue; `position` 0 means next.
    Queued {
        position: usize,
        /// Expected seconds until done, once the fleet has finished a job to estimate from.
        eta_seconds: Option<f64>,
    },
    /// Placed on an instance (`attempt` 1 first, more after retries).
    Started { instance: String, attempt: u32 },
    /// A workflow node began executing.
    Executing { node: String, title: Option<String> },
    /// Step progress inside a node: `value` of `max`.
    Progress { node: String, value: u64, max: u64 },
    /// A preview image was made while sampling (its bytes are not sent on the stream).
    Preview { mime: String, size: usize },
    /// The instance failed under the job; it is queued again for attempt `attempt`.
    Retrying { attempt: u32, reason: String },
    /// Finished; its files.
    Done { outputs: Vec<OutputView> },
    /// Failed for good: `error` says what was wrong and what to do; `retriable` when sending
    /// the same job again may work.
    Failed { error: String, retriable: bool },
    /// Cancelled by its submitter or an operator.
    Cancelled,
}

impl StreamEvent {
    /// The SSE `event:` name (the same as the `event` field of the data).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Queued { .. } => "queued",
            Self::Started { .. } => "started",
            Self::Executing { .. } => "executing",
            Self::Progress { .. } => "progress",
            Self::Preview { .. } => "preview",
            Self::Retrying { .. } => "retrying",
            Self::Done { .. } => "done",
            Self::Failed { .. } => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the stream ends with this event.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Done { .. } | Self::Failed { .. } | Self::Cancelled
        )
    }
}

impl From<&JobEvent> for StreamEvent {
    fn from(event: &JobEvent) -> Self {
        match event {
            JobEvent::Queued { position, eta, .. } => Self::Queued {
                position: *position,
                eta_seconds: eta.map(|eta| eta.as_secs_f64()),
            },
            JobEvent::Started {
                instance, attempt, ..
            } => Self::Started {
                instance: instance.0.clone(),
                attempt: *attempt,
            },
            JobEvent::Executing { node, title, .. } => Self::Executing {
                node: node.clone(),
                title: title.clone(),
            },
            JobEvent::Progress {
                node, value, max, ..
            } => Self::Progress {
                node: node.clone(),
                value: *value,
                max: *max,
            },
            JobEvent::Preview { mime, bytes, .. } => Self::Preview {
                mime: mime.clone(),
                size: bytes.len(),
            },
            JobEvent::Retrying {
                attempt, reason, ..
            } => Self::Retrying {
                attempt: *attempt,
                reason: reason.clone(),
            },
            JobEvent::Done { job, outputs } => Self::Done {
                outputs: OutputView::list(*job, outputs),
            },
            JobEvent::Failed {
                message, retriable, ..
            } => Self::Failed {
                error: message.clone(),
                retriable: *retriable,
            },
            JobEvent::Cancelled { .. } => Self::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use comfy_fleet_actors::{InstanceId, JobId, JobOutput};
    use serde_json::json;

    use super::*;

    fn wire(event: JobEvent) -> serde_json::Value {
        let view = StreamEvent::from(&event);
        let value = serde_json::to_value(&view).unwrap();
        assert_eq!(value["event"], view.name(), "the data names its event");
        let parsed: StreamEvent = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(parsed, view, "clients parse what the server writes");
        assert_eq!(view.is_final(), event.is_final());
        value
    }

    #[test]
    fn each_internal_event_becomes_its_public_form() {
        let job = JobId(uuid::Uuid::nil());
        assert_eq!(
            wire(JobEvent::Queued {
                job,
                position: 2,
                eta: Some(Duration::from_millis(4_500)),
            }),
            json!({"event": "queued", "position": 2, "eta_seconds": 4.5})
        );
        assert_eq!(
            wire(JobEvent::Queued {
                job,
                position: 0,
                eta: None
            }),
            json!({"event": "queued", "position": 0, "eta_seconds": null})
        );
        assert_eq!(
            wire(JobEvent::Started {
                job,
                instance: InstanceId("gpu1".into()),
                attempt: 1,
            }),
            json!({"event": "started", "instance": "gpu1", "attempt": 1})
        );
        assert_eq!(
            wire(JobEvent::Executing {
                job,
                node: "3".into(),
                title: Some("KSampler".into()),
            }),
            json!({"event": "executing", "node": "3", "title": "KSampler"})
        );
        assert_eq!(
            wire(JobEvent::Progress {
                job,
                node: "3".into(),
                value: 5,
                max: 20,
            }),
            json!({"event": "progress", "node": "3", "value": 5, "max": 20})
        );
        assert_eq!(
            wire(JobEvent::Preview {
                job,
                mime: "image/jpeg".into(),
                bytes: vec![0; 1234],
            }),
            json!({"event": "preview", "mime": "image/jpeg", "size": 1234})
        );
        assert_eq!(
            wire(JobEvent::Retrying {
                job,
                attempt: 2,
                reason: "gpu0 crashed".into(),
            }),
            json!({"event": "retrying", "attempt": 2, "reason": "gpu0 crashed"})
        );
        assert_eq!(
            wire(JobEvent::Done {
                job,
                outputs: vec![JobOutput {
                    node_id: "9".into(),
                    filename: "a.png".into(),
                    subfolder: "".into(),
                    kind: "output".into(),
                }],
            }),
            json!({"event": "done", "outputs": [{
                "index": 0,
                "node_id": "9",
                "filename": "a.png",
                "url": "/v1/jobs/00000000-0000-0000-0000-000000000000/outputs/0",
            }]})
        );
        assert_eq!(
            wire(JobEvent::Failed {
                job,
                message: "node 4: no such model".into(),
                retriable: false,
            }),
            json!({"event": "failed", "error": "node 4: no such model", "retriable": false})
        );
        assert_eq!(
            wire(JobEvent::Cancelled { job }),
            json!({"event": "cancelled"})
        );
    }
}
