//! How `comfy-fleet run` shows progress: on a terminal (its stderr on a pseudo-terminal) a
//! progress bar redrawn in place, with the node and the sampler's percentage; through a pipe,
//! plain lines without any terminal control sequence.

mod support;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use nix::pty::{Winsize, openpty};
use support::fake_process::FakeComfy;

/// A fake whose sampler takes a few visible steps, with the checkpoint the workflow loads.
fn start_fake() -> FakeComfy {
    FakeComfy::builder()
        .port(0)
        .file("models/checkpoints/fake-model.safetensors", b"")
        .args(["--cpu", "--database-url", "sqlite:///:memory:"])
        .args(["--fake-node-time", "20ms", "--fake-step-time", "20ms"])
        .spawn()
}

/// A workflow with a sampler (its steps are the bar's percentage).
fn sampler_workflow(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("txt2img.json");
    let workflow = serde_json::json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "fake-model.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 7, "steps": 8, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "p", "images": ["8", 0]}}
    });
    std::fs::write(&path, workflow.to_string()).unwrap();
    path
}

fn run_args(fake: &FakeComfy, workflow: &std::path::Path, out: &std::path::Path) -> Command {
    let mut command = Command::new(support::COMFY_FLEET);
    command
        .arg("run")
        .arg(workflow)
        .args(["--url", &fake.base_url(), "--out"])
        .arg(out)
        .env_remove("COMFY_FLEET_URL")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color");
    command
}

#[test]
fn on_a_terminal_the_job_gets_a_progress_bar() {
    let fake = start_fake();
    let dir = tempfile::tempdir().unwrap();
    let workflow = sampler_workflow(dir.path());
    let size = Winsize {
        ws_row: 24,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(Some(&size), None).unwrap();
    let slave: OwnedFd = pty.slave;
    let mut child = run_args(&fake, &workflow, &dir.path().join("out"))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // Read the terminal until comfy-fleet closes it (EIO once no process holds the slave).
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = master.read(&mut buffer) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let screen = reader.join().unwrap();
    assert!(status.success(), "{screen}");
    assert!(stdout.trim().ends_with(".png"), "{stdout}");
    // Drawn in place: the bar's frame, the node, the step percentage, line clearing escapes.
    assert!(
        screen.contains("\u{1b}["),
        "no terminal control sequences: {screen:?}"
    );
    assert!(screen.contains("executing node 3 (KSampler)"), "{screen:?}");
    assert!(
        screen.contains("100%") && screen.contains("[="),
        "{screen:?}"
    );
    assert!(screen.contains("done: 1 file(s)"), "{screen:?}");
}

#[test]
fn through_a_pipe_the_progress_is_plain_lines() {
    let fake = start_fake();
    let dir = tempfile::tempdir().unwrap();
    let workflow = sampler_workflow(dir.path());
    let output = run_args(&fake, &workflow, &dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    for line in [
        "running on url (attempt 1)",
        "executing node 3 (KSampler)",
        "node 3: step 8/8",
        "done: 1 file(s)",
    ] {
        assert!(
            stderr.lines().any(|l| l.contains(line)),
            "no `{line}` in:\n{stderr}"
        );
    }
}
