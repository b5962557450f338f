//! Fleet saturation: does the pool keep N instances busy?
//!
//! Every `fake-comfyui` spends `--fake-node-time` (default 65 ms) on each node it executes,
//! sleeping rather than computing. The demo template has 4 nodes, of which 3 execute per job
//! (`EmptyImage` never changes, so it is served from ComfyUI's cache), so a job takes
//! D ≈ 200 ms. First D is measured through the fleet with 1 instance and no contention (median
//! of sequential jobs, submit to `Done`); on the same fake, the bare connector with 2 prompts in
//! flight shows what one fake can do when fed without pause. Then for N = 1, 2, 4, 8, 16
//! instances a fresh fleet gets 20 × N jobs at once, and the time from the first submit to the
//! last `Done` gives the throughput, reported as a fraction of the ideal N / D. The scheduler's
//! pipeline depth (default 2) lets each fake queue the next prompt while it runs one, so the
//! connector's round trips do not idle it.
//!
//! Run: `cargo bench --bench fleet_saturation [-- --node-time 65ms --per-instance 20]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use comfy_fleet::comfy::{ClientConfig, ComfyClient, RunOptions};
use futures_util::StreamExt;
use futures_util::future::join_all;
use uuid::Uuid;

use support::in_process_fleet::*;
use support::measures::*;

const SIZES: [u32; 5] = [1, 2, 4, 8, 16];
/// Nodes that execute per job: `EmptyImage`'s inputs never change, so after the first job
/// ComfyUI (and the fake) serves it from the cache; noise, blur and save run every time.
const NODES_PER_JOB: u32 = 3;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone())
}

fn main() {
    let node_time = arg("--node-time")
        .map(|v| humantime::parse_duration(&v).expect("--node-time takes a duration like 50ms"))
        .unwrap_or(Duration::from_millis(65));
    let per_instance: usize = arg("--per-instance")
        .map(|v| v.parse().expect("--per-instance takes a number"))
        .unwrap_or(20);
    let system = actix_rt::System::new();
    system.block_on(async move {
        let mut seed = 5_000_000u64;

        // D: one instance, one job at a time.
        let state = tempfile::tempdir().expect("a temporary state folder");
        let fleet = boot_ready(fleet_config(state.path(), 1, node_time, 10_000)).await;
        let mut alone = Vec::new();
        for _ in 0..12 {
            seed += 1;
            alone.push(run_job(fleet.fleet(), seed).await);
        }
        let d = percentile(&alone[2..], 50.0);
        let cold = alone[0];
        // The bare connector, 2 prompts in flight, on the same fake.
        let client = ComfyClient::new(&first_instance_url(&fleet), ClientConfig::default())
            .expect("instance URL");
        let direct_jobs = per_instance;
        let started = Instant::now();
        futures_util::stream::iter(0..direct_jobs as u64)
            .map(|i| {
                let prompt = demo_prompt(seed + 1 + i);
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
                        .expect("the direct prompt runs")
                }
            })
            .buffer_unordered(2)
            .collect::<Vec<_>>()
            .await;
        let direct_rate = direct_jobs as f64 / started.elapsed().as_secs_f64();
        seed += direct_jobs as u64 + 1;
        fleet.stop().await;
        println!(
            "fleet_saturation: node time {}, {} nodes per job (nominal {}), measured D = {} \
             (median of 10 sequential jobs, submit to Done, 1 instance)",
            humantime::format_duration(node_time),
            NODES_PER_JOB,
            ms(node_time * NODES_PER_JOB),
            ms(d)
        );
        println!(
            "  first job on the fresh instance (cold, not in D): {}",
            ms(cold)
        );
        println!(
            "  one fake fed by the bare connector, 2 in flight: {:.2} jobs/s ({:.1} % of 1/D)",
            direct_rate,
            100.0 * direct_rate * d.as_secs_f64()
        );
        println!(
            "\n  {:>3}  {:>5}  {:>10}  {:>12}  {:>12}  {:>10}  {:>14}",
            "N", "jobs", "elapsed", "jobs/s", "ideal N/D", "of ideal", "of 3×node time"
        );

        let mut first_fetch = None;
        for n in SIZES {
            let state = tempfile::tempdir().expect("a temporary state folder");
            let fleet = boot_ready(fleet_config(state.path(), n, node_time, 10_000)).await;
            let handle = fleet.fleet().clone();
            let jobs = per_instance * n as usize;
            // The first submit after boot fetches /object_info for the catalog (1.5 MB of JSON);
            // do it before the clock starts, it is not part of serving jobs.
            let fetch = Instant::now();
            handle
                .catalog
                .object_info(&handle)
                .await
                .unwrap_or_else(|e| panic!("the catalog gets /object_info: {e}"));
            let fetch = fetch.elapsed();
            // One warm-up job per instance (idle instances go first, so N at once land one on
            // each): a fresh process's first prompt is slower, as with a real ComfyUI.
            let mut warm = Vec::new();
            for _ in 0..n {
                seed += 1;
                warm.push(submit_job(&handle, seed).await);
            }
            join_all(warm.into_iter().map(|job| wait_done(&handle, job))).await;
            let started = Instant::now();
            let mut ids = Vec::with_capacity(jobs);
            for _ in 0..jobs {
                seed += 1;
                ids.push(submit_job(&handle, seed).await);
            }
            join_all(ids.into_iter().map(|job| wait_done(&handle, job))).await;
            let elapsed = started.elapsed();
            let throughput = jobs as f64 / elapsed.as_secs_f64();
            let ideal = n as f64 / d.as_secs_f64();
            let nominal = n as f64 / (node_time * NODES_PER_JOB).as_secs_f64();
            first_fetch.get_or_insert(fetch);
            println!(
                "  {:>3}  {:>5}  {:>8.3} s  {:>8.2}/s  {:>10.2}/s  {:>9.1} %  {:>13.1} %",
                n,
                jobs,
                elapsed.as_secs_f64(),
                throughput,
                ideal,
                100.0 * throughput / ideal,
                100.0 * throughput / nominal
            );
            fleet.stop().await;
        }
        if let Some(fetch) = first_fetch {
            println!(
                "\n  (not timed: the catalog's first /object_info fetch after boot took {})",
                ms(fetch)
            );
        }
        println!("\n  target: ≥ 99 % of ideal N/D");
    });
}
