//! A done job's files leave the instance for the fleet's own store and are served from there;
//! the images uploaded for a job go when it has run; the store forgets a job's files with its
//! record, and sweeps a previous run's at start-up. For launched instances and for attached
//! servers whose folders are known.

mod support;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use comfy_fleet::config::RemoteConfig;
use serde_json::json;
use support::fake_process::FakeComfy;
use support::images::png_size;
use support::in_process_api::{Api, start};
use support::templates::blur_template;

fn png_bytes() -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 16, |x, y| {
        image::Rgb([(x * 10) as u8, (y * 16) as u8, 90])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Runs the blur template on an image to `done`; returns the job id.
async fn blur_job(api: &Api) -> String {
    let png = png_bytes();
    let (status, body) = api
        .post_multipart(&json!({"template": "blur"}), &[("image", &png)])
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let stream = api.events(&id).await;
    assert!(stream.contains("event: done"), "{stream}");
    id
}

/// Output 0 of a job through the API: a 24×16 PNG.
async fn check_output(api: &Api, id: &str) {
    let mut resp = api
        .client
        .get(format!("{}/v1/jobs/{id}/outputs/0", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let png = resp.body().limit(64 << 20).await.unwrap();
    assert_eq!(png_size(&png), (24, 16));
}

#[actix_rt::test]
async fn a_done_jobs_files_leave_the_instance_for_the_fleets_store() {
    let workflows = tempfile::tempdir().unwrap();
    blur_template(workflows.path());
    let leftovers = tempfile::tempdir().unwrap();
    let leftover = leftovers
        .path()
        .join("outputs/1b4e28ba-2fa1-11d2-883f-0016d3cca427");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("0"), b"a previous run's file").unwrap();
    let state = leftovers.path().to_path_buf();
    let dir = workflows.path().to_path_buf();
    let api = start(&["--fake-node-time", "0ms"], move |c| {
        c.workflows.dir = dir;
        c.comfyui.state_dir = state;
    })
    .await;
    assert!(
        !leftover.exists(),
        "the start-up sweep removes a previous run's outputs"
    );

    let id = blur_job(&api).await;
    let state = api.state_dir();
    let instance = state.join("cpu0");
    assert_eq!(files_under(&instance.join("output")), Vec::<PathBuf>::new());
    assert_eq!(
        files_under(&instance.join("input")),
        Vec::<PathBuf>::new(),
        "the uploaded image is gone"
    );
    assert!(state.join("outputs").join(&id).join("0").is_file());
    check_output(&api, &id).await;
    api.stop().await;
}

#[actix_rt::test]
async fn a_jobs_files_go_with_its_record() {
    let workflows = tempfile::tempdir().unwrap();
    blur_template(workflows.path());
    let dir = workflows.path().to_path_buf();
    let api = start(&["--fake-node-time", "0ms"], move |c| {
        c.workflows.dir = dir;
        c.scheduler.job_retention = 1;
    })
    .await;
    let first = blur_job(&api).await;
    let second = blur_job(&api).await;
    // The table kept only the second record; the next files stored make the first's go.
    let third = blur_job(&api).await;
    let store = api.state_dir().join("outputs");
    assert!(
        !store.join(&first).exists(),
        "the first job's files outlived its record"
    );
    assert!(store.join(&third).join("0").is_file());
    let (status, _) = api
        .get_json(&format!("/v1/jobs/{first}/outputs/0"), None)
        .await;
    assert_eq!(status, 404);
    check_output(&api, &third).await;
    drop(second);
    api.stop().await;
}

#[actix_rt::test]
async fn an_attached_server_with_known_folders_is_cleared_too() {
    let workflows = tempfile::tempdir().unwrap();
    blur_template(workflows.path());
    let fake = FakeComfy::builder().arg("--cpu").spawn();
    let (url, base) = (fake.base_url(), fake.dir().to_path_buf());
    let dir = workflows.path().to_path_buf();
    let api = start(&[], move |c| {
        c.workflows.dir = dir;
        c.gpus.cpu_instances = 0;
        c.remote = vec![RemoteConfig {
            name: "shared".into(),
            url,
            base_directory: Some(base),
        }];
    })
    .await;
    let id = blur_job(&api).await;
    assert_eq!(files_under(&fake.output_dir()), Vec::<PathBuf>::new());
    assert_eq!(
        files_under(&fake.input_dir().join("fleet")),
        Vec::<PathBuf>::new(),
        "the uploaded image is gone from the shared server"
    );
    check_output(&api, &id).await;
    api.stop().await;
}
