//! The HTTP API (actix-web): jobs, their events and outputs, status, metrics and health.
//!
//! Bound to 127.0.0.1:8080 by default. Requests carry `Authorization: Bearer <token>` when
//! tokens are configured; errors are JSON `{"error": {"code", "message"}}`.

pub mod api_types;
pub mod auth;
pub mod error;
pub mod jobs;
pub mod models;
pub mod sse;
pub mod status;

use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, guard, web};

use crate::fleet::FleetHandle;
use crate::http::auth::TokenMap;
use crate::http::error::ApiError;
use crate::shutdown::Shutdown;

/// What every handler reads.
#[derive(Clone)]
pub struct ApiState {
    pub fleet: FleetHandle,
    pub tokens: TokenMap,
    /// Whether the program is stopping (`/readyz` says so).
    pub shutdown: Shutdown,
}

impl ApiState {
    pub fn new(fleet: FleetHandle, shutdown: Shutdown) -> Self {
        let http = &fleet.config.http;
        let tokens = TokenMap::new(http.tokens.clone(), http.anonymous_user.clone())
            .with_operators(http.operators.iter().cloned());
        Self {
            fleet,
            tokens,
            shutdown,
        }
    }
}

/// Registers the routes.
pub fn routes(cfg: &mut web::ServiceConfig, max_body: usize) {
    cfg.app_data(web::JsonConfig::default().limit(max_body).error_handler(|err, _| {
        ApiError::bad_request("invalid_json", format!("the body is not a valid job: {err}")).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|err, _| ApiError::NotFound(err.to_string()).into()))
    .service(
        web::resource("/v1/jobs")
            .route(web::post().guard(guard::Header("content-type", "application/json")).to(jobs::create_json))
            .route(web::post().guard(guard::fn_guard(|ctx| {
                ctx.head()
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("multipart/form-data"))
            })).to(jobs::create_multipart))
            .route(web::post().to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::bad_request(
                    "unsupported_media_type",
                    "send the job as application/json, or multipart/form-data with a `request` part and image parts",
                ))
            })),
    )
    .route("/v1/jobs/{id}", web::get().to(jobs::get))
    .route("/v1/jobs/{id}", web::delete().to(jobs::cancel))
    .route("/v1/jobs/{id}/events", web::get().to(jobs::events))
    .route("/v1/jobs/{id}/outputs/{n}", web::get().to(jobs::output))
    .route("/v1/models", web::get().to(models::list))
    .route("/v1/models/{kind}/{name:.*}", web::put().to(models::put))
    .route("/v1/models/{kind}/{name:.*}", web::delete().to(models::delete))
    .route("/v1/status", web::get().to(status::status))
    .route("/metrics", web::get().to(status::metrics))
    .route("/healthz", web::get().to(status::healthz))
    .route("/readyz", web::get().to(status::readyz));
}

/// Logs each request (target `fleet.http`) with its status and the time to its answer's head
/// (an event stream goes on after it), rounded.
fn log_request<S>(
    req: actix_web::dev::ServiceRequest,
    service: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse, actix_web::Error>> + use<S>
where
    S: actix_web::dev::Service<
            actix_web::dev::ServiceRequest,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let started = std::time::Instant::now();
    let peer = req
        .peer_addr()
        .map_or_else(|| "-".to_string(), |a| a.ip().to_string());
    let request = format!("{} {}", req.method(), req.uri());
    let answer = service.call(req);
    async move {
        let answer = answer.await?;
        tracing::info!(
            target: "fleet.http",
            %peer,
            status = answer.status().as_u16(),
            took = %comfy_fleet_actors::duration_text::rounded(started.elapsed()),
            "{request}"
        );
        Ok(answer)
    }
}

/// A running API server.
pub struct ApiServer {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
}

/// Starts the API server on an already bound listener (so `serve` can bind before it boots
/// the instances, and fail early when the address is taken).
pub fn start(state: ApiState, listener: std::net::TcpListener) -> std::io::Result<ApiServer> {
    let max_body = state.fleet.config.http.max_body_mb as usize * 1024 * 1024;
    let addr = listener.local_addr()?;
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap_fn(log_request)
            .configure(|cfg| routes(cfg, max_body))
    })
    .workers(2)
    // Events are small writes: without it, Nagle's algorithm holds each one back until the
    // client acknowledges the previous one, and clients delay that acknowledgement (~40 ms).
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok(ApiServer { addr, handle })
}
