//! Fleet disk: what the state folder holds after many jobs, with the output store bounding it.
//!
//! The application runs in this process (`App::start`, no HTTP API) with `--instances`
//! `fake-comfyui` instances (default 2, zero-time nodes). `--jobs` demo jobs (default 1000) at
//! the template's default 512×512 canvas go through the real submit path, `--in-flight` at a
//! time (default 8), each awaited to `done`. Then the state folder is measured: the instances'
//! own folders (input, output, temp: where ComfyUI writes), the output store, and everything.
//! Run once with the defaults (`outputs.retention` 1 day, `outputs.max_size_mb` 10240: the
//! store keeps every job's files) and once with `--max-size-mb N`.
//!
//! Run: `cargo bench --bench fleet_disk [-- --jobs 1000 --max-size-mb 50]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use comfy_fleet_actors::UserId;
use futures_util::StreamExt;
use serde_json::json;

use comfy_fleet::fleet::submit::{JobRequest, JobSource, submit};
use support::in_process_fleet::*;
use support::measures::arg;

/// Bytes and files under `dir`, recursively.
fn usage(dir: &Path) -> (u64, usize) {
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            let (bytes, files) = usage(&path);
            total = (total.0 + bytes, total.1 + files);
        } else if let Ok(meta) = entry.metadata() {
            total = (total.0 + meta.len(), total.1 + 1);
        }
    }
    total
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// A demo job at the template's default size (512×512), with this seed.
fn job(seed: u64) -> JobRequest {
    JobRequest {
        user: UserId::new(BENCH_USER),
        roles: Vec::new(),
        source: JobSource::Template("demo".into()),
        params: [("seed".to_string(), json!(seed))].into(),
        images: Vec::new(),
        uploads: Vec::new(),
        extra_data: serde_json::Value::Null,
    }
}

fn main() {
    let jobs = arg::<u64>("--jobs").unwrap_or(1000) as usize;
    let instances = arg::<u64>("--instances").unwrap_or(2) as u32;
    let in_flight = arg::<u64>("--in-flight").unwrap_or(8) as usize;
    let max_size_mb = arg::<u64>("--max-size-mb");
    let state = tempfile::tempdir().expect("a temporary state folder");
    let system = actix_rt::System::new();
    system.block_on(async move {
        let mut config = fleet_config(state.path(), instances, Duration::ZERO, 10_000);
        if let Some(mb) = max_size_mb {
            config.outputs.max_size_mb = mb;
        }
        let (retention, cap) = (config.outputs.retention, config.outputs.max_size_mb);
        let app = boot_ready(config).await;
        let fleet = app.fleet().clone();
        let started = Instant::now();
        futures_util::stream::iter(0..jobs as u64)
            .map(|seed| {
                let fleet = fleet.clone();
                async move {
                    let id = submit(&fleet, job(5_000_000 + seed))
                        .await
                        .unwrap_or_else(|e| panic!("the bench job is accepted: {e}"))
                        .job;
                    wait_done(&fleet, id).await;
                }
            })
            .buffer_unordered(in_flight)
            .collect::<Vec<_>>()
            .await;
        let took = started.elapsed();

        let root = state.path();
        let mut instance_folders = (0u64, 0usize);
        for entry in std::fs::read_dir(root).expect("the state folder").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("cpu") {
                for folder in ["input", "output", "temp"] {
                    let (bytes, files) = usage(&entry.path().join(folder));
                    instance_folders = (instance_folders.0 + bytes, instance_folders.1 + files);
                }
            }
        }
        let store = usage(&root.join("outputs"));
        let all = usage(root);
        let (held, held_jobs) = fleet.outputs.usage();
        println!(
            "fleet_disk: {jobs} demo jobs (512×512) on {instances} fake-comfyui instances in \
             {:.1} s; outputs.retention {}, outputs.max_size_mb {cap}",
            took.as_secs_f64(),
            humantime::format_duration(retention)
        );
        println!(
            "  instance folders (input, output, temp): {} in {} files",
            mb(instance_folders.0),
            instance_folders.1
        );
        println!(
            "  output store: {} in {} files ({} jobs' files held, {})",
            mb(store.0),
            store.1,
            held_jobs,
            mb(held)
        );
        println!("  whole state folder: {} in {} files", mb(all.0), all.1);
        app.stop().await;
    });
}
