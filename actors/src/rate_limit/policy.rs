//! Rate-limit decisions as plain code: sliding windows per user and for the whole fleet, a
//! per-user cap on jobs in progress, and exemptions. Time is passed in.
//!
//! Each window keeps the times of the acquisitions inside it (a sliding log), so "5 per 1m"
//! means at most 5 in any 60 seconds, and the retry-after is exact: the moment the oldest of
//! those acquisitions leaves the window. Exempt users and roles are neither limited nor counted.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ids::UserId;

use super::config::{RateLimitConfig, WindowLimit};

/// Which limit refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitReason {
    /// The user's own window limit.
    User,
    /// The fleet-wide window limit.
    Global,
    /// The user's cap on jobs in progress.
    Concurrent,
}

/// A refused acquisition: which limit, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{}", describe(self))]
pub struct RateLimited {
    pub reason: LimitReason,
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    pub limit: u32,
    /// The window of a window limit; `None` for the concurrency cap.
    #[serde(with = "humantime_serde", default)]
    pub window: Option<Duration>,
}

/// A duration as people read it, rounded up to whole seconds ("42s", "1m 5s").
fn readable(duration: Duration) -> String {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    humantime::format_duration(Duration::from_secs(secs.max(1))).to_string()
}

fn describe(refusal: &RateLimited) -> String {
    let jobs = |n: u32| {
        if n == 1 {
            "job".to_string()
        } else {
            "jobs".to_string()
        }
    };
    let window = refusal
        .window
        .map(|w| humantime::format_duration(w).to_string())
        .unwrap_or_default();
    match refusal.reason {
        LimitReason::User => format!(
            "you have used your {} {} per {}; try again in {}",
            refusal.limit,
            jobs(refusal.limit),
            window,
            readable(refusal.retry_after)
        ),
        LimitReason::Global => format!(
            "the fleet has taken its {} {} per {} for everyone; try again in {}",
            refusal.limit,
            jobs(refusal.limit),
            window,
            readable(refusal.retry_after)
        ),
        LimitReason::Concurrent => format!(
            "you already have {} {} in progress, the most allowed at once; try again when one \
             finishes",
            refusal.limit,
            jobs(refusal.limit)
        ),
    }
}

/// An accepted acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permit {
    /// Jobs the user may still submit in their tightest window; `None` when unlimited (exempt
    /// or no per-user window).
    pub remaining: Option<u32>,
    /// When the tightest window gives back a job (its oldest acquisition leaves it).
    #[serde(with = "humantime_serde", default)]
    pub reset_after: Option<Duration>,
    /// When the job was counted, to give it back if the job is then refused
    /// ([`RateLimitPolicy::give_back`]); `None` when nothing was counted (exempt users).
    #[serde(skip)]
    pub taken_at: Option<Instant>,
}

/// One window of a user's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowQuota {
    pub limit: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    pub used: u32,
    pub remaining: u32,
    /// When the next job is given back; `None` when nothing is used.
    #[serde(with = "humantime_serde", default)]
    pub reset_after: Option<Duration>,
}

/// A user's quota, for `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaReport {
    pub exempt: bool,
    pub windows: Vec<WindowQuota>,
    pub in_progress: u32,
    pub max_in_progress: Option<u32>,
}

impl fmt::Display for QuotaReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exempt {
            return f.write_str("no limits apply to you");
        }
        let mut parts: Vec<String> = self
            .windows
            .iter()
            .map(|w| {
                let mut part = format!(
                    "{} of {} jobs left per {}",
                    w.remaining,
                    w.limit,
                    humantime::format_duration(w.window)
                );
                if let Some(reset) = w.reset_after {
                    part.push_str(&format!(" (one more in {})", readable(reset)));
                }
                part
            })
            .collect();
        if let Some(max) = self.max_in_progress {
            parts.push(format!("{} of {} jobs in progress", self.in_progress, max));
        }
        if parts.is_empty() {
            return f.write_str("no limits apply");
        }
        f.write_str(&parts.join("; "))
    }
}

/// Acquisition times within the longest window, oldest first.
#[derive(Debug, Default, Clone)]
struct SlidingLog {
    times: VecDeque<Instant>,
}

impl SlidingLog {
    /// Forgets acquisitions older than `longest`.
    fn prune(&mut self, now: Instant, longest: Duration) {
        while let Some(first) = self.times.front() {
            if now.saturating_duration_since(*first) >= longest {
                self.times.pop_front();
            } else {
                break;
            }
        }
    }

    /// Index of the first acquisition inside `window`.
    fn window_start(&self, now: Instant, window: Duration) -> usize {
        self.times
            .partition_point(|t| now.saturating_duration_since(*t) >= window)
    }

    fn used(&self, now: Instant, window: Duration) -> u32 {
        u32::try_from(self.times.len() - self.window_start(now, window)).unwrap_or(u32::MAX)
    }

    /// When the window next gives back a job; `None` if nothing is used.
    fn reset_after(&self, now: Instant, window: Duration) -> Option<Duration> {
        let start = self.window_start(now, window);
        self.times
            .get(start)
            .map(|t| (*t + window).saturating_duration_since(now))
    }

    /// `None` if one more acquisition fits `limit`; otherwise how long until it would.
    fn wait_for(&self, now: Instant, limit: &WindowLimit) -> Option<Duration> {
        let start = self.window_start(now, limit.per);
        let used = self.times.len() - start;
        if used < limit.jobs as usize {
            return None;
        }
        // The acquisition that must leave for one more to fit.
        let must_leave = start + (used - limit.jobs as usize);
        self.times
            .get(must_leave)
            .map(|t| (*t + limit.per).saturating_duration_since(now))
    }
}

