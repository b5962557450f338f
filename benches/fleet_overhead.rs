//! Fleet overhead: what the whole fleet adds to a job, against the bare connector.
//!
//! One `fake-comfyui` with zero-time nodes, started by the application itself (`App::start`, in
//! this process, HTTP API on 127.0.0.1:0). Three ways to run the same demo prompt (64×64 canvas,
//! a unique seed per job so ComfyUI's cache never answers):
//! - **HTTP + SSE**, as a script with an HTTP session does: `POST /v1/jobs`, then
//!   `GET /v1/jobs/{id}/events` read until the `done` frame, on one kept-alive connection, from
//!   a client thread of its own with a blocking socket (`TCP_NODELAY`, like curl);
//! - **fleet in-process**: `fleet::submit::submit` (rate limiter, template, scheduler, instance
//!   actor, connector) and wait for the `Done` event on the event hub;
//! - **direct**: `ComfyClient::run_prompt` on the same fake (websocket, `POST /prompt`,
//!   `/history`), which is what the instance actor itself calls.
//!
//! Latency: `--jobs N` (default 300) sequential jobs each way, interleaved in blocks of 25 so
//! drift on the shared machine hits all alike; p50/p95/p99 and the difference to direct.
//! Throughput: `--jobs` jobs in flight at once through the fleet (the scheduler keeps
//! `pipeline_depth` = 2 on the instance) versus the direct client with 2 and with 8 prompts in
//! flight.
//!
//! Run: `cargo bench --bench fleet_overhead [-- --jobs 300]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use comfy_fleet::comfy::{ClientConfig, ComfyClient, RunOptions};
use futures_util::StreamExt;
use futures_util::future::join_all;
use serde_json::json;
use uuid::Uuid;

use support::api_client::ApiClient;
use support::in_process_fleet::*;
use support::measures::*;

const BLOCK: usize = 25;
const WARMUP: usize = 20;

fn jobs_from_args() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == "--jobs")
        .map(|w| w[1].parse().expect("--jobs takes a number"))
        .unwrap_or(300)
}

async fn direct_job(client: &ComfyClient, seed: u64) -> Duration {
    let started = Instant::now();
    client
        .run_prompt(
            Uuid::new_v4(),
            &demo_prompt(seed),
            None,
            &RunOptions::default(),
            |_| {},
        )
        .await
        .expect("the direct prompt runs");
    started.elapsed()
}

/// One job through the HTTP API, timed on a client thread from the POST to the `done` frame.
async fn http_job(client: ApiClient, seed: u64) -> (ApiClient, Duration) {
    actix_web::rt::task::spawn_blocking(move || {
        let mut client = client;
        let started = Instant::now();
        let (status, created) = client.post_job(&json!({
            "template": "demo",
            "params": {"seed": seed, "width": CANVAS, "height": CANVAS},
        }));
        assert_eq!(status, 201, "the bench job is accepted: {created}");
        let id = created["id"].as_str().expect("a job id").to_string();
        let mut took = Duration::ZERO;
        let followed = client.follow(&id, || took = started.elapsed());
        assert_eq!(
            followed.last, "done",
            "bench job {id}: {:?}",
            followed.events
        );
        (client, took)
    })
    .await
    .expect("the client thread finishes")
}

async fn direct_throughput(client: &ComfyClient, jobs: usize, in_flight: usize, seed0: u64) -> f64 {
    let started = Instant::now();
    futures_util::stream::iter(0..jobs)
        .map(|i| direct_job(client, seed0 + i as u64))
        .buffer_unordered(in_flight)
        .collect::<Vec<_>>()
        .await;
    jobs as f64 / started.elapsed().as_secs_f64()
}

/// Jobs per second with every job submitted at once, and the `Queued` (position) events the
/// jobs' subscribers received in all.
async fn fleet_throughput(
    fleet: &comfy_fleet::fleet::FleetHandle,
    jobs: usize,
    seed0: u64,
) -> (f64, usize) {
    let started = Instant::now();
    let mut ids = Vec::with_capacity(jobs);
    for i in 0..jobs {
        ids.push(submit_job(fleet, seed0 + i as u64).await);
    }
    let queued: usize = join_all(ids.into_iter().map(|job| wait_done(fleet, job)))
        .await
        .into_iter()
        .sum();
    (jobs as f64 / started.elapsed().as_secs_f64(), queued)
}

