//! The operators' operations through the application (`App::start` on two `fake-comfyui` child
//! processes, one job per instance at a time): draining an instance lets its job finish, sends
//! the next jobs to the other instance and stops its process; restarting brings it back ready
//! with a fresh process, and a restart under a job retries that job on the other instance;
//! pausing the queue holds new jobs until it is resumed; the metrics line says all of it.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use comfy_fleet::app::App;
use comfy_fleet::config::{Config, DiscoveryMode};
use comfy_fleet::fleet::FleetHandle;
use comfy_fleet::fleet::submit::{JobRequest, JobSource, submit};
use comfy_fleet::shutdown;
use comfy_fleet_actors::job::JobState;
use comfy_fleet_actors::messages::{GetSchedulerSnapshot, InstancePhase};
use comfy_fleet_actors::{InstanceId, JobEvent, JobId, UserId};
use futures_util::StreamExt;
use serde_json::json;
use support::processes::processes_mentioning;
use support::waits::{wait_until, within};
use support::{FAKE_COMFYUI, workflows_dir};

fn config(dir: &Path) -> Config {
    let mut c = Config::default();
    c.comfyui.state_dir = dir.join("state");
    c.comfyui.command = vec![
        FAKE_COMFYUI.to_string(),
        // Long enough for a job to be running while the operator acts.
        "--fake-node-time".into(),
        "150ms".into(),
        "--fake-step-time".into(),
        "50ms".into(),
    ];
    c.workflows.dir = workflows_dir();
    c.logging.metrics_interval = Duration::ZERO;
    c.gpus.discovery = DiscoveryMode::Declared;
    c.gpus.cpu_instances = 2;
    c.scheduler.pipeline_depth = 1;
    c.limits.exempt_users = vec![UserId::new("operator")];
    c.lifecycle.stop_grace = Duration::from_secs(5);
    c.shutdown.drain_timeout = Duration::from_secs(5);
    c
}

async fn submit_demo(fleet: &FleetHandle, seed: u64) -> JobId {
    submit_template(
        fleet,
        "demo",
        json!({"seed": seed, "width": 64, "height": 64}),
    )
    .await
}

async fn submit_template(fleet: &FleetHandle, template: &str, params: serde_json::Value) -> JobId {
    let params: BTreeMap<String, serde_json::Value> = serde_json::from_value(params).unwrap();
    let request = JobRequest {
        user: UserId::new("operator"),
        roles: Vec::new(),
        source: JobSource::Template(template.into()),
        params,
        images: Vec::new(),
        uploads: Vec::new(),
        extra_data: json!({}),
    };
    submit(fleet, request).await.unwrap().job
}

/// Follows `job` until it starts; returns where.
async fn started_on(
    events: &mut (impl futures_util::Stream<Item = JobEvent> + Unpin),
) -> InstanceId {
    loop {
        match within("the job to start", events.next()).await {
            Some(JobEvent::Started { instance, .. }) => return instance,
            Some(e) if e.is_final() => panic!("the job ended before it started: {e:?}"),
            Some(_) => {}
            None => panic!("the stream ended before the job started"),
        }
    }
}

/// Every event of `job` until its final one, which must be `Done`.
async fn until_done(fleet: &FleetHandle, job: JobId) -> Vec<JobEvent> {
    let events: Vec<JobEvent> = within(
        "the job to finish",
        fleet.follow(job).await.unwrap().collect(),
    )
    .await;
    assert!(
        matches!(events.last(), Some(JobEvent::Done { .. })),
        "{events:?}"
    );
    events
}

fn instance_of(fleet: &FleetHandle, job: JobId) -> InstanceId {
    fleet.table.get(job).unwrap().instance.unwrap()
}

async fn wait_phase(fleet: &FleetHandle, id: &InstanceId, phase: InstancePhase) {
    within(
        &format!("{id} to be {}", phase.name()),
        fleet
            .phases
            .wait_until(|board| board.get(id).is_some_and(|v| v.phase == phase)),
    )
    .await;
}

/// The pids of the fake-comfyui processes launched for instance `id`.
fn processes_of(state: &Path, id: &InstanceId) -> Vec<i32> {
    let folder: PathBuf = state.join(&id.0);
    processes_mentioning(&folder)
        .into_iter()
        .map(|p| p.pid)
        .collect()
}

