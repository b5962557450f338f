//! A real `comfy-fleet serve` process for integration tests: a temporary config (state folder in
//! a temporary directory, API on 127.0.0.1:0, `fake-comfyui` as ComfyUI, declared GPUs, short
//! lifecycle durations), its log read line by line so tests can wait for lines, HTTP helpers on
//! its API, signals, and the processes that mention its state folder.
//!
//! Everything waits on a real signal (a log line, an HTTP answer, a `/proc` condition) polled in
//! a bounded loop; the timeout is only a safety net and fails the test with the log's tail.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http_client::{HttpAnswer, http};
use super::log_lines::LogLines;
use super::processes::{ProcInfo, processes_mentioning, send_signal, wait_no_processes};
use super::waits::{POLL, SAFETY};
use super::{COMFY_FLEET, FAKE_COMFYUI, workflows_dir};

/// What to put in the config file.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    /// Declared GPU ids, one instance each.
    pub gpus: Vec<String>,
    /// The whole instance command (program first); the launcher appends ComfyUI's arguments.
    pub command: Vec<String>,
    /// Extra `key = value` lines per section (`lifecycle`, `scheduler`, …), values as TOML.
    pub sections: BTreeMap<String, BTreeMap<String, String>>,
    /// Templates folder; the repository's `workflows/` when `None`.
    pub workflows_dir: Option<PathBuf>,
}

impl FleetSpec {
    /// `gpus` declared GPUs (`GPU-test-0`…), each running fake-comfyui with fast nodes and
    /// `fake_args` added.
    pub fn new(gpus: usize, fake_args: &[&str]) -> Self {
        let mut command = vec![
            FAKE_COMFYUI.to_string(),
            "--fake-node-time".into(),
            "20ms".into(),
            "--fake-step-time".into(),
            "5ms".into(),
        ];
        command.extend(fake_args.iter().map(|a| a.to_string()));
        let mut spec = Self {
            gpus: (0..gpus).map(|i| format!("GPU-test-{i}")).collect(),
            command,
            sections: BTreeMap::new(),
            workflows_dir: None,
        };
        for (section, key, value) in [
            ("lifecycle", "readiness_timeout", "\"30s\""),
            ("lifecycle", "health_interval", "\"1s\""),
            ("lifecycle", "stop_grace", "\"5s\""),
            ("lifecycle.backoff", "initial", "\"100ms\""),
            ("lifecycle.backoff", "max", "\"1s\""),
            ("lifecycle.backoff", "jitter", "0.1"),
            ("shutdown", "drain_timeout", "\"30s\""),
        ] {
            spec = spec.set(section, key, value);
        }
        spec.set("logging", "metrics_interval", "\"1h\"")
            .set("logging", "level", "\"info\"")
    }

