//! Discord's HTTP rate limits as the fake plays them: every answer carries the documented
//! `X-RateLimit-*` headers for its bucket (a per-route counter over a window, per top-level
//! resource); tests arm 429 answers for the next N requests (optionally on one route), and every
//! 429 records whether the client then waited `retry_after` before its next request on that
//! route and resource.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A request as the limiter sees it.
#[derive(Debug, Clone)]
pub struct LimitedRoute<'a> {
    pub method: &'a str,
    /// The route template, e.g. `/webhooks/{webhook_id}/{webhook_token}/messages/@original`.
    pub template: &'a str,
    /// Top-level resource (channel, guild, webhook id + token); limits are counted per resource.
    pub resource: &'a str,
    pub path: &'a str,
}

/// The `X-RateLimit-*` values of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketHeaders {
    pub limit: u32,
    pub remaining: u32,
    /// Unix time (s) when the bucket resets.
    pub reset: f64,
    pub reset_after: f64,
    pub bucket: String,
}

/// A 429 answer.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitAnswer {
    pub retry_after: f64,
    pub global: bool,
    pub headers: BucketHeaders,
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allowed(BucketHeaders),
    Limited(LimitAnswer),
}

/// A test's request for 429s: the next `count` requests (matching `method` and `route` when
/// given) are answered 429 with `retry_after` seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArmRateLimit {
    pub count: u32,
    #[serde(default)]
    pub method: Option<String>,
    /// A route template exactly as in Discord's OpenAPI description.
    #[serde(default)]
    pub route: Option<String>,
    pub retry_after: f64,
    #[serde(default)]
    pub global: bool,
}

/// What the client did after a 429.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RetryObservation {
    /// Time from the 429 to the client's next request on the same route and resource.
    pub gap_ms: u64,
    /// Whether that gap was at least `retry_after`.
    pub waited: bool,
}

/// One 429 the fake answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RateLimitedRequest {
    pub at_ms: u64,
    pub method: String,
    pub route: String,
    pub path: String,
    pub retry_after: f64,
    pub global: bool,
    /// `None` until the client tries this route and resource again.
    pub retry: Option<RetryObservation>,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    count: u32,
}

#[derive(Debug)]
struct Pending {
    record: usize,
    at: Instant,
    key: String,
}

/// The rate-limit state of one fake.
#[derive(Debug)]
pub struct RateLimiter {
    per_bucket: u32,
    window: Duration,
    enforce: bool,
    started: Instant,
    windows: HashMap<String, Window>,
    armed: Vec<ArmRateLimit>,
    limited: Vec<RateLimitedRequest>,
    pending: Vec<Pending>,
}

impl RateLimiter {
    pub fn new(per_bucket: u32, window: Duration, enforce: bool, started: Instant) -> Self {
        Self {
            per_bucket: per_bucket.max(1),
            window,
            enforce,
            started,
            windows: HashMap::new(),
            armed: Vec::new(),
            limited: Vec::new(),
            pending: Vec::new(),
        }
    }

    pub fn arm(&mut self, arm: ArmRateLimit) {
        if arm.count > 0 {
            self.armed.push(arm);
        }
    }

    /// Every 429 answered so far.
    pub fn limited(&self) -> &[RateLimitedRequest] {
        &self.limited
    }

