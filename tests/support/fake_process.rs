//! Test support: runs the real `fake-comfyui` binary as a child process on a free loopback port,
//! in its own temporary working directory (so input/, output/, temp/, user/ are private), waits
//! until it prints ComfyUI's readiness line, keeps its log, and kills it on drop.
//!
//! ```ignore
//! mod support;
//! use support::fake_process::FakeComfy;
//! let fake = FakeComfy::builder().arg("--cpu").env("FAKE_COMFYUI_NODE_TIME", "50ms").spawn();
//! let url = fake.url("/system_stats");
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::FAKE_COMFYUI;
use super::log_lines::LogLines;
use super::ports::free_port;
use super::waits::SAFETY;

/// The line ComfyUI (and the fake) prints once it listens.
pub const READY_MARKER: &str = "To see the GUI go to: http://";

/// Environment variables of the fake that a test run must not inherit by accident.
const FAKE_ENV: &[&str] = &[
    "FAKE_COMFYUI_FAIL_NODE",
    "FAKE_COMFYUI_OOM",
    "FAKE_COMFYUI_CRASH_AFTER_NODES",
    "FAKE_COMFYUI_HANG_AFTER_NODES",
    "FAKE_COMFYUI_START_DELAY",
    "FAKE_COMFYUI_REFUSE_PORT",
    "FAKE_COMFYUI_NODE_TIME",
    "FAKE_COMFYUI_STEP_TIME",
];

/// Configures a fake before starting it.
pub struct FakeComfyBuilder {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    port: Option<u16>,
    dir: Option<PathBuf>,
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl FakeComfyBuilder {
    /// Adds one command-line argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.envs.push((k.into(), v.into()));
        self
    }

    /// Uses this port instead of a free one; `0` lets the fake pick one (no race with other
    /// tests), and [`FakeComfyBuilder::spawn`] reads the real port from its readiness line.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Uses this working directory instead of a fresh temporary one.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Writes a file (path relative to the working directory, e.g. a model under
    /// `models/checkpoints/`) before the process starts.
    pub fn file(mut self, relative: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.push((relative.into(), bytes.into()));
        self
    }

    /// Starts the process without waiting for readiness (for start-up failure tests).
    pub fn spawn_unready(self) -> FakeComfy {
        let (tmp, dir) = match self.dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        for (relative, bytes) in &self.files {
            let path = dir.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create the file's folder");
            }
            std::fs::write(&path, bytes).expect("write the file");
        }
        let port = self.port.unwrap_or_else(free_port);
        let mut cmd = Command::new(FAKE_COMFYUI);
        cmd.current_dir(&dir)
            .arg("--listen")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--disable-auto-launch")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in FAKE_ENV {
            cmd.env_remove(k);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn fake-comfyui");
        let mut pipes: Vec<Box<dyn std::io::Read + Send>> = Vec::new();
        if let Some(out) = child.stdout.take() {
            pipes.push(Box::new(out));
        }
        if let Some(err) = child.stderr.take() {
            pipes.push(Box::new(err));
        }
        let log = LogLines::follow_all(pipes);
        FakeComfy {
            child,
            port,
            dir,
            _tmp: tmp,
            log,
        }
    }

    /// Starts the process and waits for its readiness line (panics with the log on failure).
    pub fn spawn(self) -> FakeComfy {
        let mut fake = self.spawn_unready();
        if !fake.wait_for_log(READY_MARKER, SAFETY) {
            let status = fake.child.try_wait().ok().flatten();
            panic!(
                "fake-comfyui did not become ready (exit: {status:?}); log:\n{}",
                fake.logs()
            );
        }
        // "To see the GUI go to: http://127.0.0.1:PORT" names the port it listens on.
        if let Some(port) = fake.ready_port() {
            fake.port = port;
        }
        fake
    }
}

/// A running fake ComfyUI child process.
pub struct FakeComfy {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    log: LogLines,
}

impl FakeComfy {
    /// A builder (defaults: free port, fresh temporary working directory).
    pub fn builder() -> FakeComfyBuilder {
        FakeComfyBuilder {
            args: Vec::new(),
            envs: Vec::new(),
            port: None,
            dir: None,
            files: Vec::new(),
        }
    }

    /// Starts a default fake and waits until it is ready.
    pub fn start() -> FakeComfy {
        Self::builder().spawn()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `http://127.0.0.1:PORT`, the server's base URL.
    pub fn base_url(&self) -> String {
        self.url("")
    }

    /// `ws://127.0.0.1:PORT/ws?clientId={client_id}`.
    pub fn ws_url(&self, client_id: &str) -> String {
        format!("ws://127.0.0.1:{}/ws?clientId={client_id}", self.port)
    }

    /// The working directory (holds input/, output/, temp/temp…, user/).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The input folder.
    pub fn input_dir(&self) -> PathBuf {
        self.dir.join("input")
    }

    /// The output folder.
    pub fn output_dir(&self) -> PathBuf {
        self.dir.join("output")
    }

    /// The temp folder (default `--temp-directory` layout: `./temp`).
    pub fn temp_dir(&self) -> PathBuf {
        self.dir.join("temp")
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child printed so far.
    pub fn logs(&self) -> String {
        self.log.text()
    }

    /// The port named by the readiness line, once printed.
    fn ready_port(&self) -> Option<u16> {
        let lines = self.log.lines();
        let line = lines.iter().find(|l| l.contains(READY_MARKER))?;
        let address = line[line.find(READY_MARKER)? + READY_MARKER.len()..].trim();
        address.rsplit(':').next()?.parse().ok()
    }

    /// Waits until a log line contains `needle` (false on timeout or when the output closed).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.log.wait_until_logged(|l| l.contains(needle), timeout)
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // let the log readers drain what the process printed before exiting
                self.log
                    .wait_closed(deadline.saturating_duration_since(Instant::now()));
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // polling the child's exit state; no readiness is inferred from time
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the process (idempotent).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FakeComfy {
    fn drop(&mut self) {
        self.kill();
    }
}
