//! How `comfy-fleet serve` recovers from instances that fail, with real fake-comfyui processes:
//! a killed process is restarted with backoff, a crash loop ends in quarantine, a hung job trips
//! the watchdog, a slow starter hits the readiness timeout, and a job whose instance is killed
//! under it finishes on another instance.

mod support;

use std::time::Instant;

use nix::sys::signal::Signal;
use serde_json::json;
use support::fleet_process::*;
use support::processes::*;

/// A log line about `instance` entering phase `to`.
fn transition<'a>(instance: &'a str, to: &'a str) -> impl Fn(&str) -> bool + 'a {
    move |line| {
        line.contains("instance transition")
            && line.contains(&format!("instance={instance} "))
            && line.contains(&format!("to=\"{to}\""))
    }
}

/// A log line saying `instance`'s process was launched.
fn launched(instance: &str) -> impl Fn(&str) -> bool + '_ {
    move |line| line.contains("launched `") && line.contains(&format!("instance={instance} "))
}

#[test]
fn a_killed_instance_is_restarted_with_backoff_on_a_new_process() {
    let root = tempfile::tempdir().unwrap();
    let fleet = FleetProcess::start(&FleetSpec::new(2, &[]), root.path());
    fleet.wait_status("2 ready instances", |s| count_phase(s, "ready") == 2);
    let victim = fleet.instance_process("gpu0").unwrap();
    let bystander = fleet.instance_process("gpu1").unwrap();

    send_signal(victim.pid, Signal::SIGKILL);
    let killed_at = Instant::now();

    let restart = fleet
        .log
        .wait_for("the restart of gpu0", transition("gpu0", "restarting"));
    assert!(
        restart.contains("restart 1 after: process exited (signal 9)"),
        "{restart}"
    );
    assert!(
        restart.contains("next_attempt_in=") && !restart.contains("next_attempt_in=\"-\""),
        "the backoff delay is logged: {restart}"
    );

    let status = fleet.wait_status("gpu0 ready on a new process", |s| {
        instance_in(s, "gpu0")["phase"] == "ready"
            && fleet
                .instance_process("gpu0")
                .is_some_and(|p| p.pid != victim.pid)
    });
    eprintln!(
        "[figure] crash-to-ready (kill -9 of gpu0's fake to gpu0 ready again): {:?}",
        killed_at.elapsed()
    );
    let reborn = fleet.instance_process("gpu0").unwrap();
    let url = instance_in(&status, "gpu0")["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        url,
        format!("http://127.0.0.1:{}", reborn.arg("--port").unwrap()),
        "the status reports the new process's port"
    );
    eprintln!(
        "gpu0: pid {} port {} -> pid {} port {}",
        victim.pid,
        victim.arg("--port").unwrap(),
        reborn.pid,
        reborn.arg("--port").unwrap()
    );
    assert_eq!(fleet.log.matching(launched("gpu0")).len(), 2);
    assert_eq!(
        fleet.instance_process("gpu1").map(|p| p.pid),
        Some(bystander.pid),
        "the other instance was left alone"
    );
    assert_eq!(fleet.log.matching(launched("gpu1")).len(), 1);

    // The restarted instance serves jobs again (gpu1 may take it; both are fine).
    let job = fleet.submit(&json!({"template": "demo", "params": {"width": 64}}));
    assert_eq!(fleet.wait_finished(&job)["state"], "done");
}

#[test]
fn a_crash_loop_ends_in_quarantine() {
    let root = tempfile::tempdir().unwrap();
    let spec = FleetSpec::new(1, &["--fake-refuse-port"])
        .set("lifecycle.restart_intensity", "max_restarts", "2")
        .set("lifecycle.restart_intensity", "period", "\"10m\"")
        .set("lifecycle.restart_intensity", "cooldown", "\"10m\"")
        .set("lifecycle.backoff", "initial", "\"50ms\"");
    let fleet = FleetProcess::start(&spec, root.path());

    let status = fleet.wait_status("gpu0 quarantined", |s| {
        instance_in(s, "gpu0")["phase"] == "quarantined"
    });
    let gpu0 = instance_in(&status, "gpu0");
    let detail = gpu0["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("3 crashes") && detail.contains("GPU excluded"),
        "{gpu0:#}"
    );
    assert!(
        detail.contains("exit code 1"),
        "the last cause is named: {detail}"
    );
    assert_eq!(
        fleet.log.matching(launched("gpu0")).len(),
        3,
        "three crashes, three launches (the third crash quarantines instead of restarting)"
    );
    assert_eq!(
        fleet.log.matching(transition("gpu0", "restarting")).len(),
        2
    );
    // The refusal the process printed reaches the operator.
    fleet.log.wait_for("the process's own error", |l| {
        l.contains("instance=gpu0") && l.contains("is already in use")
    });

    let ready = fleet.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("quarantined"), "{}", ready.text());
    assert!(fleet.processes().is_empty(), "{:#?}", fleet.processes());
}

