//! The public HTTP API's promises, end to end: a real fleet (fake-comfyui child processes)
//! behind a real API server on 127.0.0.1:0. Answers and server-sent events are parsed into the
//! published wire types (`comfy_fleet::http::api_types`); numbers are numbers; `/metrics` is
//! parsed as a scraper would and counts every job, also past the job table's retention; a quiet
//! event stream gets keep-alive comments.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use comfy_fleet::http::api_types::{
    CreatedJob, ErrorBody, JobStateView, JobView, PhaseView, StatusView, StreamEvent,
};
use futures_util::StreamExt;
use serde_json::{Value, json};
use support::in_process_api::{Api, start};
use support::waits::SAFETY;

/// One block of a server-sent-event stream.
#[derive(Debug)]
enum Frame {
    /// `event:` name and `data:` JSON.
    Event { name: String, data: Value },
    /// A comment line (`: …`).
    Comment(String),
}

/// Splits a stream's text into frames, as an SSE client does (blocks end with a blank line).
fn frames(text: &str) -> Vec<Frame> {
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.is_empty()) {
        let mut name = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(comment) = line.strip_prefix(':') {
                out.push(Frame::Comment(comment.trim().to_string()));
            } else if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_string());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(d).unwrap());
            } else {
                panic!("unexpected SSE line {line:?} in {text:?}");
            }
        }
        if let (Some(name), Some(data)) = (name, data) {
            out.push(Frame::Event { name, data });
        }
    }
    out
}

/// The events of a stream, parsed into the public type; each `event:` name must match its data.
fn events(frames: &[Frame]) -> Vec<(StreamEvent, Value)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Event { name, data } => {
                let event: StreamEvent = serde_json::from_value(data.clone())
                    .unwrap_or_else(|e| panic!("event {data} does not parse: {e}"));
                assert_eq!(event.name(), name, "{data}");
                Some((event, data.clone()))
            }
            Frame::Comment(_) => None,
        })
        .collect()
}

/// The public API's answers, parsed into the published types.
trait TypedApi {
    async fn submit(&self, body: Value) -> CreatedJob;
    async fn get(&self, path: &str) -> (u16, String, bytes::Bytes);
    async fn job(&self, id: uuid::Uuid) -> JobView;
    async fn status(&self) -> (StatusView, Value);
    async fn stream(&self, id: uuid::Uuid) -> Vec<Frame>;
    async fn metrics(&self) -> BTreeMap<String, f64>;
}

impl TypedApi for Api {
    async fn submit(&self, body: Value) -> CreatedJob {
        let mut resp = self
            .client
            .post(format!("{}/v1/jobs", self.base))
            .send_json(&body)
            .await
            .unwrap();
        let bytes = resp.body().await.unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{bytes:?}");
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn get(&self, path: &str) -> (u16, String, bytes::Bytes) {
        let mut resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = resp.body().limit(64 << 20).await.unwrap();
        (resp.status().as_u16(), content_type, body)
    }

    async fn job(&self, id: uuid::Uuid) -> JobView {
        let (status, _, body) = self.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(status, 200, "{body:?}");
        serde_json::from_slice(&body).unwrap()
    }

    /// `/v1/status`, as the public type and as raw JSON.
    async fn status(&self) -> (StatusView, Value) {
        let (status, _, body) = self.get("/v1/status").await;
        assert_eq!(status, 200, "{body:?}");
        (
            serde_json::from_slice(&body).unwrap(),
            serde_json::from_slice(&body).unwrap(),
        )
    }

    /// The whole event stream of a job (it closes after the final event).
    async fn stream(&self, id: uuid::Uuid) -> Vec<Frame> {
        let (status, content_type, body) = self.get(&format!("/v1/jobs/{id}/events")).await;
        assert_eq!((status, content_type.as_str()), (200, "text/event-stream"));
        frames(std::str::from_utf8(&body).unwrap())
    }

    /// `/metrics`, parsed into `name{labels}` → value.
    async fn metrics(&self) -> BTreeMap<String, f64> {
        let (status, content_type, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                (series.to_string(), value.parse().unwrap())
            })
            .collect()
    }
}

