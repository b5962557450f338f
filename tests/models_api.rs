//! The model library through the HTTP API while the fleet runs: anyone lists it, operators add a
//! LoRA (streamed, size-limited, checksummed) or remove it, and jobs and listings see the change
//! at once; ephemeral files are gone when the fleet stops; every instance reads the one library.

mod support;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::in_process_api::{Api, start};

const OPS: &str = "ops-token";
const ALICE: &str = "alice-token";

async fn request(
    api: &Api,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let url = format!("{}{path}", api.base);
    let mut req = match method {
        "PUT" => api.client.put(url),
        "DELETE" => api.client.delete(url),
        _ => api.client.get(url),
    };
    if let Some(t) = token {
        req = req.insert_header(("authorization", format!("Bearer {t}")));
    }
    let mut resp = req.send_body(body).await.unwrap();
    let bytes = resp.body().limit(16 << 20).await.unwrap();
    (
        resp.status().as_u16(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Checkpoint → LoRA → sampler → SaveImage, naming the LoRA `lora`.
fn lora_workflow(lora: &str) -> Value {
    json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "base.safetensors"}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": lora, "strength_model": 0.8,
               "strength_clip": 0.8, "model": ["4", 0], "clip": ["4", 1]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "ink", "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["10", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": 2, "cfg": 7.0,
              "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0, "model": ["10", 0],
              "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ink", "images": ["8", 0]}}
    })
}

