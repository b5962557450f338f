//! `fake_discord`: a stand-in Discord for the bot's tests, built from Discord's own published
//! descriptions (the official OpenAPI 3.1 description of API v10, vendored in `spec/`, and the
//! developer documentation). A real actix-web server on 127.0.0.1 serving the REST routes a bot
//! uses (bodies validated against the OpenAPI request schemas, Discord's error answers, the
//! 3-second acknowledgement window and 15-minute interaction tokens, rate-limit headers and armed
//! 429s), the gateway websocket (HELLO, IDENTIFY → READY, heartbeats, RESUME with replay,
//! INVALID_SESSION, close codes, payload compression), a CDN for attachments, and a control API
//! under `/_fake/` through which tests make users act and read back what the bot did.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fake_discord::{FakeConfig, RunningFake, SlashCommand};
//! let fake = RunningFake::start(FakeConfig::for_tests())?;
//! // serenity: HttpBuilder::new(fake.token()).proxy(fake.base_url()).ratelimiter_disabled(true)
//! let control = fake.control();
//! let injected = control.inject_command(&SlashCommand::new("generate").string("prompt", "a cat")).await?;
//! let done = control.wait_for_interaction(&injected.id, |i| i.acknowledgement.is_some()).await?;
//! # let _ = done; Ok(()) }
//! ```
//!
//! Where the fake differs from Discord is listed in the crate's README.

pub mod cdn;
mod cdn_route;
pub mod client;
pub mod commands;
pub mod config;
mod control_api;
pub mod control_types;
pub mod discord_error;
pub mod form_errors;
mod gateway_connection;
pub mod gateway_sessions;
pub mod identity;
pub mod interaction_lifecycle;
pub mod interaction_payloads;
pub mod interactions;
pub mod message_rules;
mod message_writes;
pub mod messages;
pub mod rate_limits;
mod relaxations;
pub mod request_body;
pub mod request_log;
mod rest_channels;
mod rest_commands;
pub mod rest_exchange;
mod rest_identity;
mod rest_interactions;
mod rest_webhooks;
mod routes;
pub mod server;
pub mod snowflake;
pub mod spec;
pub mod timestamp;
pub mod validator;
pub mod world;

pub use client::{ControlClient, ControlClientError};
pub use config::FakeConfig;
pub use control_types::{
    AckView, CommandsView, ComponentClick, GatewayView, Injected, InteractionView, Invoker,
    MessageView, OptionValue, SlashCommand, Upload,
};
pub use interaction_lifecycle::InteractionKind;
pub use rate_limits::{ArmRateLimit, RateLimitedRequest};
pub use request_log::RequestRecord;
pub use server::{RunningFake, StartError};
