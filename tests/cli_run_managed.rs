//! `comfy-fleet run` without `--url`: boots the configured instances (fake-comfyui processes),
//! runs a template on them, writes the outputs and leaves no process behind.

use std::path::Path;
use std::process::Command;

/// Processes whose command line mentions `needle` (our state folder).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!("{pid}: {cmdline}"));
            }
        }
    }
    found
}

#[test]
fn a_template_runs_on_booted_instances_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let workflows = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[comfyui]\ncommand = [{:?}, \"--fake-node-time\", \"10ms\"]\nstate_dir = {:?}\n\
             [gpus]\ndiscovery = \"declared\"\ncpu_instances = 2\n\
             [workflows]\ndir = {:?}\n[logging]\nmetrics_interval = \"0s\"\n",
            env!("CARGO_BIN_EXE_fake-comfyui"),
            state.display().to_string(),
            workflows.display().to_string(),
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let result = Command::new(env!("CARGO_BIN_EXE_comfy-fleet"))
        .args(["run", "demo", "--config"])
        .arg(&config)
        .args([
            "--set",
            "width=80",
            "--set",
            "height=64",
            "--set",
            "seed=7",
            "--out",
        ])
        .arg(&out)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("running on cpu"), "{stderr}");

    // Every printed path is a PNG of the asked size.
    let stdout = String::from_utf8_lossy(&result.stdout);
    let paths: Vec<&str> = stdout.lines().collect();
    assert_eq!(paths.len(), 1, "{stdout}");
    let png = std::fs::read(paths[0]).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (w, h) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (80, 64));

    // `run` returned only after every instance exited: none is left.
    let left = processes_mentioning(&state.display().to_string());
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        !state
            .join("instances")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()),
        "instance records remain"
    );
}

#[test]
fn a_bad_parameter_is_refused_with_its_bounds_and_the_instances_stop() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[comfyui]\ncommand = [{:?}]\nstate_dir = {:?}\n[gpus]\ndiscovery = \"declared\"\n\
             [workflows]\ndir = {:?}\n[logging]\nmetrics_interval = \"0s\"\n",
            env!("CARGO_BIN_EXE_fake-comfyui"),
            dir.path().join("state").display().to_string(),
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("workflows")
                .display()
                .to_string(),
        ),
    )
    .unwrap();
    let result = Command::new(env!("CARGO_BIN_EXE_comfy-fleet"))
        .args(["run", "demo", "--config"])
        .arg(&config)
        .args(["--set", "width=5"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("width") && stderr.contains("64"),
        "{stderr}"
    );
    assert!(processes_mentioning(&dir.path().display().to_string()).is_empty());
}
