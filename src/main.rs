//! The `comfy-fleet` command: parses the command line and runs one subcommand.

use std::process::ExitCode;

fn main() -> ExitCode {
    comfy_fleet::cli::main()
}
