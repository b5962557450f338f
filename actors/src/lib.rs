//! The comfy-fleet actor system, free of I/O libraries.
//!
//! The actors (instances, scheduler, rate limiter, GPU monitor, the Discord session) talk to the
//! world only through the small traits in [`ports`], which the `comfy-fleet` crate implements with real
//! adapters (awc, child processes, NVML, serenity and Discord's REST API). Their policies live in
//! plain structs so they can be unit-tested and benchmarked without an actor system.
//! [`prompt_rules`] holds ComfyUI's own rules for a prompt, shared with the fake ComfyUI.

pub mod discord;
pub mod duration_text;
pub mod gpu_monitor;
pub mod ids;
pub mod instance;
pub mod job;
pub mod messages;
pub mod ports;
pub mod prompt_rules;
pub mod rate_limit;
pub mod scheduling;

pub use ids::{GpuId, InstanceId, JobId, UserId};
pub use job::{JobEvent, JobOutput, JobState};
