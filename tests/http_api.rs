//! The HTTP API end to end: a real fleet (fake-comfyui child processes) behind a real API
//! server on 127.0.0.1:0, driven over real sockets, server-sent events included.

mod support;

use std::time::Duration;

use comfy_fleet_actors::rate_limit::WindowLimit;
use serde_json::{Value, json};
use support::images::png_size;
use support::in_process_api::start;

fn event_names(sse: &str) -> Vec<&str> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect()
}

#[actix_rt::test]
async fn a_demo_job_streams_its_progress_and_yields_a_png_of_the_asked_size() {
    let api = start(&["--fake-node-time", "20ms"], |_| {}).await;
    let (status, body, headers) = api
        .post(
            json!({"template": "demo", "params": {"width": 96, "height": 64}}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(
        headers.get("location").unwrap().to_str().unwrap(),
        format!("/v1/jobs/{id}")
    );
    assert!(body["position"].is_u64() && body["seed"].is_u64(), "{body}");

    let sse = api.events(&id).await;
    let names = event_names(&sse);
    assert_eq!(names.first(), Some(&"queued"), "{sse}");
    assert!(
        names.contains(&"started") && names.contains(&"executing"),
        "{sse}"
    );
    assert_eq!(names.last(), Some(&"done"), "{sse}");

    let (status, job) = api.get_json(&format!("/v1/jobs/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["template"], "demo");
    let url = job["outputs"][0]["url"].as_str().unwrap().to_string();
    let mut resp = api
        .client
        .get(format!("{}{url}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers().get("content-type").unwrap(), "image/png");
    let png = resp.body().limit(64 << 20).await.unwrap();
    assert_eq!(png_size(&png), (96, 64));

    // A late subscriber still gets the whole story, ending with `done`.
    let again = api.events(&id).await;
    assert_eq!(event_names(&again).last(), Some(&"done"));
    let (status, missing) = api
        .get_json(&format!("/v1/jobs/{id}/outputs/7"), None)
        .await;
    assert_eq!(status, 404);
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("index 7"),
        "{missing}"
    );
    api.stop().await;
}

/// The server's end of `client`'s connection, found among this process's file descriptors (the
/// API server runs in this process).
fn server_end_of(client: &std::net::TcpStream) -> std::net::TcpStream {
    let client_addr = client.local_addr().unwrap();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor is only borrowed to duplicate it at once; if it was closed
        // meanwhile the duplication fails (or yields another socket, which the address check
        // below tells apart).
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let Ok(owned) = borrowed.try_clone_to_owned() else {
            continue;
        };
        let socket = std::net::TcpStream::from(owned);
        if socket.peer_addr().ok() == Some(client_addr) {
            return socket;
        }
    }
    panic!("no socket of this process is the server end of {client_addr}");
}

#[actix_rt::test]
async fn events_leave_as_they_happen_on_a_socket_without_nagle() {
    // The job's one slow node runs for an hour: its stream must show it executing now, not
    // when the job ends.
    let api = start(&["--fake-node-time", "1h"], |_| {}).await;
    let (status, body, _) = api.post(json!({"template": "demo"}), None).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let addr = api.app().api_addr().unwrap();
    let path = format!("/v1/jobs/{id}/events");
    let (client, seen) = actix_web::rt::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(support::waits::SAFETY))
            .unwrap();
        write!(client, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("event: executing\n") {
            let n = client.read(&mut buf).unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        (client, String::from_utf8(seen).unwrap())
    })
    .await
    .unwrap();
    assert!(seen.contains("event: started\n"), "{seen}");
    let (_, job) = api.get_json(&format!("/v1/jobs/{id}"), None).await;
    assert_eq!(job["state"], "running", "the job is still running: {job}");
    // Small writes go out at once instead of waiting for the client's delayed acknowledgement.
    let server_end = server_end_of(&client);
    assert!(
        server_end.nodelay().unwrap(),
        "the API's socket has TCP_NODELAY set"
    );
    let (status, _) = api.delete(&id).await;
    assert_eq!(status, 202);
    drop(client);
    api.stop().await;
}

#[actix_rt::test]
async fn cancel_removes_a_queued_job_and_interrupts_a_running_one() {
    // One slot: the first job runs (slowly), the second waits.
    let api = start(&["--fake-node-time", "400ms"], |c| {
        c.scheduler.pipeline_depth = 1
    })
    .await;
    let (_, first, _) = api.post(json!({"template": "demo"}), None).await;
    let (_, second, _) = api.post(json!({"template": "demo"}), None).await;
    let (first, second) = (
        first["id"].as_str().unwrap().to_string(),
        second["id"].as_str().unwrap().to_string(),
    );
    let (_, queued) = api.get_json(&format!("/v1/jobs/{second}"), None).await;
    assert_eq!(queued["state"], "queued", "{queued}");

    let (status, body) = api.delete(&second).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "cancelled");
    assert_eq!(
        event_names(&api.events(&second).await).last(),
        Some(&"cancelled")
    );

    let (status, body) = api.delete(&first).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        event_names(&api.events(&first).await).last(),
        Some(&"cancelled")
    );
    let (_, job) = api.get_json(&format!("/v1/jobs/{first}"), None).await;
    assert_eq!(job["state"], "cancelled");

    let (status, body) = api.delete(&first).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already finished"),
        "{body}"
    );
    api.stop().await;
}

