//! The scheduler's settings: the `[scheduler]` section of config.toml as it is read, with its
//! defaults and validation.

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
    /// Skip a GPU whose free memory (from the GPU monitor) is below this many MiB. 0: no check.
    /// Instances whose GPU has not been sampled are never skipped.
    pub vram_headroom_mb: u64,
    /// Finished jobs kept in the job table (oldest finished evicted first; unfinished jobs are
    /// never evicted).
    pub job_retention: usize,
    /// Weight of the newest sample in the moving averages behind ETAs (0 < x ≤ 1).
    pub eta_smoothing: f64,
    /// Model sets (a job's checkpoint with its LoRAs, VAE and text encoders) an instance is
    /// assumed to keep loaded, most recently used first: what its GPU really holds. Placement
    /// sends a job where its models are; remembering more than the GPU keeps makes every
    /// instance look like it has every model and affinity stops working. 2 suits a 24 GB GPU
    /// with SDXL-sized checkpoints; 1 for Flux-sized models; 0 turns affinity off.
    pub loaded_models_per_instance: usize,
    /// When a pipeline slot frees up and the next job's models are not loaded anywhere free,
    /// the slot may take, among the next this-many queued jobs, the first whose models it has
    /// loaded. Only jobs of the head's priority class and fair-share round are considered (see
    /// `queue.rs`), so one user's jobs never pass another user's earlier job. 0 or 1: strict
    /// queue order.
    pub affinity_lookahead: usize,
    /// How many fair-share rounds beyond the head's the look-ahead may reach. 0 (the default)
    /// keeps the fairness promise exactly: one user's flood delays another user's job by at
    /// most one slot. 1 finds more jobs with loaded models under a backlog, at the price of at
    /// most one more slot of delay for other users.
    pub affinity_rounds_ahead: u64,
    /// When no free instance has a queued job's models but a busy one does, the job waits for
    /// that instance's next free slot (at most one waiting job per busy instance, and never a
    /// job that reached `max_overtakes`) instead of loading its models on a free instance; jobs
    /// behind it in the look-ahead window may go meanwhile. Trades up to about one job's wait
    /// for a checkpoint load. `false`: a job loads wherever a slot is free.
    pub affinity_wait: bool,
    /// Most times a queued job may be passed over by the look-ahead; once reached, no later
    /// job may go before it, so every job is dispatched after at most this many overtakes.
    pub max_overtakes: u32,
    /// Queued jobs at positions below this are told every change of position; further back
    /// they are told only when their position changed by `position_update_change`.
    pub position_updates_first: usize,
    /// Fraction by which a queued job's position must change (down or up) since it was last
    /// told before it is told again (0 < x < 1). 0.1: a job at position 1000 hears at 900,
    /// 810, … — O(log N) updates while a queue of N drains, instead of N. The job table shows
    /// the exact position at all times.
    pub position_update_change: f64,
    /// Every queued job is told its position and ETA again when the fleet's pace (seconds per
    /// job, behind all ETAs) has changed by this fraction since they were last all told (x > 0;
    /// 1.0: the pace doubled or halved).
    pub eta_update_change: f64,
    /// How far back `/v1/status` wait/run percentiles and jobs per minute look.
    #[serde(with = "humantime_serde")]
    pub stats_window: Duration,
    /// Most finished jobs kept for those percentiles.
    pub stats_samples: usize,
    /// Users whose jobs go first (a higher priority class).
    pub priority_users: Vec<String>,
    /// Roles (Discord role names or ids) whose members' jobs go first.
    pub priority_roles: Vec<String>,
}

/// The priority class of operator-chosen users and roles; everyone else is in class 0.
pub const PRIORITY_BOOST: i32 = 10;

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1000,
            pipeline_depth: 2,
            max_retries: 2,
            vram_headroom_mb: 0,
            job_retention: 10_000,
            eta_smoothing: 0.2,
            loaded_models_per_instance: 2,
            affinity_lookahead: 8,
            affinity_rounds_ahead: 0,
            affinity_wait: true,
            max_overtakes: 8,
            position_updates_first: 10,
            position_update_change: 0.1,
            eta_update_change: 1.0,
            stats_window: Duration::from_secs(15 * 60),
            stats_samples: 2000,
            priority_users: Vec::new(),
            priority_roles: Vec::new(),
        }
    }
}

