//! Submitting a job: rate limit, template or workflow → validated API prompt, input images,
//! then the scheduler. Shared by every front end (HTTP API, Discord, CLI).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use comfy_fleet_actors::messages::{FirstEndOf, JobSpec, Submit, SubmitError};
use comfy_fleet_actors::ports::InputFile;
use comfy_fleet_actors::rate_limit::{Acquire, LimitReason, RateLimited, Release};
use comfy_fleet_actors::{JobId, UserId};
use serde_json::Value;

use crate::fleet::FleetHandle;
use crate::fleet::events::Watch;
use crate::fleet::images::{ImageError, ImageLimits, InputImage, checked_image};
use crate::fleet::output_collector::input_prefix;
use crate::workflow::{ObjectInfo, Template, Workflow, WorkflowError, models_in};

/// Sub-folder of an instance's input folder where job images are uploaded.
pub const INPUT_SUBFOLDER: &str = "fleet";

/// What to run.
#[derive(Debug, Clone)]
pub enum JobSource {
    /// A template from `workflows/`.
    Template(String),
    /// A whole workflow, UI or API format.
    Workflow(Workflow),
}

/// One job as a front end asks for it.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub user: UserId,
    pub roles: Vec<String>,
    pub source: JobSource,
    pub params: BTreeMap<String, Value>,
    /// Image parameters (`image`, `image2`…) with their bytes.
    pub images: Vec<InputImage>,
    /// Files uploaded to the input folder under their own names (for workflows that name them).
    pub uploads: Vec<(String, Vec<u8>)>,
    /// Kept by ComfyUI with the prompt (e.g. a Discord message id).
    pub extra_data: Value,
}

/// An accepted job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    pub job: JobId,
    pub position: usize,
    /// The seed used, when the template has one.
    pub seed: Option<u64>,
}

/// Why a job was not accepted, in words for whoever asked.
#[derive(Debug, thiserror::Error)]
pub enum SubmitFailure {
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Queue(#[from] SubmitError),
    #[error(
        "no ComfyUI instance is ready yet to check the workflow against ({0}); try again shortly"
    )]
    NotReady(String),
    #[error("the fleet is not answering: {0}")]
    Internal(String),
}

/// Turns a request into a queued job.
pub async fn submit(fleet: &FleetHandle, request: JobRequest) -> Result<Submitted, SubmitFailure> {
    let permit = fleet
        .limiter
        .send(Acquire {
            user: request.user.clone(),
            roles: request.roles.clone(),
            now: None,
        })
        .await
        .map_err(|e| SubmitFailure::Internal(e.to_string()))?;
    if let Err(mut refusal) = permit {
        if refusal.reason == LimitReason::Concurrent {
            refusal.retry_after = concurrency_retry_after(fleet, &request.user)
                .await
                .unwrap_or(refusal.retry_after);
        }
        return Err(refusal.into());
    }
    let release = || {
        fleet.limiter.do_send(Release {
            user: request.user.clone(),
        })
    };
    let job = JobId::new();
    let spec = match prepare(fleet, job, &request).await {
        Ok(spec) => spec,
        Err(e) => {
            release();
            return Err(e);
        }
    };
    let (spec, seed) = spec;
    fleet.events.do_send(Watch {
        job,
        user: request.user.clone(),
    });
    let receipt = fleet
        .scheduler
        .send(Submit {
            job: spec,
            events: fleet.events.clone().recipient(),
        })
        .await
        .map_err(|e| SubmitFailure::Internal(e.to_string()));
    match receipt {
        Ok(Ok(receipt)) => Ok(Submitted {
            job,
            position: receipt.position,
            seed,
        }),
        Ok(Err(e)) => {
            release();
            Err(e.into())
        }
        Err(e) => {
            release();
            Err(e)
        }
    }
}

/// When a user at the cap on jobs in progress may expect one of them to end (at least a second
/// from now), from the scheduler's estimates; `None` when it has none yet.
async fn concurrency_retry_after(fleet: &FleetHandle, user: &UserId) -> Option<Duration> {
    let first_end = fleet
        .scheduler
        .send(FirstEndOf { user: user.clone() })
        .await
        .ok()??;
    Some(first_end.max(Duration::from_secs(1)))
}

