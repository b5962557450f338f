//! Contract tests for `fake-comfyui`: the real binary is started on a free port and every captured
//! ComfyUI 0.33.0 exchange in `tests/fixtures/comfyui` is replayed against it. HTTP answers
//! must have the captured status and the same body shape (keys and JSON types, recursively; ids,
//! timestamps and paths may differ); websocket scenarios must produce the same message sequence
//! (types in order, binary event types, data keys).

mod support;

use std::time::Duration;

use awc::ws;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::fake_process::FakeComfy;
use support::fixtures::{captured, captured_bytes, captured_dir, captured_json};
use support::json_shape::assert_shape;

/// Safety net for any single network wait.
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- fixtures

fn ws_fixture(name: &str) -> Vec<Value> {
    std::fs::read_to_string(captured(name))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// ---------------------------------------------------------------- HTTP

struct Reply {
    status: u16,
    headers: awc::http::header::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

fn client() -> awc::Client {
    awc::Client::builder().timeout(WAIT).finish()
}

async fn finish(
    mut resp: awc::ClientResponse<
        impl futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
    >,
) -> Reply {
    let body = resp.body().limit(64 << 20).await.expect("body");
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body,
    }
}

async fn get(fake: &FakeComfy, path: &str) -> Reply {
    let resp = client().get(fake.url(path)).send().await.expect("GET");
    finish(resp).await
}

async fn post_json(fake: &FakeComfy, path: &str, body: &Value) -> Reply {
    let resp = client()
        .post(fake.url(path))
        .insert_header(("Content-Type", "application/json"))
        .send_body(body.to_string())
        .await
        .expect("POST");
    finish(resp).await
}

async fn post_raw(fake: &FakeComfy, path: &str, body: &str) -> Reply {
    let resp = client()
        .post(fake.url(path))
        .send_body(body.to_string())
        .await
        .expect("POST");
    finish(resp).await
}

/// Builds a multipart/form-data body.
fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "fakecomfyboundary7d1f";
    let mut body = Vec::new();
    for (name, filename, data) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: image/png\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(fake: &FakeComfy, fields: &[(&str, Option<&str>, &[u8])]) -> Reply {
    let (ct, body) = multipart(fields);
    let resp = client()
        .post(fake.url("/upload/image"))
        .insert_header(("Content-Type", ct))
        .send_body(body)
        .await
        .expect("upload");
    finish(resp).await
}

/// Replays a captured HTTP record's request.
async fn replay(fake: &FakeComfy, record: &Value) -> Reply {
    let req = &record["request"];
    let path = req["path"].as_str().unwrap();
    match req["method"].as_str().unwrap() {
        "GET" => get(fake, path).await,
        "POST" => match (req.get("json_body"), req.get("raw_body")) {
            (Some(body), _) => post_json(fake, path, body).await,
            (None, Some(raw)) => post_raw(fake, path, raw.as_str().unwrap()).await,
            (None, None) => post_raw(fake, path, "").await,
        },
        other => panic!("method {other}"),
    }
}

/// Checks status and body shape of a reply against a captured record.
#[track_caller]
fn assert_record(record: &Value, reply: &Reply, what: &str) {
    let resp = &record["response"];
    assert_eq!(
        reply.status as u64,
        resp["status"].as_u64().unwrap(),
        "{what}: status; body {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    match resp.get("body").or(resp.get("body_text")) {
        None => assert!(reply.body.is_empty(), "{what}: expected an empty body"),
        Some(Value::String(text))
            if !reply.body.starts_with(b"{") && !reply.body.starts_with(b"[") =>
        {
            assert_eq!(
                String::from_utf8_lossy(&reply.body),
                *text,
                "{what}: text body"
            )
        }
        Some(body) => {
            if let Some(ct) = resp["headers"].get("Content-Type").and_then(Value::as_str) {
                assert_eq!(
                    reply.header("content-type").as_deref(),
                    Some(ct),
                    "{what}: content type"
                );
            }
            assert_shape(body, &reply.json(), what)
        }
    }
}

async fn post_prompt(fake: &FakeComfy, prompt: &Value, client_id: Option<&str>) -> String {
    let mut body = json!({"prompt": prompt});
    if let Some(c) = client_id {
        body["client_id"] = json!(c);
    }
    let r = post_json(fake, "/prompt", &body).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()["prompt_id"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------- websocket

#[derive(Debug, Clone)]
enum Frame {
    Text(Value),
    Binary(Vec<u8>),
}

impl Frame {
    fn signature(&self) -> String {
        match self {
            Frame::Text(v) => format!("text:{}", v["type"].as_str().unwrap_or("?")),
            Frame::Binary(b) => {
                let t = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                format!("binary:{t}")
            }
        }
    }
    fn kind(&self) -> &str {
        match self {
            Frame::Text(v) => v["type"].as_str().unwrap_or(""),
            Frame::Binary(_) => "binary",
        }
    }
    fn data(&self) -> &Value {
        match self {
            Frame::Text(v) => &v["data"],
            Frame::Binary(_) => &Value::Null,
        }
    }
}

type WsStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<ws::Frame, awc::error::WsProtocolError>>>,
>;
type WsSink =
    std::pin::Pin<Box<dyn futures_util::Sink<ws::Message, Error = awc::error::WsProtocolError>>>;

struct WsClient {
    sink: WsSink,
    stream: WsStream,
}

impl WsClient {
    /// Connects and returns the client plus its initial `status` frame.
    async fn connect(fake: &FakeComfy, client_id: &str) -> (WsClient, Value) {
        let (_resp, framed) = client()
            .ws(fake.ws_url(client_id))
            .max_frame_size(64 << 20)
            .connect()
            .await
            .expect("ws connect");
        let mut c = WsClient::from_framed(framed);
        let Frame::Text(first) = c.next().await else {
            panic!("first frame must be text")
        };
        assert_eq!(first["type"], "status");
        (c, first)
    }

    fn from_framed<F>(framed: F) -> WsClient
    where
        F: futures_util::Stream<Item = Result<ws::Frame, awc::error::WsProtocolError>>
            + futures_util::Sink<ws::Message, Error = awc::error::WsProtocolError>
            + 'static,
    {
        let (sink, stream) = framed.split();
        WsClient {
            sink: Box::pin(sink),
            stream: Box::pin(stream),
        }
    }

    async fn next(&mut self) -> Frame {
        loop {
            let item = actix_rt::time::timeout(WAIT, self.stream.next())
                .await
                .expect("websocket frame within the safety timeout")
                .expect("websocket open")
                .expect("websocket frame");
            match item {
                ws::Frame::Text(t) => return Frame::Text(serde_json::from_slice(&t).unwrap()),
                ws::Frame::Binary(b) => return Frame::Binary(b.to_vec()),
                ws::Frame::Ping(p) => {
                    let _ = self.sink.send(ws::Message::Pong(p)).await;
                }
                _ => {}
            }
        }
    }

    async fn send_text(&mut self, text: &str) {
        self.sink
            .send(ws::Message::Text(text.to_string().into()))
            .await
            .expect("ws send");
    }

    /// Frames until (and including) `executing` with `node: null` for `prompt_id`.
    async fn until_done(&mut self, prompt_id: &str) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let f = self.next().await;
            let done = f.kind() == "executing"
                && f.data()["node"].is_null()
                && f.data()["prompt_id"] == prompt_id;
            frames.push(f);
            if done {
                return frames;
            }
        }
    }

    /// Frames until `pred` matches one (included).
    async fn until(&mut self, pred: impl Fn(&Frame) -> bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let f = self.next().await;
            let stop = pred(&f);
            frames.push(f);
            if stop {
                return frames;
            }
        }
    }
}