    /// Decides the answer to `route` at `now` and counts it.
    pub fn decide(&mut self, route: &LimitedRoute<'_>, now: Instant) -> Decision {
        let bucket = bucket_id(route.method, route.template);
        let key = format!("{bucket}:{}", route.resource);
        self.observe_retry(&key, now);
        let window = self.windows.entry(key.clone()).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.duration_since(window.start) >= self.window {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        let reset_after = self
            .window
            .saturating_sub(now.duration_since(window.start))
            .as_secs_f64();
        let headers = |remaining: u32| BucketHeaders {
            limit: self.per_bucket,
            remaining,
            reset: unix_now() + reset_after,
            reset_after: round_ms(reset_after),
            bucket: bucket.clone(),
        };
        if let Some(position) = self.armed.iter().position(|a| arm_matches(a, route)) {
            let arm = &mut self.armed[position];
            arm.count -= 1;
            let (retry_after, global) = (arm.retry_after, arm.global);
            if arm.count == 0 {
                self.armed.remove(position);
            }
            let mut h = headers(0);
            h.reset_after = round_ms(retry_after);
            h.reset = unix_now() + retry_after;
            return self.limit(route, key, now, retry_after, global, h);
        }
        if window.count >= self.per_bucket && self.enforce {
            let h = headers(0);
            return self.limit(route, key, now, reset_after.max(0.001), false, h);
        }
        window.count += 1;
        let remaining = self.per_bucket.saturating_sub(window.count);
        Decision::Allowed(headers(remaining))
    }

    fn limit(
        &mut self,
        route: &LimitedRoute<'_>,
        key: String,
        now: Instant,
        retry_after: f64,
        global: bool,
        headers: BucketHeaders,
    ) -> Decision {
        self.limited.push(RateLimitedRequest {
            at_ms: now.duration_since(self.started).as_millis() as u64,
            method: route.method.to_string(),
            route: route.template.to_string(),
            path: route.path.to_string(),
            retry_after,
            global,
            retry: None,
        });
        self.pending.push(Pending {
            record: self.limited.len() - 1,
            at: now,
            key,
        });
        Decision::Limited(LimitAnswer {
            retry_after,
            global,
            headers,
        })
    }

    fn observe_retry(&mut self, key: &str, now: Instant) {
        let limited = &mut self.limited;
        self.pending.retain(|p| {
            if p.key != key {
                return true;
            }
            let gap = now.duration_since(p.at);
            if let Some(record) = limited.get_mut(p.record) {
                record.retry = Some(RetryObservation {
                    gap_ms: gap.as_millis() as u64,
                    waited: gap.as_secs_f64() >= record.retry_after,
                });
            }
            false
        });
    }
}

fn arm_matches(arm: &ArmRateLimit, route: &LimitedRoute<'_>) -> bool {
    arm.method
        .as_deref()
        .is_none_or(|m| m.eq_ignore_ascii_case(route.method))
        && arm.route.as_deref().is_none_or(|r| r == route.template)
}

/// An opaque bucket id per method and route, like Discord's hashes.
pub fn bucket_id(method: &str, template: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in method.bytes().chain([b' ']).chain(template.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route<'a>(template: &'a str, resource: &'a str) -> LimitedRoute<'a> {
        LimitedRoute {
            method: "PATCH",
            template,
            resource,
            path: "/p",
        }
    }

    #[test]
    fn headers_count_down_per_bucket_and_resource() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(5, Duration::from_secs(2), false, t0);
        let remaining = |d: Decision| match d {
            Decision::Allowed(h) => h.remaining,
            Decision::Limited(_) => 99,
        };
        assert_eq!(remaining(limiter.decide(&route("/a", "x"), t0)), 4);
        assert_eq!(remaining(limiter.decide(&route("/a", "x"), t0)), 3);
        assert_eq!(remaining(limiter.decide(&route("/a", "y"), t0)), 4);
        assert_eq!(remaining(limiter.decide(&route("/b", "x"), t0)), 4);
        assert_eq!(
            remaining(limiter.decide(&route("/a", "x"), t0 + Duration::from_secs(2))),
            4
        );
    }

    #[test]
    fn enforcement_refuses_beyond_the_limit() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(1, Duration::from_secs(2), true, t0);
        assert!(matches!(
            limiter.decide(&route("/a", "x"), t0),
            Decision::Allowed(_)
        ));
        assert!(matches!(
            limiter.decide(&route("/a", "x"), t0),
            Decision::Limited(_)
        ));
    }

    #[test]
    fn armed_429s_hit_matching_requests_and_record_the_retry() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(5, Duration::from_secs(2), false, t0);
        limiter.arm(ArmRateLimit {
            count: 1,
            method: Some("patch".into()),
            route: Some("/a".into()),
            retry_after: 0.5,
            global: false,
        });
        assert!(matches!(
            limiter.decide(&route("/b", "x"), t0),
            Decision::Allowed(_)
        ));
        match limiter.decide(&route("/a", "x"), t0) {
            Decision::Limited(answer) => {
                assert_eq!(answer.retry_after, 0.5);
                assert_eq!(answer.headers.remaining, 0);
            }
            other => panic!("expected a 429, got {other:?}"),
        }
        assert!(matches!(
            limiter.decide(&route("/a", "x"), t0 + Duration::from_millis(600)),
            Decision::Allowed(_)
        ));
        assert_eq!(
            limiter.limited()[0].retry,
            Some(RetryObservation {
                gap_ms: 600,
                waited: true
            })
        );
    }

    #[test]
    fn an_impatient_retry_is_recorded_as_not_waiting() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(5, Duration::from_secs(2), false, t0);
        limiter.arm(ArmRateLimit {
            count: 1,
            method: None,
            route: None,
            retry_after: 1.0,
            global: true,
        });
        assert!(matches!(
            limiter.decide(&route("/a", "x"), t0),
            Decision::Limited(_)
        ));
        limiter.decide(&route("/a", "x"), t0 + Duration::from_millis(10));
        assert_eq!(
            limiter.limited()[0].retry.as_ref().map(|r| r.waited),
            Some(false)
        );
    }
}
