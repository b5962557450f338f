//! Helpers shared by the launcher's integration tests: specs for shell-script "ComfyUIs",
//! reading `/proc`, and bounded waits on conditions.

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use comfy_fleet::launch::procfs;
use comfy_fleet_actors::ports::LaunchSpec;
use comfy_fleet_actors::{GpuId, InstanceId};

/// Safety net for every wait: far beyond what any condition needs.
pub const SAFETY: Duration = Duration::from_secs(60);

/// A spec whose "ComfyUI" is `sh -c SCRIPT`; the computed arguments arrive as `$@`.
pub fn script_spec(
    instance: &str,
    state_dir: &Path,
    gpu: Option<&str>,
    script: &str,
) -> LaunchSpec {
    LaunchSpec {
        instance: InstanceId::new(instance),
        command: vec!["sh".into(), "-c".into(), script.into(), "sh".into()],
        working_dir: None,
        extra_args: vec!["--extra-flag".into()],
        env: vec![],
        gpu: gpu.map(|g| GpuId(g.into())),
        listen: "127.0.0.1".into(),
        port: 0,
        state_dir: state_dir.to_path_buf(),
    }
}

/// Polls `condition` until it holds; panics after [`SAFETY`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let poll = async {
        while !condition() {
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if actix_rt::time::timeout(SAFETY, poll).await.is_err() {
        panic!("timed out waiting until {what}");
    }
}

/// [`wait_until`] for tests without a runtime.
pub fn wait_until_blocking(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + SAFETY;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Awaits `future`; panics after [`SAFETY`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    actix_rt::time::timeout(SAFETY, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The live (non-zombie) processes of group `pgid`.
pub fn group_pids(pgid: i32) -> Vec<i32> {
    procfs::group_members(pgid)
        .unwrap()
        .into_iter()
        .map(|p| p.pid)
        .collect()
}

/// Whether `pid` runs (exists and is not a zombie).
pub fn alive(pid: i32) -> bool {
    procfs::read_stat(pid)
        .unwrap()
        .is_some_and(|s| !s.is_zombie())
}

pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The value after `flag` in an argument list.
pub fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

/// Reads a pid a script wrote to `file` (written then renamed, so never half-written).
pub fn read_pid(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// A script that starts a background `sleep` (a child that outlives nothing by itself), writes
/// its pid to `$READY`, and waits. `prelude` runs first (e.g. a `trap`).
pub fn sleeper_script(prelude: &str) -> String {
    format!(
        "{prelude}\nsleep 1000 &\necho $! > \"$READY.tmp\" && mv \"$READY.tmp\" \"$READY\"\nwait\n"
    )
}

pub fn ready_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.ready"))
}