    /// Sets `[section] key = value` (`value` is TOML: quote strings).
    pub fn set(mut self, section: &str, key: &str, value: &str) -> Self {
        self.sections
            .entry(section.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }

    /// Runs `command` instead of fake-comfyui.
    pub fn command(mut self, command: &[&str]) -> Self {
        self.command = command.iter().map(|c| c.to_string()).collect();
        self
    }

    pub fn workflows(mut self, dir: &Path) -> Self {
        self.workflows_dir = Some(dir.to_path_buf());
        self
    }

    /// The config file's text for a fleet whose state folder is `state_dir`.
    pub fn toml(&self, state_dir: &Path) -> String {
        let quote = |s: &str| Value::from(s).to_string();
        let mut out = String::new();
        out.push_str("[comfyui]\n");
        out.push_str(&format!(
            "command = [{}]\n",
            self.command
                .iter()
                .map(|c| quote(c))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out.push_str(&format!(
            "state_dir = {}\n",
            quote(&state_dir.display().to_string())
        ));
        for (key, value) in self.sections.get("comfyui").into_iter().flatten() {
            out.push_str(&format!("{key} = {value}\n"));
        }
        out.push_str("\n[gpus]\ndiscovery = \"declared\"\n");
        for (key, value) in self.sections.get("gpus").into_iter().flatten() {
            out.push_str(&format!("{key} = {value}\n"));
        }
        for gpu in &self.gpus {
            out.push_str(&format!(
                "[[gpus.declared]]\nid = {}\nname = \"test GPU\"\nmemory_mb = 1024\n",
                quote(gpu)
            ));
        }
        let workflows = self.workflows_dir.clone().unwrap_or_else(workflows_dir);
        out.push_str(&format!(
            "\n[workflows]\ndir = {}\n",
            quote(&workflows.display().to_string())
        ));
        for (section, keys) in &self.sections {
            if section == "comfyui" || section == "gpus" {
                continue;
            }
            out.push_str(&format!("\n[{section}]\n"));
            for (key, value) in keys {
                out.push_str(&format!("{key} = {value}\n"));
            }
        }
        out
    }
}

/// A running `comfy-fleet serve`.
pub struct FleetProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: LogLines,
    /// The temporary directory holding the config and the state folder.
    pub root: PathBuf,
    pub state_dir: PathBuf,
    /// When the process was spawned.
    pub spawned_at: Instant,
    exited: Option<ExitStatus>,
}

impl FleetProcess {
    /// Writes the config under `root` (state folder `root/state`) and starts the fleet; returns
    /// once the HTTP API listens.
    pub fn start(spec: &FleetSpec, root: &Path) -> Self {
        Self::start_with_env(spec, root, &[])
    }

    /// [`FleetProcess::start`] with these environment variables set for the process.
    pub fn start_with_env(spec: &FleetSpec, root: &Path, env: &[(&str, &str)]) -> Self {
        let state_dir = root.join("state");
        let config = root.join("fleet.toml");
        std::fs::write(&config, spec.toml(&state_dir)).unwrap();
        let spawned_at = Instant::now();
        let mut child = Command::new(COMFY_FLEET)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env_remove("RUST_LOG")
            .env_remove("COMFY_FLEET_STATE_DIR")
            .env_remove("COMFY_FLEET_API_TOKENS")
            .env_remove("COMFY_FLEET_WORKFLOWS_DIR")
            .env_remove("COMFY_FLEET_COMFYUI_PATH")
            .env_remove("DISCORD_TOKEN")
            .env_remove("COMFY_FLEET_DISCORD_PROXY")
            .envs(env.iter().copied())
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = LogLines::follow(child.stderr.take().unwrap());
        let mut fleet = Self {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            log,
            root: root.to_path_buf(),
            state_dir,
            spawned_at,
            exited: None,
        };
        let marker = "HTTP API listening on http://";
        let line = fleet
            .log
            .wait_for("the API address", |l| l.contains(marker));
        let rest = &line[line.find(marker).unwrap() + marker.len()..];
        let addr = rest.split_whitespace().next().unwrap();
        fleet.addr = addr.parse().unwrap();
        fleet
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> HttpAnswer {
        http(self.addr, "GET", path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> HttpAnswer {
        http(
            self.addr,
            "POST",
            path,
            Some(("application/json", body.to_string().into_bytes())),
        )
    }

    /// `POST path` with a multipart body: `parts` are (name, file name, content type, bytes).
    pub fn post_multipart(
        &self,
        path: &str,
        parts: &[(&str, Option<&str>, &str, &[u8])],
    ) -> HttpAnswer {
        let boundary = "fleet-test-boundary-7d1f0c";
        let mut body = Vec::new();
        for (name, filename, content_type, bytes) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
            if let Some(f) = filename {
                disposition.push_str(&format!("; filename=\"{f}\""));
            }
            body.extend_from_slice(disposition.as_bytes());
            body.extend_from_slice(format!("\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        http(
            self.addr,
            "POST",
            path,
            Some((&format!("multipart/form-data; boundary={boundary}"), body)),
        )
    }

    /// Submits a job (JSON) and returns its id; panics unless it was accepted.
    pub fn submit(&self, body: &Value) -> String {
        let answer = self.post_json("/v1/jobs", body);
        assert_eq!(answer.status, 201, "submit refused: {}", answer.text());
        answer.json()["id"].as_str().unwrap().to_string()
    }

    /// `GET /v1/jobs/{id}`.
    pub fn job(&self, id: &str) -> Value {
        let answer = self.get(&format!("/v1/jobs/{id}"));
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Value {
        let answer = self.get("/v1/status");
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    }

    /// The status entry of one instance.
    pub fn instance(&self, id: &str) -> Value {
        instance_in(&self.status(), id)
    }

    /// Polls `/v1/status` until `done` holds; returns that status.
    pub fn wait_status(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.wait_status_within(SAFETY, what, done)
    }

    /// [`Self::wait_status`] with another safety net (a real ComfyUI is slower).
    pub fn wait_status_within(
        &self,
        safety: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut last = Value::Null;
        let deadline = Instant::now() + safety;
        while Instant::now() < deadline {
            let answer = self.get("/v1/status");
            if answer.status == 200 {
                last = answer.json();
                if done(&last) {
                    return last;
                }
            }
            std::thread::sleep(POLL);
        }
        panic!(
            "status never showed {what}; last status:\n{last:#}\nlog tail:\n{}",
            self.log.tail(80)
        );
    }

    /// Polls the job until `done` holds; returns the job.
    pub fn wait_job(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        let deadline = Instant::now() + SAFETY;
        while Instant::now() < deadline {
            last = self.job(id);
            if done(&last) {
                return last;
            }
            std::thread::sleep(POLL);
        }
        panic!(
            "job {id} never {what}; last:\n{last:#}\nlog tail:\n{}",
            self.log.tail(60)
        );
    }

    /// Waits until the job has finished (done, failed or cancelled).
    pub fn wait_finished(&self, id: &str) -> Value {
        self.wait_job(id, "finished", |j| {
            matches!(j["state"].as_str(), Some("done" | "failed" | "cancelled"))
        })
    }

    /// Sends `signal` to comfy-fleet itself.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        send_signal(self.pid(), signal);
    }

    /// Waits for comfy-fleet to exit (safety net: [`SAFETY`]).
    pub fn wait_exit(&mut self) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        let deadline = Instant::now() + SAFETY;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.exited = Some(status);
                return status;
            }
            std::thread::sleep(POLL);
        }
        panic!("comfy-fleet did not exit; log tail:\n{}", self.log.tail(60));
    }

    /// The live processes whose command line mentions the state folder.
    pub fn processes(&self) -> Vec<ProcInfo> {
        processes_mentioning(&self.state_dir)
    }

    /// The live process of one instance (its command line names the instance's input folder).
    pub fn instance_process(&self, instance: &str) -> Option<ProcInfo> {
        let input = self.state_dir.join(instance).join("input");
        let input = input.display().to_string();
        self.processes().into_iter().find(|p| {
            p.argv
                .windows(2)
                .any(|w| w[0] == "--input-directory" && w[1] == input)
        })
    }

    /// Waits until no process mentions the state folder; panics with the survivors otherwise.
    pub fn wait_no_processes(&self) {
        wait_no_processes(&self.state_dir);
    }
}

impl Drop for FleetProcess {
    fn drop(&mut self) {
        if self.exited.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Belt and braces: leave nothing behind even when a test failed half-way.
        for p in processes_mentioning(&self.state_dir) {
            send_signal(p.pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// The status entry of instance `id`.
pub fn instance_in(status: &Value, id: &str) -> Value {
    status["instances"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("no instance {id} in {status:#}"))
}

/// How many instances are in `phase`.
pub fn count_phase(status: &Value, phase: &str) -> usize {
    status["instances"]
        .as_array()
        .map_or(0, |all| all.iter().filter(|i| i["phase"] == phase).count())
}
