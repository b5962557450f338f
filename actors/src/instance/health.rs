//! Health checks while idle: K consecutive failed pings make the instance count as crashed.

/// Counts consecutive failed health pings.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    threshold: u32,
    failures: u32,
}

/// What a ping result means for the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthVerdict {
    Healthy,
    /// Failed, but fewer than the threshold in a row.
    Degraded {
        failures: u32,
    },
    /// The threshold is reached: treat as a crash.
    Dead {
        failures: u32,
    },
}

impl HealthCheck {
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            failures: 0,
        }
    }

    /// Records one ping result.
    pub fn record(&mut self, ok: bool) -> HealthVerdict {
        if ok {
            self.failures = 0;
            return HealthVerdict::Healthy;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.threshold {
            HealthVerdict::Dead {
                failures: self.failures,
            }
        } else {
            HealthVerdict::Degraded {
                failures: self.failures,
            }
        }
    }

    /// Forgets past failures (a new process, or a job proved the server alive).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_consecutive_failures_are_a_crash() {
        let mut h = HealthCheck::new(3);
        assert_eq!(h.record(false), HealthVerdict::Degraded { failures: 1 });
        assert_eq!(h.record(false), HealthVerdict::Degraded { failures: 2 });
        assert_eq!(h.record(false), HealthVerdict::Dead { failures: 3 });
    }

    #[test]
    fn a_success_clears_the_count() {
        let mut h = HealthCheck::new(2);
        assert_eq!(h.record(false), HealthVerdict::Degraded { failures: 1 });
        assert_eq!(h.record(true), HealthVerdict::Healthy);
        assert_eq!(h.record(false), HealthVerdict::Degraded { failures: 1 });
        h.reset();
        assert_eq!(h.record(false), HealthVerdict::Degraded { failures: 1 });
        assert_eq!(h.record(false), HealthVerdict::Dead { failures: 2 });
    }
}
