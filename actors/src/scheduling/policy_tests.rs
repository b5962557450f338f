//! Unit tests of the scheduler policy: fairness, priorities, bounds, placement, retries, cancels,
//! ETAs, retention and shutdown, with time passed in by hand.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::*;
use crate::ids::UserId;
use crate::job::JobOutput;

struct Harness {
    policy: SchedulerPolicy,
    now: Instant,
}

fn spec(user: &str, priority: i32, template: &str, models: &[&str]) -> JobSpec {
    JobSpec {
        id: JobId::new(),
        user: UserId::new(user),
        priority,
        template: template.into(),
        prompt: json!({"3": {"class_type": "KSampler", "inputs": {}, "_meta": {"title": "Sampler"}}}),
        extra_data: json!({}),
        inputs: Vec::new(),
        models: models.iter().map(|m| m.to_string()).collect(),
    }
}

fn id(name: &str) -> InstanceId {
    InstanceId::new(name)
}

fn dispatches(actions: &[SchedulerAction]) -> Vec<(String, JobId, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            SchedulerAction::Dispatch { instance, run } => {
                Some((instance.0.clone(), run.job, run.attempt))
            }
            _ => None,
        })
        .collect()
}

fn events(actions: &[SchedulerAction]) -> Vec<JobEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            SchedulerAction::Notify(event) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn events_of(actions: &[SchedulerAction], job: JobId) -> Vec<JobEvent> {
    events(actions)
        .into_iter()
        .filter(|e| e.job() == job)
        .collect()
}

fn output(name: &str) -> JobOutput {
    JobOutput {
        node_id: "9".into(),
        filename: name.into(),
        subfolder: String::new(),
        kind: "output".into(),
    }
}

fn crash() -> BackendError {
    BackendError::Disconnected("connection reset by peer".into())
}

impl Harness {
    fn new(config: SchedulerConfig, instances: &[&str]) -> Self {
        let now = Instant::now();
        let mut policy = SchedulerPolicy::new(config, now, SystemTime::UNIX_EPOCH);
        for name in instances {
            policy.register_instance(id(name), Some(GpuId(format!("GPU-{name}"))), now);
            policy.instance_update(&id(name), InstancePhase::Ready, None, None, now);
        }
        Self { policy, now }
    }

    fn depth(depth: usize, instances: &[&str]) -> Self {
        Self::new(
            SchedulerConfig {
                pipeline_depth: depth,
                ..Default::default()
            },
            instances,
        )
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
    }

    fn submit(&mut self, spec: JobSpec) -> (JobId, Vec<SchedulerAction>) {
        let job = spec.id;
        let (receipt, actions) = self.policy.submit(spec, self.now).unwrap();
        assert_eq!(receipt.job, job);
        (job, actions)
    }

    fn finish(
        &mut self,
        instance: &str,
        job: JobId,
        attempt: u32,
        result: Result<RunResult, BackendError>,
    ) -> Vec<SchedulerAction> {
        self.fail_with(instance, job, attempt, result.map_err(JobFailure::from))
    }

    fn fail_with(
        &mut self,
        instance: &str,
        job: JobId,
        attempt: u32,
        result: Result<RunResult, JobFailure>,
    ) -> Vec<SchedulerAction> {
        self.policy
            .job_finished(&id(instance), job, attempt, result, self.now)
    }

    fn done(&mut self, instance: &str, job: JobId, attempt: u32) -> Vec<SchedulerAction> {
        self.finish(
            instance,
            job,
            attempt,
            Ok(RunResult {
                outputs: vec![output("out.png")],
                ..Default::default()
            }),
        )
    }
}

#[test]
fn one_users_flood_delays_another_users_job_by_at_most_one_slot() {
    let mut h = Harness::depth(1, &["gpu0"]);
    let flood: Vec<JobId> = (0..100)
        .map(|_| h.submit(spec("alice", 0, "txt2img", &[])).0)
        .collect();
    let (bob, actions) = h.submit(spec("bob", 0, "txt2img", &[]));
    let told = events_of(&actions, bob);
    assert!(
        matches!(told.as_slice(), [JobEvent::Queued { position, .. }] if *position <= 1),
        "{told:?}"
    );
    // gpu0 runs alice's first job; the next two dispatches must include bob's.
    let mut running = flood[0];
    let mut next = Vec::new();
    for _ in 0..2 {
        let actions = h.done("gpu0", running, 1);
        let sent = dispatches(&actions);
        assert_eq!(sent.len(), 1);
        running = sent[0].1;
        next.push(running);
    }
    assert!(
        next.contains(&bob),
        "bob's job was not among the next two dispatches"
    );
}

#[test]
fn a_higher_priority_job_is_dispatched_before_earlier_ordinary_ones() {
    let mut h = Harness::depth(1, &["gpu0"]);
    let (first, _) = h.submit(spec("alice", 0, "t", &[]));
    let (ordinary, _) = h.submit(spec("bob", 0, "t", &[]));
    let (urgent, actions) = h.submit(spec("operator", 10, "t", &[]));
    // The urgent job jumps ahead of bob's, and bob is told he moved back.
    assert!(matches!(
        events_of(&actions, urgent).as_slice(),
        [JobEvent::Queued { position: 0, .. }]
    ));
    assert!(matches!(
        events_of(&actions, ordinary).as_slice(),
        [JobEvent::Queued { position: 1, .. }]
    ));
    let actions = h.done("gpu0", first, 1);
    assert_eq!(dispatches(&actions)[0].1, urgent);
}

