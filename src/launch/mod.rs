//! Launching managed ComfyUI processes: process groups, ports, folders, ephemeral files.
//!
//! [`ProcessLauncher`] implements the actors' `Launcher` port. No ComfyUI may outlive
//! comfy-fleet: every child runs in its own process group, is forked by one long-lived thread
//! with a parent-death signal, is recorded on disk, and [`sweep_stale`] kills at start-up
//! whatever a crashed run left behind.

pub mod command_line;
pub mod ephemeral;
pub mod folders;
pub mod launcher;
pub mod output_log;
pub mod port;
pub mod process_group;
pub mod procfs;
pub mod record;
pub mod safe_name;
mod spawner;
pub mod stale;
pub mod state_lock;
pub mod stopper;

pub use ephemeral::{CleanReport, EphemeralManifest};
pub use folders::{FolderError, InstanceFolders, Lifetime};
pub use launcher::ProcessLauncher;
pub use record::InstanceRecord;
pub use safe_name::{UnsafeName, checked_relative_path};
pub use stale::{KilledGroup, SweepError, SweepReport, sweep_stale};
pub use state_lock::{StateLock, StateLockError};