/// The LoRA workflow with its `lora` parameter (found on the LoraLoader) set to `lora`: the
/// fleet checks the value against the server's current choices.
fn lora_job(lora: &str) -> Value {
    json!({"workflow": lora_workflow("placeholder.safetensors"), "params": {"lora": lora}})
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn wait_done(api: &Api, id: &str) -> Value {
    support::waits::within("the job to finish", async {
        loop {
            let (_, job) = api.get_json(&format!("/v1/jobs/{id}"), Some(ALICE)).await;
            if matches!(job["state"].as_str(), Some("done" | "failed" | "cancelled")) {
                return job;
            }
            actix_rt::time::sleep(support::waits::POLL).await;
        }
    })
    .await
}

#[actix_rt::test]
async fn operators_change_the_library_while_the_fleet_runs_and_jobs_see_it_at_once() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_path_buf();
    let api = start(&["--fake-node-time", "0ms"], |c| {
        c.comfyui.state_dir = state_dir.clone();
        c.http.tokens = [
            (OPS.to_string(), "ops".to_string()),
            (ALICE.to_string(), "alice".to_string()),
        ]
        .into();
        c.http.operators = vec!["ops".into()];
        c.http.max_model_upload_mb = 1;
    })
    .await;
    let library = api.app().fleet().library.dir().to_path_buf();
    assert_eq!(library, state_dir.join("models"));
    // Every instance reads the one library.
    let yaml = std::fs::read_to_string(state_dir.join("cpu0/extra_model_paths.yaml")).unwrap();
    assert!(
        yaml.contains(&format!("base_path: {:?}", library.display().to_string())),
        "{yaml}"
    );

    let (status, listed) = request(&api, "GET", "/v1/models", Some(ALICE), vec![]).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["models"]["loras"], json!([]));
    assert!(listed["models"]["checkpoints"].is_array() && listed["models"]["vae"].is_array());
    assert_eq!(
        request(&api, "GET", "/v1/models", None, vec![]).await.0,
        401
    );

    // Users may not change the library.
    let (status, body) = request(
        &api,
        "PUT",
        "/v1/models/loras/ink.safetensors",
        Some(ALICE),
        b"w".to_vec(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("http.operators"),
        "{body}"
    );

    let checkpoint = b"checkpoint weights".to_vec();
    let (status, added) = request(
        &api,
        "PUT",
        "/v1/models/checkpoints/base.safetensors",
        Some(OPS),
        checkpoint.clone(),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["sha256"], json!(sha256(&checkpoint)));
    assert_eq!(added["size_bytes"], json!(checkpoint.len()));

    // Before the LoRA exists, a job asking for it is refused by the parameter check.
    let (status, refused, _) = api
        .post(lora_job("styles/ink.safetensors"), Some(ALICE))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("styles/ink.safetensors"),
        "{refused}"
    );

    let lora = vec![7u8; 4096];
    let (status, added) = request(
        &api,
        "PUT",
        &format!(
            "/v1/models/loras/styles/ink.safetensors?ephemeral=true&sha256={}",
            sha256(&lora)
        ),
        Some(OPS),
        lora.clone(),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["ephemeral"], json!(true));
    assert_eq!(
        std::fs::read(library.join("loras/styles/ink.safetensors")).unwrap(),
        lora
    );
    let (_, listed) = request(&api, "GET", "/v1/models?kind=loras", Some(ALICE), vec![]).await;
    assert_eq!(
        listed["models"],
        json!({"loras": ["styles/ink.safetensors"]})
    );

    // The next job sees it: the fleet fetched the node definitions again.
    let (status, created, _) = api
        .post(lora_job("styles/ink.safetensors"), Some(ALICE))
        .await;
    assert_eq!(status, 201, "{created}");
    let job = wait_done(&api, created["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");

    // Refusals: the same name again, an unknown kind, a name that is no model, a wrong
    // checksum, a file over the limit; none leaves a file behind.
    for (path, body, code, status) in [
        (
            "/v1/models/loras/styles/ink.safetensors",
            b"x".to_vec(),
            "conflict",
            409,
        ),
        (
            "/v1/models/lora/x.safetensors",
            b"x".to_vec(),
            "unknown_model_kind",
            400,
        ),
        (
            "/v1/models/loras/notes.txt",
            b"x".to_vec(),
            "invalid_model_name",
            400,
        ),
        (
            &*format!("/v1/models/loras/bad.safetensors?sha256={}", "0".repeat(64)),
            b"x".to_vec(),
            "checksum_mismatch",
            400,
        ),
        (
            "/v1/models/loras/huge.safetensors",
            vec![0u8; 1024 * 1024 + 1],
            "payload_too_large",
            413,
        ),
    ] {
        let (got, answer) = request(&api, "PUT", path, Some(OPS), body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {answer}"
        );
    }
    let (_, listed) = request(&api, "GET", "/v1/models?kind=loras", Some(ALICE), vec![]).await;
    assert_eq!(listed["models"]["loras"], json!(["styles/ink.safetensors"]));
    let hidden: Vec<_> = std::fs::read_dir(library.join("loras"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(hidden, ["styles"], "no partial upload is left: {hidden:?}");

    // Removed: gone from the listing and from the parameter check.
    assert_eq!(
        request(
            &api,
            "DELETE",
            "/v1/models/loras/styles/ink.safetensors",
            Some(ALICE),
            vec![]
        )
        .await
        .0,
        403
    );
    let (status, removed) = request(
        &api,
        "DELETE",
        "/v1/models/loras/styles/ink.safetensors",
        Some(OPS),
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["name"], "styles/ink.safetensors");
    let (_, listed) = request(&api, "GET", "/v1/models?kind=loras", Some(ALICE), vec![]).await;
    assert_eq!(listed["models"]["loras"], json!([]));
    let (status, _, _) = api
        .post(lora_job("styles/ink.safetensors"), Some(ALICE))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        request(
            &api,
            "DELETE",
            "/v1/models/loras/styles/ink.safetensors",
            Some(OPS),
            vec![]
        )
        .await
        .0,
        404
    );

    // An ephemeral file lives as long as the fleet; the others stay.
    let (status, _) = request(
        &api,
        "PUT",
        "/v1/models/loras/today.safetensors?ephemeral=true",
        Some(OPS),
        b"t".to_vec(),
    )
    .await;
    assert_eq!(status, 201);
    api.stop().await;
    assert!(!library.join("loras/today.safetensors").exists());
    assert!(library.join("checkpoints/base.safetensors").exists());
}

#[actix_rt::test]
async fn a_model_put_in_the_library_by_hand_can_be_used_at_once() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_path_buf();
    // The checkpoint the LoRA job loads is there from the start.
    let checkpoints = state_dir.join("models/checkpoints");
    std::fs::create_dir_all(&checkpoints).unwrap();
    std::fs::write(checkpoints.join("base.safetensors"), b"weights").unwrap();
    let api = start(&["--fake-node-time", "0ms"], |c| {
        c.comfyui.state_dir = state_dir.clone();
    })
    .await;
    let library = api.app().fleet().library.dir().to_path_buf();
    let (status, created, _) = api.post(lora_job_without_lora(), None).await;
    assert_eq!(status, 201, "{created}");
    let (status, refused, _) = api.post(lora_job("by-hand.safetensors"), None).await;
    assert_eq!(status, 400, "{refused}");

    // Copied in by hand (not through the API), and asked for within a moment of the last
    // submission: the job that names it makes the fleet look at the library at once.
    std::fs::write(library.join("loras/by-hand.safetensors"), b"weights").unwrap();
    let (status, created, _) = api.post(lora_job("by-hand.safetensors"), None).await;
    assert_eq!(
        status, 201,
        "the file put there by hand is found: {created}"
    );
    let job = wait_done(&api, created["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");
    api.stop().await;
}

/// The demo template: a job that names no model.
fn lora_job_without_lora() -> Value {
    json!({"template": "demo", "params": {"width": 64, "height": 64}})
}
