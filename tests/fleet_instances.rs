//! `comfy-fleet serve` with four declared GPUs: one fake-comfyui per GPU, each with its own
//! port, folders, database and `CUDA_VISIBLE_DEVICES`, all ready, and a job served end to end.

mod support;

use std::collections::HashSet;

use serde_json::json;
use support::fleet_process::*;
use support::http_client::*;

#[test]
fn four_gpus_get_four_ready_instances_each_with_its_own_port_folders_and_gpu() {
    let root = tempfile::tempdir().unwrap();
    let spec = FleetSpec::new(4, &[]);
    let fleet = FleetProcess::start(&spec, root.path());
    let status = fleet.wait_status("4 ready instances", |s| count_phase(s, "ready") == 4);
    let boot = fleet.spawned_at.elapsed();
    eprintln!(
        "[figure] boot of 4 instances (spawn of comfy-fleet to 4 ready in /v1/status): {boot:?}"
    );

    assert_eq!(status["gpu_source"], "declared", "{status:#}");
    let state = fleet.state_dir.display().to_string();
    let mut ports = HashSet::new();
    let mut folders = HashSet::new();
    for k in 0..4 {
        let id = format!("gpu{k}");
        let gpu = format!("GPU-test-{k}");
        let instance = instance_in(&status, &id);
        assert_eq!(instance["gpu"], gpu.as_str(), "{instance:#}");
        let url = instance["url"].as_str().unwrap().to_string();
        let proc = fleet
            .instance_process(&id)
            .unwrap_or_else(|| panic!("no process for {id}: {:#?}", fleet.processes()));
        assert!(proc.argv[0].ends_with("fake-comfyui"), "{:?}", proc.argv);

        // Its own port, the one the status reports.
        let port: u16 = proc.arg("--port").unwrap().parse().unwrap();
        assert_eq!(url, format!("http://127.0.0.1:{port}"));
        assert!(ports.insert(port), "port {port} shared");
        assert_eq!(proc.arg("--listen"), Some("127.0.0.1"));

        // Its own folders and database, all under its own state folder.
        let own = format!("{state}/{id}");
        for flag in [
            "--input-directory",
            "--output-directory",
            "--temp-directory",
            "--user-directory",
            "--database-url",
        ] {
            let value = proc
                .arg(flag)
                .unwrap_or_else(|| panic!("{id} has no {flag}: {:?}", proc.argv));
            assert!(
                value.contains(&own),
                "{id}: {flag} {value} is not under {own}"
            );
            assert!(folders.insert(value.to_string()), "{flag} {value} shared");
        }

        // Pinned to its GPU.
        let env = proc.environ();
        assert_eq!(
            env.get("CUDA_VISIBLE_DEVICES").map(String::as_str),
            Some(gpu.as_str()),
            "{id}"
        );

        // It answers as ComfyUI on that port.
        let stats = http(
            format!("127.0.0.1:{port}").parse().unwrap(),
            "GET",
            "/system_stats",
            None,
        );
        assert_eq!(stats.status, 200, "{id}: {}", stats.text());
    }
    assert_eq!(fleet.processes().len(), 4, "{:#?}", fleet.processes());

    // The pool serves a job.
    let job = fleet.submit(&json!({"template": "demo", "params": {"width": 64, "height": 64}}));
    let job = fleet.wait_finished(&job);
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(job["outputs"].as_array().unwrap().len(), 1, "{job:#}");

    let ready = fleet.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["ready_instances"], 4);
}
