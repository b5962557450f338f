//! Fleet saturation: does the pool keep N instances busy, measured against what a direct client
//! of ComfyUI sees?
//!
//! Every `fake-comfyui` spends `--fake-node-time` (default 65 ms) on each node it executes,
//! sleeping rather than computing. The demo workflow has 4 nodes, of which 3 execute per job
//! (`EmptyImage` never changes, so it is served from ComfyUI's cache).
//!
//! For each N = 1, 2, 4, 8, 16 a fresh fleet of N instances is booted and warmed (the catalog's
//! first `/object_info`, one job per instance). Then, in the same row and right before the fleet
//! is timed, the **direct reference** is measured on that fleet's first instance with the bare
//! connector (`ComfyClient::run_prompt`, no fleet): D, the median time of sequential prompts as
//! a client sees them, and the rate of one fake fed with 2 prompts in flight. Then N × the jobs
//! per instance go through the fleet at once, and the time from the first submit to the last
//! `Done` gives its throughput, reported against the ideal N / D and against N × the direct
//! 2-in-flight rate. Measuring the reference beside each row (not once, and not through the
//! fleet) keeps the machine's load drift out of the ratios, and the fleet's own overhead out of
//! the reference. Every run saves under its own output prefix, so no save scans another run's
//! files for its counter.
//!
//! Run: `cargo bench --bench fleet_saturation [-- --node-time 65ms --per-instance 20]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use comfy_fleet::comfy::{ClientConfig, ComfyClient, RunOptions};
use comfy_fleet::fleet::submit::submit;
use futures_util::StreamExt;
use futures_util::future::join_all;
use uuid::Uuid;

use support::in_process_fleet::*;
use support::measures::*;

const SIZES: [u32; 5] = [1, 2, 4, 8, 16];
/// Sequential direct prompts behind D (the first two are dropped as warm-up).
const DIRECT_SEQUENTIAL: usize = 12;

/// The direct reference on one instance: D (median sequential submit-to-done) and the rate with
/// two prompts in flight.
async fn direct_reference(url: &str, seed: &mut u64, prefix: &str, jobs: usize) -> (Duration, f64) {
    let client = ComfyClient::new(url, ClientConfig::default()).expect("instance URL");
    let run = |seed: u64| {
        let prompt = demo_prompt_saved_as(seed, prefix);
        let client = &client;
        async move {
            client
                .run_prompt(
                    Uuid::new_v4(),
                    &prompt,
                    None,
                    &RunOptions::default(),
                    |_| {},
                )
                .await
                .expect("the direct prompt runs");
        }
    };
    let mut sequential = Vec::new();
    for _ in 0..DIRECT_SEQUENTIAL {
        *seed += 1;
        let started = Instant::now();
        run(*seed).await;
        sequential.push(started.elapsed());
    }
    let d = percentile(&sequential[2..], 50.0);
    let first = *seed + 1;
    *seed += jobs as u64;
    let started = Instant::now();
    futures_util::stream::iter(first..first + jobs as u64)
        .map(run)
        .buffer_unordered(2)
        .collect::<Vec<_>>()
        .await;
    (d, jobs as f64 / started.elapsed().as_secs_f64())
}

fn main() {
    let node_time =
        arg::<humantime::Duration>("--node-time").map_or(Duration::from_millis(65), Into::into);
    let per_instance: usize = arg_or("--per-instance", 20);
    let system = actix_rt::System::new();
    system.block_on(async move {
        let mut seed = 5_000_000u64;
        println!(
            "fleet_saturation: node time {}, 3 nodes executed per job; per row, the direct \
             reference (bare connector on the row's first instance) right before the fleet run",
            humantime::format_duration(node_time),
        );
        println!(
            "\n  {:>3}  {:>5}  {:>9}  {:>9}  {:>11}  {:>11}  {:>9}  {:>13}  {:>9}",
            "N", "jobs", "elapsed", "jobs/s", "direct D", "ideal N/D", "of N/D", "N×direct-2", "of it"
        );
        for n in SIZES {
            let state = tempfile::tempdir().expect("a temporary state folder");
            let fleet = boot_ready(fleet_config(state.path(), n, node_time, 10_000)).await;
            let handle = fleet.fleet().clone();
            let jobs = per_instance * n as usize;
            // Not part of serving jobs: the catalog's first /object_info and each fresh
            // process's first (slower) prompt.
            handle
                .catalog
                .object_info(&handle)
                .await
                .unwrap_or_else(|e| panic!("the catalog gets /object_info: {e}"));
            let warm_prefix = format!("sat-n{n}-warm");
            let mut warm = Vec::new();
            for _ in 0..n {
                seed += 1;
                let request = demo_request_saved_as(seed, &warm_prefix);
                warm.push(submit(&handle, request).await.expect("warm-up job").job);
            }
            join_all(warm.into_iter().map(|job| wait_done(&handle, job))).await;

            let (d, direct_rate) = direct_reference(
                &first_instance_url(&fleet),
                &mut seed,
                &format!("sat-n{n}-direct"),
                per_instance,
            )
            .await;

            let prefix = format!("sat-n{n}-fleet");
            let started = Instant::now();
            let mut ids = Vec::with_capacity(jobs);
            for _ in 0..jobs {
                seed += 1;
                let request = demo_request_saved_as(seed, &prefix);
                ids.push(submit(&handle, request).await.expect("bench job").job);
            }
            join_all(ids.into_iter().map(|job| wait_done(&handle, job))).await;
            let elapsed = started.elapsed();
            let throughput = jobs as f64 / elapsed.as_secs_f64();
            let ideal = n as f64 / d.as_secs_f64();
            let fed = n as f64 * direct_rate;
            println!(
                "  {:>3}  {:>5}  {:>7.3} s  {:>7.2}/s  {:>11}  {:>9.2}/s  {:>7.1} %  {:>11.2}/s  {:>7.1} %",
                n,
                jobs,
                elapsed.as_secs_f64(),
                throughput,
                ms(d),
                ideal,
                100.0 * throughput / ideal,
                fed,
                100.0 * throughput / fed,
            );
            fleet.stop().await;
        }
        println!(
            "\n  D: median of {} sequential direct prompts (first 2 dropped); direct-2: the same \
             fake fed with 2 prompts in flight, {per_instance} prompts",
            DIRECT_SEQUENTIAL - 2
        );
    });
}
