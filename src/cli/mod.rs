//! The command line: one subcommand per file, each a thin layer over the library.

mod byte_progress;
mod check_config;
pub mod convert;
mod error;
pub mod gpus;
pub mod models;
pub mod progress;
pub mod run;
pub mod serve;
pub mod templates;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::CliError;

/// Runs ComfyUI on every GPU of this machine and serves the pool.
#[derive(Debug, Parser)]
#[command(name = "comfy-fleet", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot every instance from the config and serve jobs over HTTP until SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Run one workflow (file or template) on a server, or on freshly booted instances.
    Run(run::RunArgs),
    /// Convert a workflow (UI or API format) into the API prompt for a server, natively.
    Convert(convert::ConvertArgs),
    /// List the workflow templates of a folder and their parameters.
    Templates(templates::TemplatesArgs),
    /// List the GPUs comfy-fleet would use and where the list came from.
    Gpus(gpus::GpusArgs),
    /// Validate a config file and show what it sets up.
    CheckConfig(check_config::CheckConfigArgs),
    /// The fleet's model library: list, add, remove, install a template's models.
    Models(models::ModelsArgs),
}

/// Entry point of the binary: parse, run, and turn errors into a message and an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Run(args) => run::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Templates(args) => templates::run(args),
        Command::Gpus(args) => gpus::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::Models(args) => models::run(args),
    }
}
