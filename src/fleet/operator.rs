//! Operator operations on the fleet, for the Discord bot's `/fleet` command (and any other
//! front end): pause and resume the queue, drain or restart one instance, and the metrics line.
//! The decisions are the scheduler's (`comfy_fleet_actors::scheduling::operations`); this is the
//! front ends' way to ask for them.

use comfy_fleet_actors::InstanceId;
use comfy_fleet_actors::messages::GetSchedulerSnapshot;
use comfy_fleet_actors::scheduling::{
    InstanceOperation, OperateInstance, OperationError, QueuePause, SetQueuePaused,
};

use crate::fleet::FleetHandle;
use crate::fleet::metrics::FleetSummary;

/// Why an operator's request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The scheduler refused it (unknown instance, shutting down).
    #[error(transparent)]
    Refused(#[from] OperationError),
    #[error("the fleet is not answering: {0}")]
    Unavailable(String),
}

impl FleetHandle {
    /// Pauses the queue: jobs are still accepted, queued and told their position and ETA, but
    /// none is started until [`FleetHandle::resume`]; running jobs go on.
    pub async fn pause(&self) -> Result<QueuePause, OperatorError> {
        self.set_paused(true).await
    }

    /// Resumes the queue: queued jobs start at once, in queue order.
    pub async fn resume(&self) -> Result<QueuePause, OperatorError> {
        self.set_paused(false).await
    }

    async fn set_paused(&self, paused: bool) -> Result<QueuePause, OperatorError> {
        self.scheduler
            .send(SetQueuePaused { paused })
            .await
            .map_err(|e| OperatorError::Unavailable(e.to_string()))
    }

    /// Drains instance `id`: it takes no new jobs, finishes its running ones, then stops its
    /// process and stays stopped until [`FleetHandle::restart_instance`]. Returns once the
    /// order is taken; the instance's phases (`/v1/status`, [`FleetHandle::phases`]) show it
    /// going `draining`, then `stopped`.
    pub async fn drain_instance(&self, id: &str) -> Result<(), OperatorError> {
        self.operate(id, InstanceOperation::Drain).await
    }

    /// Restarts instance `id` (also a drained one): its process stops, its running jobs are
    /// retried on other instances as after a crash (or fail with the reason once out of
    /// retries), and a fresh process starts at once; logged with the reason "operator restart".
    /// Returns once the order is taken; the instance shows `restarting`, `starting`, `ready`.
    pub async fn restart_instance(&self, id: &str) -> Result<(), OperatorError> {
        self.operate(id, InstanceOperation::Restart).await
    }

    async fn operate(&self, id: &str, operation: InstanceOperation) -> Result<(), OperatorError> {
        self.scheduler
            .send(OperateInstance {
                instance: InstanceId::new(id),
                operation,
            })
            .await
            .map_err(|e| OperatorError::Unavailable(e.to_string()))??;
        Ok(())
    }

    /// One line summarising the fleet: queue depth (and whether it is paused), running, done,
    /// failed and cancelled jobs, instances by phase, median wait and run times; the numbers
    /// of the periodic `fleet.metrics` log event.
    pub async fn metrics_line(&self) -> Result<String, OperatorError> {
        let snapshot = self
            .scheduler
            .send(GetSchedulerSnapshot)
            .await
            .map_err(|e| OperatorError::Unavailable(e.to_string()))?;
        Ok(FleetSummary::of(&snapshot).to_string())
    }
}