#[test]
fn a_full_queue_refuses_with_a_clear_error() {
    let mut h = Harness::new(
        SchedulerConfig {
            queue_capacity: 2,
            ..Default::default()
        },
        &[],
    );
    h.submit(spec("a", 0, "t", &[]));
    h.submit(spec("b", 0, "t", &[]));
    let err = h.policy.submit(spec("c", 0, "t", &[]), h.now).unwrap_err();
    assert_eq!(
        err,
        SubmitError::QueueFull {
            capacity: 2,
            retry_after: Duration::from_secs(60)
        }
    );
    assert!(err.to_string().contains("queue is full"));
    assert_eq!(h.policy.queue_len(), 2);
}

#[test]
fn duplicate_job_ids_are_refused() {
    let mut h = Harness::depth(1, &[]);
    let job = spec("a", 0, "t", &[]);
    h.submit(job.clone());
    assert_eq!(
        h.policy.submit(job.clone(), h.now).unwrap_err(),
        SubmitError::Duplicate(job.id)
    );
}

#[test]
fn each_instance_gets_at_most_pipeline_depth_jobs_and_only_when_ready() {
    let mut h = Harness::depth(2, &["gpu0", "gpu1"]);
    h.policy.register_instance(id("gpu2"), None, h.now);
    let mut sent = Vec::new();
    for _ in 0..5 {
        let (_, actions) = h.submit(spec("a", 0, "t", &[]));
        sent.extend(dispatches(&actions));
    }
    let on: Vec<&str> = sent.iter().map(|(i, _, _)| i.as_str()).collect();
    // Idle instances first, then the second slot of each; gpu2 is still starting.
    assert_eq!(on, ["gpu0", "gpu1", "gpu0", "gpu1"]);
    assert_eq!(h.policy.queue_len(), 1);
    // gpu2 becomes ready: it takes the fifth job.
    let actions = h
        .policy
        .instance_update(&id("gpu2"), InstancePhase::Ready, None, None, h.now);
    assert_eq!(dispatches(&actions)[0].0, "gpu2");
    assert_eq!(h.policy.queue_len(), 0);
}

#[test]
fn jobs_go_where_their_model_was_last_used() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (sdxl, a) = h.submit(spec("a", 0, "t", &["sdxl.safetensors"]));
    let (flux, b) = h.submit(spec("b", 0, "t", &["flux.safetensors"]));
    assert_eq!(dispatches(&a)[0].0, "gpu0");
    assert_eq!(dispatches(&b)[0].0, "gpu1");
    h.done("gpu0", sdxl, 1);
    h.done("gpu1", flux, 1);
    // Both idle now: the flux job goes to gpu1, which ran flux, though gpu0 sorts first.
    let (next_flux, actions) = h.submit(spec("c", 0, "t", &["flux.safetensors"]));
    assert_eq!(dispatches(&actions), [("gpu1".into(), next_flux, 1)]);
    let snapshot = h.policy.snapshot(h.now);
    assert_eq!(snapshot.instances[1].loaded_models, ["flux.safetensors"]);
}

#[test]
fn a_gpu_without_vram_headroom_gets_no_job_until_memory_frees() {
    let gib = 1u64 << 30;
    let mut h = Harness::new(
        SchedulerConfig {
            vram_headroom_mb: 4 * 1024,
            ..Default::default()
        },
        &["gpu0"],
    );
    let sample = |free: u64| GpuInfo {
        index: 0,
        id: GpuId("GPU-gpu0".into()),
        name: "RTX".into(),
        pci_bus_id: String::new(),
        memory_total_bytes: 24 * gib,
        memory_used_bytes: 24 * gib - free,
        memory_free_bytes: free,
        utilization_percent: None,
        temperature_celsius: None,
        processes: Vec::new(),
    };
    h.policy.gpu_sample(vec![sample(gib)], h.now);
    let (job, actions) = h.submit(spec("a", 0, "t", &[]));
    assert!(dispatches(&actions).is_empty());
    let actions = h.policy.gpu_sample(vec![sample(8 * gib)], h.now);
    assert_eq!(dispatches(&actions), [("gpu0".into(), job, 1)]);
}

#[test]
fn a_crashed_attempt_is_retried_on_another_instance() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (job, actions) = h.submit(spec("a", 0, "t", &[]));
    assert_eq!(dispatches(&actions), [("gpu0".into(), job, 1)]);
    let first_prompt = match &actions[1] {
        SchedulerAction::Dispatch { run, .. } => run.run.prompt_id,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        first_prompt, job.0,
        "the first attempt uses the job id as prompt id"
    );
    let actions = h.finish("gpu0", job, 1, Err(crash()));
    let told = events_of(&actions, job);
    assert!(
        matches!(&told[0], JobEvent::Retrying { attempt: 2, reason, .. } if reason.contains("connection reset")),
        "{told:?}"
    );
    assert!(matches!(
        &told[1],
        JobEvent::Started { attempt: 2, instance, .. } if instance.0 == "gpu1"
    ));
    let sent = actions.iter().find_map(|a| match a {
        SchedulerAction::Dispatch { instance, run } => Some((instance.clone(), run.clone())),
        _ => None,
    });
    let (instance, run) = sent.unwrap();
    assert_eq!(instance, id("gpu1"));
    assert_ne!(run.run.prompt_id, job.0);
    let actions = h.done("gpu1", job, 2);
    assert!(
        matches!(events_of(&actions, job).as_slice(), [JobEvent::Done { outputs, .. }] if outputs.len() == 1)
    );
    assert_eq!(h.policy.table().state(job), Some(JobState::Done));
}

