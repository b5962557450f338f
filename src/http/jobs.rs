//! `/v1/jobs`: submit (JSON or multipart with images), read, follow (server-sent events),
//! download outputs and cancel.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use comfy_fleet_actors::messages::{Cancel, CancelError, SubmitError};
use comfy_fleet_actors::scheduling::JobRecord;
use comfy_fleet_actors::{JobEvent, JobId, JobState};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;

use crate::fleet::events::{Subscribe, Subscription};
use crate::fleet::images::InputImage;
use crate::fleet::outputs::OutputError;
use crate::fleet::submit::{JobRequest, JobSource, SubmitFailure, submit};
use crate::http::ApiState;
use crate::http::api_types::{CreatedJob, JobStateView, JobView, NewJob};
use crate::http::error::ApiError;
use crate::http::sse::job_stream;
use crate::workflow::Workflow;

fn parse_id(raw: &str) -> Result<JobId, ApiError> {
    uuid::Uuid::parse_str(raw).map(JobId).map_err(|_| {
        ApiError::NotFound(format!(
            "no job `{raw}`: job ids are UUIDs as returned by POST /v1/jobs"
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
            SubmitFailure::Invalid(m) => ApiError::bad_request("bad_request", m),
            SubmitFailure::Queue(q @ SubmitError::ShuttingDown) => {
                ApiError::Unavailable(q.to_string())
            }
            SubmitFailure::Queue(q) => ApiError::QueueFull(q.to_string()),
            SubmitFailure::NotReady(m) => ApiError::Unavailable(format!(
                "no ComfyUI instance is ready yet ({m}); try again shortly"
            )),
            SubmitFailure::Internal(m) => ApiError::Unavailable(m),
        }
    }
}

/// `POST /v1/jobs` with a JSON body.
pub async fn create_json(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<NewJob>,
) -> Result<HttpResponse, ApiError> {
    let user = state.tokens.user(&req)?;
    let request = into_request(
        body.into_inner(),
        user,
        Vec::new(),
        state.fleet.config.http.allow_workflows,
    )?;
    created(&state, request).await
}

/// `POST /v1/jobs` with a multipart body: a `request` part (the JSON body) and one file part per
/// image parameter, named after it (`image`, `image2`…).
pub async fn create_multipart(
    state: web::Data<ApiState>,
    req: HttpRequest,
    mut form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let user = state.tokens.user(&req)?;
    let limit = state.fleet.config.http.max_body_mb as usize * 1024 * 1024;
    let mut body: Option<NewJob> = None;
    let mut images = Vec::new();
    let bad = |m: String| ApiError::bad_request("bad_multipart", m);
    while let Some(field) = form
        .try_next()
        .await
        .map_err(|e| bad(format!("unreadable multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let filename = field
            .content_disposition()
            .and_then(|c| c.get_filename())
            .map(str::to_string);
        let mut data = Vec::new();
        let mut field = field;
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| bad(format!("part `{name}` broke off: {e}")))?;
            if data.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge(format!(
                    "part `{name}` is larger than the {} MiB allowed (http.max_body_mb)",
                    state.fleet.config.http.max_body_mb
                )));
            }
            data.extend_from_slice(&chunk);
        }
        if name == "request" {
            body = Some(
                serde_json::from_slice(&data)
                    .map_err(|e| bad(format!("part `request` is not a valid job: {e}")))?,
            );
        } else if name.is_empty() {
            return Err(bad(
                "a part has no name; name each image part after its parameter (`image`, `image2`…)"
                    .into(),
            ));
        } else {
            images.push(InputImage {
                param: name.clone(),
                filename: filename.unwrap_or(name),
                bytes: data,
            });
        }
    }
    let body = body.ok_or_else(|| {
        bad("no `request` part: send the job JSON in a part named `request`".into())
    })?;
    let request = into_request(body, user, images, state.fleet.config.http.allow_workflows)?;
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