/// A setting the scheduler cannot work with. [`SchedulerConfigError::key`] names the setting;
/// the message says what is wrong and what to use instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchedulerConfigError {
    #[error("is 0: set it to at least 1 (the default is 1000)")]
    ZeroQueueCapacity,
    #[error("is 0: set it to at least 1 (the default is 2)")]
    ZeroPipelineDepth,
    #[error("is {0}: use a number above 0 and at most 1 (the default is 0.2)")]
    BadSmoothing(f64),
    #[error("is 0s: use a duration such as \"15m\"")]
    ZeroStatsWindow,
    #[error("is 0: set it to at least 1 (the default is 2000)")]
    ZeroStatsSamples,
    #[error("is {0}: use a fraction above 0 and below 1 (the default is 0.1)")]
    BadPositionChange(f64),
    #[error("is {0}: use a fraction above 0 (the default is 1.0, the pace doubled or halved)")]
    BadEtaChange(f64),
}

impl SchedulerConfigError {
    /// The setting at fault, as written in the `[scheduler]` section.
    pub fn key(&self) -> &'static str {
        match self {
            Self::ZeroQueueCapacity => "queue_capacity",
            Self::ZeroPipelineDepth => "pipeline_depth",
            Self::BadSmoothing(_) => "eta_smoothing",
            Self::ZeroStatsWindow => "stats_window",
            Self::ZeroStatsSamples => "stats_samples",
            Self::BadPositionChange(_) => "position_update_change",
            Self::BadEtaChange(_) => "eta_update_change",
        }
    }
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
        if self.stats_samples == 0 {
            return Err(SchedulerConfigError::ZeroStatsSamples);
        }
        if !(self.position_update_change > 0.0 && self.position_update_change < 1.0) {
            return Err(SchedulerConfigError::BadPositionChange(
                self.position_update_change,
            ));
        }
        if !(self.eta_update_change > 0.0 && self.eta_update_change.is_finite()) {
            return Err(SchedulerConfigError::BadEtaChange(self.eta_update_change));
        }
        Ok(())
    }

    /// Free GPU memory a job needs on its GPU, in bytes; `None` when there is no check.
    pub fn vram_headroom_bytes(&self) -> Option<u64> {
        (self.vram_headroom_mb > 0).then(|| self.vram_headroom_mb.saturating_mul(1024 * 1024))
    }

    /// The scheduling priority of a user with these roles: [`PRIORITY_BOOST`] for the users
    /// and roles named in `priority_users` and `priority_roles`, else 0.
    pub fn priority_of(&self, user: &str, roles: &[String]) -> i32 {
        let chosen = self.priority_users.iter().any(|u| u == user)
            || roles.iter().any(|r| self.priority_roles.contains(r));
        if chosen { PRIORITY_BOOST } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_humantime_durations_and_fills_defaults() {
        let json = r#"{"queue_capacity": 5, "stats_window": "2m", "vram_headroom_mb": 2}"#;
        let config: SchedulerConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.queue_capacity, 5);
        assert_eq!(config.stats_window, Duration::from_secs(120));
        assert_eq!(config.vram_headroom_bytes(), Some(2 * 1024 * 1024));
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
        assert_eq!(err.key(), "pipeline_depth");
        for change in [0.0, 1.0, f64::NAN] {
            let config = SchedulerConfig {
                position_update_change: change,
                ..Default::default()
            };
            let err = config.validate().unwrap_err();
            assert_eq!(err.key(), "position_update_change", "{err}");
        }
        let config = SchedulerConfig {
            eta_update_change: 0.0,
            ..Default::default()
        };
        assert_eq!(config.validate().unwrap_err().key(), "eta_update_change");
        SchedulerConfig::default().validate().unwrap();
    }

    #[test]
    fn priority_goes_to_the_named_users_and_roles() {
        let config = SchedulerConfig {
            priority_users: vec!["alice".into()],
            priority_roles: vec!["patron".into()],
            ..Default::default()
        };
        assert_eq!(config.priority_of("alice", &[]), PRIORITY_BOOST);
        assert_eq!(
            config.priority_of("bob", &["patron".into()]),
            PRIORITY_BOOST
        );
        assert_eq!(config.priority_of("bob", &["member".into()]), 0);
    }
}
