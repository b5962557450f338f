//! The launcher against real processes: pinning, ports, folders, records, stopping whole
//! process groups, SIGKILL after the grace, exits, and spawn errors.

mod support;

use std::collections::HashSet;
use std::net::TcpListener;
use std::time::Duration;

use comfy_fleet::launch::{InstanceFolders, InstanceRecord, Lifetime, ProcessLauncher, procfs};
use comfy_fleet_actors::ports::{ExitInfo, LaunchError, Launcher};
use support::launch_scripts::*;
use support::processes::*;
use support::waits::*;

#[actix_rt::test]
async fn four_instances_get_their_own_port_folders_database_and_gpu() {
    let root = tempfile::tempdir().unwrap();
    let launcher = ProcessLauncher::new(root.path()).unwrap();
    let mut launched = Vec::new();
    for i in 0..4 {
        let name = format!("gpu{i}");
        let mut spec = script_spec(
            &name,
            &root.path().join(&name),
            Some(&format!("GPU-test-{i}")),
            "exec sleep 1000",
        );
        spec.env.push(("HF_HOME".into(), format!("/cache/{i}")));
        launched.push((i, launcher.launch(spec).await.unwrap()));
    }

    let ports: HashSet<u16> = launched.iter().map(|(_, l)| l.port).collect();
    assert_eq!(ports.len(), 4, "every instance has its own port");
    for (i, l) in &launched {
        let state = root.path().join(format!("gpu{i}"));
        assert_eq!(l.url, format!("http://127.0.0.1:{}", l.port));
        // (`exec sleep` drops the arguments; `the_computed_arguments_reach_the_process`
        // reads them.) The folders ComfyUI writes to exist before it starts.
        for dir in ["input", "output", "temp", "user"] {
            assert!(state.join(dir).is_dir(), "{dir} missing for gpu{i}");
        }
        assert!(state.join("extra_model_paths.yaml").is_file());
        wait_until("the child has exec'd", || {
            cmdline(l.pid as i32).first().is_some_and(|c| c == "sleep")
        })
        .await;
        let env = environ(l.pid as i32);
        assert_eq!(
            env.get("CUDA_VISIBLE_DEVICES"),
            Some(&format!("GPU-test-{i}")),
            "{env:?}"
        );
        assert_eq!(
            env.get("CUDA_DEVICE_ORDER").map(String::as_str),
            Some("PCI_BUS_ID")
        );
        assert_eq!(env.get("HF_HOME"), Some(&format!("/cache/{i}")));
        // Its own process group and session.
        let stat = procfs::read_stat(l.pid as i32).unwrap().unwrap();
        assert_eq!((stat.pgrp, stat.session), (l.pid as i32, l.pid as i32));
        let record: InstanceRecord = serde_json::from_slice(
            &std::fs::read(root.path().join(format!("instances/gpu{i}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!((record.pid, record.pgid), (l.pid as i32, l.pid as i32));
        assert_eq!(record.start_time, stat.start_time);
        assert_eq!(record.state_dir, state);
    }
    for (i, l) in launched {
        l.stopper.stop(Duration::from_secs(30)).await;
        assert!(group_pids(l.pid as i32).is_empty());
        assert!(!root.path().join(format!("instances/gpu{i}.json")).exists());
    }
}

#[actix_rt::test]
async fn the_computed_arguments_reach_the_process() {
    let root = tempfile::tempdir().unwrap();
    let launcher = ProcessLauncher::new(root.path()).unwrap();
    let state = root.path().join("gpu0");
    let ready = ready_file(root.path(), "gpu0");
    let mut spec = script_spec("gpu0", &state, None, &sleeper_script(""));
    spec.env.push(("READY".into(), ready.display().to_string()));
    let l = launcher.launch(spec).await.unwrap();
    wait_until("the script is ready", || ready.exists()).await;
    let args = cmdline(l.pid as i32);
    let port = l.port.to_string();
    assert_eq!(flag_value(&args, "--port"), Some(port.as_str()));
    assert_eq!(flag_value(&args, "--listen"), Some("127.0.0.1"));
    let state = state.display().to_string();
    assert_eq!(
        flag_value(&args, "--input-directory"),
        Some(format!("{state}/input").as_str())
    );
    assert_eq!(
        flag_value(&args, "--output-directory"),
        Some(format!("{state}/output").as_str())
    );
    assert_eq!(flag_value(&args, "--temp-directory"), Some(state.as_str()));
    assert_eq!(
        flag_value(&args, "--user-directory"),
        Some(format!("{state}/user").as_str())
    );
    assert_eq!(
        flag_value(&args, "--database-url"),
        Some(format!("sqlite:///{state}/comfyui.db").as_str())
    );
    assert!(args.contains(&"--disable-auto-launch".to_string()));
    assert!(
        args.contains(&"--cpu".to_string()),
        "no GPU means --cpu: {args:?}"
    );
    assert_eq!(args.last().map(String::as_str), Some("--extra-flag"));
    assert_eq!(
        environ(l.pid as i32)
            .get("CUDA_VISIBLE_DEVICES")
            .map(String::as_str),
        Some("")
    );
    l.stopper.stop(Duration::from_secs(30)).await;
}

#[actix_rt::test]
async fn stop_leaves_no_process_of_the_group_and_cleans_ephemeral_files() {
    let root = tempfile::tempdir().unwrap();
    let launcher = ProcessLauncher::new(root.path()).unwrap();
    let state = root.path().join("gpu0");
    let ready = ready_file(root.path(), "gpu0");
    let mut spec = script_spec("gpu0", &state, Some("GPU-a"), &sleeper_script(""));
    spec.env.push(("READY".into(), ready.display().to_string()));
    let l = launcher.launch(spec).await.unwrap();
    wait_until("the script is ready", || ready.exists()).await;
    let child = read_pid(&ready).unwrap();
    let pgid = l.pid as i32;
    assert_eq!(group_pids(pgid).len(), 2, "sh and its sleep");

    let folders = InstanceFolders::new(&state).unwrap();
    let upload = folders
        .save_input("jobs", "in.png", b"png", Lifetime::Ephemeral)
        .unwrap();
    let kept = folders
        .save_input("", "kept.png", b"png", Lifetime::Kept)
        .unwrap();
    let record = root.path().join("instances/gpu0.json");
    assert!(record.exists());

    let exited = l.exited;
    l.stopper.stop(Duration::from_secs(30)).await;
    assert!(group_pids(pgid).is_empty(), "the whole group is gone");
    assert!(!alive(child), "the background child is gone too");
    let exit = within("the exit", exited).await;
    assert_eq!(exit.signal, Some(15), "ended by SIGTERM: {exit}");
    assert!(!upload.exists(), "ephemeral upload deleted on stop");
    assert!(kept.exists(), "kept upload left alone");
    assert!(!record.exists(), "a clean stop removes the record");
    // Stopping again is harmless.
    l.stopper.stop(Duration::from_secs(30)).await;
}

#[actix_rt::test]
async fn a_group_that_ignores_sigterm_is_killed_after_the_grace() {
    let root = tempfile::tempdir().unwrap();
    let launcher = ProcessLauncher::new(root.path()).unwrap();
    let ready = ready_file(root.path(), "stubborn");
    let mut spec = script_spec(
        "stubborn",
        &root.path().join("stubborn"),
        None,
        &sleeper_script("trap '' TERM"),
    );
    spec.env.push(("READY".into(), ready.display().to_string()));
    let l = launcher.launch(spec).await.unwrap();
    wait_until("the script is ready", || ready.exists()).await;
    let child = read_pid(&ready).unwrap();

    let exited = l.exited;
    l.stopper.stop(Duration::from_millis(200)).await;
    let exit = within("the exit", exited).await;
    assert_eq!(
        exit,
        ExitInfo {
            code: None,
            signal: Some(9)
        },
        "SIGKILLed: {exit}"
    );
    assert!(group_pids(l.pid as i32).is_empty());
    assert!(!alive(child));
}

#[actix_rt::test]
async fn an_exit_is_reported_and_the_rest_of_the_group_killed() {
    let root = tempfile::tempdir().unwrap();
    let launcher = ProcessLauncher::new(root.path()).unwrap();
    let ready = ready_file(root.path(), "crashy");
    // Leaves a background child behind and exits with 3, like a crashing server.
    let script = "sleep 1000 &\necho $! > \"$READY.tmp\" && mv \"$READY.tmp\" \"$READY\"\nexit 3";
    let mut spec = script_spec("crashy", &root.path().join("crashy"), None, script);
    spec.env.push(("READY".into(), ready.display().to_string()));
    let l = launcher.launch(spec).await.unwrap();
    let exit = within("the exit", l.exited).await;
    assert_eq!(
        exit,
        ExitInfo {
            code: Some(3),
            signal: None
        }
    );
    let straggler = read_pid(&ready).unwrap();
    assert!(!alive(straggler), "the leader's leftover child was killed");
    assert!(group_pids(l.pid as i32).is_empty());
    // Stopping a dead instance is fine and removes its record.
    l.stopper.stop(Duration::from_secs(1)).await;
    assert!(!root.path().join("instances/crashy.json").exists());
}

#[actix_rt::test]
async fn an_explicit_port_is_used_and_a_taken_one_refused() {
    let root = tempfile::tempdir().unwrap();
    let launcher = ProcessLauncher::new(root.path()).unwrap();
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let mut spec = script_spec("fixed", &root.path().join("fixed"), None, "exec sleep 1000");
    spec.port = port;
    let l = launcher.launch(spec.clone()).await.unwrap();
    assert_eq!(l.port, port);

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut other = script_spec("other", &root.path().join("other"), None, "exec sleep 1000");
    other.port = taken.local_addr().unwrap().port();
    match launcher.launch(other).await {
        Err(LaunchError::Port { instance, reason }) => {
            assert_eq!(instance.0, "other");
            assert!(reason.contains("not free"), "{reason}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("launched on a taken port"),
    }
    l.stopper.stop(Duration::from_secs(30)).await;
}

#[actix_rt::test]
async fn spawn_errors_name_the_command_and_the_reason() {
    let root = tempfile::tempdir().unwrap();
    let launcher = ProcessLauncher::new(root.path()).unwrap();
    let mut spec = script_spec("gpu0", &root.path().join("gpu0"), None, "");
    spec.command = vec!["/nonexistent/python3".into(), "main.py".into()];
    let message = match launcher.launch(spec.clone()).await {
        Err(e @ LaunchError::Spawn { .. }) => e.to_string(),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("launched a missing program"),
    };
    assert!(
        message.contains("`/nonexistent/python3 main.py`"),
        "{message}"
    );
    assert!(message.contains("No such file or directory"), "{message}");
    assert!(message.contains("comfyui.command"), "{message}");
    assert!(!root.path().join("instances/gpu0.json").exists());

    spec.command = vec![];
    let message = launcher
        .launch(spec.clone())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("the command is empty"), "{message}");

    spec.command = vec!["sh".into()];
    spec.working_dir = Some(root.path().join("no-comfyui-here"));
    let message = launcher
        .launch(spec.clone())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("no-comfyui-here") && message.contains("does not exist"),
        "{message}"
    );

    spec.working_dir = None;
    spec.instance = comfy_fleet_actors::InstanceId::new("../evil");
    let message = launcher.launch(spec).await.err().unwrap().to_string();
    assert!(message.contains("\"../evil\""), "{message}");
}
