//! The application entry point and its shutdown path, in-process: `App::start` on a real fleet
//! of `fake-comfyui` child processes, one job followed through `FleetHandle::follow`, then the
//! stop asked for through the shutdown module: the drain deadline and a second request both end
//! a job that would run for an hour, `/readyz` says the program is stopping, and no instance
//! process outlives the application.

mod support;

use std::path::Path;
use std::time::Duration;

use comfy_fleet::app::App;
use comfy_fleet::config::{Config, DiscoveryMode};
use comfy_fleet::fleet::submit::{JobRequest, JobSource, submit};
use comfy_fleet::shutdown::{self, ShutdownTrigger};
use comfy_fleet_actors::scheduling::SHUTDOWN_RUNNING;
use comfy_fleet_actors::{JobEvent, JobId, UserId};
use futures_util::StreamExt;
use support::processes::processes_mentioning;
use support::waits::SAFETY;
use support::{FAKE_COMFYUI, workflows_dir};

fn config(dir: &Path, node_time: &str, drain: Duration) -> Config {
    let mut c = Config::default();
    c.comfyui.state_dir = dir.join("state");
    c.comfyui.command = vec![
        FAKE_COMFYUI.to_string(),
        "--fake-node-time".into(),
        node_time.into(),
        "--fake-step-time".into(),
        "0ms".into(),
    ];
    c.workflows.dir = workflows_dir();
    c.logging.metrics_interval = Duration::ZERO;
    c.gpus.discovery = DiscoveryMode::Declared;
    c.gpus.cpu_instances = 1;
    c.lifecycle.stop_grace = Duration::from_secs(5);
    c.shutdown.drain_timeout = drain;
    c
}

/// The application with its API on 127.0.0.1:0, ready to take jobs.
async fn start(config: Config) -> (App, ShutdownTrigger) {
    let (trigger, shutdown) = shutdown::channel();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app = App::start(config, Some(listener), shutdown).await.unwrap();
    tokio::time::timeout(SAFETY, app.ready())
        .await
        .expect("ready in time")
        .unwrap();
    (app, trigger)
}

async fn submit_demo(app: &App) -> JobId {
    let request = JobRequest {
        user: UserId::new("tester"),
        roles: Vec::new(),
        source: JobSource::Template("demo".into()),
        params: Default::default(),
        images: Vec::new(),
        uploads: Vec::new(),
        extra_data: serde_json::json!({}),
    };
    submit(app.fleet(), request).await.unwrap().job
}

/// Follows the job until it started on an instance.
async fn until_started(events: &mut (impl futures_util::Stream<Item = JobEvent> + Unpin)) {
    loop {
        match tokio::time::timeout(SAFETY, events.next()).await.unwrap() {
            Some(JobEvent::Started { .. }) => return,
            Some(e) if e.is_final() => panic!("the job ended before it started: {e:?}"),
            Some(_) => {}
            None => panic!("the stream ended before the job started"),
        }
    }
}

/// The pids of the instance processes launched for this test's state folder that still run.
fn instance_processes(dir: &Path) -> Vec<i32> {
    processes_mentioning(dir)
        .into_iter()
        .map(|p| p.pid)
        .collect()
}

#[actix_rt::test]
async fn a_job_is_followed_from_queued_to_done_and_its_output_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _trigger) = start(config(dir.path(), "10ms", Duration::from_secs(5))).await;
    let job = submit_demo(&app).await;
    let events: Vec<JobEvent> =
        tokio::time::timeout(SAFETY, app.fleet().follow(job).await.unwrap().collect())
            .await
            .unwrap();
    assert!(
        matches!(events.first(), Some(JobEvent::Queued { .. })),
        "{events:?}"
    );
    let Some(JobEvent::Done { outputs, .. }) = events.last() else {
        panic!("the stream ends with Done: {events:?}");
    };
    assert!(events.iter().any(|e| matches!(e, JobEvent::Started { .. })));
    assert_eq!(outputs.len(), 1);
    let (output, png) = app.fleet().output(job, 0).await.unwrap();
    assert!(output.filename.ends_with(".png"), "{output:?}");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let missing = app.fleet().output(job, 3).await.unwrap_err().to_string();
    assert!(missing.contains("index 3"), "{missing}");
    // Following a finished job replays its story and ends.
    let replay: Vec<JobEvent> = app.fleet().follow(job).await.unwrap().collect().await;
    assert!(matches!(replay.last(), Some(JobEvent::Done { .. })));
    app.stop().await;
    assert!(instance_processes(dir.path()).is_empty());
}

#[actix_rt::test]
async fn the_drain_deadline_ends_a_job_that_would_outlive_it() {
    let dir = tempfile::tempdir().unwrap();
    let (app, trigger) = start(config(dir.path(), "1h", Duration::from_millis(300))).await;
    let job = submit_demo(&app).await;
    let mut events = app.fleet().follow(job).await.unwrap();
    until_started(&mut events).await;
    let base = format!("http://{}", app.api_addr().unwrap());

    trigger.request("test");
    // Once a stop is asked for, the API says the program is stopping.
    let readyz = awc::Client::default()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status().as_u16(), 503);
    let stopping = actix_rt::spawn(app.run());
    tokio::time::timeout(SAFETY, stopping)
        .await
        .expect("the drain deadline ends the stop")
        .unwrap();
    let rest: Vec<JobEvent> = events.collect().await;
    match rest.last() {
        Some(JobEvent::Failed { message, .. }) => assert_eq!(message, SHUTDOWN_RUNNING),
        other => panic!("the job is told the fleet shut down: {other:?} in {rest:?}"),
    }
    assert!(instance_processes(dir.path()).is_empty());
}

#[actix_rt::test]
async fn a_second_request_stops_without_waiting_for_the_drain() {
    let dir = tempfile::tempdir().unwrap();
    // A drain deadline of an hour: only the second request can end this stop in time.
    let (app, trigger) = start(config(dir.path(), "1h", Duration::from_secs(3600))).await;
    let job = submit_demo(&app).await;
    let mut events = app.fleet().follow(job).await.unwrap();
    until_started(&mut events).await;

    trigger.request("first");
    let stopping = actix_rt::spawn(app.run());
    trigger.request("second");
    tokio::time::timeout(SAFETY, stopping)
        .await
        .expect("the second request ends the stop")
        .unwrap();
    let rest: Vec<JobEvent> = events.collect().await;
    match rest.last() {
        Some(JobEvent::Failed { message, .. }) => assert_eq!(message, SHUTDOWN_RUNNING),
        other => panic!("the job is told the fleet shut down: {other:?} in {rest:?}"),
    }
    assert!(instance_processes(dir.path()).is_empty());
}

#[actix_rt::test]
async fn a_second_fleet_on_the_same_state_folder_is_refused_before_it_touches_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _trigger) = start(config(dir.path(), "10ms", Duration::from_secs(5))).await;
    let running = instance_processes(dir.path());
    assert_eq!(running.len(), 1);
    let (_t, shutdown) = shutdown::channel();
    let err = match App::start(
        config(dir.path(), "10ms", Duration::from_secs(5)),
        None,
        shutdown,
    )
    .await
    {
        Ok(_) => panic!("a second fleet started on the same state folder"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("another comfy-fleet") && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    // The first fleet's instance was left alone and still serves.
    assert_eq!(instance_processes(dir.path()), running);
    let job = submit_demo(&first).await;
    let events: Vec<JobEvent> = first.fleet().follow(job).await.unwrap().collect().await;
    assert!(
        matches!(events.last(), Some(JobEvent::Done { .. })),
        "{events:?}"
    );
    first.stop().await;
}
