//! The command line: one subcommand per file, each a thin layer over the library.

mod check_config;
mod error;

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
    /// Validate a config file and show what it sets up.
    CheckConfig(check_config::CheckConfigArgs),
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
        Command::CheckConfig(args) => check_config::run(args),
    }
}
