//! The real-ComfyUI tier (opt-in): the connector and the fleet against a real ComfyUI 0.33.0
//! running on the CPU, and `fake-comfyui` compared with it request by request.
//!
//! It needs a ComfyUI checkout and a Python environment with torch (~8 GB), so it only runs when
//! `COMFY_FLEET_REAL_COMFYUI` and `COMFY_FLEET_REAL_COMFYUI_VENV_PYTHON` are set; otherwise every
//! test prints that it was skipped. `scripts/real-comfyui` sets up both once in a cache folder and
//! runs this file. Every difference from `fake-comfyui` it shows is a bug in the fake.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use comfy_fleet::comfy::client::ClientConfig;
use comfy_fleet::comfy::events::{ServerEvent, WsMessage};
use comfy_fleet::comfy::{ComfyBackend, ComfyClient, ComfyError, RunOptions};
use comfy_fleet_actors::ports::{Backend, InputFile, PromptRun, PromptStatus};
use futures_util::future::join;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use support::fake_process::FakeComfy;
use support::fixtures::{captured, captured_json};
use support::fleet_process::{FleetProcess, count_phase, instance_in};
use support::http_client::{HttpAnswer, http};
use support::images::png_size;
use support::json_shape::shape_diff;
use support::processes::send_signal;
use support::real_comfyui::{
    REAL_SAFETY, RealComfyUi, RealServer, wait_finished, wait_job, wait_status,
};
use uuid::Uuid;

/// Safety net of one connector call against the real server.
async fn guarded<F: std::future::Future>(f: F) -> F::Output {
    actix_rt::time::timeout(REAL_SAFETY, f)
        .await
        .expect("the connector hung on the real ComfyUI")
}

fn client(url: &str) -> ComfyClient {
    ComfyClient::new(url, ClientConfig::default()).unwrap()
}

/// EmptyImage → ImageInvert → SaveImage of a given size.
fn trivial_prompt(width: u32, height: u32, prefix: &str) -> Value {
    let mut p = captured_json("prompt_trivial.json");
    p["1"]["inputs"]["width"] = json!(width);
    p["1"]["inputs"]["height"] = json!(height);
    p["3"]["inputs"]["filename_prefix"] = json!(prefix);
    p
}

/// Six blurs of a 1024² image: seconds per node on a CPU, long enough to interrupt or kill.
fn slow_prompt() -> Value {
    captured_json("prompt_slow_blur_chain.json")
}

/// A one-shot "it happened" signal raised from a synchronous event callback.
fn signal() -> (
    tokio::sync::watch::Sender<bool>,
    tokio::sync::watch::Receiver<bool>,
) {
    tokio::sync::watch::channel(false)
}

