//! The launcher with the fake ComfyUI: four instances on four declared GPUs serve on their own
//! ports, with their own folders, databases and GPU, as their `/system_stats` shows; and a
//! stop takes each server down.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use comfy_fleet::gpu::{DeclaredGpu, DiscoveryMode, discover};
use comfy_fleet::launch::ProcessLauncher;
use comfy_fleet_actors::ports::{LaunchSpec, Launcher};
use comfy_fleet_actors::{GpuId, InstanceId};
use support::processes::*;
use support::waits::*;

/// `GET path` on 127.0.0.1:port; the JSON body, or `None` while nothing listens.
fn get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| serde_json::from_str(body).ok())?
}

fn fake_spec(instance: &str, state_dir: &std::path::Path, gpu: Option<GpuId>) -> LaunchSpec {
    LaunchSpec {
        instance: InstanceId::new(instance),
        command: vec![support::FAKE_COMFYUI.into()],
        working_dir: None,
        extra_args: vec!["--preview-method".into(), "none".into()],
        env: vec![],
        gpu,
        listen: "127.0.0.1".into(),
        port: 0,
        state_dir: state_dir.to_path_buf(),
    }
}

#[actix_rt::test]
async fn four_fake_comfyuis_on_four_declared_gpus() {
    let declared: Vec<DeclaredGpu> = (0..4)
        .map(|i| DeclaredGpu {
            id: format!("GPU-fleet-test-{i}"),
            name: format!("Declared {i}"),
            memory_total_bytes: Some(24 << 30),
        })
        .collect();
    let gpus = discover(DiscoveryMode::Declared, &declared, None)
        .unwrap()
        .gpus;
    let root = tempfile::tempdir().unwrap();
    let launcher = ProcessLauncher::new(root.path()).unwrap();
    let mut running = Vec::new();
    for gpu in &gpus {
        let name = format!("gpu{}", gpu.index);
        let spec = fake_spec(&name, &root.path().join(&name), Some(gpu.id.clone()));
        running.push((gpu.id.0.clone(), name, launcher.launch(spec).await.unwrap()));
    }

    let mut ports = Vec::new();
    for (gpu, name, launched) in &running {
        let port = launched.port;
        wait_until("the fake answers", || {
            get_json(port, "/system_stats").is_some()
        })
        .await;
        let stats = get_json(port, "/system_stats").unwrap();
        let argv: Vec<String> = serde_json::from_value(stats["system"]["argv"].clone()).unwrap();
        let state = root.path().join(name).display().to_string();
        assert_eq!(flag_value(&argv, "--port"), Some(port.to_string().as_str()));
        assert_eq!(
            flag_value(&argv, "--input-directory"),
            Some(format!("{state}/input").as_str())
        );
        assert_eq!(
            flag_value(&argv, "--database-url"),
            Some(format!("sqlite:///{state}/comfyui.db").as_str())
        );
        assert_eq!(argv.last().map(String::as_str), Some("none"));
        let device = stats["devices"][0]["name"].as_str().unwrap();
        assert!(
            device.contains(&format!("CUDA_VISIBLE_DEVICES={gpu}")),
            "{device}"
        );
        assert_eq!(
            environ(launched.pid as i32).get("CUDA_VISIBLE_DEVICES"),
            Some(gpu)
        );
        // Each instance's own database file (the fake creates and locks it at start).
        assert!(root.path().join(name).join("comfyui.db").exists());
        ports.push(port);
    }
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4);

    for (_, name, launched) in running {
        let port = launched.port;
        let exited = launched.exited;
        launched.stopper.stop(Duration::from_secs(30)).await;
        let exit = within("the exit", exited).await;
        assert!(exit.code.is_some() || exit.signal.is_some(), "{exit}");
        assert!(
            group_pids(launched.pid as i32).is_empty(),
            "{name} still has processes"
        );
        assert!(
            get_json(port, "/system_stats").is_none(),
            "{name} still answers"
        );
    }
}

#[actix_rt::test]
async fn without_a_gpu_the_fake_runs_in_cpu_mode() {
    let root = tempfile::tempdir().unwrap();
    let launcher = ProcessLauncher::new(root.path()).unwrap();
    let launched = launcher
        .launch(fake_spec("cpu0", &root.path().join("cpu0"), None))
        .await
        .unwrap();
    let port = launched.port;
    wait_until("the fake answers", || {
        get_json(port, "/system_stats").is_some()
    })
    .await;
    let stats = get_json(port, "/system_stats").unwrap();
    assert_eq!(stats["devices"][0]["type"], "cpu");
    launched.stopper.stop(Duration::from_secs(30)).await;
}
