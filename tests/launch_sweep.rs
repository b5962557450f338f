//! The start-up sweep against real process groups left by a "previous run".

mod support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use comfy_fleet::launch::{
    EphemeralManifest, InstanceRecord, ProcessLauncher, procfs, sweep_stale,
};
use comfy_fleet_actors::ports::Launcher;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use support::launch_scripts::*;
use support::processes::*;
use support::waits::*;

/// A group started by a test; killed on drop unless its leader has already been reaped
/// (after which its id could belong to someone else).
struct TestGroup(Child);

impl Drop for TestGroup {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = killpg(Pid::from_raw(self.0.id() as i32), Signal::SIGKILL);
            let _ = self.0.wait();
        }
    }
}

/// Starts `sh` running a sleeper script in a new session, as a launched ComfyUI would be.
/// Returns the leader and its background child's pid.
fn start_group(dir: &Path, name: &str) -> (TestGroup, i32) {
    let ready = ready_file(dir, name);
    let mut command = Command::new("sh");
    command
        .args(["-c", &sleeper_script("")])
        .env("READY", &ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = TestGroup(command.spawn().unwrap());
    wait_until_blocking("the group is ready", || ready.exists());
    let straggler = read_pid(&ready).unwrap();
    (child, straggler)
}

fn record_for(root: &Path, name: &str, pid: i32, start_time: u64) -> InstanceRecord {
    let record = InstanceRecord {
        instance: name.into(),
        pid,
        pgid: pid,
        start_time,
        command: vec!["python".into(), "main.py".into()],
        state_dir: root.join(name),
        launched_by: 1,
    };
    record.write(root).unwrap();
    record
}

#[test]
fn a_recorded_live_group_is_killed_and_its_files_deleted() {
    let root = tempfile::tempdir().unwrap();
    let (mut leader, straggler) = start_group(root.path(), "gpu0");
    let pid = leader.0.id() as i32;
    let start_time = procfs::read_stat(pid).unwrap().unwrap().start_time;
    let record = record_for(root.path(), "gpu0", pid, start_time);
    std::fs::create_dir_all(&record.state_dir).unwrap();
    let upload = record.state_dir.join("upload.png");
    let manifest = EphemeralManifest::in_state_dir(&record.state_dir);
    manifest.record(&upload).unwrap();
    std::fs::write(&upload, b"png").unwrap();

    let report = sweep_stale(root.path()).unwrap();

    assert_eq!(report.killed.len(), 1);
    let mut killed = report.killed[0].pids.clone();
    killed.sort();
    let mut expected = vec![pid, straggler];
    expected.sort();
    assert_eq!(killed, expected);
    assert!(!alive(straggler));
    assert!(group_pids(pid).is_empty());
    assert!(!upload.exists() && !manifest.path().exists());
    assert_eq!((report.ephemeral_removed, report.records_removed), (1, 1));
    assert!(!InstanceRecord::path(root.path(), "gpu0").exists());
    let status = leader.0.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
}

#[test]
fn a_recycled_pid_is_left_alone() {
    let root = tempfile::tempdir().unwrap();
    let (stranger, straggler) = start_group(root.path(), "gpu1");
    let pid = stranger.0.id() as i32;
    let start_time = procfs::read_stat(pid).unwrap().unwrap().start_time;
    // Recorded with another start time: the pid now belongs to someone else.
    record_for(root.path(), "gpu1", pid, start_time.saturating_sub(1));

    let report = sweep_stale(root.path()).unwrap();

    assert!(report.killed.is_empty(), "{report:?}");
    assert!(alive(pid) && alive(straggler));
    assert_eq!(report.records_removed, 1);
    drop(stranger);
    wait_until_blocking("the test's own group is gone", || !alive(straggler));
}

#[test]
fn unreadable_records_are_removed_and_a_missing_folder_is_no_error() {
    let root = tempfile::tempdir().unwrap();
    assert_eq!(sweep_stale(root.path()).unwrap(), Default::default());
    let path = InstanceRecord::path(root.path(), "broken");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"{ not json").unwrap();
    let report = sweep_stale(root.path()).unwrap();
    assert_eq!(report.records_removed, 1);
    assert!(!path.exists());
}

#[actix_rt::test]
async fn the_instances_of_this_very_process_are_not_swept() {
    let root = tempfile::tempdir().unwrap();
    let launcher = ProcessLauncher::new(root.path()).unwrap();
    let spec = script_spec("gpu0", &root.path().join("gpu0"), None, "exec sleep 1000");
    let launched = launcher.launch(spec).await.unwrap();
    let report = sweep_stale(root.path()).unwrap();
    assert_eq!(report.skipped_own, vec!["gpu0".to_string()]);
    assert!(alive(launched.pid as i32));
    assert!(InstanceRecord::path(root.path(), "gpu0").exists());
    launched.stopper.stop(Duration::from_secs(30)).await;
}
