//! comfy-fleet: runs one managed ComfyUI per GPU and serves the pool to a community.
//!
//! This crate holds the adapters (ComfyUI connector, workflows, NVML, process launching) and the
//! application wiring; the actor system and its policies live in `comfy-fleet-actors`.

pub mod app;
pub mod cli;
pub mod comfy;
pub mod config;
pub mod discord;
pub mod fleet;
pub mod gpu;
pub mod http;
pub mod launch;
pub mod models;
pub mod shutdown;
pub mod telemetry;
pub mod workflow;

#[cfg(test)]
mod test_fixtures;
