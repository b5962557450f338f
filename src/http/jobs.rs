//! `/v1/jobs`: submit (JSON or multipart with images), read, follow (server-sent events),
//! download outputs and cancel.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use comfy_fleet_actors::messages::{Cancel, CancelError, SubmitError};
use comfy_fleet_actors::scheduling::JobRecord;
use comfy_fleet_actors::{JobEvent, JobId, JobState};
use serde_json::Value;

use crate::fleet::events::{Subscribe, Subscription};
use crate::fleet::images::InputImage;
use crate::fleet::outputs::OutputError;
use crate::fleet::prompt_check::PromptCheckError;
use crate::fleet::submit::{JobRequest, JobSource, SubmitFailure, submit};
use crate::http::ApiState;
use crate::http::api_types::{CreatedJob, JobStateView, JobView, NewJob};
use crate::http::error::ApiError;
use crate::http::job_form::{FormLimits, parse_job_form};
use crate::http::request_body::read_bounded;
use crate::http::sse::job_stream;
use crate::shutdown::Stage;
use crate::workflow::Workflow;

fn parse_id(raw: &str) -> Result<JobId, ApiError> {
    uuid::Uuid::parse_str(raw).map(JobId).map_err(|_| {
        ApiError::NotFound(format!(
            "no job `{}`: job ids are UUIDs as returned by POST /v1/jobs",
            shorten(raw, 40)
        ))
    })
}

fn into_request(
    body: NewJob,
    user: comfy_fleet_actors::UserId,
    images: Vec<InputImage>,
    allow_workflows: bool,
) -> Result<JobRequest, ApiError> {
    let source = match (body.template, body.workflow) {
        (Some(t), None) => JobSource::Template(t),
        (None, Some(w)) => {
            if !allow_workflows {
                return Err(ApiError::bad_request(
                    "workflows_disabled",
                    "this fleet runs templates only (http.allow_workflows = false); send a `template` name",
                ));
            }
            JobSource::Workflow(
                Workflow::from_value(w)
                    .map_err(|e| ApiError::bad_request("invalid_workflow", e.to_string()))?,
            )
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "bad_request",
                "send either `template` or `workflow`, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "bad_request",
                "name a `template` (see `comfy-fleet templates`) or send a `workflow`",
            ));
        }
    };
    Ok(JobRequest {
        user,
        roles: Vec::new(),
        source,
        params: body.params,
        images,
        uploads: Vec::new(),
        extra_data: body
            .extra_data
            .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
    })
}

impl From<SubmitFailure> for ApiError {
    fn from(e: SubmitFailure) -> Self {
        match e {
            SubmitFailure::RateLimited(r) => {
                let retry_after = r.retry_after;
                ApiError::RateLimited {
                    message: r.to_string(),
                    retry_after,
                }
            }
            SubmitFailure::Workflow(w) => ApiError::bad_request("invalid_workflow", w.to_string()),
            SubmitFailure::Image(i) => ApiError::bad_request("invalid_image", i.to_string()),
            SubmitFailure::Prompt(p @ PromptCheckError::ExtraData(_)) => {
                ApiError::bad_request("bad_request", p.to_string())
            }
            SubmitFailure::Prompt(p) => ApiError::bad_request("invalid_workflow", p.to_string()),
            SubmitFailure::Invalid(m) => ApiError::bad_request("bad_request", m),
            SubmitFailure::Queue(q @ SubmitError::ShuttingDown) => {
                ApiError::Unavailable(q.to_string())
            }
            SubmitFailure::Queue(q @ SubmitError::QueueFull { retry_after, .. }) => {
                ApiError::QueueFull {
                    message: q.to_string(),
                    retry_after,
                }
            }
            SubmitFailure::Queue(q) => ApiError::Unavailable(q.to_string()),
            SubmitFailure::NotReady(m) => ApiError::Unavailable(format!(
                "no ComfyUI instance is ready yet ({m}); try again shortly"
            )),
            SubmitFailure::Internal(m) => ApiError::Unavailable(m),
        }
    }
}

/// What a `POST /v1/jobs` body is, by its `Content-Type` (case and parameters aside).
enum BodyKind {
    Json,
    Form,
}

fn body_kind(req: &HttpRequest) -> Result<BodyKind, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "multipart/form-data" => Ok(BodyKind::Form),
        _ => Err(ApiError::UnsupportedMediaType(if content_type.is_empty() {
            "the request has no Content-Type: send the job as application/json, or              multipart/form-data with a `request` part and image parts"
                .into()
        } else {
            format!(
                "`{}` is not a job: send it as application/json, or multipart/form-data with a \
                 `request` part and image parts",
                shorten(content_type, 80)
            )
        })),
    }
}

