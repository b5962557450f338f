//! `/v1/status`, `/metrics`, `/healthz` and `/readyz`: what operators and load balancers read.

use actix_web::{HttpResponse, web};
use comfy_fleet_actors::messages::GetSchedulerSnapshot;
use comfy_fleet_actors::scheduling::snapshot::SchedulerSnapshot;
use serde_json::json;

use crate::fleet::metrics::render_prometheus;
use crate::http::ApiState;
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

/// `GET /v1/status`: instances, GPUs and the queue.
pub async fn status(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let snap = scheduler_snapshot(&state).await?;
    let board = state.fleet.phases.snapshot();
    let instances: Vec<_> = snap
        .instances
        .iter()
        .map(|i| {
            let detail = board
                .get(&i.id)
                .and_then(|v| v.detail.clone())
                .or_else(|| i.detail.clone());
            json!({
                "id": i.id.0,
                "gpu": i.gpu.as_ref().map(|g| g.0.clone()),
                "phase": i.phase,
                "url": i.url,
                "detail": detail,
                "running_jobs": i.running.iter().map(|j| j.to_string()).collect::<Vec<_>>(),
                "loaded_models": i.loaded_models,
                "backend": if state.fleet.demo { "demo (fake-comfyui)" } else { "comfyui" },
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "demo_backend": state.fleet.demo,
        "backend": if state.fleet.demo {
            "DEMO: instances are fake-comfyui (no GPU work); set comfyui.path to run ComfyUI"
        } else {
            "ComfyUI"
        },
        "gpu_source": state.fleet.gpu_source,
        "gpus": state.fleet.gpus.get(),
        "instances": instances,
        "queue": { "depth": snap.queue_depth, "capacity": snap.queue_capacity },
        "jobs": snap.jobs,
        "latency": snap.latency,
        "shutting_down": snap.shutting_down,
    })))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let snap = scheduler_snapshot(&state).await?;
    let text = render_prometheus(&snap, &state.fleet.gpus.get(), state.fleet.demo);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
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
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "ready_instances": ready })))
}
