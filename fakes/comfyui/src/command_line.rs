//! The `fake-comfyui` program: parses ComfyUI's command line and environment, prints `--help`,
//! then runs the server in the foreground until SIGINT/SIGTERM stops it, with ComfyUI's exit
//! codes (2 for a bad command line, 1 when the server cannot start or fails).

use crate::config::{self, FakeConfig};
use crate::console;
use crate::server::{self, Bind, Signals, StartError};

/// Runs the program with the process's arguments and environment; returns its exit code.
pub fn run_command_line() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
    let config = match FakeConfig::parse(&args, &|k| std::env::var(k).ok(), &cwd) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("usage: fake-comfyui [-h] [--listen [IP]] [--port PORT] ...");
            eprintln!("fake-comfyui: error: {e}");
            return 2;
        }
    };
    if config.help {
        print!("{}", config::HELP);
        return 0;
    }
    // the worker and the database lock live as long as the process
    let booted = match server::boot(config) {
        Ok(b) => b,
        Err(e) => {
            console::error(&e.to_string());
            return 1;
        }
    };
    let shared = booted.shared.clone();
    let served = actix_web::rt::System::new().block_on(async move {
        let bound = server::listen(shared, Bind::Configured, Signals::Handled)?;
        bound.server.await.map_err(StartError::Serve)
    });
    match served {
        Ok(()) => 0,
        Err(e) => {
            console::error(&e.to_string());
            1
        }
    }
}