#[actix_rt::test]
async fn drain_restart_and_pause_through_the_application() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (_trigger, stop) = shutdown::channel();
    let app = App::start(config(dir.path()), None, stop).await.unwrap();
    let fleet = app.fleet().clone();
    within(
        "both instances to be ready",
        fleet
            .phases
            .wait_until(|b| b.len() == 2 && b.values().all(|v| v.phase.accepts_jobs())),
    )
    .await;

    // Drain the instance running a job: the job finishes there, later jobs go to the other.
    let first = submit_demo(&fleet, 1).await;
    let mut events = fleet.follow(first).await.unwrap();
    let drained = started_on(&mut events).await;
    let other = fleet
        .phases
        .snapshot()
        .into_keys()
        .find(|id| *id != drained)
        .unwrap();
    let old_pids = processes_of(&state, &drained);
    assert_eq!(old_pids.len(), 1, "one process per instance");
    let unknown = fleet.drain_instance("gpu42").await.unwrap_err().to_string();
    assert!(
        unknown.contains("`gpu42`") && unknown.contains(&drained.0) && unknown.contains(&other.0),
        "{unknown}"
    );
    fleet.drain_instance(&drained.0).await.unwrap();
    let second = submit_demo(&fleet, 2).await;
    let third = submit_demo(&fleet, 3).await;
    until_done(&fleet, first).await;
    assert_eq!(instance_of(&fleet, first), drained);
    until_done(&fleet, second).await;
    until_done(&fleet, third).await;
    assert_eq!(instance_of(&fleet, second), other);
    assert_eq!(instance_of(&fleet, third), other, "not on the drained one");
    // It stops its process and stays stopped.
    wait_phase(&fleet, &drained, InstancePhase::Stopped).await;
    wait_until("the drained instance's process to exit", || {
        processes_of(&state, &drained).is_empty()
    })
    .await;
    let line = fleet.metrics_line().await.unwrap();
    assert!(line.contains("instances: 1 ready, 1 stopped"), "{line}");
    assert!(line.contains("done 3"), "{line}");

    // Restart brings it back, ready, with a fresh process.
    fleet.restart_instance(&drained.0).await.unwrap();
    wait_phase(&fleet, &drained, InstancePhase::Ready).await;
    let new_pids = processes_of(&state, &drained);
    assert_eq!(new_pids.len(), 1);
    assert_ne!(new_pids, old_pids);

    // A restart under a job (a sampler's 20 steps keep it running): the job is retried on the
    // other instance and finishes there.
    let fourth = submit_template(
        &fleet,
        "generate",
        json!({"prompt": "a lighthouse", "steps": 20, "width": 512, "height": 512}),
    )
    .await;
    let mut events = fleet.follow(fourth).await.unwrap();
    let busy = started_on(&mut events).await;
    fleet.restart_instance(&busy.0).await.unwrap();
    let rest: Vec<JobEvent> = within("the retried job to finish", events.collect()).await;
    let reason = rest
        .iter()
        .find_map(|e| match e {
            JobEvent::Retrying { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the job is retried: {rest:?}"));
    assert!(reason.contains("operator restart"), "{reason}");
    assert!(
        matches!(rest.last(), Some(JobEvent::Done { .. })),
        "{rest:?}"
    );
    assert_ne!(instance_of(&fleet, fourth), busy);
    wait_phase(&fleet, &busy, InstancePhase::Ready).await;

    // Pause: a job is taken and queued, not started, until resumed.
    let pause = fleet.pause().await.unwrap();
    assert!(pause.paused && pause.changed);
    let held = submit_demo(&fleet, 5).await;
    assert_eq!(fleet.table.state(held), Some(JobState::Queued));
    let snapshot = fleet.scheduler.send(GetSchedulerSnapshot).await.unwrap();
    assert!(snapshot.paused && snapshot.queue_depth == 1);
    let line = fleet.metrics_line().await.unwrap();
    assert!(line.starts_with("queue 1 (paused)"), "{line}");
    let resumed = fleet.resume().await.unwrap();
    assert!(!resumed.paused && resumed.changed);
    until_done(&fleet, held).await;

    app.stop().await;
    assert!(processes_mentioning(&state).is_empty());
}
