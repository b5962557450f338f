//! `fake-comfyui` reads `--extra-model-paths-config` as ComfyUI 0.33.0 does (a difference the
//! real-ComfyUI tier found): the folders an `extra_model_paths.yaml` registers feed `/models/*`,
//! the loader choice lists of `/object_info`, and files added later appear at once.

mod support;

use std::net::SocketAddr;

use serde_json::{Value, json};
use support::fake_process::FakeComfy;
use support::http_client::http;

fn get(fake: &FakeComfy, path: &str) -> Value {
    let answer = http(
        SocketAddr::from(([127, 0, 0, 1], fake.port)),
        "GET",
        path,
        None,
    );
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    answer.json()
}

#[test]
fn a_shared_library_registered_by_yaml_is_listed_and_followed() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("library");
    std::fs::create_dir_all(library.join("loras")).unwrap();
    std::fs::create_dir_all(library.join("unet")).unwrap();
    std::fs::write(library.join("loras/ink.safetensors"), b"x").unwrap();
    std::fs::write(library.join("unet/flux.safetensors"), b"x").unwrap();
    let yaml = dir.path().join("extra_model_paths.yaml");
    std::fs::write(
        &yaml,
        format!(
            "comfy_fleet:\n  base_path: {}\n  loras: loras\n  unet: unet\n",
            Value::from(library.display().to_string())
        ),
    )
    .unwrap();
    let fake = FakeComfy::builder()
        .port(0)
        .file("models/loras/own.safetensors", b"x")
        .args(["--database-url", "sqlite:///:memory:"])
        .arg("--extra-model-paths-config")
        .arg(yaml.display().to_string())
        .spawn();
    assert!(
        fake.logs().contains(&format!(
            "Adding extra search path loras {}",
            library.join("loras").display()
        )),
        "{}",
        fake.logs()
    );
    assert_eq!(
        get(&fake, "/models/loras"),
        json!(["ink.safetensors", "own.safetensors"])
    );
    assert_eq!(
        get(&fake, "/models/diffusion_models"),
        json!(["flux.safetensors"])
    );
    let lora_choices = |fake: &FakeComfy| {
        get(fake, "/object_info/LoraLoader")["LoraLoader"]["input"]["required"]["lora_name"][0]
            .clone()
    };
    assert_eq!(
        lora_choices(&fake),
        json!(["ink.safetensors", "own.safetensors"])
    );

    // A LoRA added to the library while the server runs is a choice at once.
    std::fs::create_dir_all(library.join("loras/styles")).unwrap();
    std::fs::write(library.join("loras/styles/new.safetensors"), b"x").unwrap();
    assert_eq!(
        lora_choices(&fake),
        json!([
            "ink.safetensors",
            "own.safetensors",
            "styles/new.safetensors"
        ])
    );
    let folders = get(&fake, "/internal/folder_paths");
    assert_eq!(
        folders["loras"][1],
        json!(library.join("loras").display().to_string())
    );
}

#[test]
fn an_unreadable_yaml_stops_the_start_with_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("broken.yaml");
    std::fs::write(&yaml, "fleet:\n  loras: [a, b]\n").unwrap();
    let mut fake = FakeComfy::builder()
        .port(0)
        .args(["--database-url", "sqlite:///:memory:"])
        .arg("--extra-model-paths-config")
        .arg(yaml.display().to_string())
        .spawn_unready();
    let status = fake
        .wait_exit(support::waits::SAFETY)
        .expect("the fake exits");
    assert!(!status.success());
    assert!(fake.logs().contains("broken.yaml:2:"), "{}", fake.logs());
}