#[test]
fn a_hung_job_trips_the_watchdog_which_restarts_the_instance_and_retries_the_job() {
    let root = tempfile::tempdir().unwrap();
    // Every fake hangs after its first node, so the retry on the fresh process hangs too and
    // the job fails once its retry is spent: deterministic with one instance.
    let spec = FleetSpec::new(1, &["--fake-hang-after-nodes", "1"])
        .set("lifecycle", "job_silence", "\"2s\"")
        .set("scheduler", "max_retries", "1");
    let fleet = FleetProcess::start(&spec, root.path());
    fleet.wait_status("gpu0 ready", |s| count_phase(s, "ready") == 1);
    let first = fleet.instance_process("gpu0").unwrap();

    let job = fleet.submit(&json!({"template": "demo", "params": {"width": 64}}));
    let hung = fleet
        .log
        .wait_for("the watchdog's restart", transition("gpu0", "restarting"));
    assert!(
        hung.contains(&format!("job {job} hung")) && hung.contains("restart 1 after"),
        "{hung}"
    );
    // The hung process is replaced by a new one.
    fleet.wait_status("gpu0 ready on a new process", |s| {
        instance_in(s, "gpu0")["phase"] == "ready"
            && fleet
                .instance_process("gpu0")
                .is_some_and(|p| p.pid != first.pid)
    });

    let done = fleet.wait_finished(&job);
    assert_eq!(done["state"], "failed", "{done:#}");
    assert_eq!(
        done["attempt"], 2,
        "retried once on the restarted instance: {done:#}"
    );
    let error = done["error"].as_str().unwrap_or_default();
    assert!(error.contains("sent nothing for 2s"), "{done:#}");
    // The second hang restarts the instance again once the hung process is gone.
    let second = fleet.log.wait_for_count(
        "the second watchdog restart",
        2,
        transition("gpu0", "restarting"),
    );
    assert!(second.contains(&format!("job {job} hung")), "{second}");
    let events = fleet.get(&format!("/v1/jobs/{job}/events")).text();
    assert!(events.contains("event: retrying"), "{events}");
}

#[test]
fn a_slow_starter_hits_the_readiness_timeout_and_is_restarted() {
    let root = tempfile::tempdir().unwrap();
    let spec = FleetSpec::new(1, &["--fake-start-delay", "30s"])
        .set("lifecycle", "readiness_timeout", "\"1s\"")
        .set("lifecycle.backoff", "initial", "\"10s\"")
        .set("lifecycle.backoff", "max", "\"10s\"");
    let fleet = FleetProcess::start(&spec, root.path());
    let slow = fleet.log.wait_for("gpu0's launch", launched("gpu0"));
    let slow_pid: i32 = slow
        .split("pid=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();

    let status = fleet.wait_status("gpu0 restarting after the readiness timeout", |s| {
        instance_in(s, "gpu0")["phase"] == "restarting"
    });
    let gpu0 = instance_in(&status, "gpu0");
    let detail = gpu0["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("not ready within the readiness timeout of 1s"),
        "{gpu0:#}"
    );
    assert!(detail.contains("next attempt in"), "{gpu0:#}");
    assert!(
        fleet.log.matching(transition("gpu0", "ready")).is_empty(),
        "never ready"
    );
    // The process that did not come up in time is stopped, not left behind.
    fleet.wait_status("the slow process gone", |_| {
        cmdline(slow_pid).is_empty() && fleet.instance_process("gpu0").is_none()
    });
    let ready = fleet.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
}

#[test]
fn a_job_whose_instance_is_killed_under_it_finishes_on_the_other_instance() {
    let root = tempfile::tempdir().unwrap();
    let spec = FleetSpec::new(2, &["--fake-node-time", "500ms"]);
    let fleet = FleetProcess::start(&spec, root.path());
    fleet.wait_status("2 ready instances", |s| count_phase(s, "ready") == 2);

    let job = fleet.submit(&json!({"template": "demo", "params": {"width": 64}}));
    // Running means the prompt reached ComfyUI: wait for its first executing node.
    let running = fleet.wait_job(&job, "started executing", |j| {
        j["state"] == "running" && j["instance"].is_string()
    });
    let first = running["instance"].as_str().unwrap().to_string();
    fleet.log.wait_for("the first node executing", |l| {
        l.contains(&format!("instance={first} "))
            && l.contains("stream=")
            && l.contains("got prompt")
    });
    let victim = fleet.instance_process(&first).unwrap();
    send_signal(victim.pid, Signal::SIGKILL);

    let done = fleet.wait_finished(&job);
    assert_eq!(done["state"], "done", "{done:#}");
    assert_eq!(done["attempt"], 2, "{done:#}");
    let other = if first == "gpu0" { "gpu1" } else { "gpu0" };
    assert_eq!(done["instance"], other, "{done:#}");
    assert_eq!(done["outputs"].as_array().unwrap().len(), 1, "{done:#}");
    let events = fleet.get(&format!("/v1/jobs/{job}/events")).text();
    assert!(events.contains("event: retrying"), "{events}");
    assert!(events.contains("event: done"), "{events}");
    // The output is downloadable from the instance that made it.
    let image = fleet.get(&format!("/v1/jobs/{job}/outputs/0"));
    assert_eq!(image.status, 200, "{}", image.text());
    assert!(image.body.starts_with(b"\x89PNG"));
    // And the killed instance came back.
    fleet.wait_status("the killed instance ready again", |s| {
        instance_in(s, &first)["phase"] == "ready"
    });
}
