//! The scheduler's settings (`[scheduler]` in config.toml), with defaults and validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the scheduler queues, places and retries jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Most jobs waiting at once (running jobs and retries do not count); beyond it a submission
    /// is refused with `SubmitError::QueueFull`.
    pub queue_capacity: usize,
    /// Most jobs handed to one instance at once (running + waiting in its ComfyUI queue). 2 keeps
    /// the GPU busy between jobs while ComfyUI's own queue stays short.
    pub pipeline_depth: usize,
    /// How many times a job is retried on another instance after a retriable failure (crash,
    /// hang, unreachable). 2 means at most 3 attempts.
    pub max_retries: u32,
    /// Skip a GPU whose free memory (from the GPU monitor) is below this many bytes. `None`: no
    /// check. Instances whose GPU has not been sampled are never skipped.
    pub vram_headroom_bytes: Option<u64>,
    /// Finished jobs kept in the job table (oldest finished evicted first; unfinished jobs are
    /// never evicted).
    pub job_retention: usize,
    /// Weight of the newest sample in the moving averages behind ETAs (0 < x ≤ 1).
    pub eta_smoothing: f64,
    /// Models remembered per instance for affinity (most recently used first).
    pub loaded_models_per_instance: usize,
    /// How far back `/v1/status` wait/run percentiles and jobs per minute look.
    #[serde(with = "humantime_serde")]
    pub stats_window: Duration,
    /// Most finished jobs kept for those percentiles.
    pub stats_samples: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1000,
            pipeline_depth: 2,
            max_retries: 2,
            vram_headroom_bytes: None,
            job_retention: 10_000,
            eta_smoothing: 0.2,
            loaded_models_per_instance: 8,
            stats_window: Duration::from_secs(15 * 60),
            stats_samples: 2000,
        }
    }
}

/// A setting the scheduler cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchedulerConfigError {
    #[error("scheduler.queue_capacity is 0: set it to at least 1 (the default is 1000)")]
    ZeroQueueCapacity,
    #[error("scheduler.pipeline_depth is 0: set it to at least 1 (the default is 2)")]
    ZeroPipelineDepth,
    #[error(
        "scheduler.eta_smoothing is {0}: use a number above 0 and at most 1 (the default is 0.2)"
    )]
    BadSmoothing(f64),
    #[error("scheduler.stats_window is 0s: use a duration such as \"15m\"")]
    ZeroStatsWindow,
}

impl SchedulerConfig {
    /// Checks the settings; the error names the setting and a valid value.
    pub fn validate(&self) -> Result<(), SchedulerConfigError> {
        if self.queue_capacity == 0 {
            return Err(SchedulerConfigError::ZeroQueueCapacity);
        }
        if self.pipeline_depth == 0 {
            return Err(SchedulerConfigError::ZeroPipelineDepth);
        }
        if !(self.eta_smoothing > 0.0 && self.eta_smoothing <= 1.0) {
            return Err(SchedulerConfigError::BadSmoothing(self.eta_smoothing));
        }
        if self.stats_window.is_zero() {
            return Err(SchedulerConfigError::ZeroStatsWindow);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_humantime_durations_and_fills_defaults() {
        let json = r#"{"queue_capacity": 5, "stats_window": "2m", "vram_headroom_bytes": 1024}"#;
        let config: SchedulerConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.queue_capacity, 5);
        assert_eq!(config.stats_window, Duration::from_secs(120));
        assert_eq!(config.vram_headroom_bytes, Some(1024));
        assert_eq!(config.pipeline_depth, 2);
        config.validate().unwrap();
    }

    #[test]
    fn refuses_unknown_settings_and_zero_depth() {
        assert!(serde_json::from_str::<SchedulerConfig>(r#"{"queue_size": 5}"#).is_err());
        let config = SchedulerConfig {
            pipeline_depth: 0,
            ..Default::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("pipeline_depth"));
    }
}
