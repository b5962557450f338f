//! `comfy-fleet run` without `--url`: checks the parameters, boots one of the configured
//! instances (a fake-comfyui process), runs a template on it, writes the outputs and leaves no
//! process behind.

mod support;

use std::process::Command;

use support::images::png_file_size;
use support::processes::processes_mentioning;
use support::{COMFY_FLEET, FAKE_COMFYUI, workflows_dir};

#[test]
fn a_template_runs_on_one_booted_instance_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let workflows = workflows_dir();
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[comfyui]\ncommand = [{:?}, \"--fake-node-time\", \"10ms\"]\nstate_dir = {:?}\n\
             [gpus]\ndiscovery = \"declared\"\ncpu_instances = 2\n\
             [workflows]\ndir = {:?}\n[logging]\nmetrics_interval = \"0s\"\n",
            FAKE_COMFYUI,
            state.display().to_string(),
            workflows.display().to_string(),
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let result = Command::new(COMFY_FLEET)
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
    assert!(stderr.contains("running on cpu0"), "{stderr}");
    // Two instances are configured; one job needed only one.
    assert!(state.join("cpu0").is_dir(), "{stderr}");
    assert!(
        !state.join("cpu1").exists(),
        "a second instance was booted: {stderr}"
    );

    // Every printed path is a PNG of the asked size.
    let stdout = String::from_utf8_lossy(&result.stdout);
    let paths: Vec<&str> = stdout.lines().collect();
    assert_eq!(paths.len(), 1, "{stdout}");
    assert_eq!(png_file_size(std::path::Path::new(paths[0])), (80, 64));

    // `run` returned only after every instance exited: none is left.
    let left = processes_mentioning(&state);
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
fn a_bad_parameter_is_refused_with_its_bounds_before_anything_boots() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[comfyui]\ncommand = [{:?}]\nstate_dir = {:?}\n[gpus]\ndiscovery = \"declared\"\n\
             [workflows]\ndir = {:?}\n[logging]\nmetrics_interval = \"0s\"\n",
            FAKE_COMFYUI,
            dir.path().join("state").display().to_string(),
            workflows_dir().display().to_string(),
        ),
    )
    .unwrap();
    let result = Command::new(COMFY_FLEET)
        .args(["run", "demo", "--config"])
        .arg(&config)
        .args(["--set", "width=5"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("width") && stderr.contains("64"),
        "{stderr}"
    );
    assert!(processes_mentioning(dir.path()).is_empty());
    assert!(
        !dir.path().join("state").exists(),
        "an instance was started before the parameter was checked: {stderr}"
    );
}
