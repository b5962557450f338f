//! The session's `FleetPort` over the running fleet: orders go through `fleet::submit` (the one
//! path every job takes: rate limiter, template, scheduler), with the images checked first
//! (sniffed, sized, decoded) off the actors' threads; events come from `FleetHandle::follow`;
//! results from `FleetHandle::output`, fitted to Discord's upload limit.

use std::collections::HashMap;

use comfy_fleet_actors::discord::fleet_port::{
    Accepted, FleetOperation, FleetPort, FleetView, InstanceLine, JobError, JobOrder, ModelKind,
    OperationError, OrderError, OwnJob, ParamInfo, ParamType, ResultFiles, TemplateInfo,
};
use comfy_fleet_actors::messages::{Cancel, CancelError, GetSchedulerSnapshot, SubmitError};
use comfy_fleet_actors::scheduling::QueuePause;
use comfy_fleet_actors::{JobEvent, JobId, UserId};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::LocalBoxStream;

use super::result_images::{Fitted, fit};
use crate::fleet::FleetHandle;
use crate::fleet::images::{ImageLimits, InputImage, decoded_image};
use crate::fleet::model_choices::{self, ModelListError};
use crate::fleet::operator::OperatorError;
use crate::fleet::submit::{JobRequest, JobSource, SubmitFailure, submit};
use crate::workflow::{ParamKind, WorkflowError};

/// Discord takes at most this many files in one message.
const MAX_FILES: usize = 10;

/// The fleet, as the session's port.
pub struct FleetAdapter {
    fleet: FleetHandle,
}

impl FleetAdapter {
    pub fn new(fleet: FleetHandle) -> Self {
        Self { fleet }
    }
}

fn order_error(failure: SubmitFailure) -> OrderError {
    match failure {
        SubmitFailure::RateLimited(r) => OrderError::RateLimited {
            message: r.to_string(),
            retry_after: r.retry_after,
        },
        SubmitFailure::Workflow(
            WorkflowError::InvalidValue { name, reason }
            | WorkflowError::NotAChoice { name, reason },
        ) => OrderError::Invalid {
            param: Some(name),
            message: reason,
        },
        SubmitFailure::Workflow(e) => OrderError::Invalid {
            param: None,
            message: e.to_string(),
        },
        SubmitFailure::Image(e) => OrderError::Invalid {
            param: None,
            message: e.to_string(),
        },
        SubmitFailure::Invalid(message) => OrderError::Invalid {
            param: None,
            message,
        },
        SubmitFailure::Prompt(e) => OrderError::Invalid {
            param: None,
            message: e.to_string(),
        },
        SubmitFailure::Queue(SubmitError::ShuttingDown) => OrderError::ShuttingDown,
        SubmitFailure::Queue(e @ SubmitError::QueueFull { .. }) => {
            OrderError::QueueFull(e.to_string())
        }
        SubmitFailure::Queue(e) => OrderError::Unavailable(e.to_string()),
        e @ SubmitFailure::NotReady(_) => OrderError::NotReady(e.to_string()),
        SubmitFailure::Internal(m) => OrderError::Unavailable(m),
    }
}

fn param_type(kind: Option<ParamKind>) -> ParamType {
    match kind {
        Some(ParamKind::Int) => ParamType::Integer,
        Some(ParamKind::Float) => ParamType::Number,
        Some(ParamKind::Boolean) => ParamType::Boolean,
        Some(ParamKind::Image) => ParamType::Image,
        Some(ParamKind::String | ParamKind::Combo) | None => ParamType::Text,
    }
}

impl FleetPort for FleetAdapter {
    fn templates(&self) -> Vec<TemplateInfo> {
        self.fleet
            .catalog
            .templates
            .iter()
            .map(|t| TemplateInfo {
                name: t.name.clone(),
                description: t.description.clone(),
                params: t
                    .params
                    .iter()
                    .flatten()
                    .map(|p| ParamInfo {
                        name: p.name.clone(),
                        kind: param_type(p.kind),
                        min: p.min,
                        max: p.max,
                        default: p.default.clone(),
                        description: p.description.clone(),
                        optional: p.optional,
                    })
                    .collect(),
            })
            .collect()
    }

