//! Operator metrics: the periodic `fleet.metrics` log event, the one-line summary operators ask
//! for (`FleetHandle::metrics_line`), and the Prometheus text of `/metrics`.
//!
//! [`MetricsReporter`] keeps the latest GPU sample (it subscribes to the GPU monitor) and, every
//! `logging.metrics_interval`, logs one structured event from the scheduler's snapshot. The
//! event and the line are both made from one [`FleetSummary`], so they always agree.
//! [`render_prometheus`] writes the job counters and histograms of [`JobMetrics`] and gauges of
//! the fleet as it is at the scrape.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, WrapFuture};
use comfy_fleet_actors::messages::{GetSchedulerSnapshot, GpuSample, InstancePhase};
use comfy_fleet_actors::ports::GpuInfo;
use comfy_fleet_actors::scheduling::{JobCounts, LatencySummary, Scheduler, SchedulerSnapshot};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::fleet::job_metrics::JobMetrics;

/// The latest GPU sample, shared with the HTTP API.
#[derive(Clone, Default)]
pub struct GpuView(Arc<RwLock<Vec<GpuInfo>>>);

impl GpuView {
    pub fn get(&self) -> Vec<GpuInfo> {
        self.0.read().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn set(&self, gpus: Vec<GpuInfo>) {
        if let Ok(mut g) = self.0.write() {
            *g = gpus;
        }
    }
}

/// Logs `fleet.metrics` periodically and keeps [`GpuView`] fresh.
pub struct MetricsReporter {
    scheduler: Addr<Scheduler>,
    gpus: GpuView,
    interval: Duration,
    demo: bool,
}

impl MetricsReporter {
    pub fn new(scheduler: Addr<Scheduler>, gpus: GpuView, interval: Duration, demo: bool) -> Self {
        Self {
            scheduler,
            gpus,
            interval,
            demo,
        }
    }
}

impl Actor for MetricsReporter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.interval.is_zero() {
            return;
        }
        ctx.run_interval(self.interval, |this, ctx| {
            let gpus = this.gpus.get();
            let demo = this.demo;
            ctx.spawn(
                this.scheduler
                    .send(GetSchedulerSnapshot)
                    .into_actor(this)
                    .map(move |snap, _, _| {
                        if let Ok(snap) = snap {
                            log_metrics(&snap, &gpus, demo);
                        }
                    }),
            );
        });
    }
}

impl Handler<GpuSample> for MetricsReporter {
    type Result = ();

    fn handle(&mut self, msg: GpuSample, _: &mut Context<Self>) {
        self.gpus.set(msg.gpus);
    }
}

fn ms(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// The numbers an operator watches, from one scheduler snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSummary {
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub paused: bool,
    pub shutting_down: bool,
    pub jobs: JobCounts,
    /// Instances per phase, in [`PHASES`] order, phases without instances left out.
    pub instances_by_phase: Vec<(InstancePhase, usize)>,
    pub latency: LatencySummary,
}

