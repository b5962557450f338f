//! `comfy-fleet check-config`: validates a config file and says what is wrong or what it sets up.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::CliError;
use crate::config::{BackendKind, Config};

/// Arguments of `check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// The config file.
    #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = "config.toml")]
    pub config: PathBuf,
}

pub fn run(args: CheckConfigArgs) -> Result<ExitCode, CliError> {
    let config = Config::load(&args.config)?;
    let c = &config.comfyui;
    let (command, cwd) = c.launch_command();
    println!("{}: OK", args.config.display());
    match c.backend_kind() {
        BackendKind::Demo => {
            println!("  backend:   DEMO (fake-comfyui: no GPU work, real protocol, real PNGs)")
        }
        BackendKind::ComfyUi => println!("  backend:   ComfyUI"),
    }
    println!("  command:   {}", command.join(" "));
    if let Some(dir) = cwd {
        println!("  in:        {}", dir.display());
    }
    println!(
        "  instances: {} per GPU, cpu-only fallback {}, {} remote",
        config.instances.per_gpu,
        config.gpus.cpu_instances,
        config.remote.len()
    );
    println!("  state:     {}", c.state_dir.display());
    println!(
        "  http:      {}",
        if config.http.enabled {
            format!(
                "{} ({} tokens)",
                config.http.listen,
                config.http.tokens.len()
            )
        } else {
            "off".into()
        }
    );
    println!(
        "  discord:   {}",
        if config.discord.enabled { "on" } else { "off" }
    );
    Ok(ExitCode::SUCCESS)
}
