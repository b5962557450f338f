//! A window of recently finished jobs: wait and run time percentiles and jobs per minute, for
//! `/v1/status` and the metrics line.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Latency and throughput over the recent window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Jobs in the window.
    pub samples: usize,
    #[serde(with = "humantime_serde", default)]
    pub wait_p50: Option<Duration>,
    #[serde(with = "humantime_serde", default)]
    pub wait_p95: Option<Duration>,
    #[serde(with = "humantime_serde", default)]
    pub run_p50: Option<Duration>,
    #[serde(with = "humantime_serde", default)]
    pub run_p95: Option<Duration>,
    /// Jobs done per minute over the window (or since the start, when shorter).
    pub jobs_per_minute: f64,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    wait: Duration,
    run: Duration,
}

/// Recently finished jobs, bounded by age and count.
#[derive(Debug, Clone)]
pub struct RecentJobs {
    window: Duration,
    max_samples: usize,
    since: Instant,
    samples: VecDeque<Sample>,
}

fn percentile(sorted: &[Duration], fraction: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl RecentJobs {
    pub fn new(window: Duration, max_samples: usize, now: Instant) -> Self {
        Self {
            window,
            max_samples,
            since: now,
            samples: VecDeque::new(),
        }
    }

    /// A job finished at `now` after waiting `wait` in the queue and running for `run`.
    pub fn record(&mut self, now: Instant, wait: Duration, run: Duration) {
        self.samples.push_back(Sample { at: now, wait, run });
        while self.samples.len() > self.max_samples {
            self.samples.pop_front();
        }
    }

    /// Percentiles and rate over the jobs that finished within the window before `now`.
    pub fn summary(&self, now: Instant) -> LatencySummary {
        let recent: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| now.saturating_duration_since(s.at) <= self.window)
            .collect();
        let mut waits: Vec<Duration> = recent.iter().map(|s| s.wait).collect();
        let mut runs: Vec<Duration> = recent.iter().map(|s| s.run).collect();
        waits.sort();
        runs.sort();
        let span = now.saturating_duration_since(self.since).clamp(
            Duration::from_secs(60),
            self.window.max(Duration::from_secs(60)),
        );
        LatencySummary {
            samples: recent.len(),
            wait_p50: percentile(&waits, 0.5),
            wait_p95: percentile(&waits, 0.95),
            run_p50: percentile(&runs, 0.5),
            run_p95: percentile(&runs, 0.95),
            jobs_per_minute: recent.len() as f64 / (span.as_secs_f64() / 60.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rate_cover_only_the_window() {
        let start = Instant::now();
        let mut recent = RecentJobs::new(Duration::from_secs(600), 100, start);
        // An old job, outside the window by the time we ask.
        recent.record(start, Duration::from_secs(999), Duration::from_secs(999));
        for i in 1..=20u64 {
            recent.record(
                start + Duration::from_secs(600 + i),
                Duration::from_secs(i),
                Duration::from_secs(10 * i),
            );
        }
        let summary = recent.summary(start + Duration::from_secs(700));
        assert_eq!(summary.samples, 20);
        assert_eq!(summary.wait_p50, Some(Duration::from_secs(10)));
        assert_eq!(summary.wait_p95, Some(Duration::from_secs(19)));
        assert_eq!(summary.run_p95, Some(Duration::from_secs(190)));
        assert!((summary.jobs_per_minute - 2.0).abs() < 1e-9);
    }

    #[test]
    fn an_empty_window_has_no_percentiles() {
        let start = Instant::now();
        let recent = RecentJobs::new(Duration::from_secs(60), 10, start);
        let summary = recent.summary(start);
        assert_eq!(summary.wait_p50, None);
        assert_eq!(summary.jobs_per_minute, 0.0);
    }
}
