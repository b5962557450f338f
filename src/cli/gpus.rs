//! `comfy-fleet gpus`: lists the GPUs comfy-fleet would use, and says where the list came from.
//!
//! The declared GPUs come from `--declared` or from the `[gpus]` table of `--config` (read here
//! with a minimal reader until the application's config module takes over).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Deserialize;

use crate::cli::CliError;
use crate::gpu::{DeclaredGpu, DiscoveryError, DiscoveryMode, GpuSource, discover, render_table};

/// Lists the GPUs (NVML, else the declared ones) with their memory, use and processes.
#[derive(Debug, clap::Args)]
pub struct GpusArgs {
    /// Configuration file whose `[gpus]` table (discovery, nvml_library, declared) applies.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where GPUs come from; overrides `gpus.discovery`.
    #[arg(long, value_enum)]
    pub discovery: Option<DiscoveryMode>,
    /// A GPU to use when NVML finds none: `ID[:NAME[:MEMORY_MIB]]`, e.g. `0:RTX 4090:24564`
    /// (ID is what CUDA_VISIBLE_DEVICES gets). Repeatable; replaces the config's list.
    #[arg(long, value_name = "GPU", value_parser = parse_declared)]
    pub declared: Vec<DeclaredGpu>,
    /// Path of libnvidia-ml.so.1 when the loader does not find it.
    #[arg(long, value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
}

/// Why `comfy-fleet gpus` failed.
#[derive(Debug, thiserror::Error)]
pub enum GpusError {
    #[error("cannot read {path}: {reason}")]
    ConfigRead { path: PathBuf, reason: String },
    #[error("{path} is not valid: {reason}")]
    ConfigInvalid { path: PathBuf, reason: String },
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

/// Runs `comfy-fleet gpus`.
pub fn run(args: GpusArgs) -> Result<ExitCode, CliError> {
    let from_file = match &args.config {
        Some(path) => read_gpus_table(path)?,
        None => GpusTable::default(),
    };
    let mode = args.discovery.unwrap_or(from_file.discovery);
    let declared = if args.declared.is_empty() {
        from_file.declared()
    } else {
        args.declared
    };
    let library = args.nvml_library.or(from_file.nvml_library);
    let found = discover(mode, &declared, library.as_deref()).map_err(GpusError::from)?;
    println!("GPU source: {}", found.source);
    if let Some(note) = &found.note {
        println!("note: {note}");
    }
    if found.source != GpuSource::CpuOnly {
        print!("{}", render_table(&found.gpus));
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_declared(text: &str) -> Result<DeclaredGpu, String> {
    let mut parts = text.splitn(3, ':');
    let id = parts.next().unwrap_or_default().trim();
    if id.is_empty() {
        return Err(
            "the GPU id is empty; write ID[:NAME[:MEMORY_MIB]], e.g. 0:RTX 4090:24564".into(),
        );
    }
    let name = parts.next().unwrap_or_default().trim().to_string();
    let memory_total_bytes = match parts.next().map(str::trim) {
        None | Some("") => None,
        Some(mib) => Some(
            mib.parse::<u64>()
                .map_err(|_| format!("memory {mib:?} is not a whole number of MiB"))?
                * 1024
                * 1024,
        ),
    };
    Ok(DeclaredGpu {
        id: id.to_string(),
        name,
        memory_total_bytes,
    })
}

/// The part of the config file this command reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GpusTable {
    discovery: DiscoveryMode,
    nvml_library: Option<PathBuf>,
    declared: Vec<DeclaredEntry>,
}

#[derive(Debug, Deserialize)]
struct DeclaredEntry {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    memory_mb: u64,
}

impl GpusTable {
    fn declared(&self) -> Vec<DeclaredGpu> {
        self.declared
            .iter()
            .map(|d| DeclaredGpu {
                id: d.id.clone(),
                name: d.name.clone(),
                memory_total_bytes: (d.memory_mb > 0).then(|| d.memory_mb * 1024 * 1024),
            })
            .collect()
    }
}

fn read_gpus_table(path: &Path) -> Result<GpusTable, GpusError> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        gpus: Option<toml::Value>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| GpusError::ConfigRead {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let invalid = |reason: String| GpusError::ConfigInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let file: File = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    match file.gpus {
        None => Ok(GpusTable::default()),
        Some(table) => table
            .try_into()
            .map_err(|e: toml::de::Error| invalid(format!("in [gpus]: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_option_reads_id_name_and_memory() {
        let gpu = parse_declared("GPU-1234:RTX 4090:24564").unwrap();
        assert_eq!(gpu.id, "GPU-1234");
        assert_eq!(gpu.name, "RTX 4090");
        assert_eq!(gpu.memory_total_bytes, Some(24564 * 1024 * 1024));
        assert_eq!(parse_declared("3").unwrap().memory_total_bytes, None);
        let err = parse_declared("0:big:lots").unwrap_err();
        assert!(err.contains("\"lots\""), "{err}");
        assert!(parse_declared(":x").is_err());
    }
}
