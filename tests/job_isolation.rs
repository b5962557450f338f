//! Per-job isolation through the HTTP API on a real fleet: a job's upload lives in its own
//! folder only while the job runs, and another user's job cannot name it, nor read outputs or
//! temporary files through ComfyUI's annotated names.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::in_process_api::{Api, start};
use support::multipart::{self, Part};
use support::waits::{POLL, wait_until, within};

const ALICE: &str = "tok-alice";
const BOB: &str = "tok-bob";

fn tokens(c: &mut comfy_fleet::config::Config) {
    c.http.tokens = [
        (ALICE.to_string(), "alice".to_string()),
        (BOB.to_string(), "bob".to_string()),
    ]
    .into();
}

/// An API workflow that loads `image`, inverts it and saves it.
fn load_invert_save(image: &str) -> Value {
    json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "iso"}}
    })
}

async fn post_form(api: &Api, token: &str, parts: &[Part<'_>]) -> (u16, Value) {
    let mut resp = api
        .client
        .post(format!("{}/v1/jobs", api.base))
        .insert_header(("authorization", format!("Bearer {token}")))
        .insert_header(("content-type", multipart::content_type()))
        .send_body(multipart::body(parts))
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (resp.status().as_u16(), body)
}

/// Every file below `dir` in an instance's `input/` folder whose path has a component named
/// `name` (the fleet's output store keeps a job's outputs under its id too).
fn paths_under(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.components().any(|c| c.as_os_str() == name)
                && path.components().any(|c| c.as_os_str() == "input")
            {
                found.push(path.clone());
            }
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    found
}

async fn state(api: &Api, id: &str, token: &str) -> String {
    let (_, job) = api.get_json(&format!("/v1/jobs/{id}"), Some(token)).await;
    job["state"].as_str().unwrap_or_default().to_string()
}

#[actix_rt::test]
async fn a_job_reads_only_its_own_uploads_which_go_when_it_ends() {
    // Each node takes a moment, so Alice's upload can be seen while her job runs.
    let api = start(&["--fake-node-time", "200ms"], tokens).await;
    let state_dir = api.app().fleet().config.comfyui.state_dir.clone();

    let alice_job = json!({"workflow": load_invert_save("placeholder.png")});
    let (status, body) = post_form(
        &api,
        ALICE,
        &[
            Part::request(&alice_job),
            Part::image("image", "private.png", multipart::test_png(32, 24)),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let alice = body["id"].as_str().unwrap().to_string();

    // Her upload is in a folder of its own, input/fleet/<job id>/, while the job runs.
    within("Alice's upload in her job's folder", async {
        while !paths_under(&state_dir, &alice)
            .iter()
            .any(|p| p.ends_with(format!("input/fleet/{alice}/image.png")))
        {
            actix_rt::time::sleep(POLL).await;
        }
    })
    .await;

    // Bob names it: refused before it is queued, naming the node, the input and the reason.
    let upload = format!("fleet/{alice}/image.png");
    let (status, body, _) = api
        .post(json!({"workflow": load_invert_save(&upload)}), Some(BOB))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_workflow");
    assert_eq!(
        body["error"]["message"],
        format!(
            "the workflow cannot run: node 1 (LoadImage), input `image`: `{upload}` is neither a file this job uploads nor one of the server's own input files; send the image with the job (a multipart part named after its parameter)"
        )
    );

    // Nor can anyone read an output or a temporary file through an annotated name.
    for (name, folder) in [
        ("iso_00001_.png [output]", "output"),
        ("ComfyUI_temp_abcde_00001_.png [temp]", "temp"),
    ] {
        let (status, body, _) = api
            .post(json!({"workflow": load_invert_save(name)}), Some(BOB))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"]["message"],
            format!(
                "the workflow cannot run: node 1 (LoadImage), input `image`: `{name}` names a file in ComfyUI's {folder} folder; a job may read only the files it uploads and the server's own input files: send the image with the job instead"
            )
        );
    }

    // When Alice's job ends, her upload and its folder are gone (the instance still runs).
    wait_until_done(&api, &alice, ALICE).await;
    assert_eq!(
        paths_under(&state_dir, &alice),
        Vec::<PathBuf>::new(),
        "the job's uploads outlived it"
    );
    let (status, _) = api
        .get_json(&format!("/v1/jobs/{alice}/outputs/0"), Some(ALICE))
        .await;
    assert_eq!(status, 200);
    api.stop().await;
}

async fn wait_until_done(api: &Api, id: &str, token: &str) {
    within("the job to finish", async {
        loop {
            match state(api, id, token).await.as_str() {
                "done" => return,
                "failed" | "cancelled" => panic!("job {id} did not succeed"),
                _ => actix_rt::time::sleep(POLL).await,
            }
        }
    })
    .await;
}

#[actix_rt::test]
async fn uploads_of_a_cancelled_job_are_deleted_too() {
    // Long enough nodes that the job still runs when it is cancelled.
    let api = start(&["--fake-node-time", "2s"], |_| {}).await;
    let state_dir = api.app().fleet().config.comfyui.state_dir.clone();
    let job = json!({"workflow": load_invert_save("placeholder.png")});
    let (status, body) = post_form(
        &api,
        "unused",
        &[
            Part::request(&job),
            Part::image("image", "photo.png", multipart::test_png(16, 16)),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    wait_until("the upload to land", || {
        !paths_under(&state_dir, &id).is_empty()
    })
    .await;
    let (status, _) = api.delete(&id).await;
    assert_eq!(status, 202);
    within("the cancelled job's end", async {
        while state(&api, &id, "unused").await != "cancelled" {
            actix_rt::time::sleep(POLL).await;
        }
    })
    .await;
    wait_until("the cancelled job's upload to be deleted", || {
        paths_under(&state_dir, &id).is_empty()
    })
    .await;
    api.stop_now().await;
}
