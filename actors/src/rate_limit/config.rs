//! The rate limiter's settings: the `[limits]` section of config.toml as it is read, with its
//! defaults and validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::UserId;

/// At most `jobs` submissions in any sliding window of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowLimit {
    pub jobs: u32,
    #[serde(with = "humantime_serde")]
    pub per: Duration,
}

impl WindowLimit {
    pub fn new(jobs: u32, per: Duration) -> Self {
        Self { jobs, per }
    }
}

/// Who may submit how much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Limits for each user (all must hold), e.g. 5 per 1m and 100 per 1d.
    pub per_user: Vec<WindowLimit>,
    /// Limits for everyone together.
    pub global: Vec<WindowLimit>,
    /// Most jobs one user may have queued or running at once; 0: no cap.
    pub user_concurrent: u32,
    /// Users no limit applies to (operators).
    pub exempt_users: Vec<UserId>,
    /// Roles (e.g. Discord role names or ids) no limit applies to.
    pub exempt_roles: Vec<String>,
    /// The retry-after given when the concurrency cap refuses and when a running job will end
    /// is not known (the submit path asks the scheduler's estimate first).
    #[serde(with = "humantime_serde")]
    pub concurrency_retry_after: Duration,
    /// Largest input image one job may carry, in MiB (HTTP uploads, Discord attachments).
    pub max_image_mb: u64,
    /// Largest width or height of an input image, in pixels.
    pub max_image_side: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_user: vec![WindowLimit::new(10, Duration::from_secs(600))],
            global: vec![WindowLimit::new(300, Duration::from_secs(600))],
            user_concurrent: 3,
            exempt_users: Vec::new(),
            exempt_roles: Vec::new(),
            concurrency_retry_after: Duration::from_secs(30),
            max_image_mb: 25,
            max_image_side: 8192,
        }
    }
}

/// A setting the rate limiter cannot work with. [`RateLimitConfigError::key`] names the setting;
/// the message says what is wrong and what to use instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitConfigError {
    #[error("has a limit of 0 jobs: remove it to allow any number, or use at least 1")]
    ZeroJobs { list: &'static str, index: usize },
    #[error("has a window of 0s: use a duration such as \"1m\" or \"1h\"")]
    ZeroWindow { list: &'static str, index: usize },
    #[error("must be at least 1 (MiB)")]
    ZeroImageSize,
    #[error("must be at least 64 (pixels)")]
    TinyImageSide,
}

impl RateLimitConfigError {
    /// The setting at fault, as written in the `[limits]` section (`per_user[0].jobs`).
    pub fn key(&self) -> String {
        match self {
            Self::ZeroJobs { list, index } => format!("{list}[{index}].jobs"),
            Self::ZeroWindow { list, index } => format!("{list}[{index}].per"),
            Self::ZeroImageSize => "max_image_mb".into(),
            Self::TinyImageSide => "max_image_side".into(),
        }
    }
}

impl RateLimitConfig {
    /// Checks the settings; the error names the setting and a valid value.
    pub fn validate(&self) -> Result<(), RateLimitConfigError> {
        for (list, limits) in [("per_user", &self.per_user), ("global", &self.global)] {
            for (index, limit) in limits.iter().enumerate() {
                if limit.jobs == 0 {
                    return Err(RateLimitConfigError::ZeroJobs { list, index });
                }
                if limit.per.is_zero() {
                    return Err(RateLimitConfigError::ZeroWindow { list, index });
                }
            }
        }
        if self.max_image_mb == 0 {
            return Err(RateLimitConfigError::ZeroImageSize);
        }
        if self.max_image_side < 64 {
            return Err(RateLimitConfigError::TinyImageSide);
        }
        Ok(())
    }

    /// The largest input image, in bytes.
    pub fn max_image_bytes(&self) -> u64 {
        self.max_image_mb.saturating_mul(1024 * 1024)
    }

    /// The cap on one user's unfinished jobs, if there is one.
    pub fn concurrency_cap(&self) -> Option<u32> {
        (self.user_concurrent > 0).then_some(self.user_concurrent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_windows_written_in_humantime() {
        let json = r#"{
            "per_user": [{"jobs": 5, "per": "1m"}, {"jobs": 50, "per": "1day"}],
            "global": [],
            "exempt_roles": ["operator"]
        }"#;
        let config: RateLimitConfig = serde_json::from_str(json).unwrap();
        assert_eq!(
            config.per_user,
            [
                WindowLimit::new(5, Duration::from_secs(60)),
                WindowLimit::new(50, Duration::from_secs(86_400))
            ]
        );
        assert!(config.global.is_empty());
        assert_eq!(config.user_concurrent, 3);
        config.validate().unwrap();
    }

    #[test]
    fn refuses_a_zero_window_with_the_setting_named() {
        let config = RateLimitConfig {
            global: vec![WindowLimit::new(10, Duration::ZERO)],
            ..Default::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(err.key(), "global[0].per", "{err}");
    }
}
