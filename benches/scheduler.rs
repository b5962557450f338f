//! Scheduler policy benchmark: 10 000 queued jobs over 64 busy instances.
//!
//! - `dispatch`: one instance reports a job done; the scheduler picks the next job (affinity
//!   look-ahead over the window), places it and tells the queued jobs that are due a position
//!   update (all 10 000 move up one; only the first few and those that moved by 10 % since they
//!   were last told hear of it).
//! - `submit/back`: a user with many queued jobs submits one more (it lands at the back).
//! - `submit/new_user`: a user with nothing queued submits (it cuts in near the front; the jobs
//!   behind it move back by one, which only the first few are told).
//! - `placement`: choosing an instance among 64 for one job, alone.
//!
//! The queue is kept at 10 000 between iterations by untimed submits and cancels.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

use comfy_fleet_actors::messages::{InstancePhase, JobSpec};
use comfy_fleet_actors::ports::RunResult;
use comfy_fleet_actors::scheduling::instance_slot::InstanceSlot;
use comfy_fleet_actors::scheduling::placement::{JobNeeds, PlacementRules};
use comfy_fleet_actors::scheduling::{SchedulerAction, SchedulerConfig, SchedulerPolicy};
use comfy_fleet_actors::{InstanceId, JobId, UserId};

const QUEUED: usize = 10_000;
const INSTANCES: usize = 64;
const USERS: usize = 100;
const MODELS: [&str; 4] = [
    "sdxl.safetensors",
    "flux1-dev.safetensors",
    "qwen-image-edit.safetensors",
    "sd15.safetensors",
];

fn spec(user: usize, n: usize) -> JobSpec {
    JobSpec {
        id: JobId::new(),
        user: UserId::new(format!("user{user}")),
        priority: 0,
        template: format!("template{}", n % 3),
        prompt: json!({"3": {"class_type": "KSampler", "inputs": {"seed": n, "steps": 20}}}),
        extra_data: json!({}),
        inputs: Vec::new(),
        models: vec![MODELS[n % MODELS.len()].to_string()],
    }
}

struct Loaded {
    policy: SchedulerPolicy,
    now: Instant,
    /// (instance, job, attempt) of running jobs, oldest first.
    running: VecDeque<(InstanceId, JobId, u32)>,
    next: usize,
}

fn note_dispatches(running: &mut VecDeque<(InstanceId, JobId, u32)>, actions: &[SchedulerAction]) {
    for action in actions {
        if let SchedulerAction::Dispatch { instance, run } = action {
            running.push_back((instance.clone(), run.job, run.attempt));
        }
    }
}

fn loaded_fleet() -> Loaded {
    let now = Instant::now();
    let config = SchedulerConfig {
        queue_capacity: QUEUED * 2,
        pipeline_depth: 2,
        job_retention: 1000,
        ..Default::default()
    };
    let mut policy = SchedulerPolicy::new(config, now, SystemTime::now());
    for i in 0..INSTANCES {
        let id = InstanceId::new(format!("gpu{i}"));
        policy.register_instance(id.clone(), None, now);
        policy.instance_update(&id, InstancePhase::Ready, None, None, now);
    }
    let mut running = VecDeque::new();
    let total = QUEUED + INSTANCES * 2;
    for n in 0..total {
        let (_, actions) = policy
            .submit(spec(n % USERS, n), now)
            .expect("the bench queue has room");
        note_dispatches(&mut running, &actions);
    }
    assert_eq!(policy.queue_len(), QUEUED);
    Loaded {
        policy,
        now,
        running,
        next: total,
    }
}

fn dispatch(c: &mut Criterion) {
    let mut fleet = loaded_fleet();
    c.bench_function("dispatch (10k queued, 64 instances)", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                fleet.now += Duration::from_millis(100);
                let (instance, job, attempt) = fleet.running.pop_front().expect("jobs are running");
                let started = Instant::now();
                let actions = fleet.policy.job_finished(
                    &instance,
                    job,
                    attempt,
                    Ok(RunResult::default()),
                    fleet.now,
                );
                timed += started.elapsed();
                note_dispatches(&mut fleet.running, &actions);
                black_box(&actions);
                // Refill the queue (untimed).
                let n = fleet.next;
                fleet.next += 1;
                fleet
                    .policy
                    .submit(spec(n % USERS, n), fleet.now)
                    .expect("the bench queue has room");
            }
            timed
        })
    });
}

fn submit(c: &mut Criterion) {
    let mut fleet = loaded_fleet();
    let mut group = c.benchmark_group("submit (10k queued, 64 instances)");
    group.bench_function("back", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let n = fleet.next;
                fleet.next += 1;
                let job = spec(n % USERS, n);
                let id = job.id;
                let started = Instant::now();
                let answer = fleet.policy.submit(job, fleet.now);
                timed += started.elapsed();
                black_box(&answer);
                fleet
                    .policy
                    .cancel(id, fleet.now)
                    .expect("the job is queued");
            }
            timed
        })
    });
    group.bench_function("new_user", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let n = fleet.next;
                fleet.next += 1;
                let job = spec(USERS + n, n);
                let id = job.id;
                let started = Instant::now();
                let answer = fleet.policy.submit(job, fleet.now);
                timed += started.elapsed();
                black_box(&answer);
                fleet
                    .policy
                    .cancel(id, fleet.now)
                    .expect("the job is queued");
            }
            timed
        })
    });
    group.finish();
}

fn placement(c: &mut Criterion) {
    let rules = PlacementRules {
        pipeline_depth: 2,
        vram_headroom_bytes: None,
    };
    let mut instances = BTreeMap::new();
    for i in 0..INSTANCES {
        let mut slot = InstanceSlot::new(InstanceId::new(format!("gpu{i}")), None, 2);
        slot.phase = InstancePhase::Ready;
        slot.loaded.record(&[MODELS[i % MODELS.len()].to_string()]);
        slot.holding.insert(JobId::new());
        instances.insert(slot.id.clone(), slot);
    }
    let gpus = HashMap::new();
    let models = vec!["flux1-dev.safetensors".to_string()];
    c.bench_function("placement (64 instances)", |b| {
        b.iter(|| {
            black_box(rules.choose(
                black_box(&instances),
                &gpus,
                JobNeeds {
                    models: &models,
                    avoid: &[],
                },
            ))
        })
    });
}

criterion_group!(benches, dispatch, submit, placement);
criterion_main!(benches);
