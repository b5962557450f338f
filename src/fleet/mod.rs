//! The running fleet: boot and shutdown of all actors, and the one path a job takes whoever
//! submits it (CLI, HTTP, Discord): [`submit::submit`], then [`FleetHandle::follow`] for its
//! events, then [`FleetHandle::output`] for its files. Front ends also list the model files the
//! instances offer ([`FleetHandle::models`]) and carry out operators' orders (`operator.rs`).

pub mod boot;
pub mod catalog;
pub mod demo_backend;
pub mod events;
pub mod images;
pub mod job_files;
pub mod job_metrics;
pub mod metrics;
pub mod model_changes;
pub mod model_choices;
pub mod operator;
pub mod output_collector;
pub mod output_store;
pub mod outputs;
pub mod plan;
pub mod prompt_check;
pub mod recorded_uploads;
pub mod submit;
pub mod watch;

use std::sync::Arc;

use actix::Addr;
use bytes::Bytes;
use comfy_fleet_actors::job::JobOutput;
use comfy_fleet_actors::rate_limit::RateLimiter;
use comfy_fleet_actors::scheduling::{JobTable, Scheduler};
use comfy_fleet_actors::{JobEvent, JobId};
use futures_util::Stream;

use crate::config::Config;
use crate::fleet::catalog::Catalog;
use crate::fleet::events::{JobEventHub, Subscribe};
use crate::fleet::job_metrics::JobMetrics;
use crate::fleet::metrics::GpuView;
use crate::fleet::model_changes::ModelWatch;
use crate::fleet::output_store::OutputStore;
use crate::fleet::outputs::{OutputError, OutputSource};
use crate::fleet::watch::PhaseBoard;
use crate::gpu::GpuSource;
use crate::models::ModelLibrary;

pub use boot::{BootError, Fleet, Preflight, preflight};

/// What front ends hold to use the fleet: cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct FleetHandle {
    pub config: Arc<Config>,
    pub scheduler: Addr<Scheduler>,
    pub limiter: Addr<RateLimiter>,
    pub events: Addr<JobEventHub>,
    /// Job states, readable without asking the scheduler.
    pub table: JobTable,
    pub catalog: Arc<Catalog>,
    /// Finished jobs' output files.
    pub outputs: Arc<OutputStore>,
    /// The latest GPU sample.
    pub gpus: GpuView,
    /// Phases of every instance, updated as they report.
    pub phases: PhaseBoard,
    /// Where the GPU list came from.
    pub gpu_source: GpuSource,
    /// Jobs counted and timed as they end (for `/metrics`).
    pub job_metrics: JobMetrics,
    /// Whether the instances are the demo backend (`fake-comfyui`).
    pub demo: bool,
    /// The model library every instance reads.
    pub library: ModelLibrary,
    /// The library's content when the fleet last looked (see [`FleetHandle::notice_model_changes`]).
    pub model_watch: ModelWatch,
}

/// Why a job cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("no job {0} is known to the fleet (finished jobs are forgotten after a while)")]
    UnknownJob(JobId),
    #[error("the fleet is not answering: {0}")]
    Unavailable(String),
}

impl FleetHandle {
    /// Every event of `job`: the ones so far, then the live ones. The stream ends after the
    /// final event (`Done`, `Failed` or `Cancelled`).
    pub async fn follow(
        &self,
        job: JobId,
    ) -> Result<impl Stream<Item = JobEvent> + Unpin + use<>, FollowError> {
        let subscription = self
            .events
            .send(Subscribe(job))
            .await
            .map_err(|e| FollowError::Unavailable(e.to_string()))?
            .ok_or(FollowError::UnknownJob(job))?;
        let past = futures_util::stream::iter(subscription.past);
        let live = futures_util::stream::unfold(subscription.live, |mut live| async move {
            live.recv().await.map(|event| (event, live))
        });
        // Nothing follows a final event; stop right after it.
        let mut ended = false;
        Ok(Box::pin(futures_util::StreamExt::take_while(
            futures_util::StreamExt::chain(past, live),
            move |event| {
                let go_on = !ended;
                ended = ended || event.is_final();
                std::future::ready(go_on)
            },
        )))
    }

    /// The bytes of output `index` of a finished job, with what the job recorded of it.
    pub async fn output(
        &self,
        job: JobId,
        index: usize,
    ) -> Result<(JobOutput, Bytes), OutputError> {
        let record = self.table.get(job).ok_or(OutputError::UnknownJob(job))?;
        let output = record
            .outputs
            .get(index)
            .cloned()
            .ok_or(OutputError::NoSuchOutput {
                index,
                count: record.outputs.len(),
            })?;
        if let Some(bytes) = self.outputs.read(job, index).await? {
            return Ok((output, Bytes::from(bytes)));
        }
        // Not in the store: gone with the retention or the size cap, or never collected (then
        // it is still on the instance that made it).
        let kept = self.config.outputs.retention;
        if let Some(finished) = record.finished_at
            && finished.elapsed().unwrap_or_default() >= kept
        {
            return Err(OutputError::Expired { kept });
        }
        let source = OutputSource::locate(record.instance.clone(), &self.phases)?;
        match source.fetch(&output).await {
            Ok(bytes) => Ok((output, bytes)),
            // Collected, then removed from the store for room: not on the instance either.
            Err(OutputError::Download { .. }) => Err(OutputError::Expired { kept }),
            Err(e) => Err(e),
        }
    }
}
