//! A finished job's output files as front ends get them: from the fleet's output store, or, for
//! a file that could not be collected, from the instance that made it (its `/view`).

use bytes::Bytes;
use comfy_fleet_actors::job::JobOutput;
use comfy_fleet_actors::{InstanceId, JobId};

use crate::comfy::protocol::FileRef;
use crate::comfy::{ClientConfig, ComfyClient, ComfyError};
use crate::fleet::watch::PhaseBoard;

/// Why a job's output could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("no job {0} is known to the fleet (finished jobs are forgotten after a while)")]
    UnknownJob(JobId),
    #[error("the job has {count} outputs; index {index} does not exist")]
    NoSuchOutput { index: usize, count: usize },
    #[error("the job has no instance on record")]
    NoInstance,
    #[error("instance {0}, which holds the job's outputs, is not reachable now")]
    InstanceGone(InstanceId),
    #[error("instance {instance} could not send the file: {source}")]
    Download {
        instance: InstanceId,
        #[source]
        source: ComfyError,
    },
    #[error(
        "the job's files are no longer kept (the fleet keeps them for {} and within \
         outputs.max_size_mb); run the job again",
        comfy_fleet_actors::duration_text::rounded(*kept)
    )]
    Expired { kept: std::time::Duration },
    #[error(transparent)]
    Store(#[from] crate::fleet::output_store::StoreError),
}

/// The instance that holds a job's outputs, with a client for it.
pub struct OutputSource {
    instance: InstanceId,
    client: ComfyClient,
}

impl OutputSource {
    /// The live instance named by a job's record (`instance`), as the phase board knows it.
    pub fn locate(instance: Option<InstanceId>, phases: &PhaseBoard) -> Result<Self, OutputError> {
        let instance = instance.ok_or(OutputError::NoInstance)?;
        let Some(url) = phases.snapshot().get(&instance).and_then(|v| v.url.clone()) else {
            return Err(OutputError::InstanceGone(instance));
        };
        match ComfyClient::new(&url, ClientConfig::default()) {
            Ok(client) => Ok(Self { instance, client }),
            Err(source) => Err(OutputError::Download { instance, source }),
        }
    }

    /// One output file's bytes (`GET /view`).
    pub async fn fetch(&self, output: &JobOutput) -> Result<Bytes, OutputError> {
        self.client
            .view(&FileRef::from(output))
            .await
            .map_err(|source| OutputError::Download {
                instance: self.instance.clone(),
                source,
            })
    }
}
