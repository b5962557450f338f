//! Restart strategy of one instance: exponential backoff with jitter, and the crash-loop
//! breaker (restart intensity within a period) that quarantines an instance crashing too often.
//!
//! Plain synchronous structs: the caller passes the current time and a uniform random sample,
//! so every decision is reproducible in tests.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::instance::config::{BackoffConfig, RestartIntensity};

/// Computes restart delays: `initial × multiplier^(n-1)` for the n-th consecutive restart,
/// capped at `max`, then spread by ± `jitter` and capped again.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        Self { config }
    }

    /// The delay before the `restart`-th consecutive restart (1 for the first), without jitter.
    pub fn base_delay(&self, restart: u32) -> Duration {
        let exponent = restart.saturating_sub(1).min(1_000) as i32;
        let factor = self.config.multiplier.powi(exponent);
        let secs = self.config.initial.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= self.config.max.as_secs_f64() {
            self.config.max
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The delay with jitter; `unit` is a uniform sample in `[0, 1)` (0.5 means no spread).
    pub fn delay(&self, restart: u32, unit: f64) -> Duration {
        let base = self.base_delay(restart).as_secs_f64();
        let unit = unit.clamp(0.0, 1.0);
        let spread = 1.0 + self.config.jitter * (2.0 * unit - 1.0);
        let secs = (base * spread).max(0.0);
        Duration::from_secs_f64(secs).min(self.config.max)
    }
}

/// Counts crashes within a sliding period and trips when they exceed the restart intensity.
#[derive(Debug, Clone)]
pub struct CrashLoopBreaker {
    max_restarts: u32,
    period: Duration,
    crashes: VecDeque<Instant>,
}

impl CrashLoopBreaker {
    pub fn new(intensity: &RestartIntensity) -> Self {
        Self {
            max_restarts: intensity.max_restarts,
            period: intensity.period,
            crashes: VecDeque::new(),
        }
    }

    /// Records a crash at `now`; true when it is one crash too many within the period.
    pub fn record(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.crashes.front() {
            if now.saturating_duration_since(oldest) >= self.period {
                self.crashes.pop_front();
            } else {
                break;
            }
        }
        self.crashes.push_back(now);
        self.crashes.len() as u64 > u64::from(self.max_restarts)
    }

    /// Crashes still counted in the current period.
    pub fn recent_crashes(&self) -> usize {
        self.crashes.len()
    }

    /// Forgets every crash (after a quarantine, the instance starts with a clean slate).
    pub fn reset(&mut self) {
        self.crashes.clear();
    }
}

/// What to do after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart after `delay`; `restart` counts consecutive restarts (1 for the first).
    Restart { delay: Duration, restart: u32 },
    /// Too many crashes within the period: exclude the instance for `cooldown`.
    Quarantine { cooldown: Duration, crashes: usize },
}

/// The restart strategy of one instance: backoff for consecutive crashes, the breaker for loops.
#[derive(Debug, Clone)]
pub struct Supervision {
    backoff: Backoff,
    breaker: CrashLoopBreaker,
    cooldown: Duration,
    consecutive: u32,
}

impl Supervision {
    pub fn new(backoff: BackoffConfig, intensity: &RestartIntensity) -> Self {
        Self {
            backoff: Backoff::new(backoff),
            breaker: CrashLoopBreaker::new(intensity),
            cooldown: intensity.cooldown,
            consecutive: 0,
        }
    }

    /// Decides after a crash at `now`; `unit` is a uniform sample in `[0, 1)` for the jitter.
    pub fn on_crash(&mut self, now: Instant, unit: f64) -> RestartDecision {
        if self.breaker.record(now) {
            let crashes = self.breaker.recent_crashes();
            return RestartDecision::Quarantine {
                cooldown: self.cooldown,
                crashes,
            };
        }
        self.consecutive = self.consecutive.saturating_add(1);
        RestartDecision::Restart {
            delay: self.backoff.delay(self.consecutive, unit),
            restart: self.consecutive,
        }
    }

    /// The instance became ready: the next crash backs off from the initial delay again (the
    /// breaker still remembers recent crashes, so a crash loop through readiness still trips).
    pub fn on_ready(&mut self) {
        self.consecutive = 0;
    }

