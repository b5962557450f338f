//! No ComfyUI outlives comfy-fleet, even when comfy-fleet is killed with SIGKILL: the launched
//! process dies with it (parent-death signal), and the next start's sweep kills whatever the
//! process had started itself and deletes the ephemeral files.
//!
//! The test re-runs its own binary as a stand-in comfy-fleet (the ignored test below), reads
//! the pids it launched, and kills it with SIGKILL.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use comfy_fleet::launch::{
    InstanceFolders, InstanceRecord, Lifetime, ProcessLauncher, sweep_stale,
};
use comfy_fleet_actors::ports::Launcher;
use support::launch_scripts::*;
use support::processes::*;
use support::waits::*;

const ROOT_VAR: &str = "COMFY_FLEET_TEST_STAND_IN_ROOT";

#[test]
#[ignore = "the stand-in comfy-fleet of launched_processes_die_with_comfy_fleet; runs only from it"]
fn stand_in_comfy_fleet() {
    let root =
        PathBuf::from(std::env::var(ROOT_VAR).expect("run by the outer test, which sets the root"));
    actix_rt::System::new().block_on(async {
        let launcher = ProcessLauncher::new(&root).unwrap();
        let state = root.join("gpu0");
        let ready = ready_file(&root, "gpu0");
        let mut spec = script_spec("gpu0", &state, Some("GPU-x"), &sleeper_script(""));
        spec.env.push(("READY".into(), ready.display().to_string()));
        let launched = launcher.launch(spec).await.unwrap();
        wait_until("the script is ready", || ready.exists()).await;
        InstanceFolders::new(&state)
            .unwrap()
            .save_input("", "upload.png", b"png", Lifetime::Ephemeral)
            .unwrap();
        println!("launched {} {}", launched.pid, read_pid(&ready).unwrap());
        std::future::pending::<()>().await;
    });
}

/// Kills the stand-in and sweeps its root if the test ends early.
struct StandIn {
    child: Child,
    root: PathBuf,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = sweep_stale(&self.root);
    }
}

fn start_stand_in(root: &Path) -> (StandIn, i32, i32) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "stand_in_comfy_fleet",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROOT_VAR, root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stand_in = StandIn {
        child,
        root: root.to_path_buf(),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The harness prints "test NAME ... " on the same line first.
            if let Some((_, pids)) = line.split_once("launched ") {
                let _ = tx.send(pids.to_string());
            }
        }
    });
    let line = rx
        .recv_timeout(SAFETY)
        .expect("the stand-in never reported its launch");
    let pids: Vec<i32> = line.split(' ').map(|p| p.parse().unwrap()).collect();
    (stand_in, pids[0], pids[1])
}

#[test]
fn launched_processes_die_with_comfy_fleet() {
    let root = tempfile::tempdir().unwrap();
    let (mut stand_in, leader, straggler) = start_stand_in(root.path());
    assert!(alive(leader) && alive(straggler));
    let upload = root.path().join("gpu0/input/upload.png");
    assert!(upload.exists());

    // comfy-fleet is killed without a chance to clean up.
    stand_in.child.kill().unwrap();
    stand_in.child.wait().unwrap();

    wait_until_blocking("the launched process dies with its parent", || {
        !alive(leader)
    });
    // The parent-death signal reaches only the process comfy-fleet forked; what that process
    // started itself is left to the next start's sweep.
    assert!(alive(straggler));
    assert!(InstanceRecord::path(root.path(), "gpu0").exists());

    let report = sweep_stale(root.path()).unwrap();

    assert_eq!(report.killed.len(), 1, "{report:?}");
    assert_eq!(report.killed[0].pids, vec![straggler]);
    assert!(!alive(straggler));
    assert!(group_pids(leader).is_empty());
    assert!(
        !upload.exists(),
        "the ephemeral upload is deleted by the sweep"
    );
    assert_eq!((report.ephemeral_removed, report.records_removed), (1, 1));
    assert!(!InstanceRecord::path(root.path(), "gpu0").exists());
}
