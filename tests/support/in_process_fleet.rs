//! The application with a fleet of `fake-comfyui` instances, in this process (no HTTP API), for
//! the end-to-end benches: jobs submitted through the real submit path (rate limiter, template,
//! scheduler) and awaited on the event hub.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use comfy_fleet::app::App;
use comfy_fleet::config::{Config, DiscoveryMode};
use comfy_fleet::fleet::FleetHandle;
use comfy_fleet::fleet::events::Subscribe;
use comfy_fleet::fleet::submit::{JobRequest, JobSource, submit};
use comfy_fleet_actors::messages::InstancePhase;
use comfy_fleet_actors::{JobEvent, JobId, UserId};
use serde_json::{Value, json};

use super::{FAKE_COMFYUI, workflows_dir};

/// The user every bench job runs as (exempt from the rate limits).
pub const BENCH_USER: &str = "bench";
/// Canvas side of the demo jobs: small, so PNG encoding in the fake costs next to nothing.
pub const CANVAS: u64 = 64;
/// Safety net on any wait; the benches wait on real signals (events, log lines).
pub const GUARD: Duration = Duration::from_secs(300);

/// A fleet of `instances` CPU-only fake ComfyUIs with the given node and step times, no rate
/// limits for [`BENCH_USER`], and room for `queue_capacity` waiting jobs.
pub fn fleet_config(
    state_dir: &Path,
    instances: u32,
    node_time: Duration,
    queue_capacity: usize,
) -> Config {
    let mut config = Config::default();
    config.comfyui.command = vec![
        FAKE_COMFYUI.to_string(),
        "--fake-node-time".into(),
        humantime::format_duration(node_time).to_string(),
        "--fake-step-time".into(),
        "0ms".into(),
        "--database-url".into(),
        "sqlite:///:memory:".into(),
    ];
    config.comfyui.state_dir = state_dir.to_path_buf();
    config.gpus.discovery = DiscoveryMode::Declared;
    config.gpus.cpu_instances = instances;
    config.workflows.dir = workflows_dir();
    config.scheduler.queue_capacity = queue_capacity;
    config.scheduler.job_retention = queue_capacity.max(10_000);
    config.limits.exempt_users = vec![UserId::new(BENCH_USER)];
    config.limits.per_user.clear();
    config.limits.global.clear();
    config.limits.user_concurrent = 0;
    config.shutdown.drain_timeout = Duration::from_secs(5);
    config.http.enabled = false;
    config.logging.metrics_interval = Duration::from_secs(3600);
    config
}

/// Starts the application (no HTTP API) and waits until every instance is ready.
pub async fn boot_ready(config: Config) -> App {
    start_ready(config, None).await
}

/// Starts the application with its HTTP API on 127.0.0.1:0 and waits until every instance is
/// ready; the API's address is `App::api_addr`.
pub async fn boot_ready_serving(mut config: Config) -> App {
    config.http.enabled = true;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    start_ready(config, Some(listener)).await
}

async fn start_ready(config: Config, listener: Option<std::net::TcpListener>) -> App {
    let instances = config.gpus.cpu_instances as usize;
    let (_trigger, shutdown) = comfy_fleet::shutdown::channel();
    let app = App::start(config, listener, shutdown)
        .await
        .expect("the fleet boots");
    let phases = app.fleet().phases.clone();
    actix_rt::time::timeout(
        GUARD,
        phases.wait_until(|board| {
            board
                .values()
                .filter(|v| v.phase == InstancePhase::Ready)
                .count()
                == instances
        }),
    )
    .await
    .expect("every instance becomes ready");
    app
}

/// The URL of the fleet's first ready instance.
pub fn first_instance_url(app: &App) -> String {
    app.fleet()
        .phases
        .snapshot()
        .values()
        .find_map(|v| v.url.clone())
        .expect("a ready instance has a URL")
}

/// A demo-template job with this seed (unique seeds keep ComfyUI's cache out of the way).
pub fn demo_request(seed: u64) -> JobRequest {
    let mut params = BTreeMap::new();
    params.insert("seed".to_string(), json!(seed));
    params.insert("width".to_string(), json!(CANVAS));
    params.insert("height".to_string(), json!(CANVAS));
    JobRequest {
        user: UserId::new(BENCH_USER),
        roles: Vec::new(),
        source: JobSource::Template("demo".into()),
        params,
        images: Vec::new(),
        uploads: Vec::new(),
        extra_data: Value::Null,
    }
}

/// The same job as an API prompt, for the direct connector client.
pub fn demo_prompt(seed: u64) -> Value {
    let text = std::fs::read_to_string(workflows_dir().join("demo.json")).expect("demo.json");
    let mut prompt: Value = serde_json::from_str(&text).expect("demo.json is JSON");
    prompt["1"]["inputs"]["width"] = json!(CANVAS);
    prompt["1"]["inputs"]["height"] = json!(CANVAS);
    prompt["2"]["inputs"]["seed"] = json!(seed);
    prompt
}

/// Submits a job through the whole fleet (rate limiter, template, scheduler) and returns its id.
pub async fn submit_job(fleet: &FleetHandle, seed: u64) -> JobId {
    submit(fleet, demo_request(seed))
        .await
        .unwrap_or_else(|e| panic!("the bench job is accepted: {e}"))
        .job
}

/// Waits for the job's final event on the event hub; panics unless it is `Done`. Returns how
/// many `Queued` (position) events the job's subscriber saw, past and live.
pub async fn wait_done(fleet: &FleetHandle, job: JobId) -> usize {
    let subscription = fleet
        .events
        .send(Subscribe(job))
        .await
        .expect("the event hub answers")
        .expect("the hub knows the job");
    let check = |event: &JobEvent| match event {
        JobEvent::Done { .. } => true,
        e if e.is_final() => panic!("bench job ended badly: {e:?}"),
        _ => false,
    };
    let is_queued = |event: &JobEvent| matches!(event, JobEvent::Queued { .. });
    let mut queued = subscription.past.iter().filter(|e| is_queued(e)).count();
    if subscription.past.iter().any(check) {
        return queued;
    }
    let mut live = subscription.live;
    let finished = actix_rt::time::timeout(GUARD, async {
        while let Some(event) = live.recv().await {
            queued += usize::from(is_queued(&event));
            if check(&event) {
                return true;
            }
        }
        false
    })
    .await
    .expect("the job finishes within the guard");
    assert!(finished, "the event stream closed without a Done event");
    queued
}

/// Submit, then wait for Done; the time between the two.
pub async fn run_job(fleet: &FleetHandle, seed: u64) -> Duration {
    let started = Instant::now();
    let job = submit_job(fleet, seed).await;
    wait_done(fleet, job).await;
    started.elapsed()
}

/// [`demo_prompt`] saving under its own `prefix` (a sub-folder of the output folder), so a run's
/// saves never scan the files of earlier runs for the next free counter.
pub fn demo_prompt_saved_as(seed: u64, prefix: &str) -> Value {
    let mut prompt = demo_prompt(seed);
    prompt["4"]["inputs"]["filename_prefix"] = json!(format!("{prefix}/demo"));
    prompt
}

/// The job of [`demo_prompt_saved_as`] as a whole workflow sent through the fleet.
pub fn demo_request_saved_as(seed: u64, prefix: &str) -> JobRequest {
    let prompt = demo_prompt_saved_as(seed, prefix);
    JobRequest {
        source: JobSource::Workflow(
            comfy_fleet::workflow::Workflow::from_value(prompt).expect("the demo prompt"),
        ),
        params: BTreeMap::new(),
        ..demo_request(seed)
    }
}
