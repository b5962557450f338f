//! Shared pieces of the end-to-end fleet benches: a fleet of `fake-comfyui` instances booted
//! in-process, jobs submitted through the real submit path and awaited on the event hub, and
//! small statistics helpers.
//!
//! Included by each bench with `#[path = "support/mod.rs"] mod support;` (a folder, so cargo does
//! not take it for a bench target of its own).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use comfy_fleet::app::App;
use comfy_fleet::config::{Config, DiscoveryMode};
use comfy_fleet::fleet::FleetHandle;
use comfy_fleet::fleet::events::Subscribe;
use comfy_fleet::fleet::submit::{JobRequest, JobSource, submit};
use comfy_fleet_actors::messages::InstancePhase;
use comfy_fleet_actors::{JobEvent, JobId, UserId};
use serde_json::{Value, json};

/// The user every bench job runs as (exempt from the rate limits).
pub const BENCH_USER: &str = "bench";
/// Canvas side of the demo jobs: small, so PNG encoding in the fake costs next to nothing.
pub const CANVAS: u64 = 64;
/// Safety net on any wait; the benches wait on real signals (events, log lines).
pub const GUARD: Duration = Duration::from_secs(300);

/// The fake ComfyUI binary cargo built for this bench.
pub fn fake_binary() -> String {
    env!("CARGO_BIN_EXE_fake-comfyui").to_string()
}

/// The repository's workflow templates.
pub fn workflows_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows")
}

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
        fake_binary(),
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

/// Starts the application and waits until every instance is ready.
pub async fn boot_ready(config: Config) -> App {
    let instances = config.gpus.cpu_instances as usize;
    let (_trigger, shutdown) = comfy_fleet::shutdown::channel();
    let app = App::start(config, None, shutdown)
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

/// The `p`-th percentile (0–100) of the samples, nearest-rank.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// A `KEY:   N kB` line of /proc/PID/status, in kB.
pub fn proc_status_kb(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The pids of this process's direct children.
pub fn child_pids() -> Vec<String> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.chars().all(|c| c.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
                    let after = stat.rsplit_once(')')?.1.to_owned();
                    after.split_whitespace().nth(1).map(|p| p == me)
                })
                .unwrap_or(false)
        })
        .collect()
}
