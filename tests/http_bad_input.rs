//! The bad-input catalogue: every class of bad request a careless client or an attacker sends
//! to the HTTP API, each answered with its exact status and user-facing message, through a real
//! fleet (fake-comfyui child processes) behind the real API on 127.0.0.1. None of them takes a
//! queue slot or a user's quota.

mod support;

use std::time::Duration;

use comfy_fleet_actors::rate_limit::WindowLimit;
use serde_json::{Value, json};
use support::in_process_api::{Api, start};
use support::multipart::{self, Part};
use support::waits::SAFETY;

/// The demo template's workflow in the API format, with `edit` applied.
fn demo_prompt(edit: impl FnOnce(&mut Value)) -> Value {
    let mut prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "bad"}}
    });
    edit(&mut prompt);
    prompt
}

/// Posts `body` as raw bytes with `content_type`.
async fn post_raw(api: &Api, content_type: &str, body: impl Into<Vec<u8>>) -> (u16, Value) {
    let mut resp = api
        .client
        .post(format!("{}/v1/jobs", api.base))
        .insert_header(("content-type", content_type))
        .send_body(body.into())
        .await
        .unwrap();
    let body = resp.body().limit(1 << 20).await.unwrap();
    (
        resp.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// Asserts a refusal: its status, error code and exact message.
fn refused(answer: (u16, Value), status: u16, code: &str, message: &str) {
    let (got, body) = answer;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["message"], message, "{body}");
}

async fn post(api: &Api, body: Value) -> (u16, Value) {
    let (status, body, _) = api.post(body, None).await;
    (status, body)
}

/// Posts `body` as the user of the token `tok-quota`.
async fn post_as(api: &Api, body: Value) -> (u16, Value) {
    let (status, body, _) = api.post(body, Some("tok-quota")).await;
    (status, body)
}

/// Nothing was queued: every refusal left the job table and the queue empty.
async fn nothing_queued(api: &Api) {
    let (status, s) = api.get_json("/v1/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(s["queue"]["depth"], 0, "{s}");
    let jobs: u64 = s["jobs"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(jobs, 0, "a refused request became a job: {s}");
}

#[actix_rt::test]
async fn workflows_comfyui_would_refuse_are_answered_at_once_with_node_input_and_reason() {
    let api = start(&["--fake-node-time", "0ms"], |_| {}).await;
    let cannot_run = |m: &str| format!("the workflow cannot run: {m}");

    // Out-of-range widget value.
    refused(
        post(
            &api,
            json!({"workflow": demo_prompt(|p| p["1"]["inputs"]["width"] = json!(0))}),
        )
        .await,
        400,
        "invalid_workflow",
        &cannot_run("node 1 (EmptyImage), input `width`: Value 0 smaller than min of 1"),
    );
    // A value of the wrong type.
    refused(
        post(
            &api,
            json!({"workflow": demo_prompt(|p| p["1"]["inputs"]["height"] = json!("tall"))}),
        )
        .await,
        400,
        "invalid_workflow",
        &cannot_run(
            "node 1 (EmptyImage), input `height`: Failed to convert an input value to a INT value: invalid literal for int() with base 10: 'tall'",
        ),
    );
    // A dangling link.
    refused(
        post(
            &api,
            json!({"workflow": demo_prompt(|p| p["2"]["inputs"]["image"] = json!(["9", 0]))}),
        )
        .await,
        400,
        "invalid_workflow",
        &cannot_run(
            "node 2 (ImageInvert), input `image`: it is linked to node 9, which is not in the workflow",
        ),
    );
    // A link to an output the node does not have.
    refused(
        post(
            &api,
            json!({"workflow": demo_prompt(|p| p["2"]["inputs"]["image"] = json!(["1", 2]))}),
        )
        .await,
        400,
        "invalid_workflow",
        &cannot_run(
            "node 2 (ImageInvert), input `image`: it is linked to output 2 of node 1 (EmptyImage), which has 1 output",
        ),
    );
    // A cycle.
    refused(
        post(
            &api,
            json!({"workflow": demo_prompt(|p| {
                p["4"] = json!({"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}});
                p["2"]["inputs"]["image"] = json!(["4", 0]);
            })}),
        )
        .await,
        400,
        "invalid_workflow",
        &cannot_run(
            "node 2 (ImageInvert): Dependency cycle detected: 2 (ImageInvert) -> 4 (ImageInvert) -> 2 (ImageInvert); \
             node 4 (ImageInvert): Dependency cycle detected: 2 (ImageInvert) -> 4 (ImageInvert) -> 2 (ImageInvert)",
        ),
    );
    // A required input left out.
    refused(
        post(
            &api,
            json!({"workflow": demo_prompt(|p| {
                p["1"]["inputs"].as_object_mut().unwrap().remove("batch_size");
            })}),
        )
        .await,
        400,
        "invalid_workflow",
        &cannot_run("node 1 (EmptyImage), input `batch_size`: Required input is missing"),
    );
    // No output node.
    refused(
        post(
            &api,
            json!({"workflow": demo_prompt(|p| {
                p.as_object_mut().unwrap().remove("3");
            })}),
        )
        .await,
        400,
        "invalid_workflow",
        &cannot_run(
            "the workflow: Prompt has no outputs: add an output node (SaveImage, PreviewImage…) for the workflow to produce anything",
        ),
    );
    // A template parameter out of the node's bounds (the template reads them from the server).
    refused(
        post(&api, json!({"template": "demo", "params": {"strength": 7}})).await,
        400,
        "invalid_workflow",
        "parameter `strength`: 7 is out of range (allowed: 0 to 1)",
    );
    // Two nodes with one id: the JSON reader would keep only the last.
    let text = r#"{"workflow": {"1": {"class_type": "EmptyImage", "inputs": {}}, "1": {"class_type": "SaveImage", "inputs": {}}}}"#;
    refused(
        post_raw(&api, "application/json", text).await,
        400,
        "invalid_json",
        "the body is not a valid job: duplicate key `1` (an object names it twice; with node ids, one node would be lost) at line 1 column 66",
    );
    // `extra_data` that is not an object (ComfyUI's handler fails on it).
    refused(
        post(&api, json!({"template": "demo", "extra_data": [1, 2]})).await,
        400,
        "bad_request",
        "`extra_data` must be a JSON object (it is an array); send {} or leave it out",
    );
    nothing_queued(&api).await;
    api.stop().await;
}

#[actix_rt::test]
async fn only_accepted_jobs_use_up_a_users_quota() {
    let api = start(&["--fake-node-time", "0ms"], |c| {
        c.limits.per_user = vec![WindowLimit::new(10, Duration::from_secs(600))];
        c.limits.user_concurrent = 0;
        // With tokens: the anonymous user of a loopback API is not rate limited.
        c.http.tokens = [("tok-quota".to_string(), "quota".to_string())].into();
    })
    .await;
    // Ten typos: each refused for what it is, never for the rate limit.
    for width in 1..=10 {
        let (status, body) = post_as(
            &api,
            json!({"template": "demo", "params": {"width": width}}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "invalid_workflow", "{body}");
    }
    for _ in 0..10 {
        let (status, body) = post_as(
            &api,
            json!({"workflow": demo_prompt(|p| p["1"]["inputs"]["width"] = json!(0))}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
    }
    // Then the user's whole quota is there.
    for _ in 0..10 {
        let (status, body) = post_as(
            &api,
            json!({"template": "demo", "params": {"width": 64, "height": 64}}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = post_as(&api, json!({"template": "demo"})).await;
    assert_eq!(
        status, 429,
        "the eleventh accepted job is over the limit: {body}"
    );
    api.stop().await;
}

/// Sends only a request's head (no body, whatever its `Content-Length` says) and reads the
/// answer: a server that waits for the body before it answers never answers.
fn head_only(api: &Api, head: &str) -> (u16, Value) {
    use std::io::{BufRead, BufReader, Read, Write};
    let addr = api.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(SAFETY)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .expect("an answer before the body was sent");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Posts a multipart form.
async fn post_form(
    api: &Api,
    token: Option<&str>,
    parts: &[Part<'_>],
) -> (u16, Value, Option<String>) {
    let mut req = api
        .client
        .post(format!("{}/v1/jobs", api.base))
        .insert_header(("content-type", multipart::content_type()));
    if let Some(t) = token {
        req = req.insert_header(("authorization", format!("Bearer {t}")));
    }
    let mut resp = req.send_body(multipart::body(parts)).await.unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.body().limit(1 << 20).await.unwrap();
    (
        resp.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        retry,
    )
}

const UNAUTHORIZED: &str = "missing or unknown API token: send `Authorization: Bearer <token>` with a token from COMFY_FLEET_API_TOKENS";

#[actix_rt::test]
async fn requests_are_checked_and_bounded_before_their_body_is_read() {
    let api = start(&["--fake-node-time", "0ms"], |c| {
        c.http.tokens = [("tok-ann".to_string(), "ann".to_string())].into();
        c.http.max_body_mb = 2;
        c.http.max_images = 2;
        c.limits.user_concurrent = 0;
    })
    .await;
    // No token: refused from the head alone, though it announces a gigabyte.
    let head = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n";
    refused(head_only(&api, head), 401, "unauthorized", UNAUTHORIZED);
    // With a token, a body announced over the bound: refused from the head alone too.
    let head = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-ann\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1073741824\r\n\r\n";
    let too_large = "the request is larger than the 2 MiB allowed for a whole request, images included (http.max_body_mb)";
    refused(head_only(&api, head), 413, "payload_too_large", too_large);
    // The bound is on the whole request: two images of 1.5 MiB each, each under it.
    let big = vec![7u8; 1536 * 1024];
    let (status, body, _) = post_form(
        &api,
        Some("tok-ann"),
        &[
            Part::request(&json!({"template": "demo"})),
            Part::image("image", "a.png", big.clone()),
            Part::image("image2", "b.png", big),
        ],
    )
    .await;
    refused((status, body), 413, "payload_too_large", too_large);
    // Images are counted.
    let png = multipart::test_png(8, 8);
    let (status, body, _) = post_form(
        &api,
        Some("tok-ann"),
        &[
            Part::request(&json!({"template": "demo"})),
            Part::image("image", "a.png", png.clone()),
            Part::image("image2", "b.png", png.clone()),
            Part::image("image3", "c.png", png.clone()),
        ],
    )
    .await;
    refused(
        (status, body),
        400,
        "bad_multipart",
        "the form has more than 2 images (http.max_images)",
    );
    // A form cut short.
    let mut cut = multipart::body(&[Part::request(&json!({"template": "demo"}))]);
    cut.truncate(cut.len() - 8);
    let mut resp = api
        .client
        .post(format!("{}/v1/jobs", api.base))
        .insert_header(("authorization", "Bearer tok-ann"))
        .insert_header(("content-type", multipart::content_type()))
        .send_body(cut)
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    refused(
        (resp.status().as_u16(), body),
        400,
        "bad_multipart",
        &format!(
            "the body ends before the closing boundary (`--{}--`): it was cut short",
            multipart::BOUNDARY
        ),
    );
    // The bearer scheme is matched without regard to case.
    let mut resp = api
        .client
        .post(format!("{}/v1/jobs", api.base))
        .insert_header(("authorization", "bearer tok-ann"))
        .insert_header(("content-type", "application/json; charset=utf-8"))
        .send_body(json!({"template": "demo"}).to_string())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.body().await);
    api.stop().await;
}

#[actix_rt::test]
async fn every_other_mistake_gets_its_status_and_a_json_error() {
    let api = start(&["--fake-node-time", "500ms"], |c| {
        c.scheduler.pipeline_depth = 1;
        c.scheduler.queue_capacity = 1;
        c.limits.user_concurrent = 0;
    })
    .await;
    // Content types: JSON with a charset is JSON; anything else is 415.
    let (status, body) = post_raw(
        &api,
        "Application/JSON; charset=utf-8",
        json!({"template": "demo", "params": {"width": 64, "height": 64}}).to_string(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    refused(
        post_raw(&api, "text/plain", "template=demo").await,
        415,
        "unsupported_media_type",
        "`text/plain` is not a job: send it as application/json, or multipart/form-data with a `request` part and image parts",
    );
    // A full queue says when to come back.
    let (status, body) = post(&api, json!({"template": "demo"})).await;
    assert_eq!(status, 201, "{body}");
    let mut resp = api
        .client
        .post(format!("{}/v1/jobs", api.base))
        .send_json(&json!({"template": "demo"}))
        .await
        .unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503, "{body}");
    assert_eq!(body["error"]["code"], "queue_full");
    let seconds: u64 = retry.expect("a Retry-After header").parse().unwrap();
    assert!(seconds >= 1);
    assert_eq!(body["error"]["retry_after_seconds"], json!(seconds));
    // A PNG whose header is fine but whose data is cut short.
    let mut png = multipart::test_png(64, 64);
    png.truncate(png.len() * 2 / 3);
    let (status, body, _) = post_form(
        &api,
        None,
        &[
            Part::request(&json!({"template": "demo"})),
            Part::image("image", "cut.png", png),
        ],
    )
    .await;
    refused(
        (status, body),
        400,
        "invalid_image",
        "`cut.png` (image) is a damaged image: unexpected end of file",
    );
    // Unknown routes and methods answer the JSON error.
    let (status, body) = api.get_json("/v2/nothing?token=x", None).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"]["message"],
        "no route GET /v2/nothing: the API has POST /v1/jobs, GET|DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/events, GET /v1/jobs/{id}/outputs/{n}, GET /v1/models, PUT|DELETE /v1/models/{kind}/{name}, GET /v1/status, GET /metrics, GET /healthz and GET /readyz"
    );
    // A long job id is not echoed back whole.
    let long = "x".repeat(5000);
    let (status, body) = api.get_json(&format!("/v1/jobs/{long}"), None).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"]["message"],
        format!(
            "no job `{}…`: job ids are UUIDs as returned by POST /v1/jobs",
            "x".repeat(40)
        )
    );
    api.stop_now().await;
}

#[actix_rt::test]
async fn classes_handled_before_keep_their_exact_answers() {
    let api = start(&["--fake-node-time", "0ms"], |c| {
        c.http.tokens = [
            ("tok-ann".to_string(), "ann".to_string()),
            ("tok-bob".into(), "bob".into()),
        ]
        .into();
        c.limits.user_concurrent = 0;
        c.limits.max_image_side = 64;
    })
    .await;
    let ann = |body: Value| {
        let api = &api;
        async move {
            let (status, body, _) = api.post(body, Some("tok-ann")).await;
            (status, body)
        }
    };
    refused(
        ann(json!({"template": "nosuch"})).await,
        400,
        "invalid_workflow",
        "no template named `nosuch`; available: demo, editflux, editqwen, generate, upscale",
    );
    refused(
        ann(json!({"template": "demo", "params": {"colour": 1}})).await,
        400,
        "invalid_workflow",
        "unknown parameter `colour`; valid parameters: width, height, color, seed, strength, blur",
    );
    refused(
        ann(json!({"template": "demo", "params": {"width": "wide"}})).await,
        400,
        "invalid_workflow",
        "parameter `width`: expected a whole number (allowed: 64 to 2048), got \"wide\"",
    );
    refused(
        ann(json!({"template": "demo", "workflow": {}})).await,
        400,
        "bad_request",
        "send either `template` or `workflow`, not both",
    );
    refused(
        ann(json!({"params": {}})).await,
        400,
        "bad_request",
        "name a `template` (see `comfy-fleet templates`) or send a `workflow`",
    );
    refused(
        ann(json!({"workflow": {"nodes": 3}})).await,
        400,
        "invalid_workflow",
        "not a ComfyUI workflow: looks like a UI workflow, but `nodes` and `links` is missing or not an array",
    );
    refused(
        ann(json!({"workflow": {"1": {"class_type": "NoSuchNode", "inputs": {}}}})).await,
        400,
        "invalid_workflow",
        "node 1 has type `NoSuchNode`, which this ComfyUI server does not know; a custom node is probably not installed (or the server is older than the workflow)",
    );
    refused(
        ann(json!({"template": "demo", "surprise": 1})).await,
        400,
        "invalid_json",
        "the body is not a valid job: unknown field `surprise`, expected one of `template`, `workflow`, `params`, `extra_data` at line 1 column 29",
    );
    let mut resp = api
        .client
        .post(format!("{}/v1/jobs", api.base))
        .insert_header(("authorization", "Bearer tok-ann"))
        .insert_header(("content-type", "application/json"))
        .send_body("{not json")
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    refused(
        (resp.status().as_u16(), body),
        400,
        "invalid_json",
        "the body is not a valid job: key must be a string at line 1 column 2",
    );
    // Images: text sent as an image, and one larger than limits.max_image_side.
    for (bytes, message) in [
        (
            b"this is text, not a picture".to_vec(),
            "`cat.png` (image) is not a PNG, JPEG or WebP image (it looks like text)",
        ),
        (
            multipart::test_png(65, 8),
            "`cat.png` (image) is 65×8; images may be at most 64 pixels on a side",
        ),
    ] {
        let (status, body, _) = post_form(
            &api,
            Some("tok-ann"),
            &[
                Part::request(&json!({"template": "demo"})),
                Part::image("image", "cat.png", bytes),
            ],
        )
        .await;
        refused((status, body), 400, "invalid_image", message);
    }
    // Jobs: a wrong token, another user's job, an id that is no UUID, an output not made yet.
    let (status, body, _) = api.post(json!({"template": "demo"}), Some("wrong")).await;
    refused((status, body), 401, "unauthorized", UNAUTHORIZED);
    let (status, body) =
        ann(json!({"template": "demo", "params": {"width": 64, "height": 64}})).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let (status, body) = api
        .get_json(&format!("/v1/jobs/{id}"), Some("tok-bob"))
        .await;
    refused((status, body), 404, "not_found", &format!("no job {id}"));
    let (status, body) = api.get_json("/v1/jobs/not-a-uuid", Some("tok-ann")).await;
    refused(
        (status, body),
        404,
        "not_found",
        "no job `not-a-uuid`: job ids are UUIDs as returned by POST /v1/jobs",
    );
    let (status, body) = api
        .get_json(&format!("/v1/jobs/{id}/outputs/7"), Some("tok-ann"))
        .await;
    assert_eq!(status, 404, "{body}");
    api.stop().await;
}
