//! The bad-input catalogue: every class of bad request a careless client or an attacker sends
//! to the HTTP API, each answered with its exact status and user-facing message, through a real
//! fleet (fake-comfyui child processes) behind the real API on 127.0.0.1. None of them takes a
//! queue slot or a user's quota.

mod support;

use std::time::Duration;

use comfy_fleet_actors::rate_limit::WindowLimit;
use serde_json::{Value, json};
use support::in_process_api::{Api, start};

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
        "the body is not a valid job: Json deserialize error: duplicate key `1` (an object names it twice; with node ids, one node would be lost) at line 1 column 66",
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
    })
    .await;
    // Ten typos: each refused for what it is, never for the rate limit.
    for width in 1..=10 {
        let (status, body) = post(
            &api,
            json!({"template": "demo", "params": {"width": width}}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "invalid_workflow", "{body}");
    }
    for _ in 0..10 {
        let (status, body) = post(
            &api,
            json!({"workflow": demo_prompt(|p| p["1"]["inputs"]["width"] = json!(0))}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
    }
    // Then the user's whole quota is there.
    for _ in 0..10 {
        let (status, body) = post(
            &api,
            json!({"template": "demo", "params": {"width": 64, "height": 64}}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = post(&api, json!({"template": "demo"})).await;
    assert_eq!(
        status, 429,
        "the eleventh accepted job is over the limit: {body}"
    );
    api.stop().await;
}
