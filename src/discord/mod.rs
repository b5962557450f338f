//! The Discord bot's adapter: serenity's gateway feeding the `DiscordSession` actor (in
//! `comfy-fleet-actors`), Discord's REST API as the session's `Chat` port, and the fleet as its
//! `FleetPort`. It runs when `DISCORD_TOKEN` is set. [`DiscordBot::start`] checks the token,
//! registers the commands (a bulk overwrite, globally or in `discord.guilds`) and connects the
//! gateway; the shutdown path stops taking commands, waits for the jobs' delivery, then closes
//! the gateway.

mod chat_adapter;
mod downloads;
mod fleet_adapter;
mod gateway;
mod incoming;
mod payloads;
mod rate_limits;
mod rest;
mod result_images;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use comfy_fleet_actors::discord::access::AccessRules;
use comfy_fleet_actors::discord::session::{RegisterCommands, StopTaking, WaitDelivered};
use comfy_fleet_actors::discord::{ChatError, DiscordSession, SessionSettings};
use serenity::gateway::ShardManager;

use crate::config::DiscordConfig;
use crate::fleet::FleetHandle;

pub use downloads::DISCORD_ATTACHMENT_HOSTS;
pub use rest::DISCORD_BASE;

/// Why the bot could not start.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error(
        "Discord refused DISCORD_TOKEN ({0}); copy the bot token again from the Developer Portal (Bot → Reset Token)"
    )]
    Token(String),
    #[error("Discord could not be reached at {base}: {reason}")]
    Unreachable { base: String, reason: String },
    #[error("the slash commands could not be registered: {0}")]
    Commands(ChatError),
    #[error("the Discord gateway could not be reached: {0}")]
    Gateway(String),
}

/// The running bot.
pub struct DiscordBot {
    session: Addr<DiscordSession>,
    shards: Arc<ShardManager>,
}

/// The session's settings from `[discord]` and `[limits]`.
pub fn session_settings(config: &DiscordConfig, max_image_bytes: u64) -> SessionSettings {
    let ids = |list: &[u64]| list.iter().map(u64::to_string).collect::<Vec<_>>();
    SessionSettings {
        progress_interval: config.progress_interval,
        token_handover: config.token_handover,
        previews: config.previews,
        access: AccessRules {
            allowed_guilds: ids(&config.allowed_guilds),
            allowed_channels: ids(&config.allowed_channels),
            operator_roles: config.operator_roles.clone(),
        },
        guilds: ids(&config.guilds),
        max_image_bytes,
        ..SessionSettings::default()
    }
}

impl DiscordBot {
    /// Starts the bot with `token`. Must run inside an actix system (the session is an actor;
    /// serenity is spawned onto the same tokio runtime).
    pub async fn start(fleet: FleetHandle, token: &str) -> Result<Self, BotError> {
        let config = fleet.config.discord.clone();
        let proxy = (!config.api_proxy.is_empty()).then_some(config.api_proxy.as_str());
        let base = proxy.unwrap_or(DISCORD_BASE).to_string();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| BotError::Unreachable {
                base: base.clone(),
                reason: e.to_string(),
            })?;
        let rest = Rc::new(rest::DiscordRest::new(http.clone(), &base, token));
        let application = chat_adapter::application_id(&rest)
            .await
            .map_err(|e| match e {
                rest::RestError::Status { status: 401, .. } => BotError::Token(e.to_string()),
                e => BotError::Unreachable {
                    base: base.clone(),
                    reason: e.to_string(),
                },
            })?;
        let downloads =
            downloads::AttachmentDownloads::new(http.clone(), proxy, config.download_timeout);
        let chat = Rc::new(chat_adapter::DiscordChat::new(
            Rc::clone(&rest),
            application.clone(),
            downloads,
        ));
        let settings = session_settings(&config, fleet.config.limits.max_image_bytes());
        let port = Rc::new(fleet_adapter::FleetAdapter::new(fleet));
        let session = DiscordSession::new(chat, port, settings).start();
        let commands = session
            .send(RegisterCommands)
            .await
            .map_err(|e| BotError::Commands(ChatError::Unreachable(e.to_string())))?
            .map_err(BotError::Commands)?;
        let where_to = if config.guilds.is_empty() {
            "globally".to_string()
        } else {
            format!("in guilds {:?}", config.guilds)
        };
        tracing::info!(target: "fleet.discord", commands, "slash commands registered {where_to}");
        let shards = gateway::connect(
            http,
            token,
            proxy,
            application.parse().unwrap_or(0),
            session.clone(),
        )
        .await
        .map_err(|e| BotError::Gateway(e.to_string()))?;
        tracing::info!(target: "fleet.discord", api = %base, "Discord bot started");
        Ok(Self { session, shards })
    }

    /// The session actor (tests and benchmarks ask it how much it carries).
    pub fn session(&self) -> &Addr<DiscordSession> {
        &self.session
    }

    /// No new jobs: commands that would start one are answered "restarting, try again in a
    /// minute".
    pub fn stop_taking(&self) {
        self.session.do_send(StopTaking);
    }

    /// Resolves once every job the bot started has been delivered (or failed to be).
    pub async fn delivered(&self) {
        if let Err(e) = self.session.send(WaitDelivered).await {
            tracing::warn!(target: "fleet.discord", "the Discord session stopped early: {e}");
        }
    }

    /// Closes the gateway cleanly.
    pub async fn close(self) {
        self.shards.shutdown_all().await;
        tracing::info!(target: "fleet.discord", "Discord gateway closed");
    }
}
