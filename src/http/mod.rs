//! The HTTP API (actix-web): jobs, their events and outputs, status, metrics and health.
//!
//! Bound to 127.0.0.1:8080 by default. Requests carry `Authorization: Bearer <token>` when
//! tokens are configured; errors are JSON `{"error": {"code", "message"}}`.

pub mod api_types;
pub mod auth;
pub mod error;
pub mod job_form;
pub mod jobs;
pub mod models;
pub mod request_body;
pub mod sse;
pub mod status;

use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};

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
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::PathConfig::default()
            .error_handler(|err, _| ApiError::NotFound(err.to_string()).into()),
    )
    .route("/v1/jobs", web::post().to(jobs::create))
    .route("/v1/jobs/{id}", web::get().to(jobs::get))
    .route("/v1/jobs/{id}", web::delete().to(jobs::cancel))
    .route("/v1/jobs/{id}/events", web::get().to(jobs::events))
    .route("/v1/jobs/{id}/outputs/{n}", web::get().to(jobs::output))
    .route("/v1/models", web::get().to(models::list))
    .route("/v1/models/{kind}/{name:.*}", web::put().to(models::put))
    .route(
        "/v1/models/{kind}/{name:.*}",
        web::delete().to(models::delete),
    )
    .route("/v1/status", web::get().to(status::status))
    .route("/metrics", web::get().to(status::metrics))
    .route("/healthz", web::get().to(status::healthz))
    .route("/readyz", web::get().to(status::readyz))
    .default_service(web::to(unknown_route));
}

/// Any other method or path: the JSON error, naming what exists.
async fn unknown_route(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route {} {}: the API has POST /v1/jobs, GET|DELETE /v1/jobs/{{id}}, GET \
         /v1/jobs/{{id}}/events, GET /v1/jobs/{{id}}/outputs/{{n}}, GET /v1/models, PUT|DELETE \
         /v1/models/{{kind}}/{{name}}, GET /v1/status, GET /metrics, GET /healthz and GET /readyz",
        req.method(),
        jobs::shorten(req.path(), 80)
    )))
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
    // The path only: a query string may carry a secret (`?token=`).
    let request = format!("{} {}", req.method(), req.path());
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
    let addr = listener.local_addr()?;
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap_fn(log_request)
            .configure(routes)
    })
    .workers(2)
    // A client that closes its end is gone: its event stream is dropped at once, not at the
    // next event or keep-alive (the socket would sit in CLOSE-WAIT until then).
    .h1_allow_half_closed(false)
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
