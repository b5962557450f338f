//! `comfy-fleet serve`: boots the fleet from the config, serves the HTTP API, and drains
//! gracefully on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::CliError;
use crate::config::Config;
use crate::fleet::Fleet;
use crate::http::{self, ApiState, auth::TokenMap};

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
    let system = actix_rt::System::new();
    system.block_on(serve(config))
}

async fn serve(config: Config) -> Result<ExitCode, CliError> {
    let drain = config.lifecycle.drain_timeout;
    let http_config = config.http.clone();
    let mut signals = Signals::new()?;
    // Bind first: a taken address fails before any instance is started.
    let listener = if http_config.enabled {
        let listener =
            std::net::TcpListener::bind(http_config.listen).map_err(|source| CliError::Listen {
                addr: http_config.listen,
                source,
            })?;
        Some(listener)
    } else {
        None
    };
    let fleet = Fleet::boot(config).await?;
    let api = match listener {
        Some(listener) => {
            let state = ApiState {
                fleet: fleet.handle.clone(),
                phases: fleet.phases.clone(),
                tokens: TokenMap::new(
                    http_config.tokens.clone(),
                    http_config.anonymous_user.clone(),
                ),
                gpu_source: fleet.gpu_source,
            };
            let api = match http::start_on(state, listener) {
                Ok(api) => api,
                Err(source) => {
                    fleet.stop_instances(Duration::ZERO).await;
                    return Err(CliError::Listen {
                        addr: http_config.listen,
                        source,
                    });
                }
            };
            tracing::info!(addr = %api.addr, demo_backend = fleet.handle.demo, "HTTP API listening on http://{}", api.addr);
            Some(api)
        }
        None => None,
    };
    let signal = signals.next().await;
    tracing::info!(
        signal,
        "stopping: no new jobs, running ones may finish within {}",
        humantime::format_duration(drain)
    );
    tokio::select! {
        _ = fleet.shutdown(drain) => {}
        again = signals.next() => {
            tracing::warn!(signal = again, "second signal: stopping the instances now, without waiting for running jobs");
            fleet.stop_instances(Duration::ZERO).await;
        }
    }
    if let Some(api) = api {
        api.handle.stop(true).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGINT and SIGTERM.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, CliError> {
        use tokio::signal::unix::{SignalKind, signal};
        let err = |e: std::io::Error| CliError::Usage(format!("cannot watch for signals: {e}"));
        Ok(Self {
            int: signal(SignalKind::interrupt()).map_err(err)?,
            term: signal(SignalKind::terminate()).map_err(err)?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}
