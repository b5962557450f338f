//! ETA estimates from moving averages (EWMA) of run time per template and of the fleet's
//! throughput.
//!
//! A queued job's ETA is the expected time until it is *done*: the time for the jobs ahead of
//! it (queued ahead, plus those already handed to instances) to clear, at the fleet's rate,
//! minus the instances that will be busy with the last of them, plus its own template's run
//! time. The fleet's rate is measured as the interval between completions while jobs were
//! waiting (the fleet was full); before any such measurement it is the mean run time divided by
//! the number of instances taking jobs. Without any finished job there is no ETA.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Moving averages behind ETAs.
#[derive(Debug, Clone)]
pub struct EtaModel {
    alpha: f64,
    /// Seconds per run, by template.
    per_template: HashMap<String, f64>,
    /// Seconds per run, all templates.
    overall: Option<f64>,
    /// Seconds between completions while the fleet was full.
    fleet_interval: Option<f64>,
    last_full_completion: Option<Instant>,
}

fn blend(alpha: f64, old: Option<f64>, sample: f64) -> f64 {
    match old {
        Some(old) => old + alpha * (sample - old),
        None => sample,
    }
}

impl EtaModel {
    /// `alpha` is the weight of each new sample (0 < alpha ≤ 1).
    pub fn new(alpha: f64) -> Self {
        Self {
            alpha,
            per_template: HashMap::new(),
            overall: None,
            fleet_interval: None,
            last_full_completion: None,
        }
    }

    /// A job of `template` ran for `run`.
    pub fn record_run(&mut self, template: &str, run: Duration) {
        let secs = run.as_secs_f64();
        let old = self.per_template.get(template).copied();
        self.per_template
            .insert(template.to_string(), blend(self.alpha, old, secs));
        self.overall = Some(blend(self.alpha, self.overall, secs));
    }

    /// A job completed at `now`; `fleet_full` says whether jobs were waiting at that moment.
    pub fn record_completion(&mut self, now: Instant, fleet_full: bool) {
        if !fleet_full {
            self.last_full_completion = None;
            return;
        }
        if let Some(previous) = self.last_full_completion {
            let interval = now.saturating_duration_since(previous).as_secs_f64();
            self.fleet_interval = Some(blend(self.alpha, self.fleet_interval, interval));
        }
        self.last_full_completion = Some(now);
    }

    /// Expected run time of one job of `template`.
    pub fn run_time(&self, template: &str) -> Option<Duration> {
        self.per_template
            .get(template)
            .copied()
            .or(self.overall)
            .map(Duration::from_secs_f64)
    }

    /// Seconds per job the fleet gets through with `accepting` instances taking jobs (the pace
    /// behind every queued job's ETA), if known.
    pub fn pace(&self, accepting: usize) -> Option<f64> {
        match self.fleet_interval {
            Some(interval) => Some(interval),
            None if accepting > 0 => self.overall.map(|run| run / accepting as f64),
            None => None,
        }
    }

    /// Expected time until a job at queue `position` is done, with `in_flight` jobs already on
    /// instances and `accepting` instances taking jobs.
    pub fn estimate(
        &self,
        position: usize,
        in_flight: usize,
        template: &str,
        accepting: usize,
    ) -> Option<Duration> {
        let run = self.run_time(template)?.as_secs_f64();
        let interval = self.pace(accepting)?;
        let ahead = (position + in_flight + 1).saturating_sub(accepting.max(1));
        Some(Duration::from_secs_f64(ahead as f64 * interval + run))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_estimated_before_a_job_has_run() {
        let eta = EtaModel::new(0.5);
        assert_eq!(eta.estimate(0, 0, "txt2img", 2), None);
    }

    #[test]
    fn run_times_are_averaged_per_template() {
        let mut eta = EtaModel::new(0.5);
        eta.record_run("txt2img", Duration::from_secs(10));
        eta.record_run("txt2img", Duration::from_secs(20));
        eta.record_run("upscale", Duration::from_secs(4));
        assert_eq!(eta.run_time("txt2img"), Some(Duration::from_secs(15)));
        assert_eq!(eta.run_time("upscale"), Some(Duration::from_secs(4)));
        // Unknown template: the overall average (10 -> 15 -> 9.5).
        assert_eq!(eta.run_time("edit"), Some(Duration::from_secs_f64(9.5)));
    }

    #[test]
    fn a_later_position_waits_longer_and_measured_throughput_takes_over() {
        let mut eta = EtaModel::new(1.0);
        eta.record_run("t", Duration::from_secs(10));
        // One instance, one job on it: position 0 waits one run, then runs.
        assert_eq!(eta.estimate(0, 1, "t", 1), Some(Duration::from_secs(20)));
        assert_eq!(eta.estimate(3, 1, "t", 1), Some(Duration::from_secs(50)));
        // Two instances: half the interval.
        assert_eq!(eta.estimate(3, 2, "t", 2), Some(Duration::from_secs(30)));
        // Measured: completions 4s apart while full.
        let start = Instant::now();
        eta.record_completion(start, true);
        eta.record_completion(start + Duration::from_secs(4), true);
        assert_eq!(eta.estimate(3, 2, "t", 2), Some(Duration::from_secs(26)));
        // A completion with nothing waiting breaks the measurement chain.
        eta.record_completion(start + Duration::from_secs(100), false);
        eta.record_completion(start + Duration::from_secs(200), true);
        assert_eq!(eta.estimate(3, 2, "t", 2), Some(Duration::from_secs(26)));
    }
}
