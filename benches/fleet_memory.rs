//! Fleet memory: peak resident memory of the fleet with 16 instances and 10 000 queued jobs.
//!
//! The fleet runs in this process (`Fleet::boot`), with 16 `fake-comfyui` instances whose nodes
//! take an hour, so the first 16 × 2 jobs (pipeline depth 2) sit on the instances and every
//! later one waits in the scheduler's queue. Jobs go through the real submit path (rate limiter,
//! template, scheduler, event hub). Reported: this process's VmRSS / VmHWM (from
//! /proc/self/status) before boot, after boot, and with the queue full, plus the resident memory
//! of the 16 fake ComfyUI processes for scale.
//!
//! `--workflow sdxl60` (the default) submits a realistic template: a 60-node SDXL workflow
//! (`tests/support/sdxl_workflow.rs`), each job with its own seed and prompt text;
//! `--workflow demo` the 4-node demo template.
//!
//! Run: `cargo bench --bench fleet_memory [-- --queued 10000 --instances 16 --workflow demo]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use comfy_fleet::fleet::FleetHandle;
use comfy_fleet::fleet::submit::{JobRequest, JobSource, submit};
use comfy_fleet_actors::UserId;
use comfy_fleet_actors::messages::GetSchedulerSnapshot;
use serde_json::json;

use support::in_process_fleet::*;
use support::measures::*;
use support::sdxl_workflow::*;

const PIPELINE_DEPTH: usize = 2;

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn self_kb(key: &str) -> u64 {
    proc_status_kb("self", key).expect("/proc/self/status is readable")
}

async fn queue_depth(handle: &FleetHandle) -> usize {
    let snapshot = handle
        .scheduler
        .send(GetSchedulerSnapshot)
        .await
        .expect("the scheduler answers");
    let jobs = snapshot.jobs;
    assert_eq!(
        (jobs.failed, jobs.cancelled),
        (0, 0),
        "every bench job is accepted by the instances: {jobs:?}"
    );
    snapshot.queue_depth
}

/// Job `n` of the SDXL template: its own seed and prompt text.
fn sdxl_request(n: u64) -> JobRequest {
    JobRequest {
        user: UserId::new(BENCH_USER),
        roles: Vec::new(),
        source: JobSource::Template(SDXL_TEMPLATE.into()),
        params: [
            ("seed".to_string(), json!(7_000_000 + n)),
            ("prompt".to_string(), json!(prompt_text(n))),
        ]
        .into(),
        images: Vec::new(),
        uploads: Vec::new(),
        extra_data: serde_json::Value::Null,
    }
}

fn main() {
    let queued: usize = arg_or("--queued", 10_000);
    let instances: usize = arg_or("--instances", 16);
    let workflow: String = arg_or("--workflow", SDXL_TEMPLATE.to_string());
    let sdxl = match workflow.as_str() {
        SDXL_TEMPLATE => true,
        "demo" => false,
        other => panic!("--workflow takes {SDXL_TEMPLATE} or demo, not {other}"),
    };
    let state = tempfile::tempdir().expect("a temporary state folder");
    let system = actix_rt::System::new();
    system.block_on(async move {
        let before = (self_kb("VmRSS:"), self_kb("VmHWM:"));
        let mut config = fleet_config(
            state.path(),
            instances as u32,
            Duration::from_secs(3600),
            queued + 1000,
        );
        if sdxl {
            let workflows = state.path().join("workflows");
            let base = state.path().join("comfyui-base");
            write_sdxl_template(&workflows, &base);
            config.workflows.dir = workflows;
            config.comfyui.command.push("--base-directory".into());
            config.comfyui.command.push(base.display().to_string());
        }
        let fleet = boot_ready(config).await;
        let handle = fleet.fleet().clone();
        let booted = (self_kb("VmRSS:"), self_kb("VmHWM:"));

        let total = queued + instances * PIPELINE_DEPTH;
        let started = Instant::now();
        for n in 0..total as u64 {
            if sdxl {
                submit(&handle, sdxl_request(n))
                    .await
                    .unwrap_or_else(|e| panic!("the bench job is accepted: {e}"));
            } else {
                submit_job(&handle, 7_000_000 + n).await;
            }
        }
        let submit_time = started.elapsed();
        let depth = queue_depth(&handle).await;
        let full = (self_kb("VmRSS:"), self_kb("VmHWM:"));
        let fakes: Vec<u64> = child_pids()
            .iter()
            .filter_map(|pid| proc_status_kb(pid, "VmRSS:"))
            .collect();

        println!(
            "fleet_memory: {instances} fake-comfyui instances (1 h nodes), {total} `{workflow}` \
             jobs submitted in {:.2} s ({:.0} µs each), {depth} waiting in the queue",
            submit_time.as_secs_f64(),
            submit_time.as_secs_f64() * 1e6 / total as f64
        );
        println!(
            "\n  {:<38} {:>12} {:>12}",
            "this process (the fleet)", "VmRSS", "VmHWM"
        );
        println!(
            "  {:<38} {:>12} {:>12}",
            "before boot",
            mb(before.0),
            mb(before.1)
        );
        println!(
            "  {:<38} {:>12} {:>12}",
            format!("booted, {instances} instances ready"),
            mb(booted.0),
            mb(booted.1)
        );
        println!(
            "  {:<38} {:>12} {:>12}",
            format!("{depth} queued + {} running", instances * PIPELINE_DEPTH),
            mb(full.0),
            mb(full.1)
        );
        println!(
            "  {:<38} {:>12}",
            "growth from the queued jobs",
            format!(
                "{:.1} KB/job",
                (full.0 as f64 - booted.0 as f64) / depth.max(1) as f64
            )
        );
        println!(
            "\n  {} fake-comfyui processes: {} resident in all ({} each on average)",
            fakes.len(),
            mb(fakes.iter().sum()),
            mb(fakes.iter().sum::<u64>() / fakes.len().max(1) as u64)
        );
        println!("\n  peak RSS of the fleet (VmHWM): {}", mb(full.1));
        fleet.stop().await;
    });
}
