//! `fake-comfyui` run inside the test process through its library (`fake_comfyui::start` on
//! port 0, `fake_comfyui::start_on` an already bound listener), with no child process: it
//! answers like the captured ComfyUI 0.33.0, runs a prompt to a real PNG in its own output
//! folder, two servers in one process keep to their own folders, and a stopped server no
//! longer listens, even with a prompt in the middle of a long node or hung.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;

use fake_comfyui::{FakeConfig, RunningServer};
use serde_json::{Value, json};
use support::fixtures::{captured, captured_json};
use support::http_client::{HttpAnswer, http};
use support::images::{png_file_size, png_size};
use support::waits::{SAFETY, wait_until_blocking};

/// A CPU fake on port 0 with its folders in `dir`, no database file, zero-time steps, `args`
/// added (later flags win).
fn config(dir: &Path, args: &[&str]) -> FakeConfig {
    let mut all = vec![
        "--listen",
        "127.0.0.1",
        "--port",
        "0",
        "--cpu",
        "--database-url",
        "sqlite:///:memory:",
        "--fake-node-time",
        "0ms",
        "--fake-step-time",
        "0ms",
    ];
    all.extend_from_slice(args);
    let all: Vec<String> = all.into_iter().map(String::from).collect();
    FakeConfig::parse(&all, &|_| None, dir).unwrap()
}

fn get(addr: SocketAddr, path: &str) -> HttpAnswer {
    http(addr, "GET", path, None)
}

fn post_prompt(addr: SocketAddr, prompt: &Value) -> HttpAnswer {
    let body = json!({"prompt": prompt, "client_id": "in-process-test"});
    http(
        addr,
        "POST",
        "/prompt",
        Some(("application/json", body.to_string().into_bytes())),
    )
}

/// Queues `prompt` and waits until its history entry is written; returns the entry.
fn run_prompt(addr: SocketAddr, prompt: &Value) -> Value {
    let queued = post_prompt(addr, prompt);
    assert_eq!(queued.status, 200, "{}", queued.text());
    let id = queued.json()["prompt_id"].as_str().unwrap().to_string();
    let mut entry = Value::Null;
    wait_until_blocking("the prompt is in the history", || {
        entry = get(addr, &format!("/history/{id}")).json()[&id].clone();
        !entry.is_null()
    });
    assert_eq!(entry["status"]["status_str"], "success", "{entry:#}");
    entry
}

/// The saved images of a history entry: (file name, subfolder).
fn saved_images(entry: &Value) -> Vec<(String, String)> {
    entry["outputs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|o| o["images"].as_array().cloned().unwrap_or_default())
        .filter(|i| i["type"] == "output")
        .map(|i| {
            (
                i["filename"].as_str().unwrap().to_string(),
                i["subfolder"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Whether anything accepts connections on `addr`.
fn listens(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, SAFETY).is_ok()
}

/// Stops `fake` on another thread and waits for it, so a stop that never returns fails the
/// test after [`SAFETY`] instead of hanging it.
fn stop_within_safety(fake: RunningServer) {
    let (done, stopped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        fake.stop();
        let _ = done.send(());
    });
    stopped
        .recv_timeout(SAFETY)
        .expect("the in-process server stops");
}

#[test]
fn on_port_0_it_answers_like_the_captured_comfyui_saves_a_real_png_and_stops_listening() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_comfyui::start(config(dir.path(), &[])).unwrap();
    let addr = fake.addr();
    assert_ne!(addr.port(), 0, "the bound port is reported");
    assert_eq!(fake.url(), format!("http://{addr}"));

    let stats = get(addr, "/system_stats");
    assert_eq!(stats.status, 200);
    let stats = stats.json();
    let expected = captured_json("system_stats.json");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&stats["system"]), keys(&expected["system"]));
    assert_eq!(stats["system"]["comfyui_version"], "0.33.0");
    assert_eq!(stats["devices"][0]["type"], "cpu");
    for (route, fixture) in [
        ("/features", "features.json"),
        ("/embeddings", "embeddings.json"),
        ("/object_info/EmptyImage", "object_info_EmptyImage.json"),
    ] {
        assert_eq!(get(addr, route).json(), captured_json(fixture), "{route}");
    }

    let prompt = captured_json("prompt_trivial.json");
    let entry = run_prompt(addr, &prompt);
    let images = saved_images(&entry);
    assert_eq!(images.len(), 1, "{entry:#}");
    let (name, subfolder) = &images[0];
    let file = fake.config().output_dir.join(subfolder).join(name);
    assert!(file.starts_with(dir.path()), "{}", file.display());
    assert_eq!(png_file_size(&file), (64, 64));
    let view = get(
        addr,
        &format!("/view?filename={name}&subfolder={subfolder}&type=output"),
    );
    assert_eq!(view.status, 200);
    assert_eq!(png_size(&view.body), (64, 64));
    assert_eq!(view.body, std::fs::read(&file).unwrap());

    fake.stop();
    assert!(
        !listens(addr),
        "a stopped server no longer accepts connections"
    );
}

#[test]
fn two_servers_on_given_listeners_keep_to_their_own_folders() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let listener_a = TcpListener::bind("127.0.0.1:0").unwrap();
    let listener_b = TcpListener::bind("127.0.0.1:0").unwrap();
    let given_b = listener_b.local_addr().unwrap();
    let a = fake_comfyui::start_on(config(dir_a.path(), &[]), listener_a).unwrap();
    let b = fake_comfyui::start_on(config(dir_b.path(), &[]), listener_b).unwrap();
    assert_eq!(b.addr(), given_b, "it serves on the listener it was given");

    // A file only B has in its output folder, loaded through ComfyUI's `[output]` annotation.
    let output_b = dir_b.path().join("output");
    std::fs::copy(captured("upload_source.png"), output_b.join("only_b.png")).unwrap();
    let prompt = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "only_b.png [output]"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "from_b"}},
    });

    let entry = run_prompt(b.addr(), &prompt);
    assert_eq!(
        saved_images(&entry),
        vec![("from_b_00001_.png".to_string(), String::new())]
    );
    assert_eq!(
        png_file_size(&output_b.join("from_b_00001_.png")),
        png_file_size(&captured("upload_source.png"))
    );

    // A looks in its own output folder, where the file is not.
    let refused = post_prompt(a.addr(), &prompt);
    assert_eq!(refused.status, 400, "{}", refused.text());
    let refused = refused.json();
    assert_eq!(
        refused["node_errors"]["1"]["errors"][0]["type"], "custom_validation_failed",
        "{refused:#}"
    );
    assert!(!dir_a.path().join("output/from_b_00001_.png").exists());

    a.stop();
    b.stop();
}

#[test]
fn stop_cuts_a_long_node_short_and_ends_a_hung_prompt() {
    for (what, args) in [
        (
            "a prompt in an hour-long node",
            &["--fake-node-time", "1h"][..],
        ),
        ("a hung prompt", &["--fake-hang-after-nodes", "1"][..]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let fake = fake_comfyui::start(config(dir.path(), args)).unwrap();
        let addr = fake.addr();
        let queued = post_prompt(addr, &captured_json("prompt_trivial.json"));
        assert_eq!(queued.status, 200, "{what}: {}", queued.text());
        wait_until_blocking("the prompt runs", || {
            get(addr, "/queue").json()["queue_running"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        });
        stop_within_safety(fake);
        assert!(!listens(addr), "{what}: the server no longer listens");
    }
}