    fn submit(&self, order: JobOrder) -> LocalBoxFuture<'_, Result<Accepted, OrderError>> {
        Box::pin(async move {
            let limits = ImageLimits::of(&self.fleet.config.limits);
            let images: Vec<InputImage> = order
                .images
                .into_iter()
                .map(|i| InputImage {
                    param: i.param,
                    filename: i.filename,
                    bytes: i.bytes,
                })
                .collect();
            // Decoding every pixel takes a while for a large image: not on an actor's thread.
            let images = tokio::task::spawn_blocking(move || {
                for image in &images {
                    decoded_image(image, &limits)?;
                }
                Ok(images)
            })
            .await
            .map_err(|e| OrderError::Unavailable(format!("the image check stopped: {e}")))?
            .map_err(|e: crate::fleet::images::ImageError| OrderError::Invalid {
                param: None,
                message: e.to_string(),
            })?;
            let request = JobRequest {
                user: order.user,
                roles: order.roles,
                source: JobSource::Template(order.template),
                params: order.params,
                images,
                uploads: Vec::new(),
                extra_data: order.note,
            };
            let submitted = submit(&self.fleet, request).await.map_err(order_error)?;
            Ok(Accepted {
                job: submitted.job,
                position: submitted.position,
                seed: submitted.seed,
            })
        })
    }

    fn follow(
        &self,
        job: JobId,
    ) -> LocalBoxFuture<'_, Result<LocalBoxStream<'static, JobEvent>, JobError>> {
        Box::pin(async move {
            let stream = self.fleet.follow(job).await.map_err(|e| match e {
                crate::fleet::FollowError::UnknownJob(job) => JobError::Unknown(job),
                e => JobError::Unavailable(e.to_string()),
            })?;
            Ok(stream.boxed_local())
        })
    }

    fn results(
        &self,
        job: JobId,
        per_file_limit: u64,
    ) -> LocalBoxFuture<'_, Result<ResultFiles, JobError>> {
        Box::pin(async move {
            let record = self.fleet.table.get(job).ok_or(JobError::Unknown(job))?;
            // Saved images; previews only when nothing was saved.
            let saved: Vec<usize> = (0..record.outputs.len())
                .filter(|i| record.outputs[*i].kind == "output")
                .collect();
            let picked: Vec<usize> = if saved.is_empty() {
                (0..record.outputs.len()).collect()
            } else {
                saved
            };
            let mut notes = Vec::new();
            if picked.len() > MAX_FILES {
                notes.push(format!(
                    "the job made {} files; the first {MAX_FILES} are attached",
                    picked.len()
                ));
            }
            let mut files = Vec::new();
            for index in picked.into_iter().take(MAX_FILES) {
                let (output, bytes) = self
                    .fleet
                    .output(job, index)
                    .await
                    .map_err(|e| JobError::Unavailable(e.to_string()))?;
                files.push((output.filename, bytes));
            }
            let fitted = tokio::task::spawn_blocking(move || {
                files
                    .iter()
                    .map(|(name, bytes)| fit(name, bytes, per_file_limit))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| JobError::Unavailable(format!("the result could not be prepared: {e}")))?;
            let mut result = ResultFiles {
                files: Vec::new(),
                notes,
            };
            for f in fitted {
                match f {
                    Fitted::Fits(file) => result.files.push(file),
                    Fitted::Recompressed(file, note) => {
                        result.files.push(file);
                        result.notes.push(note);
                    }
                    Fitted::Left(note) => result.notes.push(note),
                }
            }
            Ok(result)
        })
    }

    fn cancel(
        &self,
        job: JobId,
        user: &UserId,
        operator: bool,
    ) -> LocalBoxFuture<'_, Result<(), JobError>> {
        let user = user.clone();
        Box::pin(async move {
            let record = self.fleet.table.get(job).ok_or(JobError::Unknown(job))?;
            if record.user != user && !operator {
                return Err(JobError::NotYours(job));
            }
            if record.state.is_terminal() {
                return Err(JobError::Finished {
                    job,
                    state: record.state,
                });
            }
            let answer = self
                .fleet
                .scheduler
                .send(Cancel { job })
                .await
                .map_err(|e| JobError::Unavailable(e.to_string()))?;
            match answer {
                Ok(()) => Ok(()),
                Err(CancelError::NotFound(job)) => Err(JobError::Unknown(job)),
                Err(CancelError::AlreadyFinished(job)) => Err(JobError::Finished {
                    job,
                    state: self.fleet.table.state(job).unwrap_or(record.state),
                }),
            }
        })
    }

    fn status(&self, user: &UserId) -> LocalBoxFuture<'_, Result<FleetView, JobError>> {
        let user = user.clone();
        Box::pin(async move {
            let snapshot = self
                .fleet
                .scheduler
                .send(GetSchedulerSnapshot)
                .await
                .map_err(|e| JobError::Unavailable(e.to_string()))?;
            let gpu_names: HashMap<String, String> = self
                .fleet
                .gpus
                .get()
                .into_iter()
                .map(|g| (g.id.0, g.name))
                .collect();
            let instances = snapshot
                .instances
                .iter()
                .map(|i| InstanceLine {
                    id: i.id.0.clone(),
                    gpu: i
                        .gpu
                        .as_ref()
                        .map(|g| gpu_names.get(&g.0).cloned().unwrap_or_else(|| g.0.clone())),
                    phase: i.phase.name().to_string(),
                    running: i
                        .running
                        .iter()
                        .filter_map(|j| self.fleet.table.get(*j).map(|r| r.template))
                        .collect(),
                })
                .collect();
            let mut mine: Vec<_> = self
                .fleet
                .table
                .jobs_of(&user)
                .into_iter()
                .filter(|r| !r.state.is_terminal())
                .collect();
            mine.sort_by_key(|r| r.queued_at);
            Ok(FleetView {
                instances,
                queue_depth: snapshot.queue_depth,
                queue_capacity: snapshot.queue_capacity,
                mine: mine
                    .into_iter()
                    .map(|r| OwnJob {
                        job: r.id,
                        template: r.template,
                        state: r.state,
                        position: r.position,
                        eta: r.eta,
                    })
                    .collect(),
                shutting_down: snapshot.shutting_down,
                demo: self.fleet.demo,
            })
        })
    }

    fn models(&self, kind: ModelKind) -> LocalBoxFuture<'_, Result<Vec<String>, JobError>> {
        let kind = match kind {
            ModelKind::Checkpoint => model_choices::ModelKind::Checkpoints,
            ModelKind::Lora => model_choices::ModelKind::Loras,
            ModelKind::UpscaleModel => model_choices::ModelKind::UpscaleModels,
        };
        Box::pin(async move {
            self.fleet.models(kind).await.map_err(|e| match e {
                ModelListError::NotReady(why) | ModelListError::Unavailable(why) => {
                    JobError::Unavailable(why)
                }
            })
        })
    }

    fn operate(
        &self,
        operation: FleetOperation,
    ) -> LocalBoxFuture<'_, Result<String, OperationError>> {
        let failed = |e: OperatorError| OperationError::Failed(e.to_string());
        Box::pin(async move {
            let fleet = &self.fleet;
            match operation {
                FleetOperation::Metrics => fleet.metrics_line().await.map_err(failed),
                FleetOperation::PauseQueue => Ok(pause_text(fleet.pause().await.map_err(failed)?)),
                FleetOperation::ResumeQueue => {
                    Ok(pause_text(fleet.resume().await.map_err(failed)?))
                }
                FleetOperation::Drain { instance } => {
                    fleet.drain_instance(&instance).await.map_err(failed)?;
                    Ok(format!(
                        "Draining `{instance}`: it takes no new jobs, finishes its running ones, then stops until `/fleet restart`."
                    ))
                }
                FleetOperation::Restart { instance } => {
                    fleet.restart_instance(&instance).await.map_err(failed)?;
                    Ok(format!(
                        "Restarting `{instance}`: its running jobs go to other instances and a fresh process starts now."
                    ))
                }
            }
        })
    }
}

/// What a pause or resume did, in words for the operator.
fn pause_text(pause: QueuePause) -> String {
    let state = if pause.paused { "paused" } else { "running" };
    let waiting = pause.queue_depth;
    if pause.changed {
        format!("The queue is {state} now ({waiting} waiting).")
    } else {
        format!("The queue was already {state} ({waiting} waiting).")
    }
}