#[actix_rt::test]
async fn connector_runs_uploads_interrupts_dequeues_and_reads_history() {
    let Some(real) = RealComfyUi::from_env_or_skip("connector") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = real.spawn(dir.path(), &[]);
    let c = client(&server.base_url());

    let stats = c.system_stats().await.unwrap();
    assert_eq!(stats.system.comfyui_version, "0.33.0");
    let info = c.object_info().await.unwrap();
    assert!(info.contains("EmptyImage") && info.contains("LoadImage"));
    assert!(info.node("SaveImage").unwrap().is_output_node());

    // A trivial prompt: events, the history entry, a real PNG in the output folder.
    let id = Uuid::new_v4();
    let mut kinds: Vec<String> = Vec::new();
    let outcome = guarded(c.run_prompt(
        id,
        &trivial_prompt(64, 40, "trivial"),
        Some(&json!({"comfy_fleet": {"job": "x"}})),
        &RunOptions::default(),
        |e: &ServerEvent| {
            if let ServerEvent::Message(m) = e {
                kinds.push(m.kind().to_owned());
            }
        },
    ))
    .await
    .unwrap();
    for k in [
        "execution_start",
        "executing",
        "executed",
        "execution_success",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
    }
    assert_eq!(outcome.history.prompt.extra_data["comfy_fleet"]["job"], "x");
    let (node, file) = &outcome.files[0];
    assert_eq!(node, "3");
    let png = c.view(file).await.unwrap();
    assert_eq!(png_size(&png), (64, 40));
    assert_eq!(
        std::fs::read(
            server
                .output_dir()
                .join(&file.subfolder)
                .join(&file.filename)
        )
        .unwrap(),
        png.to_vec()
    );
    let entry = c.history(&outcome.prompt_id).await.unwrap().unwrap();
    assert_eq!(entry.files(), outcome.files);

    // An upload feeds LoadImage, in a subfolder too.
    let source = std::fs::read(captured("upload_source.png")).unwrap();
    let backend = ComfyBackend::new(client(&server.base_url()), RunOptions::default());
    let name = backend
        .upload(InputFile {
            name: "fixture_upload.png".into(),
            subfolder: "jobs".into(),
            bytes: source.clone().into(),
            overwrite: true,
        })
        .await
        .unwrap();
    assert_eq!(name, "jobs/fixture_upload.png");
    assert_eq!(
        std::fs::read(server.input_dir().join("jobs/fixture_upload.png")).unwrap(),
        source
    );
    let mut prompt = captured_json("prompt_loadimage.json");
    prompt["10"]["inputs"]["image"] = json!(name);
    let loaded = Uuid::new_v4();
    let result = guarded(backend.run(
        PromptRun {
            job: None,
            prompt_id: loaded,
            prompt,
            extra_data: json!({}),
        },
        Box::new(|_| {}),
    ))
    .await
    .unwrap();
    assert_eq!(result.outputs.len(), 1);
    assert_eq!(
        png_size(&backend.download(&result.outputs[0]).await.unwrap()),
        (64, 48)
    );
    assert_eq!(
        backend.prompt_status(loaded).await.unwrap(),
        PromptStatus::Succeeded
    );
    assert_eq!(
        backend.prompt_status(Uuid::new_v4()).await.unwrap(),
        PromptStatus::Unknown
    );

    // A running prompt is interrupted; one queued behind it is removed before it starts.
    let running = Uuid::new_v4();
    let (tx, mut rx) = signal();
    let slow = slow_prompt();
    let options = RunOptions::default();
    let run = c.run_prompt(running, &slow, None, &options, |e: &ServerEvent| {
        if matches!(e, ServerEvent::Message(WsMessage::Executing(_))) {
            tx.send_replace(true);
        }
    });
    let others = async {
        rx.wait_for(|v| *v).await.unwrap();
        let waiting = Uuid::new_v4();
        let waiting_prompt = trivial_prompt(9, 9, "waiting");
        let (tx2, mut rx2) = signal();
        let queued = c.run_prompt(
            waiting,
            &waiting_prompt,
            None,
            &options,
            |e: &ServerEvent| {
                if matches!(e, ServerEvent::Message(WsMessage::Status(_))) {
                    tx2.send_replace(true);
                }
            },
        );
        let remove_then_interrupt = async {
            rx2.wait_for(|v| *v).await.unwrap();
            c.delete_from_queue(&[waiting.to_string()]).await.unwrap();
            c.interrupt(Some(&running.to_string())).await.unwrap();
        };
        join(queued, remove_then_interrupt).await.0
    };
    let (interrupted, dequeued) = guarded(join(run, others)).await;
    assert!(
        matches!(dequeued, Err(ComfyError::Dequeued { .. })),
        "{dequeued:?}"
    );
    match interrupted {
        Err(ComfyError::Interrupted { node }) => assert!(node.is_some()),
        other => panic!("expected Interrupted, got {other:?}"),
    }
    let entry = c.history(&running.to_string()).await.unwrap().unwrap();
    assert_eq!(entry.status.unwrap().status_str, "error");
    // The server is usable afterwards.
    let after = guarded(c.run_prompt(
        Uuid::new_v4(),
        &trivial_prompt(8, 8, "after"),
        None,
        &RunOptions::default(),
        |_: &ServerEvent| {},
    ))
    .await
    .unwrap();
    assert_eq!(after.files.len(), 1);
}

// ---------------------------------------------------------------- the fake, compared

/// One exchange, made with the real server and the fake alike.
struct Exchange {
    what: String,
    method: &'static str,
    path: String,
    body: Option<(String, Vec<u8>)>,
}

