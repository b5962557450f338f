//! The real ComfyUI of the opt-in test tier (`scripts/real-comfyui`): where it is (from the
//! environment the script sets), a real server run as a child process in its own folders, and a
//! fleet config whose instances are real ComfyUI processes on the CPU.
//!
//! A real ComfyUI starts in 10–20 s on a quiet machine and much slower on a loaded one, so the
//! waits here have a longer safety net than [`super::waits::SAFETY`]; it only fails the test.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::fake_process::READY_MARKER;
use super::fleet_process::{FleetProcess, FleetSpec};
use super::log_lines::LogLines;
use super::ports::free_port;
use super::processes::send_signal;
use super::waits::POLL;

/// The ComfyUI checkout (the folder holding `main.py`).
pub const ENV_CHECKOUT: &str = "COMFY_FLEET_REAL_COMFYUI";
/// The Python of its environment (torch and ComfyUI's requirements installed).
pub const ENV_PYTHON: &str = "COMFY_FLEET_REAL_COMFYUI_VENV_PYTHON";

/// Safety net for the real server's waits (start-up, a job on the CPU): far beyond what they
/// need, on a loaded 2-core machine.
pub const REAL_SAFETY: Duration = Duration::from_secs(600);

/// Where the real ComfyUI and its Python are.
#[derive(Debug, Clone)]
pub struct RealComfyUi {
    pub checkout: PathBuf,
    pub python: PathBuf,
}

impl RealComfyUi {
    /// The real ComfyUI named by the environment, or `None` after printing that `test` is
    /// skipped and how to run it.
    pub fn from_env_or_skip(test: &str) -> Option<Self> {
        let checkout = std::env::var_os(ENV_CHECKOUT).filter(|v| !v.is_empty());
        let python = std::env::var_os(ENV_PYTHON).filter(|v| !v.is_empty());
        match (checkout, python) {
            (Some(checkout), Some(python)) => {
                let real = Self {
                    checkout: PathBuf::from(checkout),
                    python: PathBuf::from(python),
                };
                assert!(
                    real.checkout.join("main.py").is_file(),
                    "{ENV_CHECKOUT}={} holds no main.py",
                    real.checkout.display()
                );
                assert!(
                    real.python.is_file(),
                    "{ENV_PYTHON}={} is not a file",
                    real.python.display()
                );
                Some(real)
            }
            _ => {
                // Straight to stderr, past the test harness's capture, so CI shows the skip.
                let _ = writeln!(
                    std::io::stderr(),
                    "real-ComfyUI tier skipped ({test}): {ENV_CHECKOUT} and {ENV_PYTHON} are not set; \
                     run scripts/real-comfyui to set up a real ComfyUI and run this tier"
                );
                None
            }
        }
    }

    /// Starts a real ComfyUI on the CPU with its own folders under `dir` and `extra` arguments,
    /// and waits until it listens.
    pub fn spawn(&self, dir: &Path, extra: &[&str]) -> RealServer {
        let port = free_port();
        for sub in ["input", "output", "user"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let mut command = Command::new(&self.python);
        command
            .arg(self.checkout.join("main.py"))
            .args(["--cpu", "--listen", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--input-directory")
            .arg(dir.join("input"))
            .arg("--output-directory")
            .arg(dir.join("output"))
            .arg("--temp-directory")
            .arg(dir)
            .arg("--user-directory")
            .arg(dir.join("user"))
            .arg("--database-url")
            .arg(format!("sqlite:///{}", dir.join("comfyui.db").display()))
            .arg("--disable-auto-launch")
            .args(extra)
            .current_dir(&self.checkout)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().expect("start the real ComfyUI");
        let pipes: Vec<Box<dyn std::io::Read + Send>> = vec![
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        let log = LogLines::follow_all(pipes);
        let server = RealServer {
            child,
            port,
            dir: dir.to_path_buf(),
            log,
        };
        let started = Instant::now();
        if !server
            .log
            .wait_until_logged(|l| l.contains(READY_MARKER), REAL_SAFETY)
        {
            panic!(
                "the real ComfyUI did not start; log:\n{}",
                server.log.tail(80)
            );
        }
        eprintln!(
            "[figure] real ComfyUI start-up (spawn to listening): {:?}",
            started.elapsed()
        );
        server
    }

    /// A fleet of `instances` real ComfyUI processes on the CPU (no GPU is declared, so each
    /// runs with `--cpu`), with waits sized for a real server.
    pub fn fleet_spec(&self, instances: u32) -> FleetSpec {
        let quote = |p: &Path| Value::from(p.display().to_string()).to_string();
        FleetSpec::new(0, &[])
            .command(&[])
            .set("comfyui", "path", &quote(&self.checkout))
            .set("comfyui", "python", &quote(&self.python))
            .set("gpus", "cpu_instances", &instances.to_string())
            .set("lifecycle", "readiness_timeout", "\"10m\"")
            .set("lifecycle", "job_silence", "\"10m\"")
            .set("lifecycle", "stop_grace", "\"20s\"")
            .set("http", "operators", "[\"local\"]")
    }
}

/// A real ComfyUI child process (its own process group, killed on drop).
pub struct RealServer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub log: LogLines,
}

impl RealServer {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn input_dir(&self) -> PathBuf {
        self.dir.join("input")
    }
    pub fn output_dir(&self) -> PathBuf {
        self.dir.join("output")
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        send_signal(-(self.child.id() as i32), nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Polls the fleet's `/v1/status` until `done` holds, with the real tier's safety net.
pub fn wait_status(fleet: &FleetProcess, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    fleet.wait_status_within(REAL_SAFETY, what, done)
}

/// Polls a fleet job until `done` holds, with the real tier's safety net.
pub fn wait_job(
    fleet: &FleetProcess,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    let deadline = Instant::now() + REAL_SAFETY;
    while Instant::now() < deadline {
        last = fleet.job(id);
        if done(&last) {
            return last;
        }
        std::thread::sleep(POLL);
    }
    panic!(
        "job {id} never {what}; last:\n{last:#}\nlog tail:\n{}",
        fleet.log.tail(80)
    );
}

/// Waits until the job has finished (done, failed or cancelled).
pub fn wait_finished(fleet: &FleetProcess, id: &str) -> Value {
    wait_job(fleet, id, "finished", |j| {
        matches!(j["state"].as_str(), Some("done" | "failed" | "cancelled"))
    })
}
