//! The application: the one entry point that checks the config, boots the fleet, serves the
//! HTTP API, and stops it all when the [`Shutdown`] says so. `serve`, `run` and the tests all
//! start the program through [`App::start`].
//!
//! With `DISCORD_TOKEN` set, the Discord bot runs too (on the same runtime).
//!
//! The stop is a drain: no new jobs (the scheduler refuses them, `/readyz` answers 503, the bot
//! answers "restarting"), running jobs may finish until `shutdown.drain_timeout` and the bot
//! delivers them, then every instance stops its process group and the bot's gateway closes.
//! A second signal (or [`crate::shutdown::ShutdownTrigger::stop_now`]) cuts the drain short.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use crate::config::{Config, ConfigError};
use crate::discord::{BotError, DiscordBot};
use crate::fleet::{BootError, Fleet, FleetHandle, preflight};
use crate::http::{self, ApiServer, ApiState};
use crate::shutdown::{DrainEnd, Shutdown};

/// Why the application could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(
        "no instance became ready within {} (lifecycle.readiness_timeout); last phases: {phases}",
        humantime::format_duration(*timeout)
    )]
    NotReady { timeout: Duration, phases: String },
    #[error("stopped before any instance became ready")]
    Interrupted,
    #[error("the Discord bot could not start: {0}")]
    Discord(#[from] BotError),
}

/// The running application.
pub struct App {
    fleet: Fleet,
    api: Option<ApiServer>,
    bot: Option<DiscordBot>,
    shutdown: Shutdown,
}

impl App {
    /// Checks the config (exactly what `check-config` checks), boots the fleet, and serves the
    /// HTTP API on `listener` (`None`: no API, as `run` uses it). Must run inside an actix
    /// system. A failure after the instances started stops them before it returns.
    pub async fn start(
        mut config: Config,
        listener: Option<TcpListener>,
        shutdown: Shutdown,
    ) -> Result<Self, AppError> {
        // The address actually bound is the one that counts (`serve --listen`, port 0).
        if let Some(addr) = listener.as_ref().and_then(|l| l.local_addr().ok()) {
            config.http.listen = addr;
        }
        let checked = preflight(&config)?;
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        let token = config.discord.token.clone();
        if token.is_none() {
            tracing::info!(target: "fleet.discord", "Discord bot off: DISCORD_TOKEN is not set");
        }
        let fleet = Fleet::boot(config, checked).await?;
        let api = match listener {
            None => None,
            Some(listener) => {
                let addr = listener
                    .local_addr()
                    .map_or_else(|_| "?".to_string(), |a| a.to_string());
                let state = ApiState::new(fleet.handle.clone(), shutdown.clone());
                match http::start(state, listener) {
                    Ok(api) => {
                        tracing::info!(
                            addr = %api.addr,
                            demo_backend = fleet.handle.demo,
                            "HTTP API listening on http://{}",
                            api.addr
                        );
                        let http = &fleet.handle.config.http;
                        if fleet.handle.config.anonymous_unlimited() {
                            tracing::info!(
                                user = %http.anonymous_user,
                                "no API tokens and the API listens on loopback: every request acts \
                                 as `{}`, who is not rate limited; set {} to apply [limits]",
                                http.anonymous_user,
                                crate::config::ENV_API_TOKENS
                            );
                        }
                        Some(api)
                    }
                    Err(source) => {
                        fleet.stop_instances(Duration::ZERO).await;
                        return Err(AppError::Listen { addr, source });
                    }
                }
            }
        };
        let bot = match token {
            None => None,
            Some(token) => match DiscordBot::start(fleet.handle.clone(), &token).await {
                Ok(bot) => Some(bot),
                Err(e) => {
                    if let Some(api) = api {
                        api.handle.stop(true).await;
                    }
                    fleet.stop_instances(Duration::ZERO).await;
                    return Err(e.into());
                }
            },
        };
        Ok(Self {
            fleet,
            api,
            bot,
            shutdown,
        })
    }

    /// The Discord bot, when `DISCORD_TOKEN` is set.
    pub fn bot(&self) -> Option<&DiscordBot> {
        self.bot.as_ref()
    }

    /// What front ends use: submit, follow, outputs, status.
    pub fn fleet(&self) -> &FleetHandle {
        &self.fleet.handle
    }

    /// The HTTP API's address, when it serves one.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().map(|a| a.addr)
    }

    /// Waits until at least one instance takes jobs: fails after `lifecycle.readiness_timeout`,
    /// or when a stop is asked for first.
    pub async fn ready(&self) -> Result<(), AppError> {
        let phases = &self.fleet.handle.phases;
        let timeout = self.fleet.handle.config.lifecycle.readiness_timeout;
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = phases.wait_until(|board| board.values().any(|v| v.phase.accepts_jobs())) => Ok(()),
            () = shutdown.requested() => Err(AppError::Interrupted),
            () = tokio::time::sleep(timeout) => Err(AppError::NotReady {
                timeout,
                phases: phases
                    .snapshot()
                    .iter()
                    .map(|(id, v)| format!("{id}: {:?}{}", v.phase, v.detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(", ")
                    .to_lowercase(),
            }),
        }
    }

    /// Serves until a stop is asked for, then stops everything; returns once every instance
    /// has exited.
    pub async fn run(self) {
        let mut shutdown = self.shutdown.clone();
        shutdown.requested().await;
        self.stop().await;
    }

    /// Stops now: drains (running jobs may finish until `shutdown.drain_timeout`, and the bot
    /// delivers them), then stops every instance, the API and the bot's gateway. A second stop
    /// request, or a drain that overruns its deadline by more than the instances' stop grace,
    /// stops the instances at once.
    pub async fn stop(self) {
        let config = &self.fleet.handle.config;
        let deadline = config.shutdown.drain_timeout;
        // The scheduler enforces the drain deadline on jobs; the instances then get their stop
        // grace. Past both, something is stuck: stop at once.
        let limit = deadline + config.lifecycle.stop_grace * 2 + Duration::from_secs(5);
        if let Some(bot) = &self.bot {
            bot.stop_taking();
        }
        let graceful = async {
            let started = tokio::time::Instant::now();
            self.fleet.drain_jobs(deadline).await;
            if let Some(bot) = &self.bot {
                // The results are fetched from the instances: deliver before they stop.
                let left = deadline.saturating_sub(started.elapsed()) + Duration::from_secs(5);
                if tokio::time::timeout(left, bot.delivered()).await.is_err() {
                    tracing::warn!(
                        target: "fleet.discord",
                        "some results were not delivered to Discord before the drain deadline"
                    );
                }
            }
            self.fleet.stop_instances(config.lifecycle.stop_grace).await;
        };
        match self.shutdown.drain(graceful, limit).await {
            DrainEnd::Finished => {}
            DrainEnd::Escalated => self.fleet.stop_now().await,
            DrainEnd::Overran => {
                tracing::warn!(
                    "the drain overran its deadline ({}); stopping the instances now",
                    humantime::format_duration(limit)
                );
                self.fleet.stop_now().await;
            }
        }
        if let Some(api) = self.api {
            api.handle.stop(true).await;
        }
        if let Some(bot) = self.bot {
            bot.close().await;
        }
        tracing::info!("comfy-fleet stopped");
    }
}
