//! The named intervals and limits of one instance's lifecycle: the `[lifecycle]` section of
//! config.toml as it is read.
//!
//! Every field has a default, durations are written the humantime way (`"500ms"`, `"2m"`), and
//! [`InstanceConfig::validate`] refuses values that would make the policies meaningless (a
//! multiplier below 1, a jitter of 100 %…), naming the setting.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How one instance is started, watched, restarted and stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceConfig {
    /// How long a freshly launched (or re-probed) server has to become ready: HTTP up,
    /// `object_info` loaded and the warm-up prompt run. Past it, the start counts as a crash.
    #[serde(with = "humantime_serde")]
    pub readiness_timeout: Duration,
    /// Pause between two readiness probes while the server is not answering yet.
    #[serde(with = "humantime_serde")]
    pub readiness_poll: Duration,
    /// Longest wait for one control call (ping, prompt status, cancel) before it counts as failed.
    #[serde(with = "humantime_serde")]
    pub control_timeout: Duration,
    /// Pause between two health pings while the instance is idle.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// Consecutive failed health pings that make the instance count as crashed.
    pub health_failures: u32,
    /// Run a tiny prompt once after each start, before the instance accepts jobs.
    pub warmup: bool,
    /// The API-format prompt `warmup` runs (set by the program, not read from the file).
    #[serde(skip)]
    pub warmup_prompt: Option<serde_json::Value>,
    /// Per-job watchdog: how long a running job may stay without any execution event before the
    /// instance asks ComfyUI where the prompt stands.
    #[serde(with = "humantime_serde")]
    pub job_silence: Duration,
    /// Between SIGTERM and SIGKILL when the process is stopped.
    #[serde(with = "humantime_serde")]
    pub stop_grace: Duration,
    /// Delay before each restart.
    pub backoff: BackoffConfig,
    /// When restarts stop and the GPU is quarantined.
    pub restart_intensity: RestartIntensity,
}

impl Default for InstanceConfig {
    fn default() -> Self {
        Self {
            readiness_timeout: Duration::from_secs(300),
            readiness_poll: Duration::from_millis(500),
            control_timeout: Duration::from_secs(5),
            health_interval: Duration::from_secs(10),
            health_failures: 3,
            warmup: false,
            warmup_prompt: None,
            job_silence: Duration::from_secs(600),
            stop_grace: Duration::from_secs(10),
            backoff: BackoffConfig::default(),
            restart_intensity: RestartIntensity::default(),
        }
    }
}

/// Exponential backoff between restarts: `initial × multiplier^(n-1)`, capped at `max`, then
/// spread by ± `jitter` (a fraction of the delay) so that instances do not restart in lockstep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackoffConfig {
    #[serde(with = "humantime_serde")]
    pub initial: Duration,
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    pub multiplier: f64,
    /// Fraction in `[0, 1)`: 0.2 spreads each delay over ±20 %.
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

/// The crash-loop breaker, in OTP terms: at most `max_restarts` restarts within `period`; the
/// crash that would need one more restart quarantines the instance (and its GPU) for `cooldown`
/// instead, after which it is started afresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestartIntensity {
    pub max_restarts: u32,
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for RestartIntensity {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            period: Duration::from_secs(600),
            cooldown: Duration::from_secs(900),
        }
    }
}

/// A configuration value that the policies cannot work with. [`InstanceConfigError::key`] names
/// the setting; the message says what is wrong and what to use instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InstanceConfigError {
    #[error("must be longer than zero; set it to a duration such as \"1s\"")]
    ZeroDuration { field: &'static str },
    #[error("must be at least 1 (it is the number of failed pings in a row that count as a crash)")]
    ZeroHealthFailures,
    #[error("is {0}; it must be a finite number of at least 1.0 (2.0 doubles each delay)")]
    Multiplier(f64),
    #[error("is {0}; it must be a fraction in [0, 1), e.g. 0.2 for ±20 %")]
    Jitter(f64),
    #[error("({initial}) is longer than `backoff.max` ({max}); lower `initial` or raise `max`")]
    BackoffBounds { initial: String, max: String },
}

