//! Stand-in "ComfyUIs" for the launcher's tests: launch specs whose program is a shell script,
//! a script that leaves a background child and reports its pid, and reading that pid.

use std::path::{Path, PathBuf};

use comfy_fleet_actors::ports::LaunchSpec;
use comfy_fleet_actors::{GpuId, InstanceId};

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

/// A script that starts a background `sleep` (a child that outlives nothing by itself), writes
/// its pid to `$READY`, and waits. `prelude` runs first (e.g. a `trap`).
pub fn sleeper_script(prelude: &str) -> String {
    format!(
        "{prelude}\nsleep 1000 &\necho $! > \"$READY.tmp\" && mv \"$READY.tmp\" \"$READY\"\nwait\n"
    )
}

/// Where a script named `name` reports readiness (its `$READY`).
pub fn ready_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.ready"))
}

/// Reads a pid a script wrote to `file` (written then renamed, so never half-written).
pub fn read_pid(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}