/// The API prompt of `source` with `params` applied, checked against `object_info`: the
/// template name (or `workflow`), the prompt and the seed used.
fn build_prompt(
    fleet: &FleetHandle,
    source: &JobSource,
    params: &BTreeMap<String, Value>,
    object_info: &ObjectInfo,
) -> Result<(String, Value, Option<u64>), SubmitFailure> {
    Ok(match source {
        JobSource::Template(name) => {
            let template = fleet.catalog.templates.get(name)?;
            let prepared = template.prepare(params, object_info)?;
            (name.clone(), prepared.prompt, prepared.seed)
        }
        JobSource::Workflow(workflow) => {
            if params.is_empty() {
                // Without parameters a workflow runs exactly as written.
                (
                    "workflow".to_string(),
                    Value::Object(workflow.to_api(object_info)?.0),
                    None,
                )
            } else {
                // Parameters apply to the well-known nodes found in the workflow.
                let template = Template {
                    name: "workflow".into(),
                    description: String::new(),
                    workflow: workflow.clone(),
                    params: None,
                    models: Vec::new(),
                    path: Default::default(),
                };
                let prepared = template.prepare(params, object_info)?;
                ("workflow".to_string(), prepared.prompt, prepared.seed)
            }
        }
    })
}

/// Builds the job: prompt with parameters and image names applied, the images to upload.
async fn prepare(
    fleet: &FleetHandle,
    job: JobId,
    request: &JobRequest,
) -> Result<(JobSpec, Option<u64>), SubmitFailure> {
    // A model added or removed since the last job changes the loaders' choices.
    let watcher = fleet.clone();
    tokio::task::spawn_blocking(move || watcher.notice_model_changes())
        .await
        .map_err(|e| SubmitFailure::Internal(e.to_string()))?;
    let object_info = fleet.catalog.object_info(fleet).await?;
    let limits = ImageLimits::of(&fleet.config.limits);
    let mut inputs = Vec::new();
    let mut params = request.params.clone();
    for image in &request.images {
        let checked = checked_image(image, &limits)?;
        // The job's own prefix: its images are found and deleted by it when it has run.
        let name = format!("{}{}.{}", input_prefix(job), image.param, checked.extension);
        params.insert(
            image.param.clone(),
            Value::String(format!("{INPUT_SUBFOLDER}/{name}")),
        );
        inputs.push(InputFile {
            name,
            subfolder: INPUT_SUBFOLDER.into(),
            bytes: Arc::from(image.bytes.as_slice()),
            overwrite: true,
        });
    }
    for (name, bytes) in &request.uploads {
        let image = InputImage {
            param: "input".into(),
            filename: name.clone(),
            bytes: bytes.clone(),
        };
        checked_image(&image, &limits)?;
        crate::launch::checked_relative_path(name, false)
            .map_err(|e| SubmitFailure::Invalid(e.to_string()))?;
        inputs.push(InputFile {
            name: name.clone(),
            subfolder: String::new(),
            bytes: Arc::from(bytes.as_slice()),
            overwrite: true,
        });
    }
    let built = build_prompt(fleet, &request.source, &params, &object_info);
    let (template, prompt, seed) = match built {
        // A model or file installed since the node definitions were loaded: look again.
        Err(SubmitFailure::Workflow(WorkflowError::NotAChoice { .. })) => {
            match fleet.catalog.after_miss(fleet, &object_info).await? {
                Some(newer) => build_prompt(fleet, &request.source, &params, &newer)?,
                None => built?,
            }
        }
        built => built?,
    };
    let models = models_in(&prompt);
    let priority = fleet
        .config
        .scheduler
        .priority_of(&request.user.0, &request.roles);
    let spec = JobSpec {
        id: job,
        user: request.user.clone(),
        priority,
        template,
        prompt,
        extra_data: request.extra_data.clone(),
        inputs,
        models,
    };
    Ok((spec, seed))
}
