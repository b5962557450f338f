//! The Instance actor — one per managed (or attached) ComfyUI server — and its policies.
//!
//! Decisions live in plain synchronous structs that take the current time and randomness as
//! inputs: [`lifecycle`] (the state machine), [`supervision`] (backoff and crash-loop breaker),
//! [`health`] (idle pings), [`watchdog`] (per-job silence) and [`jobs`] (the in-flight jobs,
//! each reported exactly once with the failure its end deserves). They return their effects in
//! the order they must happen; [`actor`] is the thin shell that performs them through the
//! [`Launcher`](crate::ports::Launcher) and [`Backend`](crate::ports::Backend) ports, with the
//! futures of [`server_calls`], and reports everything on one ordered channel.

pub mod actor;
pub mod config;
pub mod health;
pub mod jobs;
pub mod lifecycle;
pub mod server_calls;
pub mod stop_latch;
pub mod supervision;
pub mod watchdog;

pub use actor::{BackendFactory, Instance, InstanceMode, InstanceSetup, InstanceSetupError};
pub use config::{BackoffConfig, InstanceConfig, InstanceConfigError, RestartIntensity};
