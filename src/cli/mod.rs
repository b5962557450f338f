//! The command line: one subcommand per file, each a thin layer over the library.

pub mod convert;
mod error;
pub mod run;
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
    /// Run one API-format workflow on an existing ComfyUI server and save its outputs.
    Run(run::RunArgs),
    /// Convert a workflow (UI or API format) into the API prompt for a server, natively.
    Convert(convert::ConvertArgs),
    /// List the workflow templates of a folder and their parameters.
    Templates(templates::TemplatesArgs),
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
        Command::Run(args) => run::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Templates(args) => templates::run(args),
    }
}
