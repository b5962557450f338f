//! `comfy-fleet run` end to end: the real binary against the real `fake-comfyui` process.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::fake_process::FakeComfy;
use support::fixtures::captured;
use support::images::png_file_size;
use support::ports::closed_port_url;

/// A fake on a port of its own choosing.
fn start_fake() -> FakeComfy {
    FakeComfy::builder()
        .port(0)
        .args(["--cpu", "--database-url", "sqlite:///:memory:"])
        .spawn()
}

fn comfy_fleet(args: &[&str]) -> Output {
    Command::new(support::COMFY_FLEET)
        .args(args)
        .env_remove("COMFY_FLEET_URL")
        .output()
        .expect("cannot run comfy-fleet")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_json(dir: &Path, name: &str, value: &serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

#[test]
fn run_uploads_the_input_writes_a_real_png_and_prints_its_path() {
    let fake = start_fake();
    let fake_url = fake.base_url();
    let work = tempfile::tempdir().unwrap();
    // LoadImage in the workflow names `fixture_upload.png`: upload a file of that name.
    let input = work.path().join("fixture_upload.png");
    std::fs::copy(captured("upload_source.png"), &input).unwrap();
    let workflow = captured("prompt_loadimage.json");
    let out = work.path().join("results");

    let args = [
        "run",
        workflow.to_str().unwrap(),
        "--url",
        &fake_url,
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let first = comfy_fleet(&args);
    let stderr = text(&first.stderr);
    assert!(first.status.success(), "exit {:?}\n{stderr}", first.status);
    let printed: Vec<PathBuf> = text(&first.stdout).lines().map(PathBuf::from).collect();
    assert_eq!(printed.len(), 1, "stdout: {}", text(&first.stdout));
    assert!(printed[0].starts_with(&out));
    assert_eq!(png_file_size(&printed[0]), (64, 48));
    assert!(stderr.contains("executing node 13 (SaveImage)"), "{stderr}");
    // The job went through the fleet, on the server as its one attached instance.
    assert!(stderr.contains("running on url (attempt 1)"), "{stderr}");
    assert!(stderr.contains("uploading"), "{stderr}");

    // A second run into the same folder keeps the first file and writes a new one.
    let first_bytes = std::fs::read(&printed[0]).unwrap();
    let second = comfy_fleet(&args);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let printed2: Vec<PathBuf> = text(&second.stdout).lines().map(PathBuf::from).collect();
    assert_eq!(printed2.len(), 1);
    assert_ne!(printed2[0], printed[0]);
    assert_eq!(std::fs::read(&printed[0]).unwrap(), first_bytes);
    assert_eq!(png_file_size(&printed2[0]), (64, 48));
}

#[test]
fn rejected_workflow_prints_node_input_and_reason_and_fails() {
    let fake = start_fake();
    let fake_url = fake.base_url();
    let work = tempfile::tempdir().unwrap();
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(captured("error_multiple_errors.json")).unwrap(),
    )
    .unwrap();
    let workflow = write_json(
        work.path(),
        "broken.json",
        &record["request"]["json_body"]["prompt"],
    );
    let out = work.path().join("out");
    let result = comfy_fleet(&[
        "run",
        workflow.to_str().unwrap(),
        "--url",
        &fake_url,
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(text(&result.stdout).is_empty());
    // Refused before it is queued, with every problem at once.
    assert!(stderr.contains("the workflow cannot run: "), "{stderr}");
    assert!(
        stderr.contains("node 4 (LoadImage), input `image`: "),
        "{stderr}"
    );
    assert!(stderr.contains("nope.png"), "{stderr}");
    assert!(
        stderr.contains("node 1 (EmptyImage), input `height`: "),
        "{stderr}"
    );
    assert!(!out.exists(), "no output folder for a rejected workflow");
}

#[test]
fn ui_workflows_run_and_errors_are_explained() {
    let fake = start_fake();
    let fake_url = fake.base_url();
    let work = tempfile::tempdir().unwrap();
    // A UI-format workflow (what "Save" writes) is converted with the server's node definitions.
    let ui = write_json(
        work.path(),
        "ui.json",
        &serde_json::json!({
            "last_node_id": 2, "last_link_id": 1, "version": 0.4,
            "nodes": [
                {"id": 1, "type": "EmptyImage", "mode": 0, "inputs": [],
                 "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}], "widgets_values": [32, 16, 1, 0]},
                {"id": 2, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 1}],
                 "outputs": [], "widgets_values": ["from_ui"]}
            ],
            "links": [[1, 1, 0, 2, 0, "IMAGE"]]
        }),
    );
    let out = work.path().join("out");
    let result = comfy_fleet(&[
        "run",
        ui.to_str().unwrap(),
        "--url",
        &fake_url,
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(0), "{stderr}");
    let written = text(&result.stdout);
    assert!(
        written.trim().ends_with(".png") && written.contains("from_ui"),
        "{written}"
    );

    // An empty UI workflow names what is missing.
    let empty = write_json(
        work.path(),
        "empty.json",
        &serde_json::json!({"last_node_id": 3, "nodes": [], "links": [], "version": 0.4}),
    );
    let result = comfy_fleet(&["run", empty.to_str().unwrap(), "--url", &fake_url]);
    assert_eq!(result.status.code(), Some(1), "{}", text(&result.stderr));

    let url = closed_port_url();
    let api = captured("prompt_trivial.json");
    let result = comfy_fleet(&["run", api.to_str().unwrap(), "--url", &url]);
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains("unreachable"),
        "{stderr}"
    );

    let missing = work.path().join("nope.json");
    let result = comfy_fleet(&["run", missing.to_str().unwrap(), "--url", &url]);
    assert_eq!(result.status.code(), Some(2));
    assert!(text(&result.stderr).contains("nope.json"));
}
