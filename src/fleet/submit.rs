//! Submitting a job: rate limit, template or workflow → API prompt, input images into the job's
//! own upload folder, the checks ComfyUI would make (and the job's file inputs held to its own
//! files), then the scheduler. A refusal gives the user's quota back. Shared by every front end
//! (HTTP API, Discord, CLI).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use comfy_fleet_actors::messages::{FirstEndOf, JobSpec, Submit, SubmitError};
use comfy_fleet_actors::ports::InputFile;
use comfy_fleet_actors::prompt_rules::NodeClasses;
use comfy_fleet_actors::rate_limit::{Acquire, GiveBack, LimitReason, RateLimited};
use comfy_fleet_actors::{JobId, UserId};
use serde_json::Value;

use crate::fleet::FleetHandle;
use crate::fleet::events::Watch;
use crate::fleet::images::{ImageError, ImageLimits, InputImage, decoded_image};
use crate::fleet::job_files::{OwnFiles, job_folder, point_at_uploads};
use crate::fleet::prompt_check::{PromptCheckError, check_job_prompt};
use crate::workflow::{ObjectInfo, Template, Workflow, WorkflowError, models_in};

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
    /// Files the workflow names by their plain names (`run --input photo.png`): uploaded to the
    /// job's own folder, and the workflow's file inputs naming them pointed there.
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
    /// The prompt would fail at ComfyUI, or names files the job may not read.
    #[error(transparent)]
    Prompt(#[from] PromptCheckError),
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
    let permit = match permit {
        Ok(permit) => permit,
        Err(mut refusal) => {
            if refusal.reason == LimitReason::Concurrent {
                refusal.retry_after = concurrency_retry_after(fleet, &request.user)
                    .await
                    .unwrap_or(refusal.retry_after);
            }
            return Err(refusal.into());
        }
    };
    // Only accepted jobs use up the user's quota: a refusal gives its place back.
    let give_back = || {
        if let Some(taken_at) = permit.taken_at {
            fleet.limiter.do_send(GiveBack {
                user: request.user.clone(),
                taken_at,
            })
        }
    };
    let job = JobId::new();
    let spec = match prepare(fleet, job, &request).await {
        Ok(spec) => spec,
        Err(e) => {
            give_back();
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
            give_back();
            Err(e.into())
        }
        Err(e) => {
            give_back();
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

/// Looks at the model library off the actors' threads (it reads every folder).
async fn look_at_models(fleet: &FleetHandle) -> Result<bool, SubmitFailure> {
    let watcher = fleet.clone();
    tokio::task::spawn_blocking(move || watcher.notice_model_changes())
        .await
        .map_err(|e| SubmitFailure::Internal(e.to_string()))
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
    // A model added or removed since the last look changes the loaders' choices.
    if fleet.model_watch.look_due() {
        look_at_models(fleet).await?;
    }
    let object_info = fleet.catalog.object_info(fleet).await?;
    let folder = job_folder(job);
    let limits = ImageLimits::of(&fleet.config.limits);
    // Every image is decoded whole (a valid header over broken data is refused), off the
    // actors' threads.
    let uploads: Vec<InputImage> = request
        .uploads
        .iter()
        .map(|(name, bytes)| InputImage {
            param: "input".into(),
            filename: name.clone(),
            bytes: bytes.clone(),
        })
        .collect();
    let all: Vec<InputImage> = request.images.iter().cloned().chain(uploads).collect();
    let checked = tokio::task::spawn_blocking(move || {
        all.iter()
            .map(|image| decoded_image(image, &limits))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| SubmitFailure::Internal(e.to_string()))??;
    let mut own = OwnFiles::default();
    let mut inputs = Vec::new();
    let mut params = request.params.clone();
    for (image, checked) in request.images.iter().zip(&checked) {
        crate::launch::checked_relative_path(&image.param, false)
            .map_err(|e| SubmitFailure::Invalid(format!("image parameter: {e}")))?;
        let name = format!("{}.{}", image.param, checked.extension);
        own.add(&folder, &name);
        params.insert(
            image.param.clone(),
            Value::String(format!("{folder}/{name}")),
        );
        inputs.push(InputFile {
            name,
            subfolder: folder.clone(),
            bytes: Arc::from(image.bytes.as_slice()),
            overwrite: true,
        });
    }
    let mut plain_names = Vec::new();
    for (name, bytes) in &request.uploads {
        crate::launch::checked_relative_path(name, false)
            .map_err(|e| SubmitFailure::Invalid(e.to_string()))?;
        own.add(&folder, name);
        plain_names.push(name.clone());
        inputs.push(InputFile {
            name: name.clone(),
            subfolder: folder.clone(),
            bytes: Arc::from(bytes.as_slice()),
            overwrite: true,
        });
    }
    let mut object_info = object_info;
    let built = build_prompt(fleet, &request.source, &params, &object_info);
    let (template, prompt, seed) = match built {
        // A model or file installed since the node definitions were loaded: look again.
        Err(SubmitFailure::Workflow(WorkflowError::NotAChoice { .. })) => {
            // Put in the library a moment ago, perhaps: look now, whatever the interval.
            look_at_models(fleet).await?;
            match fleet.catalog.after_miss(fleet, &object_info).await? {
                Some(newer) => {
                    let rebuilt = build_prompt(fleet, &request.source, &params, &newer)?;
                    object_info = newer;
                    rebuilt
                }
                None => built?,
            }
        }
        built => built?,
    };
    let mut prompt = prompt;
    if let Value::Object(map) = &mut prompt {
        let classes = NodeClasses::new(object_info.as_ref());
        point_at_uploads(map, classes, job, &plain_names);
        check_job_prompt(map, &request.extra_data, &object_info, &own)?;
    }
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