    /// The quarantine is over: start afresh.
    pub fn on_quarantine_over(&mut self) {
        self.consecutive = 0;
        self.breaker.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            multiplier: 2.0,
            jitter: 0.25,
        })
    }

    fn intensity(max_restarts: u32, period_s: u64) -> RestartIntensity {
        RestartIntensity {
            max_restarts,
            period: Duration::from_secs(period_s),
            cooldown: Duration::from_secs(30),
        }
    }

    #[test]
    fn backoff_grows_exponentially_then_is_capped() {
        let b = backoff();
        let delays: Vec<_> = (1..=7).map(|n| b.base_delay(n)).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 2000, 2000].map(Duration::from_millis)
        );
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(2));
        // Without spread the jittered delay is the base delay.
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(400));
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_under_the_cap() {
        let b = backoff();
        for restart in 1..=8 {
            let base = b.base_delay(restart).as_secs_f64();
            for i in 0..=100 {
                let unit = f64::from(i) / 100.0;
                let d = b.delay(restart, unit).as_secs_f64();
                assert!(
                    d >= base * 0.75 - 1e-9,
                    "restart {restart} unit {unit}: {d} < {base}·0.75"
                );
                assert!(
                    d <= base * 1.25 + 1e-9,
                    "restart {restart} unit {unit}: {d} > {base}·1.25"
                );
                assert!(d <= 2.0 + 1e-9, "restart {restart}: {d} above the cap");
            }
        }
        // The extremes of the sample reach the extremes of the spread.
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(75));
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(125));
    }

    #[test]
    fn breaker_trips_on_one_crash_more_than_the_intensity_within_the_period() {
        let mut breaker = CrashLoopBreaker::new(&intensity(3, 60));
        let t0 = Instant::now();
        assert!(!breaker.record(t0));
        assert!(!breaker.record(t0 + Duration::from_secs(10)));
        assert!(!breaker.record(t0 + Duration::from_secs(20)));
        assert!(breaker.record(t0 + Duration::from_secs(30)));
    }

    #[test]
    fn breaker_does_not_trip_when_crashes_are_spread_out() {
        let mut breaker = CrashLoopBreaker::new(&intensity(3, 60));
        let t0 = Instant::now();
        for i in 0..20 {
            assert!(
                !breaker.record(t0 + Duration::from_secs(25 * i)),
                "crash {i} tripped although at most 3 fall in any minute"
            );
        }
    }

    #[test]
    fn supervision_backs_off_then_quarantines_and_starts_afresh_after_the_cooldown() {
        let mut sup = Supervision::new(
            BackoffConfig {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                multiplier: 3.0,
                jitter: 0.0,
            },
            &intensity(2, 60),
        );
        let t0 = Instant::now();
        assert_eq!(
            sup.on_crash(t0, 0.9),
            RestartDecision::Restart {
                delay: Duration::from_secs(1),
                restart: 1
            }
        );
        assert_eq!(
            sup.on_crash(t0 + Duration::from_secs(2), 0.1),
            RestartDecision::Restart {
                delay: Duration::from_secs(3),
                restart: 2
            }
        );
        assert_eq!(
            sup.on_crash(t0 + Duration::from_secs(6), 0.5),
            RestartDecision::Quarantine {
                cooldown: Duration::from_secs(30),
                crashes: 3
            }
        );
        sup.on_quarantine_over();
        assert_eq!(
            sup.on_crash(t0 + Duration::from_secs(40), 0.5),
            RestartDecision::Restart {
                delay: Duration::from_secs(1),
                restart: 1
            }
        );
    }

    #[test]
    fn readiness_resets_the_backoff_but_not_the_breaker() {
        let mut sup = Supervision::new(
            BackoffConfig {
                jitter: 0.0,
                ..BackoffConfig::default()
            },
            &intensity(2, 60),
        );
        let t0 = Instant::now();
        assert!(matches!(
            sup.on_crash(t0, 0.5),
            RestartDecision::Restart { restart: 1, .. }
        ));
        sup.on_ready();
        assert!(matches!(
            sup.on_crash(t0 + Duration::from_secs(1), 0.5),
            RestartDecision::Restart { restart: 1, .. }
        ));
        sup.on_ready();
        assert!(matches!(
            sup.on_crash(t0 + Duration::from_secs(2), 0.5),
            RestartDecision::Quarantine { .. }
        ));
    }
}
