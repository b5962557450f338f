//! `comfy-fleet gpus`: the table, where the list came from, and clear errors.

mod support;

use std::process::{Command, Output};

fn gpus(args: &[&str]) -> Output {
    Command::new(support::COMFY_FLEET)
        .arg("gpus")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn declared_gpus_are_printed_as_a_table() {
    let out = gpus(&[
        "--discovery",
        "declared",
        "--declared",
        "GPU-5c9f:RTX 4090:24564",
        "--declared",
        "1:RTX 3090",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "GPU source: declared in the config");
    assert!(lines[1].starts_with("#  UUID"), "{stdout}");
    assert!(
        lines[2].starts_with("0  GPU-5c9f") && lines[2].contains("24564 MiB"),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with("1  1") && lines[3].contains("RTX 3090"),
        "{stdout}"
    );
}

#[test]
fn no_nvml_and_nothing_declared_says_cpu_only() {
    let out = gpus(&["--nvml-library", "/nonexistent/libnvidia-ml.so.1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("GPU source: none (CPU-only"), "{stdout}");
    assert!(stdout.contains("note: NVML is not available"), "{stdout}");
    assert!(
        stdout.contains("/nonexistent/libnvidia-ml.so.1"),
        "{stdout}"
    );
}

#[test]
fn the_gpus_table_of_a_config_file_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[comfyui]\npath = \"\"\n\n[gpus]\ndiscovery = \"declared\"\n\n[[gpus.declared]]\n\
         id = \"GPU-from-file\"\nname = \"A100\"\nmemory_mb = 40960\n",
    )
    .unwrap();
    let out = gpus(&["--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("GPU-from-file") && stdout.contains("40960 MiB"),
        "{stdout}"
    );
}

#[test]
fn errors_name_the_problem() {
    let out = gpus(&[
        "--discovery",
        "nvml",
        "--nvml-library",
        "/nonexistent/lib.so",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: gpus.discovery is \"nvml\" but NVML is not available"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[gpus]\ndiscovery = \"sometimes\"\n").unwrap();
    let out = gpus(&["--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.toml:2:")
            && stderr.contains("`gpus.discovery`")
            && stderr.contains("sometimes")
            && stderr.contains("`auto`, `nvml`, `declared`"),
        "{stderr}"
    );

    let out = gpus(&["--config", "/nonexistent/config.toml"]);
    assert!(text(&out.stderr).contains("cannot read config file /nonexistent/config.toml"));

    let out = gpus(&["--declared", "0:big:lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("\"lots\" is not a whole number of MiB"));
}