impl InstanceConfigError {
    /// The setting at fault, as written in the `[lifecycle]` section (`backoff.jitter`).
    pub fn key(&self) -> &'static str {
        match self {
            Self::ZeroDuration { field } => field,
            Self::ZeroHealthFailures => "health_failures",
            Self::Multiplier(_) => "backoff.multiplier",
            Self::Jitter(_) => "backoff.jitter",
            Self::BackoffBounds { .. } => "backoff.initial",
        }
    }
}

impl InstanceConfig {
    /// Checks that every value makes sense; the error names the setting and how to fix it.
    pub fn validate(&self) -> Result<(), InstanceConfigError> {
        let durations = [
            ("readiness_timeout", self.readiness_timeout),
            ("readiness_poll", self.readiness_poll),
            ("control_timeout", self.control_timeout),
            ("health_interval", self.health_interval),
            ("job_silence", self.job_silence),
            ("backoff.initial", self.backoff.initial),
            ("backoff.max", self.backoff.max),
            ("restart_intensity.period", self.restart_intensity.period),
            (
                "restart_intensity.cooldown",
                self.restart_intensity.cooldown,
            ),
        ];
        if let Some((field, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return Err(InstanceConfigError::ZeroDuration { field });
        }
        if self.health_failures == 0 {
            return Err(InstanceConfigError::ZeroHealthFailures);
        }
        let b = &self.backoff;
        if !b.multiplier.is_finite() || b.multiplier < 1.0 {
            return Err(InstanceConfigError::Multiplier(b.multiplier));
        }
        if !b.jitter.is_finite() || !(0.0..1.0).contains(&b.jitter) {
            return Err(InstanceConfigError::Jitter(b.jitter));
        }
        if b.initial > b.max {
            return Err(InstanceConfigError::BackoffBounds {
                initial: humantime::format_duration(b.initial).to_string(),
                max: humantime::format_duration(b.max).to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(InstanceConfig::default().validate(), Ok(()));
    }

    #[test]
    fn partial_json_fills_the_rest_with_defaults() {
        let cfg: InstanceConfig = serde_json::from_value(serde_json::json!({
            "health_interval": "250ms",
            "backoff": { "initial": "2s", "jitter": 0.1 },
            "restart_intensity": { "max_restarts": 2 }
        }))
        .unwrap();
        assert_eq!(cfg.health_interval, Duration::from_millis(250));
        assert_eq!(cfg.backoff.initial, Duration::from_secs(2));
        assert_eq!(cfg.backoff.max, BackoffConfig::default().max);
        assert_eq!(cfg.backoff.jitter, 0.1);
        assert_eq!(cfg.restart_intensity.max_restarts, 2);
        assert_eq!(
            cfg.restart_intensity.cooldown,
            RestartIntensity::default().cooldown
        );
    }

    #[test]
    fn unknown_setting_is_refused() {
        let err =
            serde_json::from_value::<InstanceConfig>(serde_json::json!({"health_intervall": "1s"}))
                .unwrap_err();
        assert!(err.to_string().contains("health_intervall"), "{err}");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut cfg = InstanceConfig::default();
        cfg.backoff.jitter = 1.0;
        assert_eq!(cfg.validate(), Err(InstanceConfigError::Jitter(1.0)));
        let mut cfg = InstanceConfig::default();
        cfg.backoff.multiplier = 0.5;
        assert_eq!(cfg.validate(), Err(InstanceConfigError::Multiplier(0.5)));
        let cfg = InstanceConfig {
            health_interval: Duration::ZERO,
            ..InstanceConfig::default()
        };
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.key(), "health_interval", "{err}");
        let mut cfg = InstanceConfig::default();
        cfg.backoff.initial = Duration::from_secs(120);
        assert!(matches!(
            cfg.validate(),
            Err(InstanceConfigError::BackoffBounds { .. })
        ));
        let cfg = InstanceConfig {
            health_failures: 0,
            ..InstanceConfig::default()
        };
        assert_eq!(cfg.validate(), Err(InstanceConfigError::ZeroHealthFailures));
    }
}
