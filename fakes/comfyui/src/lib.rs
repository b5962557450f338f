//! `fake-comfyui`: a real HTTP + websocket server that speaks ComfyUI 0.33.0's protocol (routes,
//! status codes, body shapes, websocket message order, validation errors, queue/history/jobs,
//! output files), for demos and tests. Two ways to run it:
//!
//! - [`run_command_line`] is the program (the root package's `fake-comfyui` binary), launched
//!   exactly like ComfyUI: its flags (see [`config::HELP`], including the `--fake-*` timing and
//!   fault-injection knobs and their `FAKE_COMFYUI_*` environment variables), its log lines and
//!   exit codes. Once listening it logs `To see the GUI go to: http://ADDR:PORT` (stderr, or
//!   stdout with `--log-stdout`), as ComfyUI does; a taken port exits 1 with ComfyUI's message.
//! - [`start`] and [`start_on`] run the same server inside the calling process, on the
//!   configured addresses (port 0 picks a free port) or on an already bound listener, and hand
//!   back a [`RunningServer`] with the bound address and a way to stop it.
//!
//! In-process the server behaves as the program does, with three differences: its console lines
//! go to the host process's stderr (or stdout), a process-wide choice; it installs no signal
//! handlers; and the crash fault (`--fake-crash-after-nodes`) aborts the host process, as it
//! aborts the program.

pub mod config;

mod catalog;
mod command_line;
mod console;
mod database;
mod execution;
mod files;
mod http_files;
mod http_history;
mod http_info;
mod http_jobs;
mod http_prompt;
mod http_support;
mod hub;
mod imaging;
mod model_paths;
mod nodes;
mod origin_guard;
use comfy_fleet_actors::prompt_rules::pyfmt;
mod routes;
mod schedule;
mod server;
mod sizing;
mod state;
mod stop_signal;
mod validation;
mod websocket;
mod worker;

pub use command_line::run_command_line;
pub use config::{ConfigError, FakeConfig};
pub use database::DatabaseError;
pub use model_paths::ModelPathsError;
pub use server::{RunningServer, StartError, start, start_on};
