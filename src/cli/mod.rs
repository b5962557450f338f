//! The command line: one subcommand per file, each a thin layer over the library.

mod error;
pub mod gpus;

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
    /// List the GPUs comfy-fleet would use and where the list came from.
    Gpus(gpus::GpusArgs),
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
        Command::Gpus(args) => gpus::run(args),
    }
}
