//! Model affinity: how many checkpoint loads the scheduler's placement causes on a mixed-model
//! workload, against round-robin placement.
//!
//! A discrete-event simulation at the policy level, in simulated time: 4 instances, jobs over
//! 6 checkpoints (popularity 30/25/20/12/8/5 %), 8 users, each job runs for 1 s. Each simulated
//! GPU holds `K` checkpoints in VRAM (least recently used evicted) and runs the jobs handed to
//! it in order, one at a time; a **load** is counted whenever a job starts on a GPU whose VRAM
//! lacks its checkpoint.
//!
//! - **affinity**: the real [`SchedulerPolicy`] places jobs (fair queue, pipeline depth 2,
//!   placement by loaded models, then idleness, then load; a freed slot may take a later job of
//!   the head's fair-share round whose model it has, `affinity_lookahead` = 8,
//!   `max_overtakes` = 8), with `loaded_models_per_instance` = K so its idea of what is loaded
//!   matches the GPU's (one row remembers 8 to show why the default is what a GPU holds).
//! - **affinity, strict order**: the same policy with `affinity_lookahead` = 0 (every job
//!   leaves in queue order), for comparison.
//! - **round-robin**: the same FIFO of jobs and the same pipeline depth, each job to the next
//!   instance in turn that has a free slot.
//! - **least-loaded**: the same FIFO and pipeline depth, each job to the instance holding the
//!   fewest jobs (the usual load balancer, blind to models).
//!
//! Arrivals are Poisson at 50 %, 80 % and 95 % of the pool's capacity, plus a backlog (every
//! job queued at once). Each row runs five seeded workloads (the same ones for every
//! placement) and gives the mean with the spread (lowest–highest) over the seeds.
//!
//! Run: `cargo bench --bench fleet_affinity`

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use comfy_fleet_actors::messages::{InstancePhase, JobSpec};
use comfy_fleet_actors::ports::RunResult;
use comfy_fleet_actors::scheduling::{SchedulerAction, SchedulerConfig, SchedulerPolicy};
use comfy_fleet_actors::{InstanceId, JobId, UserId};
use serde_json::json;

const INSTANCES: usize = 4;
const JOBS: usize = 4000;
const USERS: usize = 8;
const JOB_SECONDS: f64 = 1.0;
const PIPELINE_DEPTH: usize = 2;
const CHECKPOINTS: [(&str, u32); 6] = [
    ("sdxl-base.safetensors", 30),
    ("flux1-dev.safetensors", 25),
    ("juggernaut-xl.safetensors", 20),
    ("sd15.safetensors", 12),
    ("qwen-image.safetensors", 8),
    ("pony-xl.safetensors", 5),
];

/// A small seeded generator (splitmix64), so the workload is the same on every run.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone)]
struct Arrival {
    at: f64,
    user: usize,
    model: usize,
}

fn workload(load: Option<f64>, seed: u64) -> Vec<Arrival> {
    let mut rng = Rng(seed);
    let total: u32 = CHECKPOINTS.iter().map(|c| c.1).sum();
    let rate = load.map(|rho| rho * INSTANCES as f64 / JOB_SECONDS);
    let mut at = 0.0;
    (0..JOBS)
        .map(|_| {
            if let Some(rate) = rate {
                at += -(1.0 - rng.unit()).ln() / rate;
            }
            let mut pick = (rng.unit() * total as f64) as u32;
            let model = CHECKPOINTS
                .iter()
                .position(|c| {
                    if pick < c.1 {
                        true
                    } else {
                        pick -= c.1;
                        false
                    }
                })
                .unwrap_or(0);
            Arrival {
                at,
                user: (rng.next_u64() % USERS as u64) as usize,
                model,
            }
        })
        .collect()
}

/// One simulated GPU: jobs handed to it, the one running, and its VRAM.
struct Gpu {
    waiting: VecDeque<(JobId, u32, usize)>,
    running: Option<(JobId, u32, usize, f64)>,
    vram: VecDeque<usize>,
    vram_capacity: usize,
    loads: usize,
}

