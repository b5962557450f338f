//! `comfy-fleet check-config`: runs the checks `serve` runs before it starts anything, then
//! says what is wrong, or what the file sets up and what deserves a second look.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::CliError;
use crate::config::{BackendKind, Config};
use crate::fleet::plan::PlanKind;

/// Arguments of `check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// The config file.
    #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = "config.toml")]
    pub config: PathBuf,
}

pub fn run(args: CheckConfigArgs) -> Result<ExitCode, CliError> {
    let config = Config::load(&args.config)?;
    let checked = crate::fleet::preflight(&config).map_err(crate::app::AppError::from)?;
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
        "  gpus:      {} ({})",
        checked.discovery.gpus.len(),
        checked.discovery.source
    );
    let instances: Vec<String> = checked
        .plans
        .iter()
        .map(|p| match &p.kind {
            PlanKind::Managed { gpu: Some(gpu), .. } => format!("{} on {gpu}", p.id),
            PlanKind::Managed { gpu: None, .. } => format!("{} on the CPU", p.id),
            PlanKind::Attached { url } => format!("{} at {url}", p.id),
        })
        .collect();
    println!("  instances: {}", instances.join(", "));
    println!("  templates: {}", checked.templates.names().join(", "));
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
    let d = &config.discord;
    println!(
        "  discord:   {}",
        if d.token.is_some() {
            format!(
                "on (DISCORD_TOKEN is set), commands {}, API {}",
                if d.guilds.is_empty() {
                    "global".to_string()
                } else {
                    format!("in {} guild(s)", d.guilds.len())
                },
                if d.api_proxy.is_empty() {
                    crate::discord::DISCORD_BASE
                } else {
                    d.api_proxy.as_str()
                }
            )
        } else {
            "off (DISCORD_TOKEN is not set)".to_string()
        }
    );
    for warning in config.warnings() {
        println!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}
