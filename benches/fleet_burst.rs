//! A burst of submissions right after boot: how fast each `POST /v1/jobs` answers, and how the
//! jobs spread over the instances.
//!
//! The application runs in this process (`App::start`, HTTP API on 127.0.0.1:0) with
//! `--instances` `fake-comfyui` instances (default 4) whose nodes take `--node-time` (default
//! 100ms). As soon as every instance is ready, `--burst` clients (default 20), each on its own
//! thread with its own connection, post one demo job at the same moment; then each follows its
//! job's event stream to `done`. Reported: the POST answer times (p50, max), the time until the
//! last job was done, and how many jobs ran on each instance.
//!
//! Run: `cargo bench --bench fleet_burst [-- --burst 20 --instances 4 --node-time-ms 100]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::json;

use support::api_client::ApiClient;
use support::http_client::http;
use support::in_process_fleet::*;
use support::measures::*;

fn main() {
    let burst = arg_or("--burst", 20) as usize;
    let instances = arg_or("--instances", 4) as u32;
    let node_time = Duration::from_millis(arg_or("--node-time-ms", 100));
    let state = tempfile::tempdir().expect("a temporary state folder");
    let system = actix_rt::System::new();
    system.block_on(async move {
        let config = fleet_config(state.path(), instances, node_time, 10_000);
        let booting = Instant::now();
        let app = boot_ready_serving(config).await;
        let booted = booting.elapsed();
        let addr = app.api_addr().expect("the HTTP API listens");

        let (posts, ids, done) = actix_web::rt::task::spawn_blocking(move || {
            let start = Arc::new(Barrier::new(burst));
            let clients: Vec<_> = (0..burst)
                .map(|i| {
                    let start = Arc::clone(&start);
                    std::thread::spawn(move || {
                        let mut client = ApiClient::new(addr);
                        start.wait();
                        let posted = Instant::now();
                        let (status, created) = client.post_job(&json!({
                            "template": "demo",
                            "params": {"seed": 9_000_000 + i, "width": CANVAS, "height": CANVAS},
                        }));
                        let answered = posted.elapsed();
                        assert_eq!(status, 201, "the burst job is accepted: {created}");
                        let id = created["id"].as_str().expect("a job id").to_string();
                        let followed = client.follow(&id, || {});
                        assert_eq!(followed.last, "done", "job {id}: {:?}", followed.events);
                        (answered, id, posted.elapsed())
                    })
                })
                .collect();
            let mut posts = Vec::new();
            let mut ids = Vec::new();
            let mut done = Duration::ZERO;
            for client in clients {
                let (answered, id, finished) = client.join().expect("a burst client");
                posts.push(answered);
                ids.push(id);
                done = done.max(finished);
            }
            (posts, ids, done)
        })
        .await
        .expect("the burst clients finish");

        let mut per_instance: BTreeMap<String, usize> = BTreeMap::new();
        for id in &ids {
            let job = http(addr, "GET", &format!("/v1/jobs/{id}"), None).json();
            let instance = job["instance"].as_str().unwrap_or("?").to_string();
            *per_instance.entry(instance).or_default() += 1;
        }
        println!(
            "fleet_burst: {instances} fake-comfyui instances ({} per node, 3 nodes a job), booted \
             and ready in {:.2} s; {burst} clients post a demo job at once",
            ms(node_time),
            booted.as_secs_f64()
        );
        println!(
            "  POST /v1/jobs answered: p50 {}  max {}",
            ms(percentile(&posts, 50.0)),
            ms(percentile(&posts, 100.0))
        );
        println!(
            "  all {burst} jobs done {:.3} s after the burst",
            done.as_secs_f64()
        );
        let spread: Vec<String> = per_instance
            .iter()
            .map(|(instance, n)| format!("{instance}: {n}"))
            .collect();
        println!("  jobs per instance: {}", spread.join(", "));
        app.stop().await;
    });
}