impl Gpu {
    fn new(vram_capacity: usize) -> Self {
        Self {
            waiting: VecDeque::new(),
            running: None,
            vram: VecDeque::new(),
            vram_capacity,
            loads: 0,
        }
    }

    /// Starts the next job if idle; counts a load when its checkpoint is not in VRAM.
    fn start_next(&mut self, now: f64) {
        if self.running.is_some() {
            return;
        }
        let Some((job, attempt, model)) = self.waiting.pop_front() else {
            return;
        };
        if let Some(at) = self.vram.iter().position(|&m| m == model) {
            self.vram.remove(at);
        } else {
            self.loads += 1;
            self.vram.truncate(self.vram_capacity.saturating_sub(1));
        }
        self.vram.push_front(model);
        self.running = Some((job, attempt, model, now + JOB_SECONDS));
    }
}

/// Where the jobs go.
trait Placement {
    /// Job `job` arrived; returns the (gpu, job, attempt) dispatches.
    fn arrive(&mut self, job: JobId, a: &Arrival, now: f64) -> Vec<(usize, JobId, u32)>;
    /// `gpu` finished `job`; returns the dispatches that follow.
    fn finished(
        &mut self,
        gpu: usize,
        job: JobId,
        attempt: u32,
        now: f64,
    ) -> Vec<(usize, JobId, u32)>;
}

struct Affinity {
    policy: SchedulerPolicy,
    base: Instant,
    ids: Vec<InstanceId>,
}

impl Affinity {
    fn new(models_remembered: usize, lookahead: usize) -> Self {
        let base = Instant::now();
        let config = SchedulerConfig {
            queue_capacity: JOBS * 2,
            pipeline_depth: PIPELINE_DEPTH,
            loaded_models_per_instance: models_remembered,
            affinity_lookahead: lookahead,
            ..SchedulerConfig::default()
        };
        let mut policy = SchedulerPolicy::new(config, base, SystemTime::now());
        let ids: Vec<InstanceId> = (0..INSTANCES)
            .map(|i| InstanceId::new(format!("gpu{i}")))
            .collect();
        for id in &ids {
            policy.register_instance(id.clone(), None, base);
            policy.instance_update(id, InstancePhase::Ready, None, None, base);
        }
        Self { policy, base, ids }
    }

    fn at(&self, now: f64) -> Instant {
        self.base + Duration::from_secs_f64(now)
    }

    fn dispatches(&self, actions: Vec<SchedulerAction>) -> Vec<(usize, JobId, u32)> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                SchedulerAction::Dispatch { instance, run } => {
                    let gpu = self.ids.iter().position(|i| *i == instance)?;
                    Some((gpu, run.job, run.attempt))
                }
                _ => None,
            })
            .collect()
    }
}

impl Placement for Affinity {
    fn arrive(&mut self, job: JobId, a: &Arrival, now: f64) -> Vec<(usize, JobId, u32)> {
        let spec = JobSpec {
            id: job,
            user: UserId::new(format!("user{}", a.user)),
            priority: 0,
            template: "generate".into(),
            prompt: json!({}),
            extra_data: json!({}),
            inputs: Vec::new(),
            models: vec![CHECKPOINTS[a.model].0.to_string()],
        };
        let (_, actions) = self
            .policy
            .submit(spec, self.at(now))
            .expect("the simulated queue has room");
        self.dispatches(actions)
    }

    fn finished(
        &mut self,
        gpu: usize,
        job: JobId,
        attempt: u32,
        now: f64,
    ) -> Vec<(usize, JobId, u32)> {
        let id = self.ids[gpu].clone();
        let actions =
            self.policy
                .job_finished(&id, job, attempt, Ok(RunResult::default()), self.at(now));
        self.dispatches(actions)
    }
}

/// The round-robin baseline over a plain FIFO: each job to the next instance in turn that has
/// a free slot.
struct RoundRobin {
    queue: VecDeque<JobId>,
    held: [usize; INSTANCES],
    next: usize,
}

