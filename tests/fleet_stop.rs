//! Stopping `comfy-fleet serve`: SIGTERM drains running jobs, refuses new ones and leaves no
//! process behind; SIGKILL leaves no fake-comfyui running (parent-death signal), and the next
//! start on the same state folder deletes the job uploads the killed run left (a job that has
//! run takes its own upload with it).

mod support;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use serde_json::json;
use support::fleet_process::*;
use support::http_client::*;
use support::log_lines::has_all;
use support::processes::*;
use support::templates::blur_template;

fn png_bytes() -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 16) as u8, (y * 16) as u8, 90])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Submits the blur template with an image through a multipart POST; returns the job id.
fn submit_image_job(fleet: &FleetProcess) -> String {
    let request = json!({"template": "blur"}).to_string();
    let png = png_bytes();
    let answer = fleet.post_multipart(
        "/v1/jobs",
        &[
            ("request", None, "application/json", request.as_bytes()),
            ("image", Some("photo.png"), "image/png", &png),
        ],
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
    answer.json()["id"].as_str().unwrap().to_string()
}

/// The files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn sigterm_stops_the_fleet_with_exit_0_and_leaves_no_process() {
    let root = tempfile::tempdir().unwrap();
    let mut fleet = FleetProcess::start(&FleetSpec::new(2, &[]), root.path());
    fleet.wait_status("2 ready instances", |s| count_phase(s, "ready") == 2);
    let state = fleet.state_dir.display().to_string();
    eprintln!("[ps before stop]\n{}", ps_lines(&state));
    assert_eq!(fleet.processes().len(), 2, "{:#?}", fleet.processes());

    fleet.signal(Signal::SIGTERM);
    let exit = fleet.wait_exit();
    assert_eq!(
        exit.code(),
        Some(0),
        "{exit:?}; log:\n{}",
        fleet.log.tail(40)
    );
    let after = ps_lines(&state);
    eprintln!("[ps after stop]\n{after}");
    // Already gone when comfy-fleet has exited: the stop waits for every process.
    assert!(fleet.processes().is_empty(), "{:#?}", fleet.processes());
    fleet.log.wait_for("the stop confirmation", |l| {
        l.contains("fleet stopped: every instance has exited")
    });
    for k in 0..2 {
        fleet.log.wait_for("the stop of each instance", |l| {
            l.contains("stopped (exit code 0)") && l.contains(&format!("instance=gpu{k}"))
        });
    }
    assert!(
        files_under(&fleet.state_dir.join("instances")).is_empty(),
        "the records of a clean stop are removed"
    );
}

#[test]
fn sigkill_leaves_no_fake_running_and_the_next_start_deletes_the_uploads_it_left() {
    let root = tempfile::tempdir().unwrap();
    let workflows = root.path().join("workflows");
    blur_template(&workflows);
    // The job's node takes an hour: it is running, its image uploaded, when the kill comes.
    let slow = FleetSpec::new(1, &["--fake-node-time", "1h"]).workflows(&workflows);
    let mut fleet = FleetProcess::start(&slow, root.path());
    fleet.wait_status("gpu0 ready", |s| count_phase(s, "ready") == 1);
    let fake = fleet.instance_process("gpu0").unwrap();

    let job = submit_image_job(&fleet);
    let job_dir = fleet.state_dir.join("gpu0/input/fleet").join(&job);
    support::waits::wait_until_blocking("the job's upload", || !files_under(&job_dir).is_empty());
    let uploads = files_under(&job_dir);
    assert_eq!(
        uploads.len(),
        1,
        "the job's image, in the job's own folder: {uploads:?}"
    );
    let upload = uploads[0].clone();
    let manifest =
        std::fs::read_to_string(fleet.state_dir.join("gpu0/ephemeral-files.jsonl")).unwrap();
    assert!(
        manifest.contains(upload.to_str().unwrap()),
        "the upload is recorded as ephemeral: {manifest}"
    );

    fleet.signal(Signal::SIGKILL);
    let exit = fleet.wait_exit();
    assert_eq!(exit.code(), None, "killed by a signal: {exit:?}");
    // The parent-death signal takes the fake down with comfy-fleet.
    wait_no_processes(&fleet.state_dir);
    assert!(cmdline(fake.pid).is_empty(), "fake {} survives", fake.pid);
    assert!(upload.exists(), "nobody cleaned up after a SIGKILL");
    drop(fleet);

    // The next start on the same state folder deletes what the killed run left.
    let spec = FleetSpec::new(1, &[]).workflows(&workflows);
    let mut fleet = FleetProcess::start(&spec, root.path());
    let sweep = fleet
        .log
        .wait_for("the start-up sweep", |l| l.contains("start-up sweep done"));
    assert!(sweep.contains("ephemeral_removed=1"), "{sweep}");
    assert!(sweep.contains("records_removed=1"), "{sweep}");
    assert!(!upload.exists(), "{upload:?} survived the start-up sweep");
    fleet.wait_status("gpu0 ready", |s| count_phase(s, "ready") == 1);

    // A job's upload goes as soon as the job has run.
    let job = submit_image_job(&fleet);
    assert_eq!(fleet.wait_finished(&job)["state"], "done");
    let leftovers = files_under(&fleet.state_dir.join("gpu0/input"));
    assert!(
        leftovers.is_empty(),
        "uploads outlived their job: {leftovers:?}"
    );
    fleet.signal(Signal::SIGTERM);
    assert_eq!(fleet.wait_exit().code(), Some(0));
    assert!(fleet.processes().is_empty(), "{:#?}", fleet.processes());
}

