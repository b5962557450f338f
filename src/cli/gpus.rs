//! `comfy-fleet gpus`: lists the GPUs comfy-fleet would use, and says where the list came from.
//!
//! The declared GPUs come from `--declared` or from the `[gpus]` table of the config file.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::CliError;
use crate::config::Config;
use crate::gpu::{DeclaredGpu, DiscoveryError, DiscoveryMode, GpuSource, discover, render_table};

/// Lists the GPUs (NVML, else the declared ones) with their memory, use and processes.
#[derive(Debug, clap::Args)]
pub struct GpusArgs {
    /// Configuration file whose `[gpus]` table (discovery, nvml_library, declared) applies;
    /// the defaults when it does not exist and was not named.
    #[arg(long, value_name = "FILE", env = crate::config::ENV_CONFIG)]
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
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

/// Runs `comfy-fleet gpus`.
pub fn run(args: GpusArgs) -> Result<ExitCode, CliError> {
    let default_path = PathBuf::from("config.toml");
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None if default_path.exists() => Config::load(&default_path)?,
        None => Config::default(),
    };
    let gpus = config.gpus;
    let mode = args.discovery.unwrap_or(gpus.discovery);
    let declared = if args.declared.is_empty() {
        gpus.declared_gpus()
    } else {
        args.declared
    };
    let library = args.nvml_library.or(gpus.nvml_library);
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
