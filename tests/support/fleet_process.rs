//! A real `comfy-fleet serve` process for integration tests: a temporary config (state folder in
//! a temporary directory, API on 127.0.0.1:0, `fake-comfyui` as ComfyUI, declared GPUs, short
//! lifecycle durations), its log read line by line in a thread so tests can wait for lines, a
//! small HTTP/1.1 client, signal helpers, and `/proc` scans (processes that mention the state
//! folder, their command lines and environments).
//!
//! Everything waits on a real signal (a log line, an HTTP answer, a `/proc` condition) polled in
//! a bounded loop; the timeout is only a safety net and fails the test with the log's tail.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Safety net for every wait: generous, for a loaded 2-core machine.
pub const SAFETY: Duration = Duration::from_secs(60);
/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(50);

/// The path of the demo backend binary.
pub fn fake_comfyui() -> String {
    env!("CARGO_BIN_EXE_fake-comfyui").to_string()
}

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
            fake_comfyui(),
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
        let workflows = self
            .workflows_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows")));
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

/// The log of a process, shared with the thread that reads it.
#[derive(Clone, Default)]
pub struct LogLines(Arc<(Mutex<LogState>, Condvar)>);

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    closed: bool,
}

impl LogLines {
    /// Reads `source` line by line into the log, in a thread, until it closes.
    pub fn follow(source: impl Read + Send + 'static) -> Self {
        let log = Self::default();
        let writer = log.clone();
        std::thread::spawn(move || {
            let reader = BufReader::new(source);
            for line in reader.lines() {
                let Ok(line) = line else { break };
                let (state, changed) = &*writer.0;
                state.lock().unwrap().lines.push(line);
                changed.notify_all();
            }
            let (state, changed) = &*writer.0;
            state.lock().unwrap().closed = true;
            changed.notify_all();
        });
        log
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.0.lock().unwrap().lines.clone()
    }

    /// The lines so far that satisfy `pred`.
    pub fn matching(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        self.lines().into_iter().filter(|l| pred(l)).collect()
    }

    /// The last `n` lines, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits until `count` lines (seen since the start) satisfy `pred`; returns the last of them.
    pub fn wait_for_count(&self, what: &str, count: usize, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SAFETY;
        let (state, changed) = &*self.0;
        let mut guard = state.lock().unwrap();
        loop {
            let found: Vec<&String> = guard.lines.iter().filter(|l| pred(l)).collect();
            if found.len() >= count {
                return found[count - 1].clone();
            }
            let now = Instant::now();
            if now >= deadline || guard.closed {
                let lines = guard.lines.clone();
                drop(guard);
                panic!(
                    "never logged {what} ({} of {count} seen; {}); log tail:\n{}",
                    found_count(&lines, &pred),
                    if now >= deadline {
                        "timed out"
                    } else {
                        "the log closed"
                    },
                    lines[lines.len().saturating_sub(60)..].join("\n")
                );
            }
            guard = changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Waits for a line satisfying `pred` (seen since the start).
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for_count(what, 1, pred)
    }
}

fn found_count(lines: &[String], pred: &impl Fn(&str) -> bool) -> usize {
    lines.iter().filter(|l| pred(l)).count()
}

/// A line that mentions every one of `parts`.
pub fn has_all<'a>(parts: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
    move |line| parts.iter().all(|p| line.contains(p))
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
        let state_dir = root.join("state");
        let config = root.join("fleet.toml");
        std::fs::write(&config, spec.toml(&state_dir)).unwrap();
        let spawned_at = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_comfy-fleet"))
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
        let mut last = Value::Null;
        let deadline = Instant::now() + SAFETY;
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
            self.log.tail(60)
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

pub fn send_signal(pid: i32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
}

/// One HTTP answer.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request (`Connection: close`), its answer read to the end.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> HttpAnswer {
    let mut stream = TcpStream::connect_timeout(&addr, SAFETY)
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream.set_read_timeout(Some(SAFETY)).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let payload = match body {
        Some((content_type, bytes)) => {
            request.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                bytes.len()
            ));
            bytes
        }
        None => Vec::new(),
    };
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(&payload).unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path}: reading the answer: {e}"));
    parse_answer(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not an HTTP answer: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_answer(raw: &[u8]) -> Option<HttpAnswer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(HttpAnswer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// A live process seen in `/proc`.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: i32,
    pub argv: Vec<String>,
}

impl ProcInfo {
    /// The value after `flag` in the command line.
    pub fn arg(&self, flag: &str) -> Option<&str> {
        self.argv
            .windows(2)
            .find(|w| w[0] == flag)
            .map(|w| w[1].as_str())
    }

    /// The process's environment.
    pub fn environ(&self) -> HashMap<String, String> {
        environ(self.pid)
    }
}

/// The command line of `pid` (empty for zombies and vanished processes).
pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The environment of `pid`.
pub fn environ(pid: i32) -> HashMap<String, String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter_map(|kv| {
                    let kv = String::from_utf8_lossy(kv);
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Live (non-zombie) processes whose command line mentions `dir`.
pub fn processes_mentioning(dir: &Path) -> Vec<ProcInfo> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let argv = cmdline(pid);
        if argv.iter().any(|a| a.contains(&needle)) {
            found.push(ProcInfo { pid, argv });
        }
    }
    found.sort_by_key(|p| p.pid);
    found
}

/// Waits until no live process mentions `dir`.
pub fn wait_no_processes(dir: &Path) {
    let deadline = Instant::now() + SAFETY;
    loop {
        let left = processes_mentioning(dir);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("processes of the fleet survive: {left:#?}");
        }
        std::thread::sleep(POLL);
    }
}

/// The process table lines (`ps -eo pid,pgid,ppid,cmd`) that mention `needle`, for reports.
pub fn ps_lines(needle: &str) -> String {
    let out = Command::new("ps")
        .args(["-eo", "pid,pgid,ppid,cmd"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter(|l| l.contains(needle) && !l.contains(" ps -eo"))
        .collect::<Vec<_>>()
        .join("\n")
}
