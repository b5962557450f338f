//! The node definitions jobs are checked against: the readiness check's `/object_info` is kept,
//! so jobs do not fetch it again, and a model installed while the fleet runs is found.

mod support;

use std::time::Duration;

use comfy_fleet::config::RemoteConfig;
use serde_json::json;
use support::counting_proxy::CountingProxy;
use support::fake_process::FakeComfy;
use support::in_process_api::start;

#[actix_rt::test]
async fn a_burst_of_jobs_after_boot_fetches_no_object_info() {
    let fake = FakeComfy::builder().arg("--cpu").spawn();
    let upstream = fake.base_url()["http://".len()..].parse().unwrap();
    let proxy = CountingProxy::start(upstream, "GET /object_info ");
    let url = proxy.url();
    let api = start(&[], move |c| {
        c.gpus.cpu_instances = 0;
        c.remote = vec![RemoteConfig {
            name: "proxied".into(),
            url,
            base_directory: None,
        }];
    })
    .await;
    let after_boot = proxy.count();
    assert!(after_boot >= 1, "the readiness check loads /object_info");

    let posts = (0..20).map(|_| api.post(json!({"template": "demo"}), None));
    for (status, body, _) in futures_util::future::join_all(posts).await {
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(
        proxy.count(),
        after_boot,
        "the submissions used the document the readiness check loaded"
    );
    api.stop_now().await;
}

#[actix_rt::test]
async fn a_model_installed_while_the_fleet_runs_can_be_chosen() {
    let base = tempfile::tempdir().unwrap();
    let checkpoints = base.path().join("models/checkpoints");
    std::fs::create_dir_all(&checkpoints).unwrap();
    std::fs::write(checkpoints.join("first.safetensors"), b"weights").unwrap();
    let base_arg = base.path().to_string_lossy().into_owned();
    let api = start(&["--base-directory", &base_arg], |c| {
        c.workflows.object_info_refresh = Duration::ZERO;
    })
    .await;
    let job = json!({"template": "generate", "params": {"checkpoint": "second.safetensors"}});
    let (status, body, _) = api.post(job.clone(), None).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("checkpoint") && message.contains("first.safetensors"),
        "{message}"
    );

    std::fs::write(checkpoints.join("second.safetensors"), b"weights").unwrap();
    let (status, body, _) = api.post(job, None).await;
    assert_eq!(status, 201, "the new checkpoint is found: {body}");
    api.stop_now().await;
}
