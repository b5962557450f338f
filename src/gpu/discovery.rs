//! Finding the GPUs to run on: NVML when it works, else the config's declared GPUs, else none
//! (CPU-only instances), with one log line that says which and why.

use std::fmt;
use std::path::Path;

use comfy_fleet_actors::ports::{GpuInfo, GpuProbe, GpuProbeError};
use serde::{Deserialize, Serialize};

use super::declared::{DeclaredGpu, DeclaredProbe};
use super::nvml::NvmlProbe;

/// Where GPUs may come from (`gpus.discovery` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryMode {
    /// NVML; when it is absent or finds no GPU, the declared GPUs; when none is declared,
    /// CPU-only.
    #[default]
    Auto,
    /// NVML only: no NVML or no GPU is an error.
    Nvml,
    /// The declared GPUs only (none declared: CPU-only).
    Declared,
}

/// Where the list of GPUs came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuSource {
    Nvml,
    Declared,
    /// No GPU at all: instances run with `--cpu`.
    CpuOnly,
}

impl fmt::Display for GpuSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nvml => "NVML",
            Self::Declared => "declared in the config",
            Self::CpuOnly => "none (CPU-only: instances run with --cpu)",
        })
    }
}

/// The result of discovery: the GPUs, where they came from, and the probe to sample them with.
pub struct Discovery {
    pub gpus: Vec<GpuInfo>,
    pub source: GpuSource,
    /// Why discovery fell back, in words (also logged once as a warning).
    pub note: Option<String>,
    /// What the GPU monitor samples: NVML, or the fixed declared list.
    pub probe: Box<dyn GpuProbe>,
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("gpus", &self.gpus)
            .field("source", &self.source)
            .field("note", &self.note)
            .finish_non_exhaustive()
    }
}

/// Why discovery with `discovery = "nvml"` failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscoveryError {
    #[error(
        "gpus.discovery is \"nvml\" but {0}; install the NVIDIA driver, point \
         gpus.nvml_library at libnvidia-ml.so.1, or use discovery = \"auto\""
    )]
    Nvml(GpuProbeError),
    #[error(
        "gpus.discovery is \"nvml\" but NVML lists no GPU; use discovery = \"auto\" or \
         \"declared\" to run without one"
    )]
    NoGpu,
}

/// Discovers the GPUs with the real NVML (`nvml_library` overrides where it is loaded from).
pub fn discover(
    mode: DiscoveryMode,
    declared: &[DeclaredGpu],
    nvml_library: Option<&Path>,
) -> Result<Discovery, DiscoveryError> {
    discover_with(mode, declared, || {
        NvmlProbe::open(nvml_library).map(|p| Box::new(p) as Box<dyn GpuProbe>)
    })
}

/// [`discover`] with another way to open NVML (tests pass a static probe or a failure).
pub fn discover_with(
    mode: DiscoveryMode,
    declared: &[DeclaredGpu],
    open_nvml: impl FnOnce() -> Result<Box<dyn GpuProbe>, GpuProbeError>,
) -> Result<Discovery, DiscoveryError> {
    let why_not_nvml = match mode {
        DiscoveryMode::Declared => None,
        DiscoveryMode::Nvml => {
            let probe = open_nvml().map_err(DiscoveryError::Nvml)?;
            let gpus = probe.gpus().map_err(DiscoveryError::Nvml)?;
            if gpus.is_empty() {
                return Err(DiscoveryError::NoGpu);
            }
            return Ok(from_nvml(gpus, probe));
        }
        DiscoveryMode::Auto => match open_nvml().and_then(|p| p.gpus().map(|g| (g, p))) {
            Ok((gpus, probe)) if !gpus.is_empty() => return Ok(from_nvml(gpus, probe)),
            Ok(_) => Some("NVML lists no GPU".to_string()),
            Err(GpuProbeError::Unavailable(reason)) => {
                Some(format!("NVML is not available ({reason})"))
            }
            Err(GpuProbeError::Failed(reason)) => Some(format!("NVML failed ({reason})")),
        },
    };
    let probe = DeclaredProbe::new(declared);
    let gpus = probe.gpus().unwrap_or_default();
    let (source, note) = match (why_not_nvml, gpus.len()) {
        (None, 0) => (
            GpuSource::CpuOnly,
            Some("no GPU is declared in the config: instances run on the CPU (--cpu)".into()),
        ),
        (None, _) => (GpuSource::Declared, None),
        (Some(why), 0) => (
            GpuSource::CpuOnly,
            Some(format!(
                "{why} and no GPU is declared in the config: instances run on the CPU (--cpu)"
            )),
        ),
        (Some(why), n) => (
            GpuSource::Declared,
            Some(format!(
                "{why}: using the {n} GPU(s) declared in the config"
            )),
        ),
    };
    match &note {
        Some(note) => tracing::warn!(target: "comfy_fleet::gpu", "{note}"),
        None => tracing::info!(
            target: "comfy_fleet::gpu",
            "using the {} GPU(s) declared in the config",
            gpus.len()
        ),
    }
    Ok(Discovery {
        gpus,
        source,
        note,
        probe: Box::new(probe),
    })
}

fn from_nvml(gpus: Vec<GpuInfo>, probe: Box<dyn GpuProbe>) -> Discovery {
    tracing::info!(target: "comfy_fleet::gpu", "NVML lists {} GPU(s)", gpus.len());
    Discovery {
        gpus,
        source: GpuSource::Nvml,
        note: None,
        probe,
    }
}