impl RoundRobin {
    fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            held: [0; INSTANCES],
            next: 0,
        }
    }

    fn dispatch(&mut self) -> Vec<(usize, JobId, u32)> {
        let mut out = Vec::new();
        while !self.queue.is_empty() {
            let Some(gpu) = (0..INSTANCES)
                .map(|k| (self.next + k) % INSTANCES)
                .find(|&g| self.held[g] < PIPELINE_DEPTH)
            else {
                break;
            };
            let Some(job) = self.queue.pop_front() else {
                break;
            };
            self.held[gpu] += 1;
            self.next = (gpu + 1) % INSTANCES;
            out.push((gpu, job, 1));
        }
        out
    }
}

impl Placement for RoundRobin {
    fn arrive(&mut self, job: JobId, _: &Arrival, _: f64) -> Vec<(usize, JobId, u32)> {
        self.queue.push_back(job);
        self.dispatch()
    }

    fn finished(&mut self, gpu: usize, _: JobId, _: u32, _: f64) -> Vec<(usize, JobId, u32)> {
        self.held[gpu] -= 1;
        self.dispatch()
    }
}

/// The least-loaded baseline over a plain FIFO: each job to the instance holding the fewest
/// jobs (the lowest index among equals), when one has a free slot.
struct LeastLoaded {
    queue: VecDeque<JobId>,
    held: [usize; INSTANCES],
}

impl LeastLoaded {
    fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            held: [0; INSTANCES],
        }
    }

    fn dispatch(&mut self) -> Vec<(usize, JobId, u32)> {
        let mut out = Vec::new();
        while !self.queue.is_empty() {
            let Some(gpu) = (0..INSTANCES)
                .filter(|&g| self.held[g] < PIPELINE_DEPTH)
                .min_by_key(|&g| (self.held[g], g))
            else {
                break;
            };
            let Some(job) = self.queue.pop_front() else {
                break;
            };
            self.held[gpu] += 1;
            out.push((gpu, job, 1));
        }
        out
    }
}

impl Placement for LeastLoaded {
    fn arrive(&mut self, job: JobId, _: &Arrival, _: f64) -> Vec<(usize, JobId, u32)> {
        self.queue.push_back(job);
        self.dispatch()
    }

    fn finished(&mut self, gpu: usize, _: JobId, _: u32, _: f64) -> Vec<(usize, JobId, u32)> {
        self.held[gpu] -= 1;
        self.dispatch()
    }
}

/// What one simulated run measured.
struct Outcome {
    loads: usize,
    /// Seconds from arrival to done, 95th percentile.
    latency_p95: f64,
}

