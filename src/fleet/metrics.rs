//! Operator metrics: the periodic `fleet.metrics` log event and the Prometheus text of `/metrics`.
//!
//! [`MetricsReporter`] keeps the latest GPU sample (it subscribes to the GPU monitor) and, every
//! `logging.metrics_interval`, logs one structured event from the scheduler's snapshot.

use std::fmt::Write as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, WrapFuture};
use comfy_fleet_actors::messages::{GetSchedulerSnapshot, GpuSample};
use comfy_fleet_actors::ports::GpuInfo;
use comfy_fleet_actors::scheduling::{Scheduler, SchedulerSnapshot};

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

/// One structured event with everything an operator watches.
pub fn log_metrics(snap: &SchedulerSnapshot, gpus: &[GpuInfo], demo: bool) {
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
        queue_depth = snap.queue_depth,
        queue_capacity = snap.queue_capacity,
        jobs_queued = snap.jobs.queued,
        jobs_running = snap.jobs.running,
        jobs_done = snap.jobs.done,
        jobs_failed = snap.jobs.failed,
        jobs_cancelled = snap.jobs.cancelled,
        wait_p50_ms = ms(snap.latency.wait_p50),
        wait_p95_ms = ms(snap.latency.wait_p95),
        run_p50_ms = ms(snap.latency.run_p50),
        run_p95_ms = ms(snap.latency.run_p95),
        jobs_per_minute = snap.latency.jobs_per_minute,
        instances = %instances.join("; "),
        gpus = %gpu_text.join("; "),
        "fleet metrics"
    );
}

/// The Prometheus text exposition of the fleet.
pub fn render_prometheus(snap: &SchedulerSnapshot, gpus: &[GpuInfo], demo: bool) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            if value.is_finite() {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        }
    };
    gauge(
        "comfy_fleet_demo_backend",
        "1 when the instances are the demo backend (fake-comfyui).",
        &[(String::new(), f64::from(u8::from(demo)))],
    );
    gauge(
        "comfy_fleet_queue_depth",
        "Jobs waiting in the fleet queue.",
        &[(String::new(), snap.queue_depth as f64)],
    );
    gauge(
        "comfy_fleet_queue_capacity",
        "Most jobs the queue holds.",
        &[(String::new(), snap.queue_capacity as f64)],
    );
    let j = &snap.jobs;
    gauge(
        "comfy_fleet_jobs",
        "Jobs known to the fleet, by state.",
        &[
            ("{state=\"queued\"}".into(), j.queued as f64),
            ("{state=\"running\"}".into(), j.running as f64),
            ("{state=\"done\"}".into(), j.done as f64),
            ("{state=\"failed\"}".into(), j.failed as f64),
            ("{state=\"cancelled\"}".into(), j.cancelled as f64),
        ],
    );
    let l = &snap.latency;
    let secs = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
    gauge(
        "comfy_fleet_job_wait_seconds",
        "Time from submit to start over recent jobs.",
        &[
            ("{quantile=\"0.5\"}".into(), secs(l.wait_p50)),
            ("{quantile=\"0.95\"}".into(), secs(l.wait_p95)),
        ],
    );
    gauge(
        "comfy_fleet_job_run_seconds",
        "Time from start to done over recent jobs.",
        &[
            ("{quantile=\"0.5\"}".into(), secs(l.run_p50)),
            ("{quantile=\"0.95\"}".into(), secs(l.run_p95)),
        ],
    );
    gauge(
        "comfy_fleet_jobs_per_minute",
        "Jobs finished per minute recently.",
        &[(String::new(), l.jobs_per_minute)],
    );
    let phases: Vec<(String, f64)> = snap
        .instances
        .iter()
        .map(|i| {
            (
                format!(
                    "{{instance=\"{}\",phase=\"{}\"}}",
                    escape(&i.id.0),
                    format!("{:?}", i.phase).to_lowercase()
                ),
                1.0,
            )
        })
        .collect();
    gauge(
        "comfy_fleet_instance_phase",
        "Each instance's current phase.",
        &phases,
    );
    let running: Vec<(String, f64)> = snap
        .instances
        .iter()
        .map(|i| {
            (
                format!("{{instance=\"{}\"}}", escape(&i.id.0)),
                i.running.len() as f64,
            )
        })
        .collect();
    gauge(
        "comfy_fleet_instance_running_jobs",
        "Jobs handed to each instance.",
        &running,
    );
    let label = |g: &GpuInfo| format!("{{gpu=\"{}\",uuid=\"{}\"}}", g.index, escape(&g.id.0));
    let used: Vec<(String, f64)> = gpus
        .iter()
        .map(|g| (label(g), g.memory_used_bytes as f64))
        .collect();
    gauge(
        "comfy_fleet_gpu_memory_used_bytes",
        "GPU memory in use.",
        &used,
    );
    let total: Vec<(String, f64)> = gpus
        .iter()
        .map(|g| (label(g), g.memory_total_bytes as f64))
        .collect();
    gauge(
        "comfy_fleet_gpu_memory_total_bytes",
        "GPU memory in all.",
        &total,
    );
    let util: Vec<(String, f64)> = gpus
        .iter()
        .filter_map(|g| g.utilization_percent.map(|u| (label(g), f64::from(u))))
        .collect();
    gauge(
        "comfy_fleet_gpu_utilization_percent",
        "GPU utilisation.",
        &util,
    );
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
