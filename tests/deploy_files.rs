//! The deployment files under `deploy/`: the systemd unit passes `systemd-analyze verify` (where
//! that tool exists; otherwise the test prints that it was skipped) and stops the service the way
//! comfy-fleet needs (SIGTERM to comfy-fleet alone, a timeout above the drain deadline, the whole
//! cgroup killed after it); the container file only copies what the repository holds.

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use comfy_fleet::config::Config;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unit_text() -> String {
    std::fs::read_to_string(repo().join("deploy/comfy-fleet.service")).unwrap()
}

/// The values of `key=` in the unit, in order.
fn unit_values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_string())
        .collect()
}

fn one(text: &str, key: &str) -> String {
    let values = unit_values(text, key);
    assert_eq!(values.len(), 1, "{key}= should be set once: {values:?}");
    values[0].clone()
}

#[test]
fn the_unit_stops_by_sigterm_to_comfy_fleet_with_room_for_the_drain() {
    let text = unit_text();
    // SIGTERM to the main process only, so comfy-fleet drains; SIGKILL to the rest of the cgroup.
    assert_eq!(one(&text, "KillMode"), "mixed");
    assert_eq!(one(&text, "KillSignal"), "SIGTERM");
    assert_eq!(one(&text, "Restart"), "on-failure");
    // The drain, both stop graces and comfy-fleet's own margin fit inside the stop timeout.
    let defaults = Config::default();
    let needed = defaults.shutdown.drain_timeout
        + defaults.lifecycle.stop_grace * 2
        + Duration::from_secs(5);
    let timeout = Duration::from_secs(one(&text, "TimeoutStopSec").parse().unwrap());
    assert!(
        timeout > needed,
        "TimeoutStopSec={timeout:?} must exceed the default drain and stop graces ({needed:?})"
    );
    // Secrets come from an environment file, the binary from `cargo install`.
    assert!(
        one(&text, "EnvironmentFile").ends_with("/etc/comfy-fleet/env"),
        "{text}"
    );
    assert!(one(&text, "ExecStart").starts_with("/usr/local/bin/comfy-fleet serve"));
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let Some(tool) = find_on_path("systemd-analyze") else {
        let _ = writeln!(
            std::io::stderr(),
            "deploy unit check skipped: systemd-analyze is not installed (Debian: apt-get install systemd)"
        );
        return;
    };
    // The unit names the installed binary; point it at the one cargo built, so the check that
    // the command exists is a real one.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("comfy-fleet.service");
    std::fs::write(
        &unit,
        unit_text().replace("/usr/local/bin/comfy-fleet", support::COMFY_FLEET),
    )
    .unwrap();
    let out = Command::new(tool)
        .arg("verify")
        .arg(&unit)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{stderr}",
        out.status
    );
}

#[test]
fn the_container_file_copies_only_what_the_repository_holds() {
    let text = std::fs::read_to_string(repo().join("deploy/Containerfile")).unwrap();
    let mut copied = 0;
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from=") {
            continue;
        }
        let parts: Vec<&str> = rest.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            assert!(
                repo().join(source).exists(),
                "the Containerfile copies {source}, which the repository lacks"
            );
            copied += 1;
        }
    }
    assert!(copied >= 3, "{text}");
    for binary in ["comfy-fleet", "fake-comfyui"] {
        assert!(
            text.contains(&format!("/out/bin/{binary}")),
            "the image gets {binary}"
        );
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}