#[actix_rt::test]
async fn a_job_streams_typed_events_from_queued_to_done() {
    let api = start(&["--fake-node-time", "20ms"], |_| {}).await;
    let created = api
        .submit(json!({"template": "demo", "params": {"width": 80, "height": 64}}))
        .await;
    assert!(created.seed.is_some(), "the demo template has a seed");

    let stream = events(&api.stream(created.id).await);
    let names: Vec<&str> = stream.iter().map(|(e, _)| e.name()).collect();
    assert!(
        matches!(stream.first(), Some((StreamEvent::Queued { .. }, _))),
        "{names:?}"
    );
    let started = stream
        .iter()
        .position(|(e, _)| {
            *e == StreamEvent::Started {
                instance: "cpu0".into(),
                attempt: 1,
            }
        })
        .unwrap_or_else(|| panic!("no start on cpu0: {names:?}"));
    // The demo's four nodes, by id and title, after the start.
    let executed: Vec<(String, Option<String>)> = stream[started..]
        .iter()
        .filter_map(|(e, _)| match e {
            StreamEvent::Executing { node, title } => Some((node.clone(), title.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        executed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["1", "2", "3", "4"],
        "{names:?}"
    );
    assert_eq!(executed[3].1.as_deref(), Some("Save"));
    let Some((StreamEvent::Done { outputs }, _)) = stream.last() else {
        panic!("the stream does not end with done: {names:?}");
    };
    assert_eq!(
        names.iter().filter(|n| **n == "done").count(),
        1,
        "{names:?}"
    );

    let job = api.job(created.id).await;
    assert_eq!(job.state, JobStateView::Done);
    assert_eq!(&job.outputs, outputs, "the view and the event agree");
    assert_eq!((job.attempt, job.instance.as_deref()), (1, Some("cpu0")));
    let (started_at, finished_at) = (job.started_at.unwrap(), job.finished_at.unwrap());
    assert!(
        job.queued_at <= started_at && started_at <= finished_at,
        "{job:?}"
    );
    let (status, content_type, png) = api.get(&outputs[0].url).await;
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Refusals have one shape.
    let (status, _, body) = api.get(&format!("/v1/jobs/{}/outputs/5", job.id)).await;
    let refusal: ErrorBody = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, refusal.error.code.as_str()), (404, "not_found"));
    assert!(refusal.error.message.contains("index 5"), "{refusal:?}");
    api.stop().await;
}

#[actix_rt::test]
async fn etas_and_latencies_are_numbers_of_seconds() {
    let api = start(&["--fake-node-time", "5ms"], |_| {}).await;
    // Before any job has finished there is nothing to estimate from.
    let first = api.submit(json!({"template": "demo"})).await;
    let stream = events(&api.stream(first.id).await);
    assert!(matches!(
        stream.first(),
        Some((
            StreamEvent::Queued {
                eta_seconds: None,
                ..
            },
            _
        ))
    ));

    let second = api.submit(json!({"template": "demo"})).await;
    let stream = events(&api.stream(second.id).await);
    let (StreamEvent::Queued { eta_seconds, .. }, data) = &stream[0] else {
        panic!("the stream does not start with queued: {stream:?}");
    };
    assert!(data["eta_seconds"].is_number(), "{data}");
    assert!(eta_seconds.is_some_and(|s| s > 0.0), "{data}");

    let (status, raw) = api.status().await;
    assert_eq!(status.latency.samples, 2, "{raw}");
    for key in [
        "wait_p50_seconds",
        "wait_p95_seconds",
        "run_p50_seconds",
        "run_p95_seconds",
    ] {
        assert!(raw["latency"][key].is_number(), "{key}: {raw}");
    }
    assert!(raw["latency"]["jobs_per_minute"].is_number(), "{raw}");
    assert_eq!(status.instances[0].phase, PhaseView::Ready);
    assert_eq!((status.jobs.done, status.queue.depth), (2, 0));
    api.stop().await;
}

#[actix_rt::test]
async fn metrics_count_every_job_past_the_job_tables_retention() {
    let api = start(&["--fake-node-time", "0ms"], |c| {
        c.scheduler.job_retention = 2;
    })
    .await;
    let before = api.metrics().await;
    assert_eq!(before["comfy_fleet_jobs_total{outcome=\"done\"}"], 0.0);
    for _ in 0..3 {
        let job = api.submit(json!({"template": "demo"})).await;
        let stream = events(&api.stream(job.id).await);
        assert!(
            matches!(stream.last(), Some((StreamEvent::Done { .. }, _))),
            "{stream:?}"
        );
    }
    let (status, _) = api.status().await;
    assert_eq!(
        status.jobs.done, 2,
        "the table keeps only two finished jobs"
    );

    let metrics = api.metrics().await;
    let value = |series: &str| {
        *metrics
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in {metrics:#?}"))
    };
    assert_eq!(value("comfy_fleet_jobs_total{outcome=\"done\"}"), 3.0);
    assert_eq!(value("comfy_fleet_jobs_total{outcome=\"failed\"}"), 0.0);
    assert_eq!(value("comfy_fleet_jobs_total{outcome=\"cancelled\"}"), 0.0);
    assert_eq!(value("comfy_fleet_job_wait_seconds_count"), 3.0);
    assert_eq!(value("comfy_fleet_job_run_seconds_count"), 3.0);
    assert_eq!(
        value("comfy_fleet_job_run_seconds_bucket{le=\"+Inf\"}"),
        3.0
    );
    assert_eq!(value("comfy_fleet_queue_depth"), 0.0);
    assert_eq!(value("comfy_fleet_jobs_running"), 0.0);
    assert_eq!(value("comfy_fleet_instances{phase=\"ready\"}"), 1.0);
    assert_eq!(value("comfy_fleet_instances{phase=\"crashed\"}"), 0.0);
    assert_eq!(
        value("comfy_fleet_instance_phase{instance=\"cpu0\",phase=\"ready\"}"),
        1.0
    );
    api.stop().await;
}

#[actix_rt::test]
async fn a_quiet_stream_gets_keep_alive_comments() {
    // The job runs its first node, then its ComfyUI goes silent: nothing more happens to it.
    let api = start(
        &["--fake-node-time", "0ms", "--fake-hang-after-nodes", "1"],
        |c| {
            c.http.sse_keep_alive = Duration::from_millis(50);
            c.lifecycle.stop_grace = Duration::from_millis(500);
        },
    )
    .await;
    let job = api.submit(json!({"template": "demo"})).await;
    let mut resp = api
        .client
        .get(format!("{}/v1/jobs/{}/events", api.base, job.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut text = String::new();
    let read = async {
        while !text.contains(": keep-alive\n\n") {
            let chunk = resp.next().await.expect("the stream stays open").unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    tokio::time::timeout(SAFETY, read)
        .await
        .expect("a keep-alive comment");
    let frames = frames(&text);
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Frame::Comment(c) if c == "keep-alive")),
        "{frames:?}"
    );
    let stream = events(&frames);
    assert!(
        stream
            .iter()
            .any(|(e, _)| matches!(e, StreamEvent::Executing { node, .. } if node == "1")),
        "{frames:?}"
    );
    assert!(stream.iter().all(|(e, _)| !e.is_final()), "{frames:?}");
    drop(resp);
    api.stop_now().await;
}
