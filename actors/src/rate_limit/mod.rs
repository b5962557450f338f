//! Per-user and global rate limits on job submissions, a per-user cap on jobs in progress, and
//! exemptions for operators. The policy ([`RateLimitPolicy`]) is plain code with time passed in;
//! the actor ([`RateLimiter`]) only calls it.

pub mod actor;
pub mod config;
pub mod messages;
pub mod policy;

pub use actor::RateLimiter;
pub use config::{RateLimitConfig, RateLimitConfigError, WindowLimit};
pub use messages::{Acquire, GiveBack, Quota, Release};
pub use policy::{LimitReason, Permit, QuotaReport, RateLimitPolicy, RateLimited, WindowQuota};