/// `text` cut to `max` characters, with an ellipsis when it was longer.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// `POST /v1/jobs`: a JSON body, or a multipart form with a `request` part (the JSON) and one
/// file part per image parameter, named after it (`image`, `image2`…). The token is checked,
/// and a stopping fleet refuses, before a byte of the body is read; the whole body is bounded by
/// `http.max_body_mb` and a form holds at most `http.max_images` images.
pub async fn create(
    state: web::Data<ApiState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let user = state.tokens.user(&req)?;
    if state.shutdown.stage() != Stage::Running {
        return Err(ApiError::Unavailable(SubmitError::ShuttingDown.to_string()));
    }
    let kind = body_kind(&req)?;
    let http = &state.fleet.config.http;
    let body = read_bounded(&req, payload, http.max_body_mb as usize * 1024 * 1024).await?;
    let (job, images) = match kind {
        BodyKind::Json => {
            let job: NewJob = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request("invalid_json", format!("the body is not a valid job: {e}"))
            })?;
            (job, Vec::new())
        }
        BodyKind::Form => {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let limits = FormLimits {
                max_images: http.max_images,
            };
            let form = parse_job_form(content_type, &body, limits)
                .map_err(|e| ApiError::bad_request("bad_multipart", e.to_string()))?;
            let request = form.request.ok_or_else(|| {
                ApiError::bad_request(
                    "bad_multipart",
                    "no `request` part: send the job JSON in a part named `request`",
                )
            })?;
            let job: NewJob = serde_json::from_slice(&request).map_err(|e| {
                ApiError::bad_request(
                    "bad_multipart",
                    format!("part `request` is not a valid job: {e}"),
                )
            })?;
            let images = form
                .files
                .into_iter()
                .map(|f| InputImage {
                    filename: f.filename.unwrap_or_else(|| f.name.clone()),
                    param: f.name,
                    bytes: f.bytes,
                })
                .collect();
            (job, images)
        }
    };
    let request = into_request(job, user, images, http.allow_workflows)?;
    created(&state, request).await
}

async fn created(state: &ApiState, request: JobRequest) -> Result<HttpResponse, ApiError> {
    let submitted = submit(&state.fleet, request).await?;
    let answer = CreatedJob {
        id: submitted.job.0,
        position: submitted.position,
        seed: submitted.seed,
    };
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/jobs/{}", answer.id)))
        .json(answer))
}

/// The record of a job the caller may see (their own, or any without tokens).
fn visible(state: &ApiState, req: &HttpRequest, raw: &str) -> Result<JobRecord, ApiError> {
    let user = state.tokens.user(req)?;
    let id = parse_id(raw)?;
    let record = state
        .fleet
        .table
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))?;
    if state.tokens.enforced() && record.user != user {
        return Err(ApiError::NotFound(format!("no job {id}")));
    }
    Ok(record)
}

/// `GET /v1/jobs/{id}`.
pub async fn get(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&state, &req, &path)?;
    Ok(HttpResponse::Ok().json(JobView::from(&record)))
}

/// `DELETE /v1/jobs/{id}`: removes a queued job, interrupts a running one.
pub async fn cancel(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&state, &req, &path)?;
    let answer = state
        .fleet
        .scheduler
        .send(Cancel { job: record.id })
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    match answer {
        Ok(()) => {
            let record = state.fleet.table.get(record.id).unwrap_or(record);
            Ok(HttpResponse::Accepted().json(JobView::from(&record)))
        }
        Err(CancelError::NotFound(id)) => Err(ApiError::NotFound(format!("no job {id}"))),
        Err(CancelError::AlreadyFinished(id)) => Err(ApiError::Conflict(format!(
            "job {id} has already finished ({}); nothing to cancel",
            JobStateView::from(record.state).as_str()
        ))),
    }
}

/// `GET /v1/jobs/{id}/outputs/{n}`: the file, fetched from the instance that made it.
pub async fn output(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, usize)>,
) -> Result<HttpResponse, ApiError> {
    let (raw, n) = path.into_inner();
    let record = visible(&state, &req, &raw)?;
    if record.state != JobState::Done && record.outputs.is_empty() {
        return Err(ApiError::NotFound(format!(
            "job {} has no outputs yet (it is {})",
            record.id,
            JobStateView::from(record.state).as_str()
        )));
    }
    let (file, bytes) = state
        .fleet
        .output(record.id, n)
        .await
        .map_err(|e| match e {
            e @ (OutputError::NoSuchOutput { .. }
            | OutputError::UnknownJob(_)
            | OutputError::Expired { .. }) => ApiError::NotFound(format!("job {}: {e}", record.id)),
            e => ApiError::Upstream(e.to_string()),
        })?;
    let mime = mime_guess::from_path(&file.filename).first_or_octet_stream();
    Ok(HttpResponse::Ok()
        .content_type(mime.essence_str())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}\"", file.filename.replace('"', "")),
        ))
        .body(bytes))
}

/// `GET /v1/jobs/{id}/events`: the events so far, then live ones, until the job ends, with a
/// keep-alive comment every `http.sse_keep_alive` of quiet.
pub async fn events(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&state, &req, &path)?;
    let sub = state
        .fleet
        .events
        .send(Subscribe(record.id))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let Subscription { past, live } = match sub {
        Some(sub) => sub,
        None => {
            // The hub forgot this finished job: tell its end from the table.
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            drop(tx);
            Subscription {
                past: final_event(&record).into_iter().collect(),
                live: rx,
            }
        }
    };
    let keep_alive = state.fleet.config.http.sse_keep_alive;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(job_stream(past, live, keep_alive)))
}

fn final_event(record: &JobRecord) -> Option<JobEvent> {
    let job = record.id;
    match record.state {
        JobState::Done => Some(JobEvent::Done {
            job,
            outputs: record.outputs.clone(),
        }),
        JobState::Failed => Some(JobEvent::Failed {
            job,
            message: record.error.clone().unwrap_or_default(),
            retriable: false,
        }),
        JobState::Cancelled => Some(JobEvent::Cancelled { job }),
        JobState::Queued | JobState::Running => None,
    }
}