impl Exchange {
    fn get(path: &str) -> Self {
        Self {
            what: format!("GET {path}"),
            method: "GET",
            path: path.into(),
            body: None,
        }
    }
    fn post(path: &str, body: Value) -> Self {
        Self {
            what: format!("POST {path} {body}"),
            method: "POST",
            path: path.into(),
            body: Some(("application/json".into(), body.to_string().into_bytes())),
        }
    }
    fn send(&self, addr: SocketAddr) -> HttpAnswer {
        http(
            addr,
            self.method,
            &self.path,
            self.body.as_ref().map(|(t, b)| (t.as_str(), b.clone())),
        )
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The differences between the real answer and the fake's: status, content type, JSON shape.
fn compare(what: &str, real: &HttpAnswer, fake: &HttpAnswer, out: &mut Vec<String>) {
    if real.status != fake.status {
        out.push(format!(
            "{what}: status {} (real) vs {} (fake); real body {:.300}, fake body {:.300}",
            real.status,
            fake.status,
            real.text(),
            fake.text()
        ));
        return;
    }
    let media = |a: &HttpAnswer| {
        a.header("content-type")
            .map(|t| t.split(';').next().unwrap_or("").trim().to_string())
    };
    if media(real) != media(fake) {
        out.push(format!(
            "{what}: content type {:?} (real) vs {:?} (fake)",
            real.header("content-type"),
            fake.header("content-type")
        ));
    }
    let parse = |a: &HttpAnswer| serde_json::from_slice::<Value>(&a.body).ok();
    match (parse(real), parse(fake)) {
        (Some(r), Some(f)) => {
            let mut diffs = Vec::new();
            shape_diff(&r, &f, "$", &mut diffs);
            for d in diffs {
                out.push(format!("{what}: {d}"));
            }
        }
        (Some(_), None) => out.push(format!(
            "{what}: the fake's body is not JSON: {:.300}",
            fake.text()
        )),
        (None, Some(_)) => out.push(format!(
            "{what}: the real body is not JSON, the fake's is: {:.300} vs {:.300}",
            real.text(),
            fake.text()
        )),
        (None, None) => {}
    }
}

/// Posts a prompt to both servers and waits until each has its history entry.
fn run_on_both(
    real: &RealServer,
    fake: &FakeComfy,
    prompt: &Value,
    out: &mut Vec<String>,
) -> (String, String) {
    let exchange = Exchange::post("/prompt", json!({"prompt": prompt, "client_id": "compare"}));
    let (r, f) = (
        exchange.send(addr(real.port)),
        exchange.send(addr(fake.port)),
    );
    compare(&exchange.what, &r, &f, out);
    assert_eq!(r.status, 200, "real: {}", r.text());
    let ids = (
        r.json()["prompt_id"].as_str().unwrap().to_string(),
        f.json()["prompt_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    for (port, id) in [(real.port, &ids.0), (fake.port, &ids.1)] {
        let deadline = std::time::Instant::now() + REAL_SAFETY;
        loop {
            let h = http(addr(port), "GET", &format!("/history/{id}"), None);
            if h.status == 200 && h.json().get(id.as_str()).is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "prompt {id} never finished"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    ids
}

fn multipart_image(name: &str, bytes: &[u8], subfolder: &str) -> (String, Vec<u8>) {
    let boundary = "realtierboundary5c1e";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n").as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"subfolder\"\r\n\r\n{subfolder}\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Event types of a prompt run through the connector, in order (binary frames by number).
async fn event_kinds(url: &str, prompt: &Value) -> Vec<String> {
    let mut kinds = Vec::new();
    guarded(client(url).run_prompt(
        Uuid::new_v4(),
        prompt,
        None,
        &RunOptions::default(),
        |e: &ServerEvent| match e {
            ServerEvent::Message(m) => kinds.push(m.kind().to_owned()),
            ServerEvent::Binary(_) => kinds.push("binary".into()),
            _ => {}
        },
    ))
    .await
    .unwrap();
    kinds
}

#[actix_rt::test]
async fn the_fake_answers_like_the_real_comfyui() {
    let Some(real_comfyui) = RealComfyUi::from_env_or_skip("fake vs real") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A models folder outside both servers, registered the way comfy-fleet registers its
    // model library: an extra_model_paths.yaml.
    let library = dir.path().join("library");
    for (file, bytes) in [
        ("loras/cmp_lora.safetensors", &b"lora"[..]),
        ("loras/styles/ink.safetensors", b"lora"),
        ("loras/notes.txt", b"not a model"),
        ("checkpoints/cmp_model.safetensors", b"ckpt"),
        ("unet/cmp_unet.safetensors", b"unet"),
    ] {
        let path = library.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let yaml = dir.path().join("extra_model_paths.yaml");
    std::fs::write(
        &yaml,
        format!(
            "library:\n  base_path: {}\n  loras: loras\n  checkpoints: checkpoints\n  unet: unet\n  vae: |\n    vae\n    more_vae\n",
            Value::from(library.display().to_string())
        ),
    )
    .unwrap();
    let yaml_arg = yaml.display().to_string();
    let real = real_comfyui.spawn(
        &dir.path().join("real"),
        &["--extra-model-paths-config", &yaml_arg],
    );
    let fake_dir = tempfile::tempdir().unwrap();
    let fake = FakeComfy::builder()
        .port(0)
        .args(["--cpu", "--fake-node-time", "1ms"])
        .args(["--database-url", "sqlite:///:memory:"])
        .args(["--extra-model-paths-config", &yaml_arg])
        .arg("--temp-directory")
        .arg(fake_dir.path().display().to_string())
        .spawn();
    let mut diffs: Vec<String> = Vec::new();

    // Discovery and housekeeping routes.
    let exchanges = [
        Exchange::get("/system_stats"),
        Exchange::get("/queue"),
        Exchange::get("/prompt"),
        Exchange::get("/embeddings"),
        Exchange::get("/extensions"),
        Exchange::get("/features"),
        Exchange::get("/models"),
        Exchange::get("/models/checkpoints"),
        Exchange::get("/models/loras"),
        Exchange::get("/models/nosuchfolder"),
        Exchange::get("/object_info/EmptyImage"),
        Exchange::get("/object_info/LoadImage"),
        Exchange::get("/object_info/CheckpointLoaderSimple"),
        Exchange::get("/object_info/NoSuchNode"),
        Exchange::get("/history?max_items=5"),
        Exchange::get("/history/not-a-prompt"),
        Exchange::get("/api/jobs"),
        Exchange::get("/api/jobs/not-a-prompt"),
        Exchange::get("/view?filename=nosuch.png&type=output"),
        Exchange::get("/internal/folder_paths"),
        Exchange::post("/interrupt", json!({})),
        Exchange::post("/queue", json!({"delete": ["not-a-prompt"]})),
        Exchange::post("/free", json!({"unload_models": true, "free_memory": true})),
    ];
    for e in &exchanges {
        compare(
            &e.what,
            &e.send(addr(real.port)),
            &e.send(addr(fake.port)),
            &mut diffs,
        );
    }
    // Where nothing depends on ids or the machine, the values themselves must agree.
    for path in [
        "/queue",
        "/prompt",
        "/embeddings",
        "/features",
        "/models",
        "/models/checkpoints",
        "/models/loras",
        "/object_info/EmptyImage",
        "/object_info/LoadImage",
        "/object_info/CheckpointLoaderSimple",
        "/object_info/LoraLoader",
        "/object_info/UNETLoader",
        "/models/diffusion_models",
        "/models/vae",
        "/history",
    ] {
        let (r, f) = (
            http(addr(real.port), "GET", path, None),
            http(addr(fake.port), "GET", path, None),
        );
        if r.status == 200 && f.status == 200 && r.json() != f.json() {
            diffs.push(format!(
                "GET {path}: {:.400} (real) vs {:.400} (fake)",
                r.text(),
                f.text()
            ));
        }
    }

    // The node catalogue: the fake's is the captured one.
    let names = |port: u16| -> BTreeSet<String> {
        let info = http(addr(port), "GET", "/object_info", None).json();
        info.as_object().unwrap().keys().cloned().collect()
    };
    let (real_nodes, fake_nodes) = (names(real.port), names(fake.port));
    let mut catalogue = Vec::new();
    shape_diff(
        &http(addr(real.port), "GET", "/object_info", None).json(),
        &http(addr(fake.port), "GET", "/object_info", None).json(),
        "$",
        &mut catalogue,
    );
    diffs.extend(
        catalogue
            .into_iter()
            .map(|d| format!("GET /object_info: {d}")),
    );
    eprintln!(
        "[figure] node classes: real {}, fake {}; only real: {:?}; only fake: {:?}",
        real_nodes.len(),
        fake_nodes.len(),
        real_nodes
            .difference(&fake_nodes)
            .take(20)
            .collect::<Vec<_>>(),
        fake_nodes
            .difference(&real_nodes)
            .take(20)
            .collect::<Vec<_>>()
    );

    // Refused prompts: every error class comfy-fleet reads.
    let mut unknown_class = trivial_prompt(8, 8, "x");
    unknown_class["2"]["class_type"] = json!("NoSuchNode");
    let mut missing_input = trivial_prompt(8, 8, "x");
    missing_input["1"]["inputs"]
        .as_object_mut()
        .unwrap()
        .remove("width");
    let mut out_of_range = trivial_prompt(8, 8, "x");
    out_of_range["1"]["inputs"]["width"] = json!(0);
    let mut bad_type = trivial_prompt(8, 8, "x");
    bad_type["1"]["inputs"]["height"] = json!("tall");
    let mut bad_link = trivial_prompt(8, 8, "x");
    bad_link["2"]["inputs"]["image"] = json!(["99", 0]);
    let mut no_output = trivial_prompt(8, 8, "x");
    no_output.as_object_mut().unwrap().remove("3");
    let mut missing_file = captured_json("prompt_loadimage.json");
    missing_file["10"]["inputs"]["image"] = json!("nosuch.png");
    for (what, body) in [
        ("unknown class", json!({"prompt": unknown_class})),
        ("missing input", json!({"prompt": missing_input})),
        ("value below min", json!({"prompt": out_of_range})),
        ("bad type", json!({"prompt": bad_type})),
        ("link to a missing node", json!({"prompt": bad_link})),
        ("no output node", json!({"prompt": no_output})),
        ("missing LoadImage file", json!({"prompt": missing_file})),
        ("not a prompt", json!({"nope": 1})),
    ] {
        let e = Exchange::post("/prompt", body);
        compare(
            &format!("POST /prompt ({what})"),
            &e.send(addr(real.port)),
            &e.send(addr(fake.port)),
            &mut diffs,
        );
    }

    // A prompt that runs: its answer, history entry, job record and output file.
    let (real_id, fake_id) = run_on_both(&real, &fake, &trivial_prompt(64, 40, "cmp"), &mut diffs);
    let pairs = [
        (format!("/history/{real_id}"), format!("/history/{fake_id}")),
        (
            format!("/api/jobs/{real_id}"),
            format!("/api/jobs/{fake_id}"),
        ),
        ("/api/jobs".to_string(), "/api/jobs".to_string()),
        (
            "/history?max_items=1".to_string(),
            "/history?max_items=1".to_string(),
        ),
        ("/queue".to_string(), "/queue".to_string()),
    ];
    for (r, f) in &pairs {
        let (ra, fa) = (
            http(addr(real.port), "GET", r, None),
            http(addr(fake.port), "GET", f, None),
        );
        compare(&format!("GET {r}"), &ra, &fa, &mut diffs);
    }
    let history = http(addr(real.port), "GET", &format!("/history/{real_id}"), None).json();
    let image = &history[real_id.as_str()]["outputs"]["3"]["images"][0];
    let view = |port: u16, image: &Value| {
        http(
            addr(port),
            "GET",
            &format!(
                "/view?filename={}&subfolder={}&type=output",
                image["filename"].as_str().unwrap(),
                image["subfolder"].as_str().unwrap()
            ),
            None,
        )
    };
    let fake_history = http(addr(fake.port), "GET", &format!("/history/{fake_id}"), None).json();
    let fake_image = &fake_history[fake_id.as_str()]["outputs"]["3"]["images"][0];
    let (rv, fv) = (view(real.port, image), view(fake.port, fake_image));
    compare("GET /view (output)", &rv, &fv, &mut diffs);
    assert_eq!(png_size(&rv.body), (64, 40));
    assert_eq!(png_size(&fv.body), (64, 40));

    // Uploads, in a subfolder, twice (the second time the same bytes keep the name).
    let source = std::fs::read(captured("upload_source.png")).unwrap();
    for round in ["first", "again"] {
        let (ct, body) = multipart_image("cmp_upload.png", &source, "cmp");
        let (ra, fa) = (
            http(
                addr(real.port),
                "POST",
                "/upload/image",
                Some((&ct, body.clone())),
            ),
            http(addr(fake.port), "POST", "/upload/image", Some((&ct, body))),
        );
        compare(
            &format!("POST /upload/image ({round})"),
            &ra,
            &fa,
            &mut diffs,
        );
        if ra.status == 200 && fa.status == 200 && ra.json() != fa.json() {
            diffs.push(format!(
                "POST /upload/image ({round}): {} (real) vs {} (fake)",
                ra.text(),
                fa.text()
            ));
        }
    }
    let mut load = captured_json("prompt_loadimage.json");
    load["10"]["inputs"]["image"] = json!("cmp/cmp_upload.png");
    run_on_both(&real, &fake, &load, &mut diffs);

    // The websocket: the same event types in the same order for the same prompts.
    for (what, prompt) in [
        ("trivial", trivial_prompt(32, 32, "ws")),
        ("cached", trivial_prompt(32, 32, "ws")),
        ("loadimage", load.clone()),
    ] {
        let real_kinds = event_kinds(&real.base_url(), &prompt).await;
        let fake_kinds = event_kinds(&fake.base_url(), &prompt).await;
        if real_kinds != fake_kinds {
            diffs.push(format!(
                "websocket ({what}): {real_kinds:?} (real) vs {fake_kinds:?} (fake)"
            ));
        }
    }

    // Clearing the history and the queue.
    for e in [
        Exchange::post("/history", json!({"clear": true})),
        Exchange::post("/queue", json!({"clear": true})),
        Exchange::get("/history"),
    ] {
        compare(
            &e.what,
            &e.send(addr(real.port)),
            &e.send(addr(fake.port)),
            &mut diffs,
        );
    }

    assert!(
        diffs.is_empty(),
        "fake-comfyui differs from the real ComfyUI 0.33.0 in {} places:\n  {}",
        diffs.len(),
        diffs.join("\n  ")
    );
}

// ---------------------------------------------------------------- the fleet

/// A job's output `n` fetched through the fleet API.
fn output(fleet: &FleetProcess, job: &str, n: usize) -> HttpAnswer {
    let answer = fleet.get(&format!("/v1/jobs/{job}/outputs/{n}"));
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer
}

/// A fleet log line of `instance`'s ComfyUI saying it received a prompt.
fn got_prompt(instance: &str) -> impl Fn(&str) -> bool + '_ {
    move |line| line.contains(&format!("instance={instance}")) && line.contains("got prompt")
}

#[test]
fn a_fleet_of_two_real_instances_runs_the_demo_uploads_and_cancels_then_stops_clean() {
    let Some(real) = RealComfyUi::from_env_or_skip("fleet") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let mut fleet = FleetProcess::start(&real.fleet_spec(2), root.path());
    let status = wait_status(&fleet, "2 ready real instances", |s| {
        count_phase(s, "ready") == 2
    });
    eprintln!(
        "[figure] fleet of 2 real instances: spawn to both ready {:?}",
        fleet.spawned_at.elapsed()
    );
    for id in ["cpu0", "cpu1"] {
        let process = fleet.instance_process(id).expect("a real ComfyUI process");
        assert!(
            process.argv.iter().any(|a| a == "main.py")
                && process.argv.iter().any(|a| a == "--cpu"),
            "{:?}",
            process.argv
        );
        let url = instance_in(&status, id)["url"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            url,
            format!("http://127.0.0.1:{}", process.arg("--port").unwrap())
        );
    }

    // The demo template, end to end.
    let demo = fleet.submit(&json!({"template": "demo", "params": {"width": 96, "height": 64}}));
    let done = wait_finished(&fleet, &demo);
    assert_eq!(done["state"], "done", "{done:#}");
    assert_eq!(png_size(&output(&fleet, &demo, 0).body), (96, 64));

    // An uploaded image feeds LoadImage.
    let request = json!({"workflow": captured_json("prompt_loadimage.json"), "params": {}});
    let source = std::fs::read(captured("upload_source.png")).unwrap();
    let answer = fleet.post_multipart(
        "/v1/jobs",
        &[
            (
                "request",
                None,
                "application/json",
                request.to_string().as_bytes(),
            ),
            ("image", Some("photo.png"), "image/png", &source),
        ],
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
    let upload_job = answer.json()["id"].as_str().unwrap().to_string();
    let done = wait_finished(&fleet, &upload_job);
    assert_eq!(done["state"], "done", "{done:#}");
    assert_eq!(png_size(&output(&fleet, &upload_job, 0).body), (64, 48));
    let instance = done["instance"].as_str().unwrap().to_string();
    // The real LoadImage read the upload (the output has its size); once the job has ended, the
    // upload is gone from the instance's input folder.
    let inputs: Vec<_> = walk(&fleet.state_dir.join(&instance).join("input"));
    assert!(
        !inputs
            .iter()
            .any(|p| std::fs::read(p).is_ok_and(|b| b == source)),
        "the upload outlived its job in {instance}'s input folder: {inputs:?}"
    );

    // A running job is cancelled: ComfyUI is interrupted and takes the next job.
    let slow = fleet.submit(&json!({"workflow": slow_prompt()}));
    let running = wait_job(&fleet, &slow, "started", |j| j["state"] == "running");
    let on = running["instance"].as_str().unwrap().to_string();
    fleet.log.wait_until_logged(got_prompt(&on), REAL_SAFETY);
    let cancel =
        support::http_client::http(fleet.addr, "DELETE", &format!("/v1/jobs/{slow}"), None);
    assert_eq!(cancel.status, 202, "{}", cancel.text());
    let cancelled = wait_finished(&fleet, &slow);
    assert_eq!(cancelled["state"], "cancelled", "{cancelled:#}");
    let after = fleet.submit(&json!({"template": "demo", "params": {"width": 64, "height": 64}}));
    assert_eq!(wait_finished(&fleet, &after)["state"], "done");

    // One model library: a LoRA put through the API is at once a choice of every real instance.
    let put = http(
        fleet.addr,
        "PUT",
        "/v1/models/loras/real-tier/ink.safetensors?ephemeral=true",
        Some(("application/octet-stream", b"not really weights".to_vec())),
    );
    assert_eq!(put.status, 201, "{}", put.text());
    let status = fleet.status();
    for id in ["cpu0", "cpu1"] {
        let url = instance_in(&status, id)["url"]
            .as_str()
            .unwrap()
            .to_string();
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        let info = http(addr(port), "GET", "/object_info/LoraLoader", None).json();
        let choices = &info["LoraLoader"]["input"]["required"]["lora_name"][0];
        assert!(
            choices
                .as_array()
                .unwrap()
                .contains(&json!("real-tier/ink.safetensors")),
            "{id}: {choices}"
        );
    }
    let library = fleet.state_dir.join("models");
    assert!(library.join("loras/real-tier/ink.safetensors").is_file());

    // SIGTERM: the fleet drains and exits, and no Python process is left.
    fleet.signal(Signal::SIGTERM);
    let exit = fleet.wait_exit();
    assert!(exit.success(), "{exit:?}; log:\n{}", fleet.log.tail(40));
    fleet.wait_no_processes();
    let inputs = walk(&fleet.state_dir.join(&instance).join("input"));
    assert!(
        !inputs
            .iter()
            .any(|p| std::fs::read(p).is_ok_and(|b| b == source)),
        "the uploaded input is deleted with its instance: {inputs:?}"
    );
    assert!(
        !library.join("loras/real-tier/ink.safetensors").exists(),
        "the ephemeral LoRA is deleted with the fleet"
    );
}

#[test]
fn a_job_whose_real_instance_is_killed_finishes_on_the_other() {
    let Some(real) = RealComfyUi::from_env_or_skip("fleet kill -9") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let fleet = FleetProcess::start(&real.fleet_spec(2), root.path());
    wait_status(&fleet, "2 ready real instances", |s| {
        count_phase(s, "ready") == 2
    });

    let job = fleet.submit(&json!({"workflow": slow_prompt()}));
    let running = wait_job(&fleet, &job, "started", |j| j["state"] == "running");
    let victim = running["instance"].as_str().unwrap().to_string();
    assert!(
        fleet
            .log
            .wait_until_logged(got_prompt(&victim), REAL_SAFETY),
        "{victim} never received the prompt"
    );
    let process = fleet.instance_process(&victim).unwrap();
    send_signal(process.pid, Signal::SIGKILL);

    let done = wait_finished(&fleet, &job);
    assert_eq!(done["state"], "done", "{done:#}");
    assert_ne!(done["instance"], victim, "{done:#}");
    assert_eq!(done["attempt"], 2, "{done:#}");
    assert_eq!(png_size(&output(&fleet, &job, 0).body), (1024, 1024));
    // The killed instance comes back on a new process.
    wait_status(&fleet, "the killed instance ready again", |s| {
        instance_in(s, &victim)["phase"] == "ready"
            && fleet
                .instance_process(&victim)
                .is_some_and(|p| p.pid != process.pid)
    });
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