impl FleetSummary {
    pub fn of(snap: &SchedulerSnapshot) -> Self {
        let instances_by_phase = PHASES
            .iter()
            .map(|phase| {
                let n = snap.instances.iter().filter(|i| i.phase == *phase).count();
                (*phase, n)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        Self {
            queue_depth: snap.queue_depth,
            queue_capacity: snap.queue_capacity,
            paused: snap.paused,
            shutting_down: snap.shutting_down,
            jobs: snap.jobs,
            instances_by_phase,
            latency: snap.latency,
        }
    }

    /// `1 ready, 1 draining` (or `none`).
    fn phases_text(&self) -> String {
        if self.instances_by_phase.is_empty() {
            return "none".into();
        }
        self.instances_by_phase
            .iter()
            .map(|(phase, n)| format!("{n} {}", phase.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn seconds_text(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.1}s", d.as_secs_f64()))
}

/// The metrics line: `queue 3 (paused), running 2, done 10, failed 1, cancelled 0; instances:
/// 1 ready, 1 stopped; wait p50 1.2s, run p50 3.4s` (`-` before any job finished).
impl std::fmt::Display for FleetSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "queue {}", self.queue_depth)?;
        match (self.shutting_down, self.paused) {
            (true, _) => write!(f, " (shutting down)")?,
            (false, true) => write!(f, " (paused)")?,
            (false, false) => {}
        }
        write!(
            f,
            ", running {}, done {}, failed {}, cancelled {}; instances: {}; wait p50 {}, run p50 {}",
            self.jobs.running,
            self.jobs.done,
            self.jobs.failed,
            self.jobs.cancelled,
            self.phases_text(),
            seconds_text(self.latency.wait_p50),
            seconds_text(self.latency.run_p50),
        )
    }
}

/// One structured event with everything an operator watches.
pub fn log_metrics(snap: &SchedulerSnapshot, gpus: &[GpuInfo], demo: bool) {
    let summary = FleetSummary::of(snap);
    let instances: Vec<String> = snap
        .instances
        .iter()
        .map(|i| {
            format!(
                "{}={:?} jobs={} models=[{}]",
                i.id,
                i.phase,
                i.running.len(),
                i.loaded_models.join(",")
            )
            .to_lowercase()
        })
        .collect();
    let gpu_text: Vec<String> = gpus
        .iter()
        .map(|g| {
            format!(
                "{}: mem {}/{} MiB util {}%",
                g.index,
                g.memory_used_bytes >> 20,
                g.memory_total_bytes >> 20,
                g.utilization_percent.map_or("?".into(), |u| u.to_string())
            )
        })
        .collect();
    tracing::info!(
        target: "fleet.metrics",
        demo_backend = demo,
        queue_depth = summary.queue_depth,
        queue_capacity = summary.queue_capacity,
        queue_paused = summary.paused,
        jobs_queued = summary.jobs.queued,
        jobs_running = summary.jobs.running,
        jobs_done = summary.jobs.done,
        jobs_failed = summary.jobs.failed,
        jobs_cancelled = summary.jobs.cancelled,
        wait_p50_ms = ms(summary.latency.wait_p50),
        wait_p95_ms = ms(summary.latency.wait_p95),
        run_p50_ms = ms(summary.latency.run_p50),
        run_p95_ms = ms(summary.latency.run_p95),
        jobs_per_minute = summary.latency.jobs_per_minute,
        instances_by_phase = %summary.phases_text(),
        instances = %instances.join("; "),
        gpus = %gpu_text.join("; "),
        "fleet metrics"
    );
}

/// The content type of [`render_prometheus`]'s text.
pub const PROMETHEUS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InstancePhaseLabels {
    instance: String,
    phase: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InstanceLabel {
    instance: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GpuLabels {
    gpu: u32,
    uuid: String,
}

/// Every phase, so `comfy_fleet_instances{phase}` shows each one, at 0 when none is in it.
const PHASES: [InstancePhase; 7] = [
    InstancePhase::Starting,
    InstancePhase::Ready,
    InstancePhase::Draining,
    InstancePhase::Crashed,
    InstancePhase::Restarting,
    InstancePhase::Quarantined,
    InstancePhase::Stopped,
];

fn phase_label(phase: InstancePhase) -> &'static str {
    match phase {
        InstancePhase::Starting => "starting",
        InstancePhase::Ready => "ready",
        InstancePhase::Draining => "draining",
        InstancePhase::Crashed => "crashed",
        InstancePhase::Restarting => "restarting",
        InstancePhase::Quarantined => "quarantined",
        InstancePhase::Stopped => "stopped",
    }
}

fn count(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let gauge = Gauge::<i64>::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

/// The fleet as it is now: queue, instances and GPUs, as gauges made afresh for one scrape.
fn fleet_gauges(snap: &SchedulerSnapshot, gpus: &[GpuInfo], demo: bool) -> Registry {
    let mut registry = Registry::default();
    gauge(
        &mut registry,
        "comfy_fleet_demo_backend",
        "1 when the instances are the demo backend (fake-comfyui)",
        i64::from(demo),
    );
    gauge(
        &mut registry,
        "comfy_fleet_queue_depth",
        "Jobs waiting in the fleet queue",
        count(snap.queue_depth),
    );
    gauge(
        &mut registry,
        "comfy_fleet_queue_capacity",
        "Most jobs the queue holds",
        count(snap.queue_capacity),
    );
    gauge(
        &mut registry,
        "comfy_fleet_jobs_running",
        "Jobs placed on an instance and not finished",
        count(snap.jobs.running),
    );

    let by_phase = Family::<PhaseLabel, Gauge>::default();
    for phase in PHASES {
        let n = snap.instances.iter().filter(|i| i.phase == phase).count();
        by_phase
            .get_or_create(&PhaseLabel {
                phase: phase_label(phase),
            })
            .set(count(n));
    }
    registry.register("comfy_fleet_instances", "Instances by phase", by_phase);

    let phase_of = Family::<InstancePhaseLabels, Gauge>::default();
    let running = Family::<InstanceLabel, Gauge>::default();
    for i in &snap.instances {
        phase_of
            .get_or_create(&InstancePhaseLabels {
                instance: i.id.0.clone(),
                phase: phase_label(i.phase),
            })
            .set(1);
        running
            .get_or_create(&InstanceLabel {
                instance: i.id.0.clone(),
            })
            .set(count(i.running.len()));
    }
    registry.register(
        "comfy_fleet_instance_phase",
        "1 for each instance, labelled with its current phase",
        phase_of,
    );
    registry.register(
        "comfy_fleet_instance_running_jobs",
        "Jobs handed to each instance and not finished",
        running,
    );

    let used = Family::<GpuLabels, Gauge>::default();
    let total = Family::<GpuLabels, Gauge>::default();
    let utilization = Family::<GpuLabels, Gauge>::default();
    for g in gpus {
        let labels = GpuLabels {
            gpu: g.index,
            uuid: g.id.0.clone(),
        };
        used.get_or_create(&labels).set(count(g.memory_used_bytes));
        total
            .get_or_create(&labels)
            .set(count(g.memory_total_bytes));
        if let Some(percent) = g.utilization_percent {
            utilization.get_or_create(&labels).set(i64::from(percent));
        }
    }
    registry.register(
        "comfy_fleet_gpu_memory_used_bytes",
        "GPU memory in use",
        used,
    );
    registry.register(
        "comfy_fleet_gpu_memory_total_bytes",
        "GPU memory in all",
        total,
    );
    registry.register(
        "comfy_fleet_gpu_utilization_percent",
        "GPU utilisation",
        utilization,
    );
    registry
}

/// The fleet's metrics in the OpenMetrics text format (which Prometheus reads): the job
/// counters and histograms, then the current queue, instances and GPUs.
pub fn render_prometheus(
    jobs: &JobMetrics,
    snap: &SchedulerSnapshot,
    gpus: &[GpuInfo],
    demo: bool,
) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    jobs.encode(&mut out)?;
    encode_registry(&mut out, &fleet_gauges(snap, gpus, demo))?;
    encode_eof(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use comfy_fleet_actors::scheduling::InstanceSnapshot;
    use comfy_fleet_actors::{GpuId, InstanceId, JobId};

    use super::*;
    use crate::fleet::job_metrics::Outcome;

    fn instance(id: &str, phase: InstancePhase, running: usize) -> InstanceSnapshot {
        InstanceSnapshot {
            id: InstanceId(id.into()),
            gpu: None,
            phase,
            url: None,
            detail: None,
            running: (0..running).map(|_| JobId::new()).collect(),
            loaded_models: vec![],
        }
    }

    #[test]
    fn the_text_has_counters_that_outlive_the_table_and_gauges_of_the_moment() {
        let jobs = JobMetrics::new();
        for _ in 0..5 {
            jobs.ended(Outcome::Done);
        }
        let snap = SchedulerSnapshot {
            queue_depth: 3,
            queue_capacity: 10,
            // The table remembers only two of the five.
            jobs: JobCounts {
                queued: 3,
                running: 2,
                done: 2,
                failed: 0,
                cancelled: 0,
            },
            instances: vec![
                instance("gpu0", InstancePhase::Ready, 2),
                instance("gpu1", InstancePhase::Quarantined, 0),
            ],
            latency: LatencySummary::default(),
            shutting_down: false,
            paused: false,
        };
        let gpu = GpuInfo {
            index: 0,
            id: GpuId("GPU-a\"b".into()),
            name: "Test GPU".into(),
            pci_bus_id: "0000:01:00.0".into(),
            memory_total_bytes: 8 << 30,
            memory_used_bytes: 1 << 30,
            memory_free_bytes: 7 << 30,
            utilization_percent: None,
            temperature_celsius: None,
            processes: vec![],
        };
        let text = render_prometheus(&jobs, &snap, &[gpu], false).unwrap();
        for line in [
            "comfy_fleet_jobs_total{outcome=\"done\"} 5",
            "comfy_fleet_demo_backend 0",
            "comfy_fleet_queue_depth 3",
            "comfy_fleet_jobs_running 2",
            "comfy_fleet_instances{phase=\"ready\"} 1",
            "comfy_fleet_instances{phase=\"quarantined\"} 1",
            "comfy_fleet_instances{phase=\"crashed\"} 0",
            "comfy_fleet_instance_phase{instance=\"gpu1\",phase=\"quarantined\"} 1",
            "comfy_fleet_instance_running_jobs{instance=\"gpu0\"} 2",
            "comfy_fleet_gpu_memory_used_bytes{gpu=\"0\",uuid=\"GPU-a\\\"b\"} 1073741824",
            "comfy_fleet_gpu_memory_total_bytes{gpu=\"0\",uuid=\"GPU-a\\\"b\"} 8589934592",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(
            !text.contains("comfy_fleet_gpu_utilization_percent{"),
            "an unknown utilisation is left out:\n{text}"
        );
        assert_eq!(text.lines().last(), Some("# EOF"));
    }

    #[test]
    fn the_line_says_the_queue_the_jobs_the_phases_and_the_median_times() {
        let mut snap = SchedulerSnapshot {
            queue_depth: 3,
            queue_capacity: 10,
            jobs: JobCounts {
                queued: 3,
                running: 2,
                done: 10,
                failed: 1,
                cancelled: 0,
            },
            instances: vec![
                instance("gpu0", InstancePhase::Ready, 2),
                instance("gpu1", InstancePhase::Stopped, 0),
                instance("gpu2", InstancePhase::Ready, 0),
            ],
            latency: LatencySummary {
                samples: 11,
                wait_p50: Some(Duration::from_millis(1_240)),
                wait_p95: Some(Duration::from_secs(9)),
                run_p50: Some(Duration::from_millis(3_400)),
                run_p95: None,
                jobs_per_minute: 1.0,
            },
            shutting_down: false,
            paused: true,
        };
        assert_eq!(
            FleetSummary::of(&snap).to_string(),
            "queue 3 (paused), running 2, done 10, failed 1, cancelled 0; \
             instances: 2 ready, 1 stopped; wait p50 1.2s, run p50 3.4s"
        );
        snap.paused = false;
        snap.instances.clear();
        snap.latency = LatencySummary::default();
        assert_eq!(
            FleetSummary::of(&snap).to_string(),
            "queue 3, running 2, done 10, failed 1, cancelled 0; \
             instances: none; wait p50 -, run p50 -"
        );
    }
}
