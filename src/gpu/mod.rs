//! GPU discovery over the `GpuProbe` port: NVML, and the config-declared fallback.
//!
//! [`discover`] asks NVML first (unless told not to) and falls back to the GPUs declared in the
//! configuration, and then to CPU-only instances, with one log line saying why. The probe it
//! returns is what the `GpuMonitor` actor samples.

pub mod declared;
pub mod discovery;
pub mod nvml;
pub mod table;

pub use declared::{DeclaredGpu, DeclaredProbe};
pub use discovery::{Discovery, DiscoveryError, DiscoveryMode, GpuSource, discover, discover_with};
pub use nvml::NvmlProbe;
pub use table::render_table;