#[test]
fn a_retry_waits_for_a_busy_instance_rather_than_loop_on_a_dead_one() {
    // gpu0's server died under a job; gpu1 is busy. Until gpu0 notices (its process exit is
    // on its way), every job sent there fails at once: the retry must not go back.
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (busy, _) = h.submit(spec("a", 0, "t", &[]));
    let (job, _) = h.submit(spec("b", 0, "t", &[]));
    assert_eq!(
        h.policy.table().get(busy).unwrap().instance,
        Some(id("gpu0"))
    );
    assert_eq!(
        h.policy.table().get(job).unwrap().instance,
        Some(id("gpu1"))
    );
    let actions = h.finish("gpu1", job, 1, Err(crash()));
    assert!(dispatches(&actions).is_empty(), "{actions:?}");
    assert_eq!(h.policy.table().state(job), Some(JobState::Queued));
    // gpu0 frees up: the retry goes there.
    let actions = h.done("gpu0", busy, 1);
    assert_eq!(dispatches(&actions), [("gpu0".into(), job, 2)]);
}

#[test]
fn retries_stop_at_the_limit() {
    let mut h = Harness::new(
        SchedulerConfig {
            max_retries: 1,
            pipeline_depth: 1,
            ..Default::default()
        },
        &["gpu0", "gpu1"],
    );
    let (job, _) = h.submit(spec("a", 0, "t", &[]));
    let actions = h.finish("gpu0", job, 1, Err(crash()));
    assert_eq!(dispatches(&actions), [("gpu1".into(), job, 2)]);
    let actions = h.finish("gpu1", job, 2, Err(crash()));
    assert!(dispatches(&actions).is_empty());
    match events_of(&actions, job).as_slice() {
        [
            JobEvent::Failed {
                message,
                retriable: true,
                ..
            },
        ] => {
            assert!(message.contains("failed 2 times"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let record = h.policy.table().get(job).unwrap();
    assert_eq!(record.state, JobState::Failed);
    assert!(record.error.unwrap().contains("try again later"));
}

#[test]
fn a_workflow_error_fails_at_once_without_retry() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (job, _) = h.submit(spec("a", 0, "t", &[]));
    let error = BackendError::Execution {
        node_id: "3".into(),
        node_type: "KSampler".into(),
        exception_type: "RuntimeError".into(),
        message: "mat1 and mat2 shapes cannot be multiplied".into(),
    };
    let actions = h.finish("gpu0", job, 1, Err(error));
    assert!(dispatches(&actions).is_empty());
    match events_of(&actions, job).as_slice() {
        [
            JobEvent::Failed {
                message,
                retriable: false,
                ..
            },
        ] => {
            assert!(message.contains("node 3 (KSampler)"), "{message}");
            assert!(message.contains("shapes cannot be multiplied"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_400_from_comfyui_fails_at_once_and_is_never_retried() {
    let refusals = [
        BackendError::Rejected {
            kind: "prompt_outputs_failed_validation".into(),
            message: "Prompt outputs failed validation".into(),
            node_errors: vec![],
        },
        BackendError::Http {
            route: "/prompt".into(),
            status: 400,
            body: "{}".into(),
        },
    ];
    for error in refusals {
        let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
        let (job, _) = h.submit(spec("a", 0, "t", &[]));
        let actions = h.finish("gpu0", job, 1, Err(error.clone()));
        assert!(dispatches(&actions).is_empty(), "{error}: retried");
        assert!(
            matches!(
                events_of(&actions, job).as_slice(),
                [JobEvent::Failed {
                    retriable: false,
                    ..
                }]
            ),
            "{error}"
        );
    }
}

#[test]
fn cancelling_a_queued_job_removes_it_and_moves_the_others_up() {
    let mut h = Harness::depth(1, &["gpu0"]);
    let (running, _) = h.submit(spec("a", 0, "t", &[]));
    let (first, _) = h.submit(spec("b", 0, "t", &[]));
    let (second, _) = h.submit(spec("c", 0, "t", &[]));
    assert_eq!(h.policy.table().get(second).unwrap().position, Some(1));
    let actions = h.policy.cancel(first, h.now).unwrap();
    assert!(matches!(
        events_of(&actions, first).as_slice(),
        [JobEvent::Cancelled { .. }]
    ));
    assert!(matches!(
        events_of(&actions, second).as_slice(),
        [JobEvent::Queued { position: 0, .. }]
    ));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, SchedulerAction::CancelOnInstance { .. }))
    );
    assert_eq!(h.policy.queue_len(), 1);
    assert_eq!(
        h.policy.cancel(first, h.now).unwrap_err(),
        CancelError::AlreadyFinished(first)
    );
    let unknown = JobId::new();
    assert_eq!(
        h.policy.cancel(unknown, h.now).unwrap_err(),
        CancelError::NotFound(unknown)
    );
    let _ = running;
}

#[test]
fn cancelling_a_running_job_interrupts_it_and_keeps_the_slot_until_the_instance_lets_go() {
    let mut h = Harness::depth(1, &["gpu0"]);
    let (running, _) = h.submit(spec("a", 0, "t", &[]));
    let (waiting, _) = h.submit(spec("b", 0, "t", &[]));
    let actions = h.policy.cancel(running, h.now).unwrap();
    assert!(actions.iter().any(|a| matches!(
        a,
        SchedulerAction::CancelOnInstance { instance, job } if instance.0 == "gpu0" && *job == running
    )));
    assert!(matches!(
        events_of(&actions, running).as_slice(),
        [JobEvent::Cancelled { .. }]
    ));
    // gpu0 is still busy with the interrupted prompt: nothing dispatched yet.
    assert!(dispatches(&actions).is_empty());
    assert_eq!(h.policy.table().state(running), Some(JobState::Cancelled));
    // The instance reports the interrupt: the slot frees, the next job goes, and nothing more
    // is said about the cancelled one.
    let actions = h.finish("gpu0", running, 1, Err(BackendError::Interrupted));
    assert!(events_of(&actions, running).is_empty());
    assert_eq!(dispatches(&actions), [("gpu0".into(), waiting, 1)]);
}

#[test]
fn positions_are_pushed_only_when_they_change_and_etas_shrink_as_jobs_move_up() {
    let mut h = Harness::depth(1, &["gpu0"]);
    let (first, _) = h.submit(spec("a", 0, "t", &[]));
    h.advance(10);
    h.done("gpu0", first, 1);
    // One 10 s run is known now (it was dispatched at submit, so it ran 10 s).
    let (running, _) = h.submit(spec("a", 0, "t", &[]));
    let (q0, _) = h.submit(spec("a", 0, "t", &[]));
    let (q1, actions) = h.submit(spec("a", 0, "t", &[]));
    // A job added at the back moves nobody: only its own position is pushed.
    assert_eq!(events(&actions).len(), 1);
    let eta_of = |actions: &[SchedulerAction], job: JobId| {
        events_of(actions, job).into_iter().find_map(|e| match e {
            JobEvent::Queued { eta, .. } => eta,
            _ => None,
        })
    };
    // Position 1 behind one running job on one instance: two runs ahead, then its own.
    let first_eta = eta_of(&actions, q1).unwrap();
    assert_eq!(first_eta, Duration::from_secs(30));
    h.advance(10);
    let actions = h.done("gpu0", running, 1);
    assert!(
        events_of(&actions, q0)
            .iter()
            .any(|e| matches!(e, JobEvent::Started { .. }))
    );
    let moved = eta_of(&actions, q1).unwrap();
    assert!(moved < first_eta, "{moved:?} !< {first_eta:?}");
    assert_eq!(h.policy.table().get(q1).unwrap().position, Some(0));
    assert_eq!(h.policy.table().get(q1).unwrap().eta, Some(moved));
}

#[test]
fn finished_jobs_beyond_the_retention_limit_are_forgotten_oldest_first() {
    let mut h = Harness::new(
        SchedulerConfig {
            job_retention: 2,
            pipeline_depth: 1,
            ..Default::default()
        },
        &["gpu0"],
    );
    let jobs: Vec<JobId> = (0..4).map(|_| h.submit(spec("a", 0, "t", &[])).0).collect();
    for job in &jobs[..3] {
        h.done("gpu0", *job, 1);
    }
    let table = h.policy.table();
    assert!(table.get(jobs[0]).is_none());
    assert_eq!(table.state(jobs[1]), Some(JobState::Done));
    assert_eq!(table.state(jobs[2]), Some(JobState::Done));
    assert_eq!(table.state(jobs[3]), Some(JobState::Running));
}

#[test]
fn jobs_of_a_stopped_instance_are_requeued_and_stale_reports_ignored() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (job, _) = h.submit(spec("a", 0, "t", &[]));
    let (other, _) = h.submit(spec("b", 0, "t", &[]));
    // gpu1 holds `other`; gpu0 stops without reporting `job`.
    let actions = h
        .policy
        .instance_update(&id("gpu0"), InstancePhase::Stopped, None, None, h.now);
    assert!(matches!(
        events_of(&actions, job).as_slice(),
        [
            JobEvent::Retrying { attempt: 2, .. },
            JobEvent::Queued { position: 0, .. }
        ]
    ));
    // The late report of the lost attempt changes nothing.
    let actions = h.finish("gpu0", job, 1, Err(crash()));
    assert!(actions.is_empty());
    // gpu1 finishes its job and takes the retry.
    let actions = h.done("gpu1", other, 1);
    assert_eq!(dispatches(&actions), [("gpu1".into(), job, 2)]);
}

#[test]
fn a_deregistered_instance_hands_its_jobs_back() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (job, _) = h.submit(spec("a", 0, "t", &[]));
    let actions = h.policy.deregister_instance(&id("gpu0"), h.now);
    assert_eq!(dispatches(&actions), [("gpu1".into(), job, 2)]);
    assert_eq!(h.policy.snapshot(h.now).instances.len(), 1);
}

#[test]
fn execution_events_become_job_events_with_node_titles() {
    let mut h = Harness::depth(1, &["gpu0"]);
    let (job, _) = h.submit(spec("a", 0, "t", &[]));
    let event = h.policy.job_progress(
        &id("gpu0"),
        job,
        ExecutionEvent::Executing { node: "3".into() },
    );
    assert_eq!(
        event,
        Some(JobEvent::Executing {
            job,
            node: "3".into(),
            title: Some("Sampler".into())
        })
    );
    let progress = h.policy.job_progress(
        &id("gpu0"),
        job,
        ExecutionEvent::Progress {
            node: "3".into(),
            value: 4,
            max: 20,
        },
    );
    assert!(matches!(
        progress,
        Some(JobEvent::Progress {
            value: 4,
            max: 20,
            ..
        })
    ));
    // From the wrong instance: nothing.
    assert_eq!(
        h.policy
            .job_progress(&id("gpu9"), job, ExecutionEvent::Started),
        None
    );
}

#[test]
fn shutdown_refuses_new_jobs_fails_queued_ones_and_lets_running_ones_finish() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (a, _) = h.submit(spec("a", 0, "t", &[]));
    let (b, _) = h.submit(spec("b", 0, "t", &[]));
    let (queued, _) = h.submit(spec("c", 0, "t", &[]));
    let actions = h.policy.begin_shutdown(h.now);
    assert!(matches!(
        events_of(&actions, queued).as_slice(),
        [JobEvent::Failed { message, retriable: true, .. }] if message == SHUTDOWN_QUEUED
    ));
    assert_eq!(
        h.policy.submit(spec("d", 0, "t", &[]), h.now).unwrap_err(),
        SubmitError::ShuttingDown
    );
    assert!(!h.policy.is_drained());
    // a finishes in time; b's instance crashes: no retry during shutdown.
    let actions = h.done("gpu0", a, 1);
    assert!(matches!(
        events_of(&actions, a).as_slice(),
        [JobEvent::Done { .. }]
    ));
    assert!(!h.policy.is_drained());
    let actions = h.finish("gpu1", b, 1, Err(crash()));
    assert!(matches!(
        events_of(&actions, b).as_slice(),
        [JobEvent::Failed { message, .. }] if message == SHUTDOWN_RUNNING
    ));
    assert!(h.policy.is_drained());
}

#[test]
fn a_job_its_instance_did_not_take_goes_to_another_instance() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (job, _) = h.submit(spec("a", 0, "t", &[]));
    let refusal = JobFailure::NotTaken {
        instance: id("gpu0"),
        phase: InstancePhase::Crashed,
    };
    let actions = h.fail_with("gpu0", job, 1, Err(refusal));
    assert_eq!(dispatches(&actions), [("gpu1".into(), job, 2)]);
    match events_of(&actions, job).as_slice() {
        [JobEvent::Retrying { reason, .. }, JobEvent::Started { .. }] => {
            assert_eq!(reason, "instance gpu0 is crashed and takes no jobs");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_job_its_instance_stopped_fails_with_the_reason_and_is_not_retried() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (job, _) = h.submit(spec("a", 0, "t", &[]));
    let aborted = JobFailure::Aborted {
        instance: id("gpu0"),
        reason: "the instance is shutting down".into(),
    };
    let actions = h.fail_with("gpu0", job, 1, Err(aborted));
    assert!(dispatches(&actions).is_empty());
    match events_of(&actions, job).as_slice() {
        [JobEvent::Failed { message, .. }] => {
            assert!(
                message.contains("instance gpu0 stopped the job")
                    && message.contains("submit it again"),
                "{message}"
            );
            assert!(!message.contains("unreachable"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_job_stopped_by_the_fleets_shutdown_is_told_the_fleet_shut_down() {
    let mut h = Harness::depth(1, &["gpu0"]);
    let (job, _) = h.submit(spec("a", 0, "t", &[]));
    h.policy.begin_shutdown(h.now);
    let aborted = JobFailure::Aborted {
        instance: id("gpu0"),
        reason: "the instance is shutting down".into(),
    };
    let actions = h.fail_with("gpu0", job, 1, Err(aborted));
    assert!(matches!(
        events_of(&actions, job).as_slice(),
        [JobEvent::Failed { message, retriable: true, .. }] if message == SHUTDOWN_RUNNING
    ));
    assert!(h.policy.is_drained());
}

#[test]
fn the_shutdown_deadline_fails_and_interrupts_what_still_runs() {
    let mut h = Harness::depth(1, &["gpu0"]);
    let (a, _) = h.submit(spec("a", 0, "t", &[]));
    h.policy.begin_shutdown(h.now);
    let actions = h.policy.finish_shutdown(h.now);
    assert!(actions.iter().any(|x| matches!(
        x,
        SchedulerAction::CancelOnInstance { job, .. } if *job == a
    )));
    assert!(matches!(
        events_of(&actions, a).as_slice(),
        [JobEvent::Failed { message, .. }] if message == SHUTDOWN_RUNNING
    ));
    assert!(h.policy.is_drained());
    assert_eq!(h.policy.table().state(a), Some(JobState::Failed));
}

#[test]
fn the_snapshot_shows_queue_instances_models_and_latencies() {
    let mut h = Harness::depth(1, &["gpu0"]);
    let (a, _) = h.submit(spec("a", 0, "t", &["sdxl.safetensors"]));
    h.submit(spec("b", 0, "t", &[]));
    h.advance(6);
    h.done("gpu0", a, 1);
    let snapshot = h.policy.snapshot(h.now);
    assert_eq!(snapshot.queue_depth, 0);
    assert_eq!(snapshot.jobs.running, 1);
    assert_eq!(snapshot.jobs.done, 1);
    assert_eq!(snapshot.instances[0].running.len(), 1);
    assert_eq!(snapshot.instances[0].loaded_models, ["sdxl.safetensors"]);
    assert_eq!(snapshot.latency.run_p50, Some(Duration::from_secs(6)));
    assert_eq!(snapshot.latency.wait_p50, Some(Duration::ZERO));
    // A crash clears what the instance had loaded.
    h.policy.instance_update(
        &id("gpu0"),
        InstancePhase::Crashed,
        None,
        Some("exit code 1".into()),
        h.now,
    );
    let snapshot = h.policy.snapshot(h.now);
    assert!(snapshot.instances[0].loaded_models.is_empty());
    assert_eq!(snapshot.instances[0].detail.as_deref(), Some("exit code 1"));
}

// ---------------------------------------------------------------------------------------------
// Model affinity: placement, look-ahead, waiting, overtake bound
// ---------------------------------------------------------------------------------------------

const SDXL: &str = "sdxl.safetensors";
const FLUX: &str = "flux.safetensors";

fn with(config: SchedulerConfig, instances: &[&str]) -> Harness {
    Harness::new(config, instances)
}

fn depth_one() -> SchedulerConfig {
    SchedulerConfig {
        pipeline_depth: 1,
        ..Default::default()
    }
}

#[test]
fn a_job_waits_behind_one_job_where_its_model_is_rather_than_load_it_on_an_idle_instance() {
    let mut h = Harness::depth(2, &["gpu0", "gpu1"]);
    let (_, a) = h.submit(spec("a", 0, "t", &[SDXL]));
    let (_, b) = h.submit(spec("b", 0, "t", &[SDXL]));
    let (_, c) = h.submit(spec("c", 0, "t", &[FLUX]));
    assert_eq!(dispatches(&a)[0].0, "gpu0");
    assert_eq!(
        dispatches(&b)[0].0,
        "gpu0",
        "the second sdxl job went to the idle gpu1"
    );
    assert_eq!(dispatches(&c)[0].0, "gpu1");
}

#[test]
fn a_freed_slot_takes_a_later_job_whose_model_it_has() {
    let mut h = with(depth_one(), &["gpu0", "gpu1"]);
    let (sdxl_running, _) = h.submit(spec("x", 0, "t", &[SDXL]));
    let (flux_running, _) = h.submit(spec("y", 0, "t", &[FLUX]));
    let (flux_next, _) = h.submit(spec("a", 0, "t", &[FLUX]));
    let (sdxl_next, _) = h.submit(spec("b", 0, "t", &[SDXL]));
    assert_eq!(h.policy.queue_len(), 2);
    // gpu0 (sdxl) frees: it takes b's sdxl job, not a's flux job at the head.
    let actions = h.done("gpu0", sdxl_running, 1);
    assert_eq!(dispatches(&actions), [("gpu0".into(), sdxl_next, 1)]);
    assert!(matches!(
        events_of(&actions, flux_next).as_slice(),
        [JobEvent::Queued { position: 0, .. }]
    ));
    // a's job waited for gpu1, which has flux.
    let actions = h.done("gpu1", flux_running, 1);
    assert_eq!(dispatches(&actions), [("gpu1".into(), flux_next, 1)]);
}

#[test]
fn with_the_look_ahead_off_jobs_leave_in_strict_order() {
    let mut h = with(
        SchedulerConfig {
            affinity_lookahead: 0,
            ..depth_one()
        },
        &["gpu0", "gpu1"],
    );
    let (sdxl_running, _) = h.submit(spec("x", 0, "t", &[SDXL]));
    h.submit(spec("y", 0, "t", &[FLUX]));
    let (flux_next, _) = h.submit(spec("a", 0, "t", &[FLUX]));
    h.submit(spec("b", 0, "t", &[SDXL]));
    // gpu0 frees and would idle: the head goes there and loads flux.
    let actions = h.done("gpu0", sdxl_running, 1);
    assert_eq!(dispatches(&actions), [("gpu0".into(), flux_next, 1)]);
}

#[test]
fn a_job_waits_for_the_busy_instance_with_its_model_only_while_no_gpu_would_idle() {
    let mut h = Harness::depth(2, &["gpu0", "gpu1"]);
    let (s1, _) = h.submit(spec("a", 0, "t", &[SDXL]));
    h.submit(spec("b", 0, "t", &[SDXL]));
    let (f1, _) = h.submit(spec("c", 0, "t", &[FLUX]));
    // gpu0 is full with sdxl, gpu1 runs one flux job and has a free slot: the sdxl job waits
    // for gpu0 rather than load sdxl on gpu1.
    let (waiting, actions) = h.submit(spec("d", 0, "t", &[SDXL]));
    assert!(dispatches(&actions).is_empty());
    let actions = h.done("gpu0", s1, 1);
    assert_eq!(dispatches(&actions), [("gpu0".into(), waiting, 1)]);
    // Same again, but gpu1 goes idle: the waiting job takes it rather than leave a GPU idle.
    let (waiting, actions) = h.submit(spec("e", 0, "t", &[SDXL]));
    assert!(dispatches(&actions).is_empty());
    let actions = h.done("gpu1", f1, 1);
    assert_eq!(dispatches(&actions), [("gpu1".into(), waiting, 1)]);
}

#[test]
fn a_job_is_passed_over_by_the_look_ahead_at_most_max_overtakes_times() {
    let mut h = with(
        SchedulerConfig {
            max_overtakes: 3,
            ..depth_one()
        },
        &["gpu0", "gpu1"],
    );
    let (mut on_gpu0, _) = h.submit(spec("x", 0, "t", &[SDXL]));
    h.submit(spec("y", 0, "t", &[FLUX]));
    // The head wants flux (gpu1 busy for good); ten users' sdxl jobs behind it suit gpu0.
    let (flux, _) = h.submit(spec("head", 0, "t", &[FLUX]));
    for n in 0..10 {
        h.submit(spec(&format!("u{n}"), 0, "t", &[SDXL]));
    }
    let mut passed = 0;
    loop {
        let actions = h.done("gpu0", on_gpu0, 1);
        let sent = dispatches(&actions);
        assert_eq!(sent.len(), 1);
        on_gpu0 = sent[0].1;
        if on_gpu0 == flux {
            break;
        }
        passed += 1;
    }
    assert_eq!(passed, 3);
}

#[test]
fn with_affinity_a_flood_still_delays_another_users_job_by_at_most_one_slot() {
    assert_eq!(flood_slots_before_bob(0), 1);
}

#[test]
fn reaching_one_round_ahead_costs_other_users_at_most_one_more_slot() {
    assert_eq!(flood_slots_before_bob(1), 2);
}

/// Alice floods gpu0 (which has her model loaded) with jobs; Bob queues one job for another
/// model. How many of Alice's jobs run before Bob's?
fn flood_slots_before_bob(rounds_ahead: u64) -> usize {
    let mut h = with(
        SchedulerConfig {
            affinity_rounds_ahead: rounds_ahead,
            ..depth_one()
        },
        &["gpu0"],
    );
    let (mut running, _) = h.submit(spec("alice", 0, "t", &[SDXL]));
    for _ in 0..20 {
        h.submit(spec("alice", 0, "t", &[SDXL]));
    }
    let (bob, actions) = h.submit(spec("bob", 0, "t", &[FLUX]));
    assert!(matches!(
        events_of(&actions, bob).as_slice(),
        [JobEvent::Queued { position: 1, .. }]
    ));
    let mut before_bob = 0;
    loop {
        let actions = h.done("gpu0", running, 1);
        running = dispatches(&actions)[0].1;
        if running == bob {
            break;
        }
        before_bob += 1;
    }
    before_bob
}

// ---------------------------------------------------------------------------------------------
// Position updates
// ---------------------------------------------------------------------------------------------

#[test]
fn a_draining_queue_tells_each_job_its_position_logarithmically_often_and_the_table_is_exact() {
    let n = 2000;
    let mut h = with(
        SchedulerConfig {
            queue_capacity: n,
            ..depth_one()
        },
        &["gpu0"],
    );
    let mut queued_events: HashMap<JobId, Vec<usize>> = HashMap::new();
    let mut note = |actions: &[SchedulerAction]| {
        for event in events(actions) {
            if let JobEvent::Queued { job, position, .. } = event {
                queued_events.entry(job).or_default().push(position);
            }
        }
    };
    let (mut running, actions) = h.submit(spec("u0", 0, "t", &[]));
    note(&actions);
    let mut queued = Vec::new();
    for i in 0..n {
        let (job, actions) = h.submit(spec(&format!("u{}", i % 7), 0, "t", &[]));
        note(&actions);
        queued.push(job);
    }
    let order = h.policy.queue.jobs();
    let mut step = 0;
    while let Some(&head) = order.get(step) {
        let actions = h.done("gpu0", running, 1);
        note(&actions);
        running = dispatches(&actions)[0].1;
        assert_eq!(running, head);
        step += 1;
        // The table shows the exact position of queued jobs, told or not.
        for (at, job) in order[step..].iter().enumerate().step_by(97) {
            assert_eq!(h.policy.table().get(*job).unwrap().position, Some(at));
        }
    }
    let bound = ((n as f64 / 10.0).ln() / (1.0f64 / 0.9).ln()).ceil() as usize + 12;
    for job in &queued {
        let told = &queued_events[job];
        assert!(
            told.len() <= bound,
            "{} updates > {bound}: {told:?}",
            told.len()
        );
        assert_eq!(
            told.last(),
            Some(&0),
            "a job was not told it reached the front"
        );
    }
    let total: usize = queued_events.values().map(Vec::len).sum();
    assert!(total < n * bound, "{total} position updates for {n} jobs");
}

#[test]
fn every_queued_job_hears_a_new_eta_when_the_fleets_pace_changes_a_lot() {
    let mut h = with(depth_one(), &["gpu0"]);
    let (first, _) = h.submit(spec("a", 0, "t", &[]));
    let queued: Vec<JobId> = (0..50)
        .map(|i| h.submit(spec(&format!("u{i}"), 0, "t", &[])).0)
        .collect();
    // The first run is measured (10 s): ETAs become known, so everyone still queued hears one.
    h.advance(10);
    let actions = h.done("gpu0", first, 1);
    let started = dispatches(&actions)[0].1;
    for job in queued.iter().filter(|j| **j != started) {
        assert!(
            events_of(&actions, *job)
                .iter()
                .any(|e| matches!(e, JobEvent::Queued { eta: Some(_), .. })),
            "job {job} was not told its first ETA"
        );
    }
    // A second instance doubles the pace: everyone hears again.
    h.policy.register_instance(id("gpu1"), None, h.now);
    let actions = h
        .policy
        .instance_update(&id("gpu1"), InstancePhase::Ready, None, None, h.now);
    let told = events(&actions)
        .iter()
        .filter(|e| matches!(e, JobEvent::Queued { .. }))
        .count();
    assert_eq!(told, h.policy.queue_len());
}

// ---------------------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------------------

fn operations(actions: &[SchedulerAction]) -> Vec<(String, InstanceOperation)> {
    actions
        .iter()
        .filter_map(|a| match a {
            SchedulerAction::Operate {
                instance,
                operation,
            } => Some((instance.0.clone(), *operation)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_paused_queue_takes_and_positions_jobs_but_dispatches_none() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (running, actions) = h.submit(spec("alice", 0, "t", &[]));
    assert_eq!(dispatches(&actions).len(), 1);
    let (pause, actions) = h.policy.set_paused(true, h.now);
    assert_eq!(
        pause,
        QueuePause {
            paused: true,
            changed: true,
            queue_depth: 0
        }
    );
    assert!(actions.is_empty(), "{actions:?}");
    assert!(h.policy.snapshot(h.now).paused);
    // Submissions are accepted, queued and told their position, though gpu1 is free.
    let (first, actions) = h.submit(spec("bob", 0, "t", &[]));
    assert!(dispatches(&actions).is_empty(), "{actions:?}");
    assert!(matches!(
        events_of(&actions, first).as_slice(),
        [JobEvent::Queued { position: 0, .. }]
    ));
    let (second, actions) = h.submit(spec("carol", 0, "t", &[]));
    assert!(matches!(
        events_of(&actions, second).as_slice(),
        [JobEvent::Queued { position: 1, .. }]
    ));
    // The running job goes on and finishes; its slot stays free.
    let actions = h.done("gpu0", running, 1);
    assert!(matches!(
        events_of(&actions, running).as_slice(),
        [JobEvent::Done { .. }]
    ));
    assert!(dispatches(&actions).is_empty(), "{actions:?}");
    assert_eq!(h.policy.table().state(first), Some(JobState::Queued));
    // Pausing again changes nothing.
    let (pause, _) = h.policy.set_paused(true, h.now);
    assert!(!pause.changed && pause.queue_depth == 2);

    // Resume: the queue is dispatched at once, in queue order.
    let (pause, actions) = h.policy.set_paused(false, h.now);
    assert!(pause.changed && !pause.paused);
    let sent: Vec<JobId> = dispatches(&actions).into_iter().map(|d| d.1).collect();
    assert_eq!(sent, [first, second]);
    assert!(!h.policy.snapshot(h.now).paused);
}

#[test]
fn a_drained_instance_gets_no_new_job_and_its_queue_goes_to_the_others() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (on_gpu0, actions) = h.submit(spec("alice", 0, "t", &[]));
    assert_eq!(dispatches(&actions)[0].0, "gpu0");
    let actions = h
        .policy
        .operate_instance(&id("gpu0"), InstanceOperation::Drain, h.now)
        .unwrap();
    assert_eq!(
        operations(&actions),
        [("gpu0".into(), InstanceOperation::Drain)]
    );
    // Still reported ready (the instance has not answered yet), but not a candidate any more.
    let (next, actions) = h.submit(spec("bob", 0, "t", &[]));
    assert_eq!(dispatches(&actions), [("gpu1".into(), next, 1)]);
    let (waiting, actions) = h.submit(spec("carol", 0, "t", &[]));
    assert!(dispatches(&actions).is_empty());
    // Its running job finishes normally; the freed slot is not used.
    let actions = h.done("gpu0", on_gpu0, 1);
    assert!(matches!(
        events_of(&actions, on_gpu0).as_slice(),
        [JobEvent::Done { .. }]
    ));
    assert!(dispatches(&actions).is_empty(), "{actions:?}");
    // It stops; the waiting job goes to gpu1 when that frees up.
    h.policy
        .instance_update(&id("gpu0"), InstancePhase::Draining, None, None, h.now);
    h.policy
        .instance_update(&id("gpu0"), InstancePhase::Stopped, None, None, h.now);
    let actions = h.done("gpu1", next, 1);
    assert_eq!(dispatches(&actions), [("gpu1".into(), waiting, 1)]);
    // Even when it reports ready again on its own, a drained instance takes nothing.
    h.policy
        .instance_update(&id("gpu0"), InstancePhase::Ready, None, None, h.now);
    let (later, actions) = h.submit(spec("dave", 0, "t", &[]));
    assert!(dispatches(&actions).is_empty(), "{actions:?}");

    // The operator restarts it: it counts as restarting until it says it is ready.
    let actions = h
        .policy
        .operate_instance(&id("gpu0"), InstanceOperation::Restart, h.now)
        .unwrap();
    assert_eq!(
        operations(&actions),
        [("gpu0".into(), InstanceOperation::Restart)]
    );
    assert!(dispatches(&actions).is_empty());
    let snapshot = h.policy.snapshot(h.now);
    assert_eq!(snapshot.instances[0].phase, InstancePhase::Restarting);
    let actions = h
        .policy
        .instance_update(&id("gpu0"), InstancePhase::Ready, None, None, h.now);
    assert_eq!(dispatches(&actions), [("gpu0".into(), later, 1)]);
}

#[test]
fn a_restarted_instance_gets_no_job_before_it_is_ready_and_its_jobs_are_retried() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let (job, _) = h.submit(spec("alice", 0, "t", &[]));
    let actions = h
        .policy
        .operate_instance(&id("gpu0"), InstanceOperation::Restart, h.now)
        .unwrap();
    assert_eq!(
        operations(&actions),
        [("gpu0".into(), InstanceOperation::Restart)]
    );
    // The instance hands the job back as lost with its server: retried on gpu1.
    let actions = h.fail_with(
        "gpu0",
        job,
        1,
        Err(JobFailure::ServerLost {
            instance: id("gpu0"),
            cause: "it was restarted by an operator (operator restart)".into(),
        }),
    );
    match events_of(&actions, job).as_slice() {
        [
            JobEvent::Retrying { reason, .. },
            JobEvent::Started { instance, .. },
        ] => {
            assert!(reason.contains("operator restart"), "{reason}");
            assert_eq!(instance, &id("gpu1"));
        }
        other => panic!("retried on gpu1: {other:?}"),
    }
}

#[test]
fn operations_on_unknown_instances_or_during_shutdown_are_refused() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    let err = h
        .policy
        .operate_instance(&id("gpu7"), InstanceOperation::Drain, h.now)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no instance `gpu7`; the fleet's instances are: gpu0, gpu1"
    );
    h.policy.begin_shutdown(h.now);
    assert_eq!(
        h.policy
            .operate_instance(&id("gpu0"), InstanceOperation::Restart, h.now)
            .unwrap_err(),
        OperationError::ShuttingDown
    );
}

#[test]
fn a_users_first_job_to_end_is_told_from_the_running_ones_expected_run_time() {
    let mut h = Harness::depth(1, &["gpu0", "gpu1"]);
    // Nothing has run yet: nothing to estimate from.
    let (a, _) = h.submit(spec("alice", 0, "txt2img", &[]));
    assert_eq!(h.policy.first_end_of(&UserId::new("alice"), h.now), None);
    // One txt2img job took 10 s.
    h.advance(10);
    h.done("gpu0", a, 1);
    let (b, _) = h.submit(spec("alice", 0, "txt2img", &[]));
    let (_c, _) = h.submit(spec("alice", 0, "txt2img", &[]));
    h.advance(4);
    // b has run 4 s of its expected 10 s, on gpu0; c runs on gpu1 since the same moment.
    assert_eq!(
        h.policy.first_end_of(&UserId::new("alice"), h.now),
        Some(Duration::from_secs(6))
    );
    // An overdue job is expected to end any moment.
    h.advance(30);
    assert_eq!(
        h.policy.first_end_of(&UserId::new("alice"), h.now),
        Some(Duration::ZERO)
    );
    h.done("gpu0", b, 1);
    assert_eq!(h.policy.first_end_of(&UserId::new("bob"), h.now), None);
}
