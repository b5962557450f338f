//! `/v1/status`, `/metrics`, `/healthz` and `/readyz`: what operators and load balancers read.

use actix_web::{HttpResponse, web};
use comfy_fleet_actors::messages::GetSchedulerSnapshot;
use comfy_fleet_actors::scheduling::snapshot::SchedulerSnapshot;

use crate::fleet::metrics::{PROMETHEUS_CONTENT_TYPE, render_prometheus};
use crate::http::ApiState;
use crate::http::api_types::{HealthView, ReadinessView, StatusSources, StatusView};
use crate::http::error::ApiError;
use crate::shutdown::Stage;

/// The scheduler's view of instances, queue and jobs.
async fn scheduler_snapshot(state: &ApiState) -> Result<SchedulerSnapshot, ApiError> {
    state
        .fleet
        .scheduler
        .send(GetSchedulerSnapshot)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// `GET /v1/status`: instances, GPUs and the queue; a user who is not an operator sees the
/// pool's shape and their own jobs only.
pub async fn status(
    state: web::Data<ApiState>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let caller = state.tokens.caller(&req)?;
    let snapshot = scheduler_snapshot(&state).await?;
    let view = StatusView::from(StatusSources {
        snapshot: &snapshot,
        board: &state.fleet.phases.snapshot(),
        gpus: &state.fleet.gpus.get(),
        gpu_source: state.fleet.gpu_source,
        demo: state.fleet.demo,
    });
    let view = if caller.sees_everything {
        view
    } else {
        view.for_user(&state.fleet.table.jobs_of(&caller.user))
    };
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /metrics`: Prometheus text format; needs a token when tokens are set, unless
/// `http.metrics_public`.
pub async fn metrics(
    state: web::Data<ApiState>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !state.fleet.config.http.metrics_public {
        state.tokens.caller(&req)?;
    }
    let snap = scheduler_snapshot(&state).await?;
    let text = render_prometheus(
        &state.fleet.job_metrics,
        &snap,
        &state.fleet.gpus.get(),
        state.fleet.demo,
    )
    .map_err(|e| ApiError::Unavailable(format!("the metrics could not be written: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type(PROMETHEUS_CONTENT_TYPE)
        .body(text))
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthView {
        status: "ok".into(),
    })
}

/// `GET /readyz`: at least one instance takes jobs, and the program is not stopping.
pub async fn readyz(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    if state.shutdown.stage() != Stage::Running {
        return Err(ApiError::Unavailable(
            "comfy-fleet is shutting down and takes no new jobs".into(),
        ));
    }
    let ready = state.fleet.phases.ready();
    if ready == 0 {
        let phases: Vec<String> = state
            .fleet
            .phases
            .snapshot()
            .iter()
            .map(|(id, v)| format!("{id}: {:?}", v.phase).to_lowercase())
            .collect();
        return Err(ApiError::Unavailable(format!(
            "no instance is ready yet ({})",
            if phases.is_empty() {
                "none reported".into()
            } else {
                phases.join(", ")
            }
        )));
    }
    Ok(HttpResponse::Ok().json(ReadinessView {
        status: "ready".into(),
        ready_instances: ready,
    }))
}
