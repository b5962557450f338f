//! The `convert` and `templates` subcommands, run as the real binary.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

use serde_json::Value;
use support::COMFY_FLEET as BIN;
use support::fixtures::{captured, corpus};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The corpus server's `/object_info` file.
fn corpus_object_info() -> String {
    corpus("object_info.json").display().to_string()
}

/// The captured server's `/object_info` file.
fn fixture_object_info() -> String {
    captured("object_info.json").display().to_string()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(ROOT)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn convert_prints_the_api_prompt_of_a_ui_workflow() {
    let (code, stdout, stderr) = run(&[
        "convert",
        "workflows/generate.json",
        "--object-info",
        &corpus_object_info(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let prompt: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(prompt["3"]["class_type"], "KSampler");
    assert_eq!(prompt["3"]["inputs"]["steps"], 25);
    // The model comes through the template's LoRA loader (bypassed only when a template
    // is prepared without a LoRA).
    assert_eq!(prompt["3"]["inputs"]["model"], serde_json::json!(["11", 0]));
    assert_eq!(prompt["11"]["inputs"]["model"], serde_json::json!(["4", 0]));
    assert!(prompt.get("10").is_none(), "the MarkdownNote is dropped");
}

#[test]
fn convert_writes_to_a_file_with_out() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("prompt.json");
    let (code, stdout, stderr) = run(&[
        "convert",
        "workflows/demo.json",
        "--object-info",
        &fixture_object_info(),
        "--out",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty());
    let prompt: Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    assert_eq!(prompt["1"]["class_type"], "EmptyImage");
}

#[test]
fn convert_explains_a_file_that_is_not_a_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("odd.json");
    std::fs::write(&file, r#"{"nodes": [], "groups": []}"#).unwrap();
    let (code, _, stderr) = run(&[
        "convert",
        file.to_str().unwrap(),
        "--object-info",
        &corpus_object_info(),
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("looks like a UI workflow") && stderr.contains("`links`"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["convert", file.to_str().unwrap()]);
    assert_eq!(code, 2, "a server is required: {stderr}");
}

#[test]
fn convert_fetches_object_info_from_a_server_url() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = std::fs::read(fixture_object_info()).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&request);
            let (status, payload): (&str, &[u8]) = if head.starts_with("GET /object_info ") {
                ("200 OK", &body)
            } else {
                ("404 Not Found", b"{}")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                payload.len()
            );
            let _ = stream.write_all(payload);
        }
    });
    let url = format!("http://127.0.0.1:{port}");
    let (code, stdout, stderr) = run(&["convert", "workflows/demo.json", "--url", &url]);
    assert_eq!(code, 0, "{stderr}");
    let prompt: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(prompt["4"]["class_type"], "SaveImage");
}

#[test]
fn templates_lists_parameters_with_types_bounds_and_descriptions() {
    let (code, stdout, stderr) = run(&["templates", "--dir", "workflows"]);
    assert_eq!(code, 0, "{stderr}");
    for name in ["demo", "editflux", "editqwen", "generate", "upscale"] {
        assert!(
            stdout.contains(&format!("{name}  (")),
            "{name} missing:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("width") && stdout.contains("range=64..=2048"),
        "{stdout}"
    );
    assert!(stdout.contains("Image width in pixels"), "{stdout}");
    assert!(
        stdout.contains("needs model: checkpoints/sd_xl_base_1.0.safetensors"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&[
        "templates",
        "--dir",
        "workflows",
        "--object-info",
        &corpus_object_info(),
    ]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("sampler_name") && stdout.contains("choices=[euler"),
        "{stdout}"
    );
}