#[test]
fn sigterm_under_load_finishes_or_reports_every_job_and_leaves_nothing_behind() {
    let root = tempfile::tempdir().unwrap();
    let workflows = root.path().join("workflows");
    blur_template(&workflows);
    // Two instances, two jobs each at a time, nodes of 300 ms: with 16 jobs submitted, four run
    // and twelve wait when the signal comes.
    let spec = FleetSpec::new(2, &["--fake-node-time", "300ms"])
        .workflows(&workflows)
        .set("scheduler", "pipeline_depth", "2")
        .set("limits", "user_concurrent", "0")
        .set("limits", "per_user", "[{ jobs = 1000, per = \"1m\" }]");
    let mut fleet = FleetProcess::start(&spec, root.path());
    fleet.wait_status("2 ready instances", |s| count_phase(s, "ready") == 2);
    let jobs: Vec<String> = (0..16).map(|_| submit_image_job(&fleet)).collect();
    // Each job followed by a client from before the signal to its end.
    let followers: Vec<_> = jobs
        .iter()
        .map(|job| {
            let (addr, path) = (fleet.addr, format!("/v1/jobs/{job}/events"));
            std::thread::spawn(move || http(addr, "GET", &path, None))
        })
        .collect();
    fleet.wait_status("four jobs running", |s| s["jobs"]["running"] == 4);

    fleet.signal(Signal::SIGTERM);
    fleet.wait_status("the drain in status", |s| s["shutting_down"] == true);
    let request = json!({"template": "blur"}).to_string();
    let refused = fleet.post_multipart(
        "/v1/jobs",
        &[
            ("request", None, "application/json", request.as_bytes()),
            ("image", Some("late.png"), "image/png", &png_bytes()),
        ],
    );
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(
        refused.json()["error"]["message"],
        "the fleet is shutting down and takes no new jobs"
    );
    let ready = fleet.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());

    // Every job ends: the running ones done, the waiting ones told why they did not run.
    let (mut done, mut reported) = (0, 0);
    for (job, follower) in jobs.iter().zip(followers) {
        let events = follower.join().unwrap().text();
        if events.contains("event: done") {
            done += 1;
        } else {
            assert!(
                events.contains("event: failed")
                    && events.contains("the fleet shut down before this job ran; submit it again"),
                "job {job}: {events}"
            );
            reported += 1;
        }
    }
    assert_eq!(done + reported, jobs.len());
    assert!(done >= 4, "the jobs running at the signal finished: {done}");
    eprintln!(
        "[figure] drain under load: {done} jobs finished, {reported} waiting jobs reported, of {}",
        jobs.len()
    );

    let exit = fleet.wait_exit();
    assert_eq!(
        exit.code(),
        Some(0),
        "{exit:?}; log:\n{}",
        fleet.log.tail(40)
    );
    assert!(fleet.processes().is_empty(), "{:#?}", fleet.processes());
    // No upload, no manifest of ephemeral files, no record of a running instance is left.
    let left: Vec<PathBuf> = files_under(&fleet.state_dir)
        .into_iter()
        .filter(|p| {
            let text = p.to_string_lossy();
            text.contains("/input/")
                || text.ends_with("ephemeral-files.jsonl")
                || text.contains("/instances/")
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn sigterm_drains_a_running_job_and_refuses_new_ones_before_exiting() {
    let root = tempfile::tempdir().unwrap();
    // Four nodes of 1 s: the job is still running when the signal arrives.
    let spec = FleetSpec::new(1, &["--fake-node-time", "1s"]);
    let mut fleet = FleetProcess::start(&spec, root.path());
    fleet.wait_status("gpu0 ready", |s| count_phase(s, "ready") == 1);

    let job = fleet.submit(&json!({"template": "demo", "params": {"width": 64}}));
    // Follow the job's events as a client would, from before the signal to the job's end.
    let addr = fleet.addr;
    let events_path = format!("/v1/jobs/{job}/events");
    let follower = std::thread::spawn(move || http(addr, "GET", &events_path, None));
    fleet.log.wait_for(
        "the prompt reaching ComfyUI",
        has_all(&["instance=gpu0", "got prompt"]),
    );

    fleet.signal(Signal::SIGTERM);
    fleet
        .log
        .wait_for("the drain", |l| l.contains("stopping: no new jobs"));
    fleet.wait_status("the drain in status", |s| s["shutting_down"] == true);
    let refused = fleet.post_json(
        "/v1/jobs",
        &json!({"template": "demo", "params": {"width": 64}}),
    );
    assert_eq!(refused.status, 503, "{}", refused.text());
    let error = refused.json();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("shutting down and takes no new jobs"),
        "{error:#}"
    );

    let events = follower.join().unwrap();
    assert_eq!(events.status, 200);
    let events = events.text();
    assert!(
        events.contains("event: done"),
        "the running job finished: {events}"
    );
    assert!(!events.contains("event: failed"), "{events}");
    let exit = fleet.wait_exit();
    assert_eq!(
        exit.code(),
        Some(0),
        "{exit:?}; log:\n{}",
        fleet.log.tail(40)
    );
    assert!(fleet.processes().is_empty(), "{:#?}", fleet.processes());
    // The job ended before the instance was stopped.
    let lines = fleet.log.lines();
    let done_at = lines
        .iter()
        .position(|l| l.contains("job ended") && l.contains(&job) && l.contains("\"done\""))
        .unwrap_or_else(|| panic!("no `job ended` line; log:\n{}", fleet.log.tail(60)));
    let stop_at = lines
        .iter()
        .position(|l| {
            l.contains("SIGTERM sent to the process group") && l.contains("instance=gpu0")
        })
        .unwrap();
    assert!(
        done_at < stop_at,
        "the instance was stopped before the job ended"
    );
}

#[test]
fn a_second_sigterm_stops_the_instances_without_waiting_for_running_jobs() {
    let root = tempfile::tempdir().unwrap();
    // Nodes of an hour: only the second signal can end this drain early.
    let spec =
        FleetSpec::new(1, &["--fake-node-time", "1h"]).set("shutdown", "drain_timeout", "\"1h\"");
    let mut fleet = FleetProcess::start(&spec, root.path());
    fleet.wait_status("gpu0 ready", |s| count_phase(s, "ready") == 1);
    let job = fleet.submit(&json!({"template": "demo", "params": {"width": 64}}));
    fleet.log.wait_for(
        "the prompt reaching ComfyUI",
        has_all(&["instance=gpu0", "got prompt"]),
    );

    fleet.signal(Signal::SIGTERM);
    fleet
        .log
        .wait_for("the drain", |l| l.contains("stopping: no new jobs"));
    fleet.signal(Signal::SIGTERM);
    fleet
        .log
        .wait_for("the second signal", |l| l.contains("stopping now"));
    let exit = fleet.wait_exit();
    assert_eq!(
        exit.code(),
        Some(0),
        "{exit:?}; log:\n{}",
        fleet.log.tail(40)
    );
    assert!(fleet.processes().is_empty(), "{:#?}", fleet.processes());
    let ended = fleet
        .log
        .matching(|l| l.contains("job ended") && l.contains(&job));
    assert!(
        !ended.iter().any(|l| l.contains("\"done\"")),
        "the hour-long job cannot have finished: {ended:?}"
    );
}

#[test]
fn a_taken_http_address_fails_before_any_instance_starts() {
    let root = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let spec = FleetSpec::new(2, &[]);
    let state = root.path().join("state");
    let config = root.path().join("fleet.toml");
    std::fs::write(&config, spec.toml(&state)).unwrap();
    let out = std::process::Command::new(support::COMFY_FLEET)
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", &addr.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(processes_mentioning(&state).is_empty());
    let records = state.join("instances");
    assert!(
        !records.read_dir().is_ok_and(|mut d| d.next().is_some()),
        "an instance was launched"
    );
}