#[actix_rt::test]
async fn a_full_queue_is_a_clear_503() {
    let api = start(&["--fake-node-time", "500ms"], |c| {
        c.scheduler.pipeline_depth = 1;
        c.scheduler.queue_capacity = 1;
        c.limits.user_concurrent = 10;
    })
    .await;
    let (s1, _, _) = api.post(json!({"template": "demo"}), None).await;
    let (s2, _, _) = api.post(json!({"template": "demo"}), None).await;
    let (s3, body, _) = api.post(json!({"template": "demo"}), None).await;
    assert_eq!((s1, s2, s3), (201, 201, 503), "{body}");
    assert_eq!(body["error"]["code"], "queue_full");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("queue is full"),
        "{body}"
    );
    api.stop().await;
}

fn retry_after(headers: &awc::http::header::HeaderMap) -> u64 {
    headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[actix_rt::test]
async fn with_tokens_the_rate_limit_refuses_with_retry_after() {
    let api = start(&["--fake-node-time", "0ms"], |c| {
        c.http.tokens = [("tok-a".to_string(), "alice".to_string())].into();
        c.limits.per_user = vec![WindowLimit::new(2, Duration::from_secs(3600))];
    })
    .await;
    for _ in 0..2 {
        let (status, body, _) = api.post(json!({"template": "demo"}), Some("tok-a")).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body, headers) = api.post(json!({"template": "demo"}), Some("tok-a")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let retry = retry_after(&headers);
    assert!(retry > 0 && retry <= 3600, "{retry}");
    assert_eq!(body["error"]["retry_after_seconds"], json!(retry));
    api.stop().await;
}

#[actix_rt::test]
async fn without_tokens_on_loopback_a_local_burst_is_not_throttled() {
    // The shipped limits (10 per 10 minutes, 3 at once), no tokens, API on 127.0.0.1.
    let api = start(&["--fake-node-time", "0ms"], |_| {}).await;
    let posts = (0..20).map(|_| api.post(json!({"template": "demo"}), None));
    let statuses: Vec<u16> = futures_util::future::join_all(posts)
        .await
        .into_iter()
        .map(|(status, _, _)| status)
        .collect();
    assert_eq!(statuses, vec![201; 20]);
    api.stop().await;
}

#[actix_rt::test]
async fn a_user_at_the_concurrency_cap_is_told_to_retry_when_a_job_should_end() {
    // The fallback is an hour, so a Retry-After below it comes from the running job's ETA.
    let api = start(&["--fake-node-time", "200ms"], |c| {
        c.http.tokens = [("tok-a".to_string(), "alice".to_string())].into();
        c.limits.per_user.clear();
        c.limits.user_concurrent = 1;
        c.limits.concurrency_retry_after = Duration::from_secs(3600);
    })
    .await;
    let submit = || api.post(json!({"template": "demo"}), Some("tok-a"));
    let (status, first, _) = submit().await;
    assert_eq!(status, 201, "{first}");
    // No job has finished yet: nothing to estimate from, the fallback applies.
    let (status, body, headers) = submit().await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after(&headers), 3600);
    let first = first["id"].as_str().unwrap();
    let stream = api.events_as(first, Some("tok-a")).await;
    assert_eq!(event_names(&stream).last(), Some(&"done"), "{stream}");
    // One demo job took 3 nodes × 200 ms: the next refusal expects the running one soon.
    let (status, body, _) = submit().await;
    assert_eq!(status, 201, "{body}");
    let (status, body, headers) = submit().await;
    assert_eq!(status, 429, "{body}");
    let retry = retry_after(&headers);
    assert!((1..3600).contains(&retry), "Retry-After {retry}: {body}");
    api.stop_now().await;
}

#[actix_rt::test]
async fn tokens_name_users_and_users_see_only_their_jobs() {
    let api = start(&["--fake-node-time", "0ms"], |c| {
        c.http.tokens = [
            ("tok-a".to_string(), "alice".to_string()),
            ("tok-b".into(), "bob".into()),
        ]
        .into();
    })
    .await;
    let (status, body, _) = api.post(json!({"template": "demo"}), None).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bearer"),
        "{body}"
    );
    let (status, body, _) = api.post(json!({"template": "demo"}), Some("wrong")).await;
    assert_eq!(status, 401, "{body}");
    let (status, body, _) = api.post(json!({"template": "demo"}), Some("tok-a")).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap();
    let (status, job) = api.get_json(&format!("/v1/jobs/{id}"), Some("tok-a")).await;
    assert_eq!((status, job["user"].as_str()), (200, Some("alice")));
    let (status, _) = api.get_json(&format!("/v1/jobs/{id}"), Some("tok-b")).await;
    assert_eq!(status, 404);
    api.stop().await;
}

