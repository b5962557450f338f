//! `comfy-fleet check-config` runs exactly the checks `serve` runs before it starts anything:
//! a setting refused by one is refused by the other with the same message (naming the key and
//! its line), and what passes check-config is what serve starts with.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::COMFY_FLEET;

fn comfy_fleet(args: &[&str], config: &Path) -> Output {
    Command::new(COMFY_FLEET)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("COMFY_FLEET_API_TOKENS")
        .env_remove("DISCORD_TOKEN")
        .env_remove("COMFY_FLEET_STATE_DIR")
        .env_remove("COMFY_FLEET_WORKFLOWS_DIR")
        .env("RUST_LOG", "error")
        .output()
        .expect("cannot run comfy-fleet")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn workflows_dir() -> String {
    support::workflows_dir().display().to_string()
}

/// A config file in `dir` with `body` after a `[workflows]` section naming the real templates.
fn write_config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("fleet.toml");
    let state = dir.join("state");
    std::fs::write(
        &path,
        format!(
            "[comfyui]\nstate_dir = {:?}\n\n[workflows]\ndir = {:?}\n\n{body}",
            state.display().to_string(),
            workflows_dir()
        ),
    )
    .unwrap();
    path
}

/// `serve` on this config, on a free port; it must fail before starting anything.
fn serve_fails(config: &Path) -> String {
    let out = comfy_fleet(&["serve", "--listen", "127.0.0.1:0"], config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    text(&out.stderr)
}

#[test]
fn the_shipped_config_checks_out_and_says_what_it_sets_up() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let out = Command::new(COMFY_FLEET)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check-config", "--config"])
        .arg(&shipped)
        .env_remove("COMFY_FLEET_API_TOKENS")
        .env_remove("DISCORD_TOKEN")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(": OK"), "{stdout}");
    assert!(stdout.contains("backend:   DEMO"), "{stdout}");
    assert!(stdout.contains("instances: cpu0 on the CPU"), "{stdout}");
    assert!(
        stdout.contains("templates: ") && stdout.contains("demo"),
        "{stdout}"
    );
    assert!(!stdout.contains("warning:"), "{stdout}");
}

#[test]
fn a_value_serve_cannot_work_with_is_refused_by_both_with_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    // Each once passed check-config and then failed or panicked in serve.
    for (body, key, line) in [
        (
            "[lifecycle.backoff]\njitter = 1.0\n",
            "lifecycle.backoff.jitter",
            8,
        ),
        (
            "[lifecycle]\nhealth_interval = \"0s\"\n",
            "lifecycle.health_interval",
            8,
        ),
        (
            "[gpus]\nsample_interval = \"0s\"\n",
            "gpus.sample_interval",
            8,
        ),
    ] {
        let config = write_config(dir.path(), body);
        let checked = comfy_fleet(&["check-config"], &config);
        let message = text(&checked.stderr);
        assert_eq!(checked.status.code(), Some(1), "{body}: {message}");
        assert!(
            message.contains(&format!("fleet.toml:{line}:"))
                && message.contains(&format!("`{key}`")),
            "{body}: {message}"
        );
        let served = serve_fails(&config);
        assert_eq!(
            served.trim(),
            message.trim(),
            "check-config and serve disagree on {body}"
        );
        assert!(!served.contains("panicked"), "{served}");
    }
}

#[test]
fn what_only_the_boot_could_find_is_found_by_check_config_too() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-templates");
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[comfyui]\nstate_dir = {:?}\n[workflows]\ndir = {:?}\n",
            dir.path().join("state").display().to_string(),
            missing.display().to_string()
        ),
    )
    .unwrap();
    let checked = comfy_fleet(&["check-config"], &config);
    let message = text(&checked.stderr);
    assert_eq!(checked.status.code(), Some(1), "{message}");
    assert!(message.contains("no-such-templates"), "{message}");
    let served = serve_fails(&config);
    assert!(served.contains(message.trim()), "{served}");
    assert!(
        !dir.path().join("state").exists(),
        "serve refused before it created anything"
    );
}

#[test]
fn exposed_addresses_without_tokens_and_an_uncapped_user_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[http]\nlisten = \"0.0.0.0:8080\"\n\n[limits]\nuser_concurrent = 0\n",
    );
    let out = comfy_fleet(&["check-config"], &config);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("warning: http.listen = 0.0.0.0:8080")
            && stdout.contains("COMFY_FLEET_API_TOKENS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: limits.user_concurrent = 0: no cap"),
        "{stdout}"
    );
}
