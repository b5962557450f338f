//! `/proc` scans and signals: a process's command line and environment, the processes that
//! mention a folder, the members of a process group, whether a pid runs.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use comfy_fleet::launch::procfs;

use super::waits::{POLL, SAFETY};

/// A live process seen in `/proc`.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: i32,
    pub argv: Vec<String>,
}

impl ProcInfo {
    /// The value after `flag` in the command line.
    pub fn arg(&self, flag: &str) -> Option<&str> {
        flag_value(&self.argv, flag)
    }

    /// The process's environment.
    pub fn environ(&self) -> HashMap<String, String> {
        environ(self.pid)
    }
}

/// The value after `flag` in an argument list.
pub fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

fn nul_separated(raw: &[u8]) -> impl Iterator<Item = String> + '_ {
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
}

/// The command line of `pid` (empty for zombies and vanished processes).
pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| nul_separated(&raw).collect())
        .unwrap_or_default()
}

/// The environment of `pid` (empty for vanished processes).
pub fn environ(pid: i32) -> HashMap<String, String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|raw| {
            nul_separated(&raw)
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` runs (exists and is not a zombie).
pub fn alive(pid: i32) -> bool {
    procfs::read_stat(pid)
        .unwrap()
        .is_some_and(|s| !s.is_zombie())
}

/// The live (non-zombie) processes of group `pgid`.
pub fn group_pids(pgid: i32) -> Vec<i32> {
    procfs::group_members(pgid)
        .unwrap()
        .into_iter()
        .map(|p| p.pid)
        .collect()
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

/// Waits until no live process mentions `dir`; panics with the survivors after [`SAFETY`].
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

/// Sends `signal` to `pid` (a vanished process is no error).
pub fn send_signal(pid: i32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
}