#[actix_rt::test]
async fn bad_requests_say_what_is_wrong() {
    let api = start(&["--fake-node-time", "0ms"], |_| {}).await;
    let (status, body, _) = api.post(json!({"template": "nosuch"}), None).await;
    assert_eq!(status, 400, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("nosuch") && msg.contains("demo"), "{msg}");

    let (status, body, _) = api
        .post(json!({"template": "demo", "params": {"width": -5}}), None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("width"),
        "{body}"
    );

    let (status, body, _) = api
        .post(json!({"template": "demo", "params": {"colour": 1}}), None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );

    let (status, body, _) = api
        .post(json!({"template": "demo", "workflow": {}}), None)
        .await;
    assert_eq!(status, 400, "{body}");

    let (status, body, _) = api.post(json!({"workflow": {"nodes": 3}}), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_workflow")),
        "{body}"
    );

    let mut resp = api
        .client
        .post(format!("{}/v1/jobs", api.base))
        .insert_header(("content-type", "application/json"))
        .send_body("{not json")
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");

    // A text file sent as an image is refused before anything reaches ComfyUI.
    let boundary = "XyZ";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"cat.png\"\r\n\
         Content-Type: image/png\r\n\r\nthis is text, not a picture\r\n--{boundary}--\r\n",
        json!({"template": "demo"})
    );
    let mut resp = api
        .client
        .post(format!("{}/v1/jobs", api.base))
        .insert_header((
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        ))
        .send_body(form)
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_image");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cat.png"),
        "{body}"
    );

    let (status, body) = api.get_json("/v1/jobs/not-a-uuid", None).await;
    assert_eq!(status, 404, "{body}");
    api.stop().await;
}

#[actix_rt::test]
async fn a_ui_format_workflow_is_converted_and_runs() {
    let api = start(&["--fake-node-time", "0ms"], |_| {}).await;
    // What ComfyUI's "Save" writes: nodes with positional widget values, and links.
    let workflow = json!({
        "last_node_id": 3, "last_link_id": 2, "version": 0.4,
        "nodes": [
            {"id": 1, "type": "EmptyImage", "mode": 0, "inputs": [],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}], "widgets_values": [40, 24, 1, 0]},
            {"id": 2, "type": "ImageInvert", "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2]}], "widgets_values": []},
            {"id": 3, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 2}],
             "outputs": [], "widgets_values": ["ui_test"]}
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]]
    });
    let (status, body, _) = api.post(json!({"workflow": workflow}), None).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(event_names(&api.events(&id).await).last(), Some(&"done"));
    let mut resp = api
        .client
        .get(format!("{}/v1/jobs/{id}/outputs/0", api.base))
        .send()
        .await
        .unwrap();
    let png = resp.body().limit(64 << 20).await.unwrap();
    assert_eq!(png_size(&png), (40, 24));
    api.stop().await;
}

#[actix_rt::test]
async fn status_metrics_and_health_describe_the_fleet() {
    let api = start(&["--fake-node-time", "0ms"], |_| {}).await;
    let (status, body) = api.get_json("/v1/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["demo_backend"], true);
    assert_eq!(body["instances"][0]["phase"], "ready", "{body}");
    assert!(
        body["instances"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{body}"
    );
    assert_eq!(body["queue"]["capacity"], 1000);
    let (status, _) = api.get_json("/healthz", None).await;
    assert_eq!(status, 200);
    let (status, body) = api.get_json("/readyz", None).await;
    assert_eq!((status, body["ready_instances"].as_u64()), (200, Some(1)));
    let mut resp = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap();
    let text = String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap();
    assert!(
        text.contains("# TYPE comfy_fleet_queue_depth gauge"),
        "{text}"
    );
    assert!(
        text.contains("comfy_fleet_instance_phase{instance=\"cpu0\",phase=\"ready\"} 1"),
        "{text}"
    );
    assert!(text.contains("comfy_fleet_demo_backend 1"), "{text}");
    api.stop().await;
}
