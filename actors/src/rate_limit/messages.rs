//! The rate limiter's messages: acquire a permit before submitting, release it when the job
//! ends, ask for a user's quota.

use std::time::Instant;

use actix::Message;

use crate::ids::UserId;

use super::policy::{Permit, QuotaReport, RateLimited};

/// Submitter → rate limiter: may `user` submit one more job? On success one job is counted and
/// one in-progress slot taken; send [`Release`] when the job ends, or [`GiveBack`] when it is
/// refused before it is queued.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Permit, RateLimited>")]
pub struct Acquire {
    pub user: UserId,
    /// The user's roles (Discord role names or ids), for exemptions.
    pub roles: Vec<String>,
    /// The moment to judge at; `None` for now (tests pass a time).
    pub now: Option<Instant>,
}

/// Submitter → rate limiter: one of `user`'s jobs ended.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Release {
    pub user: UserId,
}

/// Submitter → rate limiter: the job counted by the permit taken at `taken_at` was refused
/// after all (bad workflow or images, full queue): give its place in the windows back.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct GiveBack {
    pub user: UserId,
    pub taken_at: Instant,
}

/// `/status` → rate limiter: what `user` may still submit.
#[derive(Message, Debug, Clone)]
#[rtype(result = "QuotaReport")]
pub struct Quota {
    pub user: UserId,
    /// The user's roles, so exempt users are shown as such.
    pub roles: Vec<String>,
}