/// Jobs per second with at most `window` jobs submitted and not yet done (a short queue).
async fn fleet_window_throughput(
    fleet: &comfy_fleet::fleet::FleetHandle,
    jobs: usize,
    window: usize,
    seed0: u64,
) -> f64 {
    let started = Instant::now();
    futures_util::stream::iter(0..jobs)
        .map(|i| run_job(fleet, seed0 + i as u64))
        .buffer_unordered(window)
        .collect::<Vec<_>>()
        .await;
    jobs as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let jobs = jobs_from_args();
    let state = tempfile::tempdir().expect("a temporary state folder");
    let system = actix_rt::System::new();
    system.block_on(async move {
        let config = fleet_config(state.path(), 1, Duration::ZERO, 10_000);
        let fleet = boot_ready_serving(config).await;
        let handle = fleet.fleet().clone();
        let url = first_instance_url(&fleet);
        let api: SocketAddr = fleet.api_addr().expect("the HTTP API listens");
        let client = ComfyClient::new(&url, ClientConfig::default()).expect("instance URL");
        let mut api_client = ApiClient::new(api);
        println!(
            "fleet_overhead: 1 fake-comfyui at {url}, HTTP API at {api}, zero-time nodes, \
             {jobs} jobs each way"
        );

        let mut seed = 1_000_000u64;
        let mut next_seed = || {
            seed += 1;
            seed
        };
        for _ in 0..WARMUP {
            direct_job(&client, next_seed()).await;
            run_job(&handle, next_seed()).await;
            api_client = http_job(api_client, next_seed()).await.0;
        }

        let mut direct = Vec::with_capacity(jobs);
        let mut through_fleet = Vec::with_capacity(jobs);
        let mut through_http = Vec::with_capacity(jobs);
        while direct.len() < jobs {
            let n = BLOCK.min(jobs - direct.len());
            for _ in 0..n {
                direct.push(direct_job(&client, next_seed()).await);
            }
            for _ in 0..n {
                through_fleet.push(run_job(&handle, next_seed()).await);
            }
            for _ in 0..n {
                let (back, took) = http_job(api_client, next_seed()).await;
                api_client = back;
                through_http.push(took);
            }
        }
        let stats = |samples: &[Duration]| {
            (
                percentile(samples, 50.0),
                percentile(samples, 95.0),
                percentile(samples, 99.0),
            )
        };
        let (d50, d95, d99) = stats(&direct);
        let added = |f: Duration, d: Duration| (f.as_secs_f64() - d.as_secs_f64()) * 1000.0;
        println!("\nlatency, submit to done, {jobs} sequential jobs each:");
        println!(
            "  {:<40} p50 {:>12}  p95 {:>12}  p99 {:>12}",
            "direct ComfyClient::run_prompt",
            ms(d50),
            ms(d95),
            ms(d99)
        );
        for (name, samples) in [
            ("fleet in-process (submit + hub)", &through_fleet),
            ("HTTP API + SSE (POST, events to done)", &through_http),
        ] {
            let (p50, p95, p99) = stats(samples);
            println!(
                "  {:<40} p50 {:>12}  p95 {:>12}  p99 {:>12}",
                name,
                ms(p50),
                ms(p95),
                ms(p99)
            );
            println!(
                "  {:<40} p50 {:>9.3} ms  p95 {:>9.3} ms  p99 {:>9.3} ms",
                "  added over direct",
                added(p50, d50),
                added(p95, d95),
                added(p99, d99)
            );
        }
        println!("  (target for HTTP API + SSE: at most +1 ms at p50, +2 ms at p99)");

        let seed0 = next_seed() + 10 * jobs as u64;
        let direct2 = direct_throughput(&client, jobs, 2, seed0).await;
        let direct8 = direct_throughput(&client, jobs, 8, seed0 + jobs as u64).await;
        let fleet4 = fleet_window_throughput(&handle, jobs, 4, seed0 + 2 * jobs as u64).await;
        let (fleet_all, queued_events) =
            fleet_throughput(&handle, jobs, seed0 + 3 * jobs as u64).await;
        println!("\nthroughput, {jobs} jobs (the fleet keeps pipeline_depth = 2 on the instance):");
        println!("  {:<38} {:>8.1} jobs/s", "direct, 2 in flight", direct2);
        println!("  {:<38} {:>8.1} jobs/s", "direct, 8 in flight", direct8);
        println!(
            "  {:<38} {:>8.1} jobs/s  ({:.1} % of direct with 2 in flight)",
            "fleet, 4 submitted at a time",
            fleet4,
            100.0 * fleet4 / direct2
        );
        println!(
            "  {:<38} {:>8.1} jobs/s  ({:.1} % of direct with 2 in flight)",
            format!("fleet, all {jobs} submitted at once"),
            fleet_all,
            100.0 * fleet_all / direct2
        );
        println!(
            "  position events (Queued) delivered for those {jobs} jobs: {queued_events} \
             ({:.1} per job)",
            queued_events as f64 / jobs as f64
        );
        fleet.stop().await;
    });
}
