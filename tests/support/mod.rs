//! Test support shared by every integration test (`mod support;`) and the benches
//! (`#[path = "../tests/support/mod.rs"] mod support;`): the vendored fixtures, the programs
//! under test run as child processes (`fake-comfyui`, `comfy-fleet serve`) or wired in-process,
//! a small HTTP client, `/proc` scans, and bounded waits on real signals.
//!
//! Not every test binary uses every helper, hence `dead_code` is allowed here.

#![allow(dead_code)]

pub mod api_client;
pub mod counting_proxy;
pub mod discord_bot;
pub mod fake_process;
pub mod file_server;
pub mod fixtures;
pub mod fleet_process;
pub mod http_client;
pub mod images;
pub mod in_process_api;
pub mod in_process_fleet;
pub mod json_shape;
pub mod launch_scripts;
pub mod log_lines;
pub mod measures;
pub mod multipart;
pub mod ports;
pub mod processes;
pub mod real_comfyui;
pub mod sdxl_workflow;
pub mod templates;
pub mod waits;

/// The `fake-comfyui` program cargo built for this test or bench.
pub const FAKE_COMFYUI: &str = env!("CARGO_BIN_EXE_fake-comfyui");

/// The `comfy-fleet` program cargo built for this test or bench.
pub const COMFY_FLEET: &str = env!("CARGO_BIN_EXE_comfy-fleet");

/// The repository's workflow templates (`workflows/`).
pub fn workflows_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows")
}
