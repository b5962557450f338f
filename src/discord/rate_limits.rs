//! Discord's rate limits as the bot honours them itself (serenity's rate limiter cannot be used
//! with `discord.api_proxy`, and serenity hides a 429's body): each route's bucket from the
//! `X-RateLimit-*` headers (wait when it is empty), and a 429's `retry_after` from its body (or
//! the `Retry-After` header), globally when Discord says so. Time is passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What an answer says about rate limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitHeaders {
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Reset-After`, in seconds.
    pub reset_after: Option<f64>,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<f64>,
    /// `X-RateLimit-Global`.
    pub global: bool,
}

impl LimitHeaders {
    /// Reads the headers by name (case-insensitive lookups are the caller's).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Self {
        let number = |name: &str| get(name).and_then(|v| v.trim().parse::<f64>().ok());
        Self {
            remaining: get("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok()),
            reset_after: number("x-ratelimit-reset-after"),
            retry_after: number("retry-after"),
            global: get("x-ratelimit-global").is_some_and(|v| v.trim() == "true"),
        }
    }
}

/// How long a 429 asks to wait, and whether for every route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    pub retry_after: Duration,
    pub global: bool,
}

/// When Discord gives no usable wait (it always should).
const FALLBACK_WAIT: Duration = Duration::from_secs(1);

/// Reads a 429: `retry_after` (seconds, fractional) and `global` from the JSON body as Discord
/// documents it, else the `Retry-After` header.
pub fn refusal(headers: &LimitHeaders, body: &[u8]) -> Refusal {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let from_body = parsed
        .as_ref()
        .and_then(|v| v.get("retry_after"))
        .and_then(serde_json::Value::as_f64);
    let global = headers.global
        || parsed
            .as_ref()
            .and_then(|v| v.get("global"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
    let seconds = from_body.or(headers.retry_after);
    let retry_after = seconds
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(FALLBACK_WAIT);
    Refusal {
        retry_after,
        global,
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    remaining: u32,
    reset_at: Instant,
}

/// The bot's knowledge of Discord's buckets, by route key (method, route and its major
/// parameter: channel, webhook token).
#[derive(Debug, Default)]
pub struct RateLimitBook {
    buckets: HashMap<String, Bucket>,
    global_until: Option<Instant>,
}

impl RateLimitBook {
    /// How long to wait before a request on `key` may go, if at all.
    pub fn wait_before(&self, key: &str, now: Instant) -> Option<Duration> {
        let global = self.global_until.filter(|until| *until > now);
        let bucket = self
            .buckets
            .get(key)
            .filter(|b| b.remaining == 0 && b.reset_at > now)
            .map(|b| b.reset_at);
        global
            .into_iter()
            .chain(bucket)
            .max()
            .map(|until| until - now)
    }

    /// An answer on `key` came with these headers.
    pub fn record(&mut self, key: &str, headers: &LimitHeaders, now: Instant) {
        self.buckets.retain(|_, b| b.reset_at > now);
        if let (Some(remaining), Some(reset_after)) = (headers.remaining, headers.reset_after)
            && reset_after.is_finite()
            && reset_after >= 0.0
        {
            self.buckets.insert(
                key.to_string(),
                Bucket {
                    remaining,
                    reset_at: now + Duration::from_secs_f64(reset_after),
                },
            );
        }
    }

    /// A 429 on `key`: nothing more goes there (or anywhere, when global) until the wait is
    /// over. Returns the wait.
    pub fn refused(&mut self, key: &str, refusal: Refusal, now: Instant) -> Duration {
        let until = now + refusal.retry_after;
        if refusal.global {
            self.global_until = Some(self.global_until.map_or(until, |g| g.max(until)));
        } else {
            self.buckets.insert(
                key.to_string(),
                Bucket {
                    remaining: 0,
                    reset_at: until,
                },
            );
        }
        refusal.retry_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> LimitHeaders {
        LimitHeaders::read(|name| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_documented_429_body_gives_the_wait_without_a_code() {
        let body =
            br#"{"message": "You are being rate limited.", "retry_after": 0.25, "global": false}"#;
        let r = refusal(&headers(&[("Retry-After", "1")]), body);
        assert_eq!(
            r.retry_after,
            Duration::from_millis(250),
            "the body is more precise"
        );
        assert!(!r.global);
        let r = refusal(
            &headers(&[("Retry-After", "3"), ("X-RateLimit-Global", "true")]),
            b"<html>",
        );
        assert_eq!(
            r,
            Refusal {
                retry_after: Duration::from_secs(3),
                global: true
            }
        );
        assert_eq!(
            refusal(&LimitHeaders::default(), b"").retry_after,
            FALLBACK_WAIT
        );
    }

    #[test]
    fn an_empty_bucket_waits_until_its_reset_and_a_global_429_stops_every_route() {
        let t0 = Instant::now();
        let mut book = RateLimitBook::default();
        book.record(
            "PATCH w1",
            &headers(&[
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset-After", "1.5"),
            ]),
            t0,
        );
        assert_eq!(
            book.wait_before("PATCH w1", t0),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(book.wait_before("PATCH w2", t0), None);
        assert_eq!(
            book.wait_before("PATCH w1", t0 + Duration::from_secs(2)),
            None
        );
        book.record(
            "PATCH w2",
            &headers(&[
                ("X-RateLimit-Remaining", "4"),
                ("X-RateLimit-Reset-After", "2"),
            ]),
            t0,
        );
        assert_eq!(book.wait_before("PATCH w2", t0), None, "requests left");
        let wait = book.refused(
            "POST c",
            Refusal {
                retry_after: Duration::from_secs(2),
                global: true,
            },
            t0,
        );
        assert_eq!(wait, Duration::from_secs(2));
        assert_eq!(
            book.wait_before("PATCH w2", t0),
            Some(Duration::from_secs(2))
        );
        book.refused(
            "PATCH w3",
            Refusal {
                retry_after: Duration::from_secs(5),
                global: false,
            },
            t0,
        );
        assert_eq!(
            book.wait_before("PATCH w3", t0),
            Some(Duration::from_secs(5))
        );
    }
}
