//! The running fleet: boot and shutdown of all actors, and the shared pieces submitters use.

pub mod boot;
pub mod catalog;
pub mod events;
pub mod images;
pub mod job_metrics;
pub mod metrics;
pub mod outputs;
pub mod plan;
pub mod recorded_uploads;
pub mod submit;
pub mod watch;

use std::sync::Arc;

use actix::Addr;
use comfy_fleet_actors::UserId;
use comfy_fleet_actors::rate_limit::RateLimiter;
use comfy_fleet_actors::scheduling::{JobTable, Scheduler};

use crate::config::Config;
use crate::fleet::catalog::Catalog;
use crate::fleet::events::JobEventHub;
use crate::fleet::job_metrics::JobMetrics;
use crate::fleet::metrics::GpuView;

pub use boot::{BootError, Fleet};

/// What front ends hold to use the fleet: cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct FleetHandle {
    pub config: Arc<Config>,
    pub scheduler: Addr<Scheduler>,
    pub limiter: Addr<RateLimiter>,
    pub events: Addr<JobEventHub>,
    /// Job states, readable without asking the scheduler.
    pub table: JobTable,
    pub catalog: Arc<Catalog>,
    /// The latest GPU sample.
    pub gpus: GpuView,
    /// Jobs counted and timed as they end (for `/metrics`).
    pub job_metrics: JobMetrics,
    /// Whether the instances are the demo backend (`fake-comfyui`).
    pub demo: bool,
}

/// Priority of operator-chosen users and roles.
pub const PRIORITY_BOOST: i32 = 10;

impl FleetHandle {
    /// The scheduling priority of a user with these roles.
    pub fn priority_of(&self, user: &UserId, roles: &[String]) -> i32 {
        let s = &self.config.scheduler;
        let chosen = s.priority_users.iter().any(|u| u == &user.0)
            || roles.iter().any(|r| s.priority_roles.contains(r));
        if chosen { PRIORITY_BOOST } else { 0 }
    }
}