/// Runs the workload through a placement.
fn simulate(arrivals: &[Arrival], placement: &mut dyn Placement, vram: usize) -> Outcome {
    let mut gpus: Vec<Gpu> = (0..INSTANCES).map(|_| Gpu::new(vram)).collect();
    let mut model_of: HashMap<JobId, usize> = HashMap::new();
    let mut arrived_at: HashMap<JobId, f64> = HashMap::new();
    let mut latencies: Vec<f64> = Vec::with_capacity(arrivals.len());
    let mut next_arrival = 0;
    let mut done = 0;
    while done < arrivals.len() {
        let now;
        let next_end = gpus
            .iter()
            .enumerate()
            .filter_map(|(g, gpu)| gpu.running.map(|r| (r.3, g)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let arrival = arrivals.get(next_arrival);
        let dispatched = match (arrival, next_end) {
            (Some(a), end) if end.is_none_or(|(e, _)| a.at <= e) => {
                now = a.at;
                next_arrival += 1;
                let job = JobId::new();
                model_of.insert(job, a.model);
                arrived_at.insert(job, a.at);
                placement.arrive(job, a, now)
            }
            (_, Some((end, g))) => {
                now = end;
                let (job, attempt, _, _) = gpus[g].running.take().expect("running");
                done += 1;
                latencies.push(now - arrived_at[&job]);
                placement.finished(g, job, attempt, now)
            }
            _ => unreachable!("jobs remain but nothing is running or arriving"),
        };
        for (gpu, job, attempt) in dispatched {
            gpus[gpu].waiting.push_back((job, attempt, model_of[&job]));
        }
        for gpu in &mut gpus {
            gpu.start_next(now);
        }
    }
    latencies.sort_by(f64::total_cmp);
    Outcome {
        loads: gpus.iter().map(|g| g.loads).sum(),
        latency_p95: latencies[(latencies.len() * 95 / 100).min(latencies.len() - 1)],
    }
}

/// The seeds of the workloads each row runs.
const SEEDS: [u64; 5] = [42, 7, 1234, 99, 2024];

/// Mean and spread (lowest–highest) of some figures, as `mean [low–high]`.
fn spread(values: &[f64], decimals: usize) -> String {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{mean:.decimals$} [{low:.decimals$}–{high:.decimals$}]")
}

fn main() {
    println!(
        "fleet_affinity: {INSTANCES} instances, {JOBS} jobs over {} checkpoints, {JOB_SECONDS} s each, \
         pipeline depth {PIPELINE_DEPTH} (simulated time); each row: mean [lowest–highest] over \
         seeds {SEEDS:?}",
        CHECKPOINTS.len()
    );
    let loads = [Some(0.5), Some(0.8), Some(0.95), None];
    // (VRAM checkpoints per GPU, models the scheduler remembers per instance)
    let setups = [(1, 1), (2, 2), (2, 8)];
    println!(
        "\n  {:>4} {:>4}  {:>7}  {:>7}  {:>7}  {:>7}  {:>20}  {:>20}  {:>20}  {:>24}",
        "VRAM",
        "rem.",
        "load",
        "rr",
        "ll",
        "aff",
        "aff / round-robin",
        "aff / least-loaded",
        "strict / rr",
        "p95 latency s rr|ll|aff"
    );
    for (vram, remembered) in setups {
        for load in loads {
            let (mut rr, mut ll, mut aff) = (Vec::new(), Vec::new(), Vec::new());
            let (mut aff_rr, mut aff_ll, mut strict_rr) = (Vec::new(), Vec::new(), Vec::new());
            let (mut p95_rr, mut p95_ll, mut p95_aff) = (Vec::new(), Vec::new(), Vec::new());
            for seed in SEEDS {
                let arrivals = workload(load, seed);
                let r = simulate(&arrivals, &mut RoundRobin::new(), vram);
                let l = simulate(&arrivals, &mut LeastLoaded::new(), vram);
                let a = simulate(&arrivals, &mut Affinity::new(remembered, 8), vram);
                let strict = simulate(&arrivals, &mut Affinity::new(remembered, 0), vram);
                rr.push(r.loads as f64);
                ll.push(l.loads as f64);
                aff.push(a.loads as f64);
                aff_rr.push(a.loads as f64 / r.loads.max(1) as f64);
                aff_ll.push(a.loads as f64 / l.loads.max(1) as f64);
                strict_rr.push(strict.loads as f64 / r.loads.max(1) as f64);
                p95_rr.push(r.latency_p95);
                p95_ll.push(l.latency_p95);
                p95_aff.push(a.latency_p95);
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let label = match load {
                Some(rho) => format!("{:.0} %", rho * 100.0),
                None => "backlog".to_string(),
            };
            println!(
                "  {:>4} {:>4}  {:>7}  {:>7.0}  {:>7.0}  {:>7.0}  {:>20}  {:>20}  {:>20}  {:>7.1}|{:>7.1}|{:>7.1}",
                vram,
                remembered,
                label,
                mean(&rr),
                mean(&ll),
                mean(&aff),
                spread(&aff_rr, 3),
                spread(&aff_ll, 3),
                spread(&strict_rr, 3),
                mean(&p95_rr),
                mean(&p95_ll),
                mean(&p95_aff),
            );
        }
    }
    println!("\n  target: affinity loads ≤ 1/3 of round-robin (ratio ≤ 0.333)");
}
