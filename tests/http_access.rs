//! Who sees what, with tokens set: a user's `/v1/status` shows the pool's shape and their own
//! jobs; an operator (`http.operators`) sees everything; `/metrics` needs a token unless
//! `http.metrics_public`; `/healthz` and `/readyz` stay open.

mod support;

use serde_json::{Value, json};
use support::in_process_api::{Api, start};

const ANN: &str = "tok-ann";
const BOB: &str = "tok-bob";
const OPS: &str = "tok-ops";

async fn get(api: &Api, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = api.client.get(format!("{}{path}", api.base));
    if let Some(t) = token {
        req = req.insert_header(("authorization", format!("Bearer {t}")));
    }
    let mut resp = req.send().await.unwrap();
    let body = resp.body().limit(8 << 20).await.unwrap();
    (
        resp.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[actix_rt::test]
async fn users_see_their_own_jobs_and_the_pools_shape_and_operators_see_everything() {
    let api = start(&["--fake-node-time", "2s"], |c| {
        c.http.tokens = [
            (ANN.to_string(), "ann".to_string()),
            (BOB.into(), "bob".into()),
            (OPS.into(), "ops".into()),
        ]
        .into();
        c.http.operators = vec!["ops".into()];
        c.scheduler.pipeline_depth = 2;
        c.limits.user_concurrent = 0;
    })
    .await;
    let (status, body, _) = api.post(json!({"template": "demo"}), Some(ANN)).await;
    assert_eq!(status, 201, "{body}");
    let ann_job = body["id"].as_str().unwrap().to_string();
    let (status, body, _) = api.post(json!({"template": "demo"}), Some(BOB)).await;
    assert_eq!(status, 201, "{body}");
    let bob_job = body["id"].as_str().unwrap().to_string();
    // Both run on the one instance (pipeline depth 2).
    support::waits::within("both jobs running", async {
        loop {
            let (_, s) = api.get_json("/v1/status", Some(OPS)).await;
            if s["jobs"]["running"] == 2 {
                break;
            }
            actix_rt::time::sleep(support::waits::POLL).await;
        }
    })
    .await;

    // Ann sees her job, the instance's phase and GPU, the queue; not Bob's job, the URL, the
    // models or the details.
    let (status, ann) = api.get_json("/v1/status", Some(ANN)).await;
    assert_eq!(status, 200);
    let instance = &ann["instances"][0];
    assert_eq!(instance["phase"], "ready");
    assert_eq!(ids(&instance["running_jobs"]), vec![ann_job.clone()]);
    assert_eq!(instance["url"], Value::Null);
    assert_eq!(instance["detail"], Value::Null);
    assert_eq!(instance["loaded_models"], json!([]));
    assert_eq!(ann["jobs"]["running"], 1, "her own jobs only: {ann}");
    assert_eq!(
        ann["queue"]["capacity"],
        api.app().fleet().config.scheduler.queue_capacity
    );
    assert!(!ann.to_string().contains(&bob_job), "{ann}");

    // The operator sees both jobs and the instance's URL.
    let (status, ops) = api.get_json("/v1/status", Some(OPS)).await;
    assert_eq!(status, 200);
    let mut running = ids(&ops["instances"][0]["running_jobs"]);
    running.sort();
    let mut both = vec![ann_job.clone(), bob_job.clone()];
    both.sort();
    assert_eq!(running, both);
    assert!(
        ops["instances"][0]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:"))
    );
    assert_eq!(ops["jobs"]["running"], 2);

    // Without a token: status and metrics are refused; health and readiness answer.
    let unauthorized = "missing or unknown API token: send `Authorization: Bearer <token>` with a token from COMFY_FLEET_API_TOKENS";
    for path in ["/v1/status", "/metrics"] {
        let (status, body) = get(&api, path, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["message"], unauthorized);
    }
    let (status, metrics) = get(&api, "/metrics", Some(BOB)).await;
    assert_eq!(status, 200);
    assert!(metrics.contains("comfy_fleet_queue_depth"), "{metrics}");
    assert_eq!(get(&api, "/healthz", None).await.0, 200);
    assert_eq!(get(&api, "/readyz", None).await.0, 200);
    api.stop_now().await;
}

#[actix_rt::test]
async fn metrics_may_be_made_public() {
    let api = start(&["--fake-node-time", "0ms"], |c| {
        c.http.tokens = [(ANN.to_string(), "ann".to_string())].into();
        c.http.metrics_public = true;
    })
    .await;
    let (status, metrics) = get(&api, "/metrics", None).await;
    assert_eq!(status, 200, "{metrics}");
    assert_eq!(get(&api, "/v1/status", None).await.0, 401);
    api.stop().await;
}

#[test]
fn the_access_log_records_paths_not_query_strings() {
    use support::fleet_process::{FleetProcess, FleetSpec};
    let root = tempfile::tempdir().unwrap();
    let fleet = FleetProcess::start(&FleetSpec::new(1, &[]), root.path());
    let answer = fleet.get("/v1/status?token=s3cret-in-a-query");
    assert_eq!(answer.status, 200);
    let line = fleet.log.wait_for("the request's access log line", |l| {
        l.contains("fleet.http") && l.contains("/v1/status")
    });
    assert!(
        line.contains("GET /v1/status") && line.contains("status=200"),
        "{line}"
    );
    assert!(
        !fleet.log.text().contains("s3cret-in-a-query"),
        "a query string reached the log"
    );
}
