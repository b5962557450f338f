//! What the fleet counts about jobs as they happen: finished jobs by outcome, and how long jobs
//! waited and ran, as Prometheus counters and histograms that last as long as the process (the
//! job table forgets old jobs; these do not).
//!
//! [`JobMetrics`] holds the metrics (cheap to clone, shared with `/metrics`); [`JobClocks`] is the
//! plain policy the event hub feeds every job event to, which times each job and records it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use comfy_fleet_actors::{JobEvent, JobId};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Done,
    Failed,
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Self::Done, Self::Failed, Self::Cancelled];

    /// The `outcome` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The outcome a final event announces; `None` for the others.
    pub fn of(event: &JobEvent) -> Option<Self> {
        match event {
            JobEvent::Done { .. } => Some(Self::Done),
            JobEvent::Failed { .. } => Some(Self::Failed),
            JobEvent::Cancelled { .. } => Some(Self::Cancelled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// Bucket bounds in seconds, from a quick job on a warm GPU to a long video workflow.
const SECONDS_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// The job metrics: `comfy_fleet_jobs_total{outcome}`, `comfy_fleet_job_wait_seconds` and
/// `comfy_fleet_job_run_seconds`. Clones share the same metrics.
#[derive(Clone, Debug)]
pub struct JobMetrics {
    registry: Arc<Registry>,
    finished: Family<OutcomeLabel, Counter>,
    wait: Histogram,
    run: Histogram,
}

impl Default for JobMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl JobMetrics {
    pub fn new() -> Self {
        let finished = Family::<OutcomeLabel, Counter>::default();
        // Every outcome is shown from the start, at 0.
        for outcome in Outcome::ALL {
            finished
                .get_or_create(&OutcomeLabel {
                    outcome: outcome.label(),
                })
                .inc_by(0);
        }
        let wait = Histogram::new(SECONDS_BUCKETS);
        let run = Histogram::new(SECONDS_BUCKETS);
        let mut registry = Registry::default();
        registry.register(
            "comfy_fleet_jobs",
            "Jobs that ended, by outcome",
            finished.clone(),
        );
        registry.register(
            "comfy_fleet_job_wait_seconds",
            "Time from a job's submission to its first start on an instance",
            wait.clone(),
        );
        registry.register(
            "comfy_fleet_job_run_seconds",
            "Time from the start of a done job's last attempt to its end",
            run.clone(),
        );
        Self {
            registry: Arc::new(registry),
            finished,
            wait,
            run,
        }
    }

    /// A job ended.
    pub fn ended(&self, outcome: Outcome) {
        self.finished
            .get_or_create(&OutcomeLabel {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// A job started for the first time after waiting `wait`.
    pub fn waited(&self, wait: Duration) {
        self.wait.observe(wait.as_secs_f64());
    }

    /// A job finished done, its last attempt having run for `run`.
    pub fn ran(&self, run: Duration) {
        self.run.observe(run.as_secs_f64());
    }

    /// Jobs that ended with `outcome` since the start.
    pub fn ended_count(&self, outcome: Outcome) -> u64 {
        self.finished
            .get(&OutcomeLabel {
                outcome: outcome.label(),
            })
            .map_or(0, |counter| counter.get())
    }

    /// Appends these metrics in the OpenMetrics text format (without the final `# EOF`).
    pub fn encode(&self, out: &mut String) -> fmt::Result {
        encode_registry(out, &self.registry)
    }
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    queued_at: Instant,
    started_at: Option<Instant>,
}

/// Times every job from its events and records it in [`JobMetrics`]: the wait when it first
/// starts, the run when it ends done, and the outcome when it ends.
#[derive(Debug)]
pub struct JobClocks {
    metrics: JobMetrics,
    clocks: HashMap<JobId, Clock>,
}

impl JobClocks {
    pub fn new(metrics: JobMetrics) -> Self {
        Self {
            metrics,
            clocks: HashMap::new(),
        }
    }

    /// One event of a job, seen at `now`.
    pub fn observe(&mut self, event: &JobEvent, now: Instant) {
        let job = event.job();
        match event {
            JobEvent::Queued { .. } => {
                self.clocks.entry(job).or_insert(Clock {
                    queued_at: now,
                    started_at: None,
                });
            }
            JobEvent::Started { .. } => {
                if let Some(clock) = self.clocks.get_mut(&job) {
                    if clock.started_at.is_none() {
                        self.metrics
                            .waited(now.saturating_duration_since(clock.queued_at));
                    }
                    clock.started_at = Some(now);
                }
            }
            _ => {}
        }
        if let Some(outcome) = Outcome::of(event) {
            self.metrics.ended(outcome);
            let clock = self.clocks.remove(&job);
            if let (Outcome::Done, Some(started_at)) = (outcome, clock.and_then(|c| c.started_at)) {
                self.metrics.ran(now.saturating_duration_since(started_at));
            }
        }
    }

    /// Jobs being timed (queued or running).
    pub fn len(&self) -> usize {
        self.clocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clocks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use comfy_fleet_actors::InstanceId;

    use super::*;

    fn started(job: JobId, attempt: u32) -> JobEvent {
        JobEvent::Started {
            job,
            instance: InstanceId("gpu0".into()),
            attempt,
        }
    }

    fn queued(job: JobId) -> JobEvent {
        JobEvent::Queued {
            job,
            position: 0,
            eta: None,
        }
    }

    fn text(metrics: &JobMetrics) -> String {
        let mut out = String::new();
        metrics.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn outcomes_are_counted_and_a_retried_job_waits_once_and_runs_its_last_attempt() {
        let metrics = JobMetrics::new();
        let mut clocks = JobClocks::new(metrics.clone());
        let t0 = Instant::now();
        let secs = |s: u64| t0 + Duration::from_secs(s);
        let job = JobId::new();
        clocks.observe(&queued(job), secs(0));
        clocks.observe(&started(job, 1), secs(2));
        clocks.observe(
            &JobEvent::Retrying {
                job,
                attempt: 2,
                reason: "crashed".into(),
            },
            secs(10),
        );
        clocks.observe(&queued(job), secs(10));
        clocks.observe(&started(job, 2), secs(11));
        clocks.observe(
            &JobEvent::Done {
                job,
                outputs: vec![],
            },
            secs(14),
        );
        let cancelled = JobId::new();
        clocks.observe(&queued(cancelled), secs(3));
        clocks.observe(&JobEvent::Cancelled { job: cancelled }, secs(4));
        assert!(clocks.is_empty(), "ended jobs are no longer timed");

        assert_eq!(metrics.ended_count(Outcome::Done), 1);
        assert_eq!(metrics.ended_count(Outcome::Cancelled), 1);
        assert_eq!(metrics.ended_count(Outcome::Failed), 0);
        let text = text(&metrics);
        for line in [
            "# TYPE comfy_fleet_jobs counter",
            "comfy_fleet_jobs_total{outcome=\"done\"} 1",
            "comfy_fleet_jobs_total{outcome=\"failed\"} 0",
            "comfy_fleet_jobs_total{outcome=\"cancelled\"} 1",
            "# TYPE comfy_fleet_job_wait_seconds histogram",
            // Waited 2 s before its first start; the retry's wait is not a new one.
            "comfy_fleet_job_wait_seconds_sum 2.0",
            "comfy_fleet_job_wait_seconds_count 1",
            "comfy_fleet_job_wait_seconds_bucket{le=\"1.0\"} 0",
            "comfy_fleet_job_wait_seconds_bucket{le=\"2.5\"} 1",
            // Its last attempt ran 3 s; the cancelled job never ran.
            "comfy_fleet_job_run_seconds_sum 3.0",
            "comfy_fleet_job_run_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
    }

    #[test]
    fn a_job_failed_before_it_started_is_counted_without_times() {
        let metrics = JobMetrics::new();
        let mut clocks = JobClocks::new(metrics.clone());
        let job = JobId::new();
        let now = Instant::now();
        clocks.observe(&queued(job), now);
        clocks.observe(
            &JobEvent::Failed {
                job,
                message: "bad".into(),
                retriable: false,
            },
            now,
        );
        assert_eq!(metrics.ended_count(Outcome::Failed), 1);
        let text = text(&metrics);
        assert!(
            text.contains("comfy_fleet_job_wait_seconds_count 0"),
            "{text}"
        );
        assert!(
            text.contains("comfy_fleet_job_run_seconds_count 0"),
            "{text}"
        );
    }
}