#[derive(Debug, Default, Clone)]
struct UserUsage {
    log: SlidingLog,
    in_progress: u32,
}

/// Prune idle users after this many acquisitions.
const PRUNE_EVERY: u32 = 1024;

/// The rate limiter's state and decisions.
#[derive(Debug)]
pub struct RateLimitPolicy {
    config: RateLimitConfig,
    users: HashMap<UserId, UserUsage>,
    global: SlidingLog,
    longest_user: Duration,
    longest_global: Duration,
    since_prune: u32,
}

fn longest(limits: &[WindowLimit]) -> Duration {
    limits.iter().map(|l| l.per).max().unwrap_or_default()
}

impl RateLimitPolicy {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            longest_user: longest(&config.per_user),
            longest_global: longest(&config.global),
            config,
            users: HashMap::new(),
            global: SlidingLog::default(),
            since_prune: 0,
        }
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Whether no limit applies to `user` with `roles`.
    pub fn is_exempt(&self, user: &UserId, roles: &[String]) -> bool {
        self.config.exempt_users.contains(user)
            || roles.iter().any(|r| self.config.exempt_roles.contains(r))
    }

    /// Takes one job from `user`'s quota (and one in-progress slot), or says why not.
    pub fn acquire(
        &mut self,
        user: &UserId,
        roles: &[String],
        now: Instant,
    ) -> Result<Permit, RateLimited> {
        if self.is_exempt(user, roles) {
            return Ok(Permit {
                remaining: None,
                reset_after: None,
                taken_at: None,
            });
        }
        self.global.prune(now, self.longest_global);
        let usage = self.users.entry(user.clone()).or_default();
        usage.log.prune(now, self.longest_user);

        if let Some(max) = self.config.concurrency_cap()
            && usage.in_progress >= max
        {
            return Err(RateLimited {
                reason: LimitReason::Concurrent,
                retry_after: self.config.concurrency_retry_after,
                limit: max,
                window: None,
            });
        }
        let user_refusals = self.config.per_user.iter().filter_map(|limit| {
            usage
                .log
                .wait_for(now, limit)
                .map(|wait| (LimitReason::User, limit, wait))
        });
        let global_refusals = self.config.global.iter().filter_map(|limit| {
            self.global
                .wait_for(now, limit)
                .map(|wait| (LimitReason::Global, limit, wait))
        });
        if let Some((reason, limit, wait)) = user_refusals
            .chain(global_refusals)
            .max_by_key(|(_, _, wait)| *wait)
        {
            return Err(RateLimited {
                reason,
                retry_after: wait,
                limit: limit.jobs,
                window: Some(limit.per),
            });
        }

        usage.log.times.push_back(now);
        usage.in_progress += 1;
        self.global.times.push_back(now);
        let tightest = self
            .config
            .per_user
            .iter()
            .map(|limit| {
                let used = usage.log.used(now, limit.per);
                (
                    limit.jobs.saturating_sub(used),
                    usage.log.reset_after(now, limit.per),
                )
            })
            .min_by_key(|(remaining, _)| *remaining);
        let permit = Permit {
            remaining: tightest.map(|(remaining, _)| remaining),
            reset_after: tightest.and_then(|(_, reset)| reset),
            taken_at: Some(now),
        };
        self.since_prune += 1;
        if self.since_prune >= PRUNE_EVERY {
            self.prune_idle(now);
        }
        Ok(permit)
    }

    /// A job of `user` ended (done, failed, cancelled, or refused by the scheduler).
    pub fn release(&mut self, user: &UserId) {
        if let Some(usage) = self.users.get_mut(user) {
            usage.in_progress = usage.in_progress.saturating_sub(1);
        }
    }

    /// The job counted at `taken_at` was not accepted after all (its workflow or images were
    /// refused, or the queue was full): it leaves the user's and the global windows and its
    /// in-progress slot, as if it had never been asked for. Only accepted jobs use up a quota.
    pub fn give_back(&mut self, user: &UserId, taken_at: Instant) {
        fn forget(log: &mut SlidingLog, at: Instant) -> bool {
            match log.times.iter().rposition(|t| *t == at) {
                Some(i) => log.times.remove(i).is_some(),
                None => false,
            }
        }
        if let Some(usage) = self.users.get_mut(user)
            && forget(&mut usage.log, taken_at)
        {
            usage.in_progress = usage.in_progress.saturating_sub(1);
            forget(&mut self.global, taken_at);
        }
    }

    /// What `user` may still submit.
    pub fn quota(&self, user: &UserId, roles: &[String], now: Instant) -> QuotaReport {
        if self.is_exempt(user, roles) {
            return QuotaReport {
                exempt: true,
                windows: Vec::new(),
                in_progress: 0,
                max_in_progress: None,
            };
        }
        let empty = UserUsage::default();
        let usage = self.users.get(user).unwrap_or(&empty);
        QuotaReport {
            exempt: false,
            windows: self
                .config
                .per_user
                .iter()
                .map(|limit| {
                    let used = usage.log.used(now, limit.per);
                    WindowQuota {
                        limit: limit.jobs,
                        window: limit.per,
                        used,
                        remaining: limit.jobs.saturating_sub(used),
                        reset_after: usage.log.reset_after(now, limit.per),
                    }
                })
                .collect(),
            in_progress: usage.in_progress,
            max_in_progress: self.config.concurrency_cap(),
        }
    }

    /// Users tracked (for tests and metrics).
    pub fn tracked_users(&self) -> usize {
        self.users.len()
    }

    fn prune_idle(&mut self, now: Instant) {
        self.since_prune = 0;
        let longest = self.longest_user;
        self.users.retain(|_, usage| {
            usage.log.prune(now, longest);
            usage.in_progress > 0 || !usage.log.times.is_empty()
        });
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
