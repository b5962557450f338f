//! The rate limiter actor: receives [`Acquire`], [`Release`], [`GiveBack`] and [`Quota`] and asks
//! [`RateLimitPolicy`].

use std::time::Instant;

use actix::prelude::*;

use super::config::RateLimitConfig;
use super::messages::{Acquire, GiveBack, Quota, Release};
use super::policy::{Permit, RateLimitPolicy, RateLimited};

/// The fleet's rate limiter.
pub struct RateLimiter {
    policy: RateLimitPolicy,
}

impl RateLimiter {
    /// A limiter with `config` (validate it first with [`RateLimitConfig::validate`]).
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            policy: RateLimitPolicy::new(config),
        }
    }
}

impl Actor for RateLimiter {
    type Context = Context<Self>;
}

impl Handler<Acquire> for RateLimiter {
    type Result = Result<Permit, RateLimited>;

    fn handle(&mut self, msg: Acquire, _ctx: &mut Self::Context) -> Self::Result {
        let now = msg.now.unwrap_or_else(Instant::now);
        let answer = self.policy.acquire(&msg.user, &msg.roles, now);
        if let Err(refusal) = &answer {
            tracing::info!(user = %msg.user, reason = ?refusal.reason, "rate limited: {refusal}");
        }
        answer
    }
}

impl Handler<Release> for RateLimiter {
    type Result = ();

    fn handle(&mut self, msg: Release, _ctx: &mut Self::Context) {
        self.policy.release(&msg.user);
    }
}

impl Handler<GiveBack> for RateLimiter {
    type Result = ();

    fn handle(&mut self, msg: GiveBack, _ctx: &mut Self::Context) {
        self.policy.give_back(&msg.user, msg.taken_at);
    }
}

impl Handler<Quota> for RateLimiter {
    type Result = MessageResult<Quota>;

    fn handle(&mut self, msg: Quota, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.policy.quota(&msg.user, &msg.roles, Instant::now()))
    }
}
