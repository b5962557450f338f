//! `fake-discord`: runs the stand-in Discord as a process. Prints
//! `fake-discord listening on http://127.0.0.1:PORT` once ready, runs until SIGINT/SIGTERM.
//! Point serenity at it with `HttpBuilder::new(token).proxy("http://127.0.0.1:PORT")
//! .ratelimiter_disabled(true)`; drive it through `/_fake/...` (see the README).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fake_discord::{FakeConfig, RunningFake};

/// A stand-in Discord (REST API v10, gateway, CDN) on 127.0.0.1, for tests.
#[derive(Debug, Parser)]
#[command(name = "fake-discord", version)]
struct Args {
    /// TCP port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The bot token the fake accepts.
    #[arg(
        long,
        env = "FAKE_DISCORD_TOKEN",
        default_value = "fake-discord-bot-token"
    )]
    token: String,
    /// Application id (also the bot user's id).
    #[arg(long, default_value_t = FakeConfig::default().application_id)]
    application_id: u64,
    /// Guilds the bot is in (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    guild: Vec<u64>,
    /// Text channels that exist (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    channel: Vec<u64>,
    /// HELLO's heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 41_250)]
    heartbeat_interval_ms: u64,
    /// Time to acknowledge an interaction, in milliseconds.
    #[arg(long, default_value_t = 3_000)]
    ack_window_ms: u64,
    /// Lifetime of interaction tokens, in seconds.
    #[arg(long, default_value_t = 900)]
    token_lifetime_s: u64,
    /// Privileged intents the application was granted (bit set, e.g. 32768 for MESSAGE_CONTENT).
    #[arg(long, default_value_t = 0)]
    privileged_intents: u64,
    /// Largest upload, in bytes (also interactions' attachment_size_limit).
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    attachment_size_limit: u64,
    /// Answer 429 beyond the per-bucket limit the rate-limit headers announce.
    #[arg(long)]
    enforce_rate_limits: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let defaults = FakeConfig::default();
    let config = FakeConfig {
        port: args.port,
        bot_token: args.token,
        application_id: args.application_id,
        guild_ids: if args.guild.is_empty() {
            defaults.guild_ids.clone()
        } else {
            args.guild
        },
        channel_ids: if args.channel.is_empty() {
            defaults.channel_ids.clone()
        } else {
            args.channel
        },
        heartbeat_interval: Duration::from_millis(args.heartbeat_interval_ms),
        ack_window: Duration::from_millis(args.ack_window_ms),
        token_lifetime: Duration::from_secs(args.token_lifetime_s),
        allowed_privileged_intents: args.privileged_intents,
        attachment_size_limit: args.attachment_size_limit,
        enforce_rate_limits: args.enforce_rate_limits,
        handle_signals: true,
        ..defaults
    };
    match RunningFake::start(config) {
        Ok(fake) => {
            println!("fake-discord listening on {}", fake.base_url());
            fake.wait();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fake-discord: {e}");
            ExitCode::FAILURE
        }
    }
}