fn fixture_frames(name: &str) -> Vec<Frame> {
    ws_fixture(name)
        .into_iter()
        .map(|l| {
            if l["frame"] == "text" {
                Frame::Text(l["data"].clone())
            } else {
                let t = l["event_type"].as_u64().unwrap() as u8;
                Frame::Binary(vec![0, 0, 0, t])
            }
        })
        .collect()
}

fn signatures(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(Frame::signature).collect()
}

/// Same message types in the same order, and each text frame's data has the captured shape.
#[track_caller]
fn assert_ws_sequence(fixture_name: &str, actual: &[Frame]) {
    let expected = fixture_frames(fixture_name);
    assert_eq!(
        signatures(actual),
        signatures(&expected),
        "{fixture_name}: websocket sequence differs"
    );
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        if let (Frame::Text(ev), Frame::Text(av)) = (e, a) {
            assert_shape(ev, av, &format!("{fixture_name} frame {i} ({})", e.kind()));
        }
    }
}

// ---------------------------------------------------------------- tests: discovery

#[actix_rt::test]
async fn discovery_routes_match_the_captures() {
    let fake = FakeComfy::builder().arg("--cpu").spawn();
    let stats = get(&fake, "/system_stats").await;
    assert_eq!(stats.status, 200);
    let stats = stats.json();
    assert_shape(&captured_json("system_stats.json"), &stats, "system_stats");
    assert_eq!(stats["devices"][0]["type"], "cpu");
    let argv: Vec<String> = stats["system"]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(argv[0], "main.py");
    assert!(argv.contains(&fake.port.to_string()) && argv.contains(&"--cpu".to_string()));

    assert_eq!(
        get(&fake, "/features").await.json(),
        captured_json("features.json")
    );
    assert_eq!(
        get(&fake, "/api/features").await.json(),
        captured_json("features.json")
    );
    assert_eq!(
        get(&fake, "/embeddings").await.json(),
        captured_json("embeddings.json")
    );
    assert_eq!(
        get(&fake, "/models").await.json(),
        captured_json("models.json")
    );
    assert_eq!(
        get(&fake, "/models/checkpoints").await.json(),
        captured_json("models_checkpoints.json")
    );
    assert_eq!(get(&fake, "/models/nonexistent_folder").await.status, 404);
    assert_eq!(
        get(&fake, "/extensions").await.json(),
        captured_json("extensions.json")
    );
    assert_eq!(
        get(&fake, "/queue").await.json(),
        captured_json("queue_empty.json")
    );
    assert_eq!(
        get(&fake, "/prompt").await.json(),
        captured_json("prompt_get_queue_info.json")
    );
    assert_eq!(
        get(&fake, "/history").await.json(),
        captured_json("history_empty.json")
    );
    assert_eq!(
        get(&fake, "/history/00000000-0000-0000-0000-000000000000")
            .await
            .json(),
        captured_json("history_unknown_id.json")
    );
    assert_eq!(
        get(&fake, "/api/jobs").await.json(),
        captured_json("api_jobs_empty.json")
    );
    let missing = get(&fake, "/api/jobs/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json(), captured_json("api_job_not_found.json"));

    let info = get(&fake, "/object_info").await;
    assert_eq!(
        info.header("content-type").as_deref(),
        Some("application/json; charset=utf-8")
    );
    let info = info.json();
    let captured = captured_json("object_info.json");
    assert_eq!(
        info.as_object().unwrap().len(),
        captured.as_object().unwrap().len()
    );
    assert_eq!(info["KSampler"], captured["KSampler"]);
    assert_eq!(
        get(&fake, "/object_info/EmptyImage").await.json(),
        captured_json("object_info_EmptyImage.json")
    );
    assert_eq!(
        get(&fake, "/api/object_info/NoSuchNode").await.json(),
        captured_json("object_info_unknown_node.json")
    );
}

#[actix_rt::test]
async fn gpu_device_names_the_visible_cuda_device() {
    let fake = FakeComfy::builder()
        .env("CUDA_VISIBLE_DEVICES", "3")
        .spawn();
    let stats = get(&fake, "/system_stats").await.json();
    let dev = &stats["devices"][0];
    assert_eq!(dev["type"], "cuda");
    assert!(dev["name"].as_str().unwrap().contains('3'), "{dev}");
    // the capture is a CPU device (index null); a CUDA device reports index 0
    assert_eq!(dev["index"], 0);
    let mut dev = dev.clone();
    dev["index"] = Value::Null;
    assert_shape(
        &captured_json("system_stats.json")["devices"][0],
        &dev,
        "device",
    );
}

#[actix_rt::test]
async fn route_probe_statuses_match_except_static_frontend_routes() {
    // The fake serves no web frontend bundle: these answered from the real frontend package.
    let static_only = ["/templates/index.json", "/docs/", "/api/global_subgraphs"];
    let fake = FakeComfy::start();
    let probes = captured_json("routes_probe.json");
    for p in probes.as_array().unwrap() {
        let path = p["path"].as_str().unwrap();
        if static_only.contains(&path) {
            continue;
        }
        let r = get(&fake, path).await;
        assert_eq!(r.status as u64, p["status"].as_u64().unwrap(), "GET {path}");
        if let Some(ct) = p["content_type"].as_str()
            && ct.starts_with("application/json")
        {
            assert_eq!(r.header("content-type").as_deref(), Some(ct), "GET {path}");
        }
    }
}

#[actix_rt::test]
async fn load_image_choices_follow_the_input_folder() {
    let fake = FakeComfy::start();
    std::fs::write(
        fake.input_dir().join("b.png"),
        captured_bytes("upload_source.png"),
    )
    .unwrap();
    std::fs::write(
        fake.input_dir().join("a.png"),
        captured_bytes("upload_source.png"),
    )
    .unwrap();
    let info = get(&fake, "/object_info/LoadImage").await.json();
    assert_eq!(
        info["LoadImage"]["input"]["required"]["image"][0],
        json!(["a.png", "b.png"])
    );
}

// ---------------------------------------------------------------- tests: validation errors

#[actix_rt::test]
async fn every_captured_prompt_error_gets_the_captured_status_and_body_shape() {
    let fake = FakeComfy::start();
    std::fs::write(
        fake.input_dir().join("fixture_upload.png"),
        captured_bytes("upload_source.png"),
    )
    .unwrap();
    let (mut ws, _) = WsClient::connect(&fake, "b8cc6475cc864fce8d10811e60cad969").await;
    let mut names: Vec<String> = std::fs::read_dir(captured_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("error_") && n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 19);
    for name in &names {
        let record = captured_json(name);
        let reply = replay(&fake, &record).await;
        assert_record(&record, &reply, name);
        let expected = &record["response"]["body"];
        if let (Some(e), Ok(a)) = (
            expected.get("error"),
            serde_json::from_slice::<Value>(&reply.body),
        ) {
            assert_eq!(a["error"]["type"], e["type"], "{name}");
            assert_eq!(a["error"]["message"], e["message"], "{name}");
            // per-node error types, messages and details are the captured ones
            for (node, ne) in expected["node_errors"].as_object().unwrap() {
                let ours = &a["node_errors"][node];
                let their_types: Vec<&Value> = ne["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| &x["type"])
                    .collect();
                let our_types: Vec<&Value> = ours["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| &x["type"])
                    .collect();
                assert_eq!(our_types, their_types, "{name} node {node}");
                for (te, oe) in ne["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(ours["errors"].as_array().unwrap())
                {
                    assert_eq!(oe["message"], te["message"], "{name}");
                    assert_eq!(oe["details"], te["details"], "{name}");
                }
            }
        }
    }
    // errors_validation_ws.jsonl: nothing reaches the websocket. The next valid prompt's
    // enqueue `status` is the first frame after all those rejections.
    let id = post_prompt(
        &fake,
        &captured_json("prompt_trivial.json"),
        Some("b8cc6475cc864fce8d10811e60cad969"),
    )
    .await;
    let first = ws.next().await;
    assert_eq!(first.kind(), "status");
    assert_eq!(first.data()["status"]["exec_info"]["queue_remaining"], 1);
    ws.until_done(&id).await;
    assert_eq!(fixture_frames("errors_validation_ws.jsonl").len(), 1);
    // nothing of the rejected prompts is in history or jobs
    let history = get(&fake, "/history").await.json();
    assert_eq!(history.as_object().unwrap().len(), 1);
}

// ---------------------------------------------------------------- tests: success, cache, view

#[actix_rt::test]
async fn trivial_then_cached_prompt_matches_ws_history_jobs_and_view() {
    let fake = FakeComfy::start();
    let cid = "f71b4c356a474fbfa6e105f6901b9e3e";
    let (mut ws, first) = WsClient::connect(&fake, cid).await;
    assert_shape(
        &fixture_frames("ws_connect_initial.jsonl")[0].data().clone(),
        &first["data"],
        "connect",
    );
    assert_eq!(first["data"]["sid"], cid);

    let record = captured_json("trivial_post_prompt.json");
    let reply = replay(&fake, &record).await;
    assert_record(&record, &reply, "trivial_post_prompt");
    let id = reply.json()["prompt_id"].as_str().unwrap().to_string();
    let frames = ws.until_done(&id).await;
    assert_ws_sequence("trivial_ws.jsonl", &frames);
    let executed = frames.iter().find(|f| f.kind() == "executed").unwrap();
    assert_eq!(
        executed.data()["output"]["images"][0]["filename"],
        "fixture_trivial_00001_.png"
    );

    let history = get(&fake, &format!("/history/{id}")).await;
    assert_record(
        &captured_json("trivial_history.json"),
        &history,
        "trivial_history",
    );
    let job = get(&fake, &format!("/api/jobs/{id}")).await;
    assert_record(
        &captured_json("trivial_api_job.json"),
        &job,
        "trivial_api_job",
    );
    assert_eq!(job.json()["status"], "completed");

    // GET /view
    let view_record = captured_json("trivial_view.json");
    let view = get(&fake, view_record["request"]["path"].as_str().unwrap()).await;
    assert_eq!(view.status, 200);
    for h in [
        "Content-Type",
        "Content-Disposition",
        "X-Content-Type-Options",
    ] {
        assert_eq!(
            view.header(h).as_deref(),
            view_record["response"]["headers"][h].as_str(),
            "header {h}"
        );
    }
    let png = image::load_from_memory(&view.body).unwrap();
    assert_eq!((png.width(), png.height()), (64, 64));
    let webp_record = captured_json("trivial_view_preview_webp.json");
    let webp = get(&fake, webp_record["request"]["path"].as_str().unwrap()).await;
    assert_eq!(webp.status, 200);
    assert_eq!(webp.header("content-type").as_deref(), Some("image/webp"));
    assert_eq!(
        webp.header("content-disposition").as_deref(),
        webp_record["response"]["headers"]["Content-Disposition"].as_str()
    );
    let missing = get(&fake, "/view?filename=nope.png&type=output").await;
    assert_eq!((missing.status, missing.body.len()), (404, 0));
    let jpeg = get(
        &fake,
        "/view?filename=fixture_trivial_00001_.png&type=output&preview=jpeg;80",
    )
    .await;
    assert_eq!(jpeg.header("content-type").as_deref(), Some("image/jpeg"));

    // the identical prompt again: fully cached, same filename, no new file
    let record = captured_json("trivial_cached_post_prompt.json");
    let reply = replay(&fake, &record).await;
    assert_record(&record, &reply, "trivial_cached_post_prompt");
    let id2 = reply.json()["prompt_id"].as_str().unwrap().to_string();
    let frames = ws.until_done(&id2).await;
    assert_ws_sequence("trivial_cached_ws.jsonl", &frames);
    let executed = frames.iter().find(|f| f.kind() == "executed").unwrap();
    assert_eq!(
        executed.data()["output"]["images"][0]["filename"],
        "fixture_trivial_00001_.png"
    );
    assert_eq!(std::fs::read_dir(fake.output_dir()).unwrap().count(), 1);
    assert_record(
        &captured_json("trivial_cached_history.json"),
        &get(&fake, &format!("/history/{id2}")).await,
        "trivial_cached_history",
    );
    assert_record(
        &captured_json("trivial_cached_api_job.json"),
        &get(&fake, &format!("/api/jobs/{id2}")).await,
        "trivial_cached_api_job",
    );

    // POST /free drops the cache: the next run executes again and writes a new file
    let free = replay(&fake, &captured_json("free.json")).await;
    assert_record(&captured_json("free.json"), &free, "free");
    let id3 = post_prompt(&fake, &captured_json("prompt_trivial.json"), Some(cid)).await;
    let frames = ws.until_done(&id3).await;
    let cached = frames
        .iter()
        .find(|f| f.kind() == "execution_cached")
        .unwrap();
    assert_eq!(cached.data()["nodes"], json!([]));
    assert!(
        fake.output_dir()
            .join("fixture_trivial_00002_.png")
            .is_file()
    );
}

#[actix_rt::test]
async fn different_seeds_give_different_pictures_and_cache_none_always_runs() {
    let fake = FakeComfy::builder().arg("--cache-none").spawn();
    let prompt = |color: u64| {
        json!({
            "1": {"class_type": "EmptyImage", "inputs": {"width": 24, "height": 16, "batch_size": 2, "color": color}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "seeded"}}
        })
    };
    let (mut ws, _) = WsClient::connect(&fake, "seed").await;
    for color in [1, 2, 2] {
        let id = post_prompt(&fake, &prompt(color), Some("seed")).await;
        let frames = ws.until_done(&id).await;
        let cached = frames
            .iter()
            .find(|f| f.kind() == "execution_cached")
            .unwrap();
        assert_eq!(cached.data()["nodes"], json!([]));
    }
    let read =
        |n: u32| std::fs::read(fake.output_dir().join(format!("seeded_{n:05}_.png"))).unwrap();
    assert_eq!(image::load_from_memory(&read(1)).unwrap().width(), 24);
    assert_ne!(read(1), read(3), "different color input, different picture");
    assert_eq!(read(3), read(5), "same inputs, same picture");
    assert!(fake.output_dir().join("seeded_00006_.png").is_file());
}

// ---------------------------------------------------------------- tests: uploads and LoadImage

#[actix_rt::test]
async fn uploads_follow_comfyui_naming_and_loadimage_runs() {
    let fake = FakeComfy::start();
    let src = captured_bytes("upload_source.png");
    let r = upload(
        &fake,
        &[
            ("image", Some("fixture_upload.png"), &src),
            ("overwrite", None, b"true"),
            ("type", None, b"input"),
            ("subfolder", None, b""),
        ],
    )
    .await;
    assert_record(&captured_json("upload_image.json"), &r, "upload_image");
    assert_eq!(
        r.json(),
        captured_json("upload_image.json")["response"]["body"]
    );
    let mut other = src.clone();
    other.extend_from_slice(b"different");
    let r = upload(
        &fake,
        &[
            ("image", Some("fixture_upload.png"), &other),
            ("type", None, b"input"),
        ],
    )
    .await;
    assert_eq!(
        r.json(),
        captured_json("upload_image_rename.json")["response"]["body"]
    );
    let r = upload(&fake, &[("image", Some("fixture_upload.png"), &src)]).await;
    assert_eq!(
        r.json(),
        captured_json("upload_image_duplicate.json")["response"]["body"]
    );
    let r = upload(
        &fake,
        &[
            ("image", Some("sub_upload.png"), &src),
            ("subfolder", None, b"discord"),
            ("overwrite", None, b"1"),
        ],
    )
    .await;
    assert_eq!(
        r.json(),
        captured_json("upload_image_subfolder.json")["response"]["body"]
    );
    let r = upload(
        &fake,
        &[
            ("image", Some("corrupt.png"), b"this is not a png at all!"),
            ("overwrite", None, b"true"),
        ],
    )
    .await;
    assert_eq!(
        r.json(),
        captured_json("upload_image_corrupt.json")["response"]["body"]
    );
    assert_eq!(
        std::fs::read(fake.input_dir().join("discord/sub_upload.png")).unwrap(),
        src
    );

    // LoadImage → ImageScale → ImageInvert → SaveImage into a subfolder
    let cid = "loadimage";
    let (mut ws, _) = WsClient::connect(&fake, cid).await;
    let id = post_prompt(&fake, &captured_json("prompt_loadimage.json"), Some(cid)).await;
    let frames = ws.until_done(&id).await;
    assert_ws_sequence("loadimage_ws.jsonl", &frames);
    assert_record(
        &captured_json("loadimage_history.json"),
        &get(&fake, &format!("/history/{id}")).await,
        "loadimage_history",
    );
    assert_record(
        &captured_json("loadimage_api_job.json"),
        &get(&fake, &format!("/api/jobs/{id}")).await,
        "loadimage_api_job",
    );
    let view = get(
        &fake,
        captured_json("loadimage_view.json")["request"]["path"]
            .as_str()
            .unwrap(),
    )
    .await;
    assert_eq!(view.status, 200);
    let img = image::load_from_memory(&view.body).unwrap();
    assert_eq!((img.width(), img.height()), (64, 48), "ImageScale's size");

    // LoadImage of a subfolder file → PreviewImage writes a temp file
    let id = post_prompt(
        &fake,
        &captured_json("prompt_loadimage_subfolder_preview.json"),
        Some(cid),
    )
    .await;
    let frames = ws.until_done(&id).await;
    assert_ws_sequence("loadimage_subfolder_preview_ws.jsonl", &frames);
    let history = get(&fake, &format!("/history/{id}")).await;
    assert_record(
        &captured_json("loadimage_subfolder_preview_history.json"),
        &history,
        "preview_history",
    );
    let image = &history.json()[&id]["outputs"]["21"]["images"][0];
    assert_eq!(image["type"], "temp");
    let name = image["filename"].as_str().unwrap();
    assert!(
        name.starts_with("ComfyUI_temp_") && name.ends_with("_00001_.png"),
        "{name}"
    );
    let view = get(
        &fake,
        &format!("/view?filename={name}&subfolder=&type=temp"),
    )
    .await;
    assert_eq!(view.status, 200);
    assert_record(
        &captured_json("loadimage_subfolder_preview_api_job.json"),
        &get(&fake, &format!("/api/jobs/{id}")).await,
        "preview_api_job",
    );
}

// ---------------------------------------------------------------- tests: runtime errors

#[actix_rt::test]
async fn runtime_errors_match_the_captures() {
    let fake = FakeComfy::start();
    std::fs::write(
        fake.input_dir().join("corrupt.png"),
        b"this is not a png at all!",
    )
    .unwrap();
    let cid = "runtime";
    let (mut ws, _) = WsClient::connect(&fake, cid).await;

    let id = post_prompt(
        &fake,
        &captured_json("prompt_runtime_error_corrupt_image.json"),
        Some(cid),
    )
    .await;
    let frames = ws.until_done(&id).await;
    assert_ws_sequence("runtime_error_corrupt_image_ws.jsonl", &frames);
    let err = frames
        .iter()
        .find(|f| f.kind() == "execution_error")
        .unwrap()
        .data()
        .clone();
    assert_eq!(err["exception_type"], "PIL.UnidentifiedImageError");
    assert!(
        err["exception_message"]
            .as_str()
            .unwrap()
            .starts_with("cannot identify image file")
    );
    assert_record(
        &captured_json("runtime_error_corrupt_image_history.json"),
        &get(&fake, &format!("/history/{id}")).await,
        "corrupt_history",
    );
    let job = get(&fake, &format!("/api/jobs/{id}")).await;
    assert_record(
        &captured_json("runtime_error_corrupt_image_api_job.json"),
        &job,
        "corrupt_api_job",
    );
    assert_eq!(job.json()["status"], "failed");

    let id = post_prompt(
        &fake,
        &captured_json("prompt_runtime_error_partial.json"),
        Some(cid),
    )
    .await;
    let frames = ws.until_done(&id).await;
    assert_ws_sequence("runtime_error_partial_ws.jsonl", &frames);
    let history = get(&fake, &format!("/history/{id}")).await;
    assert_record(
        &captured_json("runtime_error_partial_history.json"),
        &history,
        "partial_history",
    );
    let entry = &history.json()[&id];
    assert_eq!(entry["status"]["status_str"], "error");
    assert_eq!(
        entry["outputs"]["2"]["images"][0]["filename"],
        "fixture_partial_ok_00001_.png"
    );
    assert_record(
        &captured_json("runtime_error_partial_api_job.json"),
        &get(&fake, &format!("/api/jobs/{id}")).await,
        "partial_api_job",
    );
}

#[actix_rt::test]
async fn partly_valid_prompt_runs_only_the_valid_branch() {
    let fake = FakeComfy::start();
    let (mut ws, _) = WsClient::connect(&fake, "partly").await;
    let record = captured_json("partly_valid_post_prompt.json");
    let mut body = record["request"]["json_body"].clone();
    body["client_id"] = json!("partly");
    let reply = post_json(&fake, "/prompt", &body).await;
    assert_record(&record, &reply, "partly_valid_post_prompt");
    let id = reply.json()["prompt_id"].as_str().unwrap().to_string();
    let frames = ws.until_done(&id).await;
    assert_ws_sequence("partly_valid_ws.jsonl", &frames);
    assert_record(
        &captured_json("partly_valid_history.json"),
        &get(&fake, &format!("/history/{id}")).await,
        "partly_valid_history",
    );
}

// ---------------------------------------------------------------- tests: progress, text, extras

#[actix_rt::test]
async fn progress_and_text_frames_match_including_the_binary_text_frame() {
    let fake = FakeComfy::start();
    let (mut ws, _) = WsClient::connect(&fake, "progress").await;
    let id = post_prompt(
        &fake,
        &captured_json("prompt_progress_and_text.json"),
        Some("progress"),
    )
    .await;
    let frames = ws.until_done(&id).await;
    assert_ws_sequence("progress_and_text_ws.jsonl", &frames);
    let Frame::Binary(text) = frames
        .iter()
        .find(|f| matches!(f, Frame::Binary(_)))
        .unwrap()
    else {
        unreachable!()
    };
    let expected = &ws_fixture("progress_and_text_ws.jsonl")[23];
    let node_len = u32::from_be_bytes([text[4], text[5], text[6], text[7]]) as usize;
    assert_eq!(&text[8..8 + node_len], b"4");
    assert_eq!(
        std::str::from_utf8(&text[8 + node_len..]).unwrap(),
        expected["text"]
    );
    assert_record(
        &captured_json("progress_and_text_history.json"),
        &get(&fake, &format!("/history/{id}")).await,
        "progress_history",
    );
    let history = get(&fake, &format!("/history/{id}")).await.json();
    assert_eq!(history[&id]["outputs"]["5"]["text"], json!(["32"]));

    let id = post_prompt(
        &fake,
        &captured_json("prompt_text_output.json"),
        Some("progress"),
    )
    .await;
    let frames = ws.until_done(&id).await;
    assert_ws_sequence("text_output_ws.jsonl", &frames);
    let history = get(&fake, &format!("/history/{id}")).await;
    assert_record(
        &captured_json("text_output_history.json"),
        &history,
        "text_output_history",
    );
    assert_eq!(history.json()[&id]["outputs"]["6"]["text"], json!(["True"]));
}

#[actix_rt::test]
async fn extra_fields_number_targets_and_client_ids() {
    let fake = FakeComfy::start();
    let (mut ws, _) = WsClient::connect(&fake, "6dedcb97f7f54a2b9d9a9a169519f825").await;
    let record = captured_json("extras_post_prompt_number_partial_targets_extra_data.json");
    let mut body = record["request"]["json_body"].clone();
    body["extra_data"]["auth_token_comfy_org"] = json!("secret");
    let reply = post_json(&fake, "/prompt", &body).await;
    assert_record(&record, &reply, "extras_post_prompt");
    assert!(String::from_utf8_lossy(&reply.body).contains("\"number\":5.0"));
    let id = reply.json()["prompt_id"].as_str().unwrap().to_string();
    let frames = ws.until_done(&id).await;
    assert_ws_sequence("extras_ws.jsonl", &frames);
    let history = get(&fake, &format!("/history/{id}")).await;
    assert_record(
        &captured_json("extras_history.json"),
        &history,
        "extras_history",
    );
    let extra = &history.json()[&id]["prompt"][3];
    assert!(extra.get("auth_token_comfy_org").is_none());
    assert_eq!(extra["discord"]["user"], "123");
    assert_record(
        &captured_json("extras_api_job.json"),
        &get(&fake, &format!("/api/jobs/{id}")).await,
        "extras_api_job",
    );
    let filtered = get(
        &fake,
        captured_json("api_jobs_filter_workflow_id.json")["request"]["path"]
            .as_str()
            .unwrap(),
    )
    .await;
    assert_record(
        &captured_json("api_jobs_filter_workflow_id.json"),
        &filtered,
        "jobs_workflow_filter",
    );

    // client-chosen prompt_id
    let chosen = "0f5a8e0c-6a6b-4b8e-9d2b-0c8c4c7f2a11";
    let mut body = json!({"prompt": captured_json("prompt_trivial.json"), "prompt_id": chosen});
    let r = post_json(&fake, "/prompt", &body).await;
    assert_shape(
        &captured_json("post_prompt_client_supplied_id.json")["response"]["body"],
        &r.json(),
        "client id",
    );
    assert_eq!(r.json()["prompt_id"], chosen);
    body["prompt_id"] = json!(chosen.to_uppercase());
    assert_eq!(post_json(&fake, "/prompt", &body).await.status, 400);
}

// ---------------------------------------------------------------- tests: routing of events

#[actix_rt::test]
async fn prompts_without_client_id_only_broadcast_progress_state() {
    let fake = FakeComfy::start();
    let (mut observer, _) = WsClient::connect(&fake, "observer").await;
    let record = captured_json("no_client_id_post_prompt.json");
    let reply = replay(&fake, &record).await;
    assert_record(&record, &reply, "no_client_id_post_prompt");
    let id = reply.json()["prompt_id"].as_str().unwrap().to_string();
    let frames = observer
        .until(|f| f.kind() == "status" && f.data()["status"]["exec_info"]["queue_remaining"] == 0)
        .await;
    assert_ws_sequence("no_client_id_ws_observer.jsonl", &frames);
    assert_record(
        &captured_json("no_client_id_history.json"),
        &get(&fake, &format!("/history/{id}")).await,
        "no_client_history",
    );

    // another client's prompt: the observer only sees status frames
    let (mut owner, _) = WsClient::connect(&fake, "owner").await;
    let mut p = captured_json("prompt_trivial.json");
    p["1"]["inputs"]["color"] = json!(42);
    let id = post_prompt(&fake, &p, Some("owner")).await;
    owner.until_done(&id).await;
    let frames = observer
        .until(|f| f.kind() == "status" && f.data()["status"]["exec_info"]["queue_remaining"] == 0)
        .await;
    assert_ws_sequence("other_clients_prompt_ws_observer.jsonl", &frames);
}

#[actix_rt::test]
async fn feature_flags_handshake_and_connect_without_client_id() {
    let fake = FakeComfy::start();
    let (_resp, framed) = client().ws(fake.url("/ws")).connect().await.unwrap();
    let mut anon = WsClient::from_framed(framed);
    let Frame::Text(first) = anon.next().await else {
        panic!()
    };
    assert_shape(
        &fixture_frames("ws_connect_no_clientid.jsonl")[0]
            .data()
            .clone(),
        &first["data"],
        "no clientId",
    );
    assert_eq!(first["data"]["sid"].as_str().unwrap().len(), 32);

    let (mut ws, _) = WsClient::connect(&fake, "flags").await;
    ws.send_text(
        &json!({"type": "feature_flags", "data": {"supports_preview_metadata": true}}).to_string(),
    )
    .await;
    let reply = ws.next().await;
    assert_eq!(reply.kind(), "feature_flags");
    assert_eq!(
        reply.data(),
        fixture_frames("ws_feature_flags_handshake.jsonl")[1].data()
    );
}

#[actix_rt::test]
async fn reconnect_with_same_client_id_gets_the_executing_resync_frame() {
    let fake = FakeComfy::builder()
        .arg("--fake-node-time")
        .arg("500ms")
        .spawn();
    let cid = "77274656d4ce4529aab692f88ad6b990";
    let (mut ws, _) = WsClient::connect(&fake, cid).await;
    let id = post_prompt(&fake, &captured_json("prompt_reconnect.json"), Some(cid)).await;
    ws.until(|f| f.kind() == "executing" && f.data()["node"] == "100")
        .await;
    drop(ws);
    let (mut again, first) = WsClient::connect(&fake, cid).await;
    let expected = fixture_frames("reconnect_ws_after_reconnect_same_clientid.jsonl");
    assert_shape(expected[0].data(), &first["data"], "reconnect status");
    assert_eq!(first["data"]["status"]["exec_info"]["queue_remaining"], 1);
    let resync = again.next().await;
    assert_eq!(resync.kind(), "executing");
    assert_shape(expected[1].data(), resync.data(), "resync frame");
    let rest = again.until_done(&id).await;
    assert_eq!(rest.last().unwrap().kind(), "executing");
}

// ---------------------------------------------------------------- tests: interrupt and queue

#[actix_rt::test]
async fn interrupt_stops_after_the_current_node() {
    let fake = FakeComfy::builder()
        .arg("--fake-node-time")
        .arg("200ms")
        .spawn();
    let cid = "c627abb9e423427fb3d4fd8d1b8fa810";
    let (mut ws, _) = WsClient::connect(&fake, cid).await;
    let record = captured_json("interrupt_post_prompt.json");
    let reply = replay(&fake, &record).await;
    assert_record(&record, &reply, "interrupt_post_prompt");
    let id = reply.json()["prompt_id"].as_str().unwrap().to_string();
    // Interrupt once node 100 has finished (node 101 announced). Like ComfyUI, the fake checks
    // the flag right after announcing a node, so an interrupt racing that check would stop the
    // announced node instead: waiting for 101 keeps the assertions below deterministic.
    let mut frames = ws
        .until(|f| f.kind() == "executing" && f.data()["node"] == "101")
        .await;
    assert_record(
        &captured_json("queue_running.json"),
        &get(&fake, "/queue").await,
        "queue_running",
    );
    let jobs = get(&fake, "/api/jobs").await.json();
    assert_eq!(jobs["jobs"][0]["status"], "in_progress");
    assert_shape(
        &captured_json("api_jobs_running.json")["response"]["body"]["jobs"][0],
        &jobs["jobs"][0],
        "running job",
    );
    let r = replay(&fake, &captured_json("interrupt_request.json")).await;
    assert_record(
        &captured_json("interrupt_request.json"),
        &r,
        "interrupt_request",
    );
    frames.extend(ws.until_done(&id).await);

    let expected = fixture_frames("interrupt_ws.jsonl");
    let (es, fs) = (signatures(&expected), signatures(&frames));
    assert_eq!(fs[..6], es[..6], "head");
    assert_eq!(fs[fs.len() - 4..], es[es.len() - 4..], "tail");
    let interrupted = frames
        .iter()
        .find(|f| f.kind() == "execution_interrupted")
        .unwrap();
    assert_shape(
        expected[expected.len() - 3].data(),
        interrupted.data(),
        "execution_interrupted",
    );
    // the flag is noticed when a node starts: the one interrupted is the last one announced
    let last_started = frames
        .iter()
        .rev()
        .find(|f| f.kind() == "executing" && f.data().get("display_node").is_some())
        .unwrap();
    assert_eq!(interrupted.data()["node_id"], last_started.data()["node"]);
    assert!(
        interrupted.data()["executed"]
            .as_array()
            .unwrap()
            .contains(&json!("100"))
    );

    assert_record(
        &captured_json("interrupt_history.json"),
        &get(&fake, &format!("/history/{id}")).await,
        "interrupt_history",
    );
    let job = get(&fake, &format!("/api/jobs/{id}")).await;
    assert_record(
        &captured_json("interrupt_api_job.json"),
        &job,
        "interrupt_api_job",
    );
    assert_eq!(job.json()["status"], "cancelled");
    assert_record(
        &captured_json("interrupt_idle_no_body.json"),
        &replay(&fake, &captured_json("interrupt_idle_no_body.json")).await,
        "idle interrupt",
    );
}

#[actix_rt::test]
async fn queue_management_matches_the_captures() {
    let fake = FakeComfy::builder()
        .arg("--fake-node-time")
        .arg("1s")
        .spawn();
    let cid = "c627abb9e423427fb3d4fd8d1b8fa810";
    let (mut ws, _) = WsClient::connect(&fake, cid).await;
    let first = replay(&fake, &captured_json("queue_mgmt_post_prompt_first.json")).await;
    let running_id = first.json()["prompt_id"].as_str().unwrap().to_string();
    ws.until(|f| f.kind() == "executing" && f.data()["node"] == "1")
        .await;
    let mut pending = Vec::new();
    for color in 0..5 {
        let mut p = captured_json("prompt_slow_blur_chain.json");
        p["1"]["inputs"]["color"] = json!(1000 + color);
        pending.push(post_prompt(&fake, &p, Some(cid)).await);
    }
    let front = replay(&fake, &captured_json("queue_mgmt_post_prompt_front.json")).await;
    assert_record(
        &captured_json("queue_mgmt_post_prompt_front.json"),
        &front,
        "front",
    );
    assert!(front.json()["number"].as_i64().unwrap() < 0);
    pending.push(front.json()["prompt_id"].as_str().unwrap().to_string());

    assert_record(
        &captured_json("queue_running_and_pending.json"),
        &get(&fake, "/queue").await,
        "queue_running_and_pending",
    );
    assert_eq!(
        get(&fake, "/prompt").await.json(),
        captured_json("prompt_get_queue_info_busy.json")["response"]["body"]
    );
    let jobs = get(&fake, "/api/jobs").await.json();
    let captured = captured_json("api_jobs_running_and_pending.json")["response"]["body"].clone();
    for job in jobs["jobs"].as_array().unwrap() {
        let twin = captured["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["status"] == job["status"])
            .unwrap();
        assert_shape(twin, job, "job in list");
    }
    let limited = replay(&fake, &captured_json("api_jobs_filter_pending_limit2.json")).await;
    assert_record(
        &captured_json("api_jobs_filter_pending_limit2.json"),
        &limited,
        "pending limit 2",
    );
    assert_eq!(
        limited.json()["pagination"],
        captured_json("api_jobs_filter_pending_limit2.json")["response"]["body"]["pagination"]
    );
    let bad = replay(&fake, &captured_json("api_jobs_bad_status.json")).await;
    assert_eq!(
        bad.json(),
        captured_json("api_jobs_bad_status.json")["response"]["body"]
    );
    assert_eq!(bad.status, 400);
    assert_record(
        &captured_json("api_job_pending.json"),
        &get(&fake, &format!("/api/jobs/{}", pending[1])).await,
        "pending job",
    );

    let deleted = pending[0].clone();
    let r = post_json(&fake, "/queue", &json!({"delete": [deleted]})).await;
    assert_record(&captured_json("queue_delete.json"), &r, "queue_delete");
    assert_record(
        &captured_json("queue_after_delete.json"),
        &get(&fake, "/queue").await,
        "queue_after_delete",
    );
    let cancel = client()
        .post(fake.url(&format!("/api/jobs/{}/cancel", pending[1])))
        .send()
        .await
        .unwrap();
    let cancel = finish(cancel).await;
    assert_eq!(cancel.json(), json!({"cancelled": true}));
    let again = finish(
        client()
            .post(fake.url(&format!("/api/jobs/{}/cancel", pending[1])))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        again.json(),
        captured_json("api_job_cancel_again_noop.json")["response"]["body"]
    );
    let batch = replay(&fake, &captured_json("api_jobs_cancel_batch_invalid.json")).await;
    assert_eq!(
        (batch.status, batch.json()),
        (
            400,
            captured_json("api_jobs_cancel_batch_invalid.json")["response"]["body"].clone()
        )
    );
    let r = post_json(&fake, "/interrupt", &json!({"prompt_id": pending[2]})).await;
    assert_record(
        &captured_json("interrupt_targeted_not_running.json"),
        &r,
        "targeted interrupt",
    );
    let r = replay(&fake, &captured_json("queue_clear.json")).await;
    assert_record(&captured_json("queue_clear.json"), &r, "queue_clear");
    let after_clear = get(&fake, "/queue").await;
    assert_record(
        &captured_json("queue_after_clear.json"),
        &after_clear,
        "queue_after_clear",
    );
    assert_eq!(
        after_clear.json()["queue_running"][0][1],
        running_id,
        "targeted interrupt of a pending id was a no-op"
    );

    let cancel = finish(
        client()
            .post(fake.url(&format!("/api/jobs/{running_id}/cancel")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        cancel.json(),
        captured_json("api_job_cancel_running.json")["response"]["body"]
    );
    ws.until_done(&running_id).await;
    assert_record(
        &captured_json("cancel_running_history.json"),
        &get(&fake, &format!("/history/{running_id}")).await,
        "cancel_running_history",
    );
    assert_eq!(
        get(&fake, &format!("/history/{deleted}")).await.json(),
        captured_json("history_of_deleted_pending.json")["response"]["body"]
    );
    assert_eq!(
        get(&fake, "/queue").await.json(),
        captured_json("queue_after_all.json")["response"]["body"]
    );
    let jobs = get(&fake, "/api/jobs").await.json();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(jobs["jobs"][0]["status"], "cancelled");
}

#[actix_rt::test]
async fn history_paging_delete_and_clear() {
    let fake = FakeComfy::start();
    let (mut ws, _) = WsClient::connect(&fake, "hist").await;
    // as captured: two prompts without client_id (the second fully cached), then one with
    let prompt = |color: u64| {
        json!({
            "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "fixture_noclient"}}
        })
    };
    let mut ids = Vec::new();
    for (color, client_id) in [(76, None), (77, None), (77, None), (78, Some("hist"))] {
        let id = post_prompt(&fake, &prompt(color), client_id).await;
        match client_id {
            Some(_) => {
                ws.until_done(&id).await;
            }
            None => {
                ws.until(|f| {
                    f.kind() == "status" && f.data()["status"]["exec_info"]["queue_remaining"] == 0
                })
                .await;
            }
        }
        ids.push(id);
    }
    let all = get(&fake, "/history").await.json();
    let keys: Vec<&String> = all.as_object().unwrap().keys().collect();
    assert_eq!(keys, ids.iter().collect::<Vec<_>>(), "oldest first");
    let newest = get(&fake, "/history?max_items=2").await;
    assert_record(
        &captured_json("history_max_items_2.json"),
        &newest,
        "max_items=2",
    );
    assert_eq!(
        newest
            .json()
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec![&ids[2], &ids[3]]
    );
    let paged = get(&fake, "/history?max_items=2&offset=1").await.json();
    assert_eq!(
        paged.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec![&ids[1], &ids[2]]
    );
    let limited = get(&fake, "/api/jobs?limit=3").await;
    assert_record(
        &captured_json("api_jobs_limit3.json"),
        &limited,
        "jobs limit 3",
    );
    assert_eq!(limited.json()["pagination"]["has_more"], true);

    let r = post_json(&fake, "/history", &json!({"delete": [ids[0]]})).await;
    assert_record(&captured_json("history_delete.json"), &r, "history_delete");
    let after = get(&fake, "/history").await.json();
    assert_eq!(after.as_object().unwrap().len(), 3);
    let ids_after: Vec<&String> = after.as_object().unwrap().keys().collect();
    assert_eq!(ids_after, ids[1..].iter().collect::<Vec<_>>());
    assert!(after.get(&ids[0]).is_none());
    let r = replay(&fake, &captured_json("history_clear.json")).await;
    assert_record(&captured_json("history_clear.json"), &r, "history_clear");
    assert_record(
        &captured_json("history_after_clear.json"),
        &get(&fake, "/history").await,
        "history_after_clear",
    );
}

// ---------------------------------------------------------------- tests: robustness

#[actix_rt::test]
async fn api_prefix_mirrors_routes_and_jobs_exist_only_prefixed() {
    let fake = FakeComfy::start();
    for path in [
        "/system_stats",
        "/queue",
        "/prompt",
        "/history",
        "/object_info/EmptyImage",
        "/embeddings",
    ] {
        let a = get(&fake, path).await;
        let b = get(&fake, &format!("/api{path}")).await;
        assert_eq!((a.status, b.status), (200, 200), "{path}");
    }
    assert_eq!(get(&fake, "/jobs").await.status, 404);
    assert_eq!(get(&fake, "/api/internal/folder_paths").await.status, 404);
    assert_eq!(get(&fake, "/internal/folder_paths").await.status, 200);
    let r = post_json(
        &fake,
        "/api/prompt",
        &json!({"prompt": captured_json("prompt_trivial.json")}),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[actix_rt::test]
async fn mismatched_host_and_origin_is_forbidden() {
    let fake = FakeComfy::start();
    let r = client()
        .get(fake.url("/system_stats"))
        .insert_header(("Origin", "http://evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = client()
        .get(fake.url("/system_stats"))
        .insert_header(("Origin", format!("http://127.0.0.1:{}", fake.port)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn taken_port_exits_1_with_comfyui_message() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut fake = FakeComfy::builder().port(port).spawn_unready();
    let status = fake.wait_exit(WAIT).expect("exits");
    assert_eq!(status.code(), Some(1));
    assert!(
        fake.logs()
            .contains(&format!("Port {port} is already in use")),
        "{}",
        fake.logs()
    );

    let mut refused = FakeComfy::builder()
        .arg("--fake-refuse-port")
        .spawn_unready();
    assert_eq!(refused.wait_exit(WAIT).expect("exits").code(), Some(1));
    let mut refused = FakeComfy::builder()
        .env("FAKE_COMFYUI_REFUSE_PORT", "1")
        .spawn_unready();
    assert_eq!(refused.wait_exit(WAIT).expect("exits").code(), Some(1));
    assert!(refused.logs().contains("is already in use"));
}

#[test]
fn unknown_flags_are_logged_not_fatal_and_start_delay_still_becomes_ready() {
    let fake = FakeComfy::builder()
        .args([
            "--totally-new-flag",
            "value",
            "--highvram",
            "--cuda-device",
            "0",
        ])
        .env("FAKE_COMFYUI_START_DELAY", "100ms")
        .spawn();
    let logs = fake.logs();
    assert!(logs.contains("--totally-new-flag"), "{logs}");
    assert!(logs.contains("waiting 100ms before listening"), "{logs}");
    assert!(logs.contains(&format!(
        "To see the GUI go to: http://127.0.0.1:{}",
        fake.port
    )));
}

#[test]
fn temp_directory_gets_temp_appended_and_is_wiped() {
    let dir = tempfile::tempdir().unwrap();
    let temp_root = dir.path().join("t");
    std::fs::create_dir_all(temp_root.join("temp")).unwrap();
    std::fs::write(temp_root.join("temp/stale.png"), b"old").unwrap();
    let fake = FakeComfy::builder()
        .args([
            "--temp-directory".to_string(),
            temp_root.display().to_string(),
        ])
        .spawn();
    assert!(temp_root.join("temp").is_dir());
    assert!(!temp_root.join("temp/stale.png").exists());
    drop(fake);
}

#[test]
fn second_server_on_the_same_database_logs_the_lock_warning() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", dir.path().join("comfyui.db").display());
    let first = FakeComfy::builder()
        .args(["--database-url", url.as_str()])
        .spawn();
    assert!(dir.path().join("comfyui.db").is_file());
    let second = FakeComfy::builder()
        .args(["--database-url", url.as_str()])
        .spawn();
    assert!(
        second.logs().contains("Could not acquire lock on database"),
        "{}",
        second.logs()
    );
    assert!(!first.logs().contains("Could not acquire lock"));
}

// ---------------------------------------------------------------- tests: fault injection

#[actix_rt::test]
async fn injected_node_failure_and_oom_produce_execution_errors() {
    let fake = FakeComfy::builder()
        .args(["--fake-fail-node", "ImageInvert"])
        .spawn();
    let (mut ws, _) = WsClient::connect(&fake, "faults").await;
    let id = post_prompt(&fake, &captured_json("prompt_trivial.json"), Some("faults")).await;
    let frames = ws.until_done(&id).await;
    let err = frames
        .iter()
        .find(|f| f.kind() == "execution_error")
        .expect("execution_error");
    assert_eq!(err.data()["node_id"], "2");
    assert_eq!(err.data()["executed"], json!(["1"]));
    assert_eq!(
        get(&fake, &format!("/api/jobs/{id}")).await.json()["status"],
        "failed"
    );

    let fake = FakeComfy::builder().env("FAKE_COMFYUI_OOM", "1").spawn();
    let (mut ws, _) = WsClient::connect(&fake, "oom").await;
    let id = post_prompt(&fake, &captured_json("prompt_trivial.json"), Some("oom")).await;
    let frames = ws.until_done(&id).await;
    let err = frames
        .iter()
        .find(|f| f.kind() == "execution_error")
        .expect("execution_error");
    assert_eq!(err.data()["exception_type"], "torch.OutOfMemoryError");
    assert!(
        err.data()["exception_message"]
            .as_str()
            .unwrap()
            .starts_with("Allocation on device")
    );
    let mut expected = fixture_frames("runtime_error_corrupt_image_ws.jsonl")[6]
        .data()
        .clone();
    let mut actual = err.data().clone();
    // current_inputs are the failing node's own inputs
    expected["current_inputs"] = json!({});
    actual["current_inputs"] = json!({});
    assert_shape(&expected, &actual, "oom execution_error");
}

#[actix_rt::test]
async fn crash_fault_kills_the_process_and_hang_fault_keeps_http_alive() {
    let mut fake = FakeComfy::builder()
        .args(["--fake-crash-after-nodes", "2"])
        .spawn();
    // The prompt's client is connected, as ComfyUI's clients are. The abort may come before
    // the last frames leave (as with a native crash of ComfyUI), so the crash is read from its
    // log line and the exit status, not from the websocket.
    let (_ws, _) = WsClient::connect(&fake, "crash").await;
    post_prompt(&fake, &captured_json("prompt_trivial.json"), Some("crash")).await;
    assert!(
        fake.wait_for_log("crashing after 2 executed node(s)", WAIT),
        "{}",
        fake.logs()
    );
    let status = fake.wait_exit(WAIT).expect("the fake exits");
    assert!(!status.success());
    assert_eq!(
        status.code(),
        None,
        "killed by a signal like a native crash: {status:?}"
    );

    let fake = FakeComfy::builder()
        .env("FAKE_COMFYUI_HANG_AFTER_NODES", "1")
        .spawn();
    let (mut ws, _) = WsClient::connect(&fake, "hang").await;
    let id = post_prompt(&fake, &captured_json("prompt_trivial.json"), Some("hang")).await;
    ws.until(|f| f.kind() == "executing" && f.data()["node"] == "1")
        .await;
    assert!(
        fake.wait_for_log("hanging after 1 executed node", WAIT),
        "{}",
        fake.logs()
    );
    let queue = get(&fake, "/queue").await.json();
    assert_eq!(queue["queue_running"][0][1], id);
    assert_eq!(get(&fake, "/system_stats").await.status, 200);
    assert_eq!(
        get(&fake, &format!("/history/{id}")).await.json(),
        json!({})
    );
}

#[actix_rt::test]
async fn samplers_report_steps_and_send_previews() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models/checkpoints")).unwrap();
    std::fs::write(dir.path().join("models/checkpoints/tiny.safetensors"), b"x").unwrap();
    let fake = FakeComfy::builder().dir(dir.path()).spawn();
    assert_eq!(
        get(&fake, "/models/checkpoints").await.json(),
        json!(["tiny.safetensors"])
    );
    let prompt = json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 96, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": 3, "cfg": 7.0, "sampler_name": "euler",
              "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
              "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "cat"}}
    });
    let (mut plain, _) = WsClient::connect(&fake, "plain").await;
    let id = post_prompt(&fake, &prompt, Some("plain")).await;
    let frames = plain.until_done(&id).await;
    let steps: Vec<&Value> = frames
        .iter()
        .filter(|f| f.kind() == "progress")
        .map(|f| &f.data()["value"])
        .collect();
    assert_eq!(steps, vec![&json!(1), &json!(2), &json!(3)]);
    let previews: Vec<&Vec<u8>> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Binary(b) => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(previews.len(), 3);
    assert_eq!(&previews[0][..8], &[0, 0, 0, 1, 0, 0, 0, 1]);
    assert!(
        image::load_from_memory(&previews[0][8..]).is_ok(),
        "a real JPEG"
    );
    let saved = image::open(fake.output_dir().join("cat_00001_.png")).unwrap();
    assert_eq!((saved.width(), saved.height()), (128, 96));

    // a client that announced supports_preview_metadata gets type 4 frames
    let (mut rich, _) = WsClient::connect(&fake, "rich").await;
    rich.send_text(
        &json!({"type": "feature_flags", "data": {"supports_preview_metadata": true}}).to_string(),
    )
    .await;
    assert_eq!(rich.next().await.kind(), "feature_flags");
    let mut p2 = prompt.clone();
    p2["3"]["inputs"]["seed"] = json!(8);
    let id = post_prompt(&fake, &p2, Some("rich")).await;
    let frames = rich.until_done(&id).await;
    let Frame::Binary(b) = frames
        .iter()
        .find(|f| matches!(f, Frame::Binary(_)))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(&b[..4], &[0, 0, 0, 4]);
    let len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
    let meta: Value = serde_json::from_slice(&b[8..8 + len]).unwrap();
    assert_eq!(meta["node_id"], "3");
    assert_eq!(meta["prompt_id"], id.as_str());
    assert!(image::load_from_memory(&b[8 + len..]).is_ok());
}

#[actix_rt::test]
async fn listed_models_are_offered_as_installed_and_an_upscale_model_scales_by_its_name() {
    // The demo backend's stand-in model files: listed beside the real files, never read.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models/checkpoints")).unwrap();
    std::fs::write(dir.path().join("models/checkpoints/tiny.safetensors"), b"x").unwrap();
    let fake = FakeComfy::builder()
        .dir(dir.path())
        .args([
            "--fake-model",
            "checkpoints/sd_xl_base_1.0.safetensors",
            "--fake-model",
            "upscale_models/RealESRGAN_x2plus.safetensors",
        ])
        .spawn();
    assert_eq!(
        get(&fake, "/models/checkpoints").await.json(),
        json!(["sd_xl_base_1.0.safetensors", "tiny.safetensors"])
    );
    let info = get(&fake, "/object_info/UpscaleModelLoader").await.json();
    assert_eq!(
        info["UpscaleModelLoader"]["input"]["required"]["model_name"][1]["options"],
        json!(["RealESRGAN_x2plus.safetensors"])
    );
    std::fs::copy(
        captured("upload_source.png"),
        fake.input_dir().join("source.png"),
    )
    .unwrap();
    let prompt = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "source.png"}},
        "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "RealESRGAN_x2plus.safetensors"}},
        "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "up"}}
    });
    let (mut ws, _) = WsClient::connect(&fake, "up").await;
    let id = post_prompt(&fake, &prompt, Some("up")).await;
    ws.until_done(&id).await;
    let saved = image::open(fake.output_dir().join("up_00001_.png")).unwrap();
    assert_eq!((saved.width(), saved.height()), (64, 48), "32×24 times 2");
    // A file that is neither on disk nor listed is still refused, as ComfyUI refuses it.
    let mut missing = prompt.clone();
    missing["2"]["inputs"]["model_name"] = json!("RealESRGAN_x4plus.safetensors");
    let reply = post_json(&fake, "/prompt", &json!({"prompt": missing})).await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    assert_eq!(reply.status, 400, "{text}");
    assert!(text.contains("value_not_in_list"), "{text}");
}
