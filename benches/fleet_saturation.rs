//! Fleet saturation: does the pool keep N instances busy?
//!
//! Every `fake-comfyui` spends `--fake-node-time` (default 50 ms) on each of the demo
//! template's 4 nodes, sleeping rather than computing, so a job takes D ≈ 200 ms. First D is
//! measured through the fleet with 1 instance and no contention (median of sequential jobs,
//! submit to `Done`). Then for N = 1, 2, 4, 8, 16 instances a fresh fleet gets 10 × N jobs at
//! once, and the time from the first submit to the last `Done` gives the throughput, reported as
//! a fraction of the ideal N / D. The scheduler's pipeline depth (default 2) lets each fake
//! queue the next prompt while it runs one, so the connector's round trips do not idle it.
//!
//! Run: `cargo bench --bench fleet_saturation [-- --node-time 50ms --per-instance 10]`

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use support::*;

const SIZES: [u32; 5] = [1, 2, 4, 8, 16];
const NODES_PER_JOB: u32 = 4;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone())
}

fn main() {
    let node_time = arg("--node-time")
        .map(|v| humantime::parse_duration(&v).expect("--node-time takes a duration like 50ms"))
        .unwrap_or(Duration::from_millis(50));
    let per_instance: usize = arg("--per-instance")
        .map(|v| v.parse().expect("--per-instance takes a number"))
        .unwrap_or(10);
    let system = actix_rt::System::new();
    system.block_on(async move {
        let mut seed = 5_000_000u64;

        // D: one instance, one job at a time.
        let state = tempfile::tempdir().expect("a temporary state folder");
        let fleet = boot_ready(fleet_config(state.path(), 1, node_time, 10_000)).await;
        let mut alone = Vec::new();
        for _ in 0..12 {
            seed += 1;
            alone.push(run_job(&fleet.handle, seed).await);
        }
        fleet.shutdown(Duration::from_secs(5)).await;
        let d = percentile(&alone[2..], 50.0);
        println!(
            "fleet_saturation: node time {}, {} nodes per job (nominal {}), measured D = {} \
             (median of 10 sequential jobs, submit to Done, 1 instance)",
            humantime::format_duration(node_time),
            NODES_PER_JOB,
            ms(node_time * NODES_PER_JOB),
            ms(d)
        );
        println!(
            "\n  {:>3}  {:>5}  {:>10}  {:>12}  {:>12}  {:>10}  {:>14}",
            "N", "jobs", "elapsed", "jobs/s", "ideal N/D", "of ideal", "of nominal"
        );

        for n in SIZES {
            let state = tempfile::tempdir().expect("a temporary state folder");
            let fleet = boot_ready(fleet_config(state.path(), n, node_time, 10_000)).await;
            let handle = fleet.handle.clone();
            let jobs = per_instance * n as usize;
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
            fleet.shutdown(Duration::from_secs(5)).await;
        }
        println!("\n  target: ≥ 99 % of ideal N/D");
    });
}
