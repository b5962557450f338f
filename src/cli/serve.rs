//! `comfy-fleet serve`: the application on the config file until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::app::{App, AppError};
use crate::cli::CliError;
use crate::config::Config;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The config file.
    #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = "config.toml")]
    pub config: PathBuf,
    /// Address of the HTTP API (overrides http.listen).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

pub fn run(args: ServeArgs) -> Result<ExitCode, CliError> {
    let mut config = Config::load(&args.config)?;
    if let Some(listen) = args.listen {
        config.http.listen = listen;
    }
    crate::telemetry::init(config.logging.format, &config.logging.level);
    // One multi-threaded tokio runtime for everything: the actors (and their awc clients) on the
    // actix system's arbiter, serenity's gateway and REST calls on the runtime's workers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
    actix_rt::System::with_tokio_rt(move || runtime).block_on(async {
        let (_trigger, shutdown) = crate::shutdown::on_signals()
            .map_err(|e| CliError::Usage(format!("cannot watch for signals: {e}")))?;
        // Bind first: a taken address fails before any instance is started.
        let listener = if config.http.enabled {
            let addr = config.http.listen;
            let listener =
                std::net::TcpListener::bind(addr).map_err(|source| AppError::Listen {
                    addr: format!("{addr} (http.listen or --listen)"),
                    source,
                })?;
            Some(listener)
        } else {
            None
        };
        App::start(config, listener, shutdown).await?.run().await;
        Ok(ExitCode::SUCCESS)
    })
}
