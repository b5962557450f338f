//! What a fake Discord is set up with: who the bot is, the guilds it is in, its token, and the
//! timings Discord fixes (heartbeat interval, the 3-second acknowledgement window, the 15-minute
//! interaction token) which tests may shorten.

use std::time::Duration;

/// Intents Discord calls privileged: GUILD_MEMBERS (1 << 1), GUILD_PRESENCES (1 << 8) and
/// MESSAGE_CONTENT (1 << 15).
pub const PRIVILEGED_INTENTS: u64 = (1 << 1) | (1 << 8) | (1 << 15);

/// Every intent bit the gateway documentation lists (0–21 and 24–25).
pub const KNOWN_INTENTS: u64 = ((1 << 22) - 1) | (1 << 24) | (1 << 25);

/// The configuration of one fake Discord.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The bot token REST calls (`Authorization: Bot <token>`) and IDENTIFY must carry.
    pub bot_token: String,
    /// The application id (also the bot user's id, as for applications made today).
    pub application_id: u64,
    pub bot_username: String,
    /// Guilds the bot is in (READY lists them as unavailable guilds).
    pub guild_ids: Vec<u64>,
    /// Text channels that exist; channels named by injected interactions are added.
    pub channel_ids: Vec<u64>,
    /// HELLO's `heartbeat_interval` (Discord: 41.25 s).
    pub heartbeat_interval: Duration,
    /// How long past the interval a missing heartbeat is tolerated before the fake drops the
    /// connection (which stays resumable, as Discord's documentation says).
    pub heartbeat_grace: Duration,
    /// Time to acknowledge an interaction (Discord: 3 s).
    pub ack_window: Duration,
    /// Lifetime of an interaction token for the webhook routes (Discord: 15 min).
    pub token_lifetime: Duration,
    /// Privileged intents this application has been granted in the Developer Portal.
    pub allowed_privileged_intents: u64,
    /// Largest file in an upload, also sent as interactions' `attachment_size_limit`
    /// (Discord: 10 MiB without boosts).
    pub attachment_size_limit: u64,
    /// Requests per bucket and window the rate-limit headers describe.
    pub rate_limit_per_bucket: u32,
    pub rate_limit_window: Duration,
    /// Refuse (429) requests beyond `rate_limit_per_bucket` in a window, as Discord does. Off by
    /// default: tests arm 429s explicitly.
    pub enforce_rate_limits: bool,
    /// Dispatches at least this large are zlib-compressed (binary frames) when IDENTIFY asked
    /// for `compress: true`.
    pub compress_threshold: usize,
    /// Let the server react to SIGINT/SIGTERM (the binary); tests leave it off.
    pub handle_signals: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            port: 0,
            bot_token: "fake-discord-bot-token".to_string(),
            application_id: 1_180_000_000_000_000_001,
            bot_username: "comfy-fleet".to_string(),
            guild_ids: vec![1_180_000_000_000_000_100],
            channel_ids: vec![1_180_000_000_000_000_200],
            heartbeat_interval: Duration::from_millis(41_250),
            heartbeat_grace: Duration::from_secs(10),
            ack_window: Duration::from_secs(3),
            token_lifetime: Duration::from_secs(15 * 60),
            allowed_privileged_intents: 0,
            attachment_size_limit: 10 * 1024 * 1024,
            rate_limit_per_bucket: 5,
            rate_limit_window: Duration::from_secs(2),
            enforce_rate_limits: false,
            compress_threshold: 1024,
            handle_signals: false,
        }
    }
}

impl FakeConfig {
    /// The configuration tests want: a 1-second heartbeat, Discord's other timings.
    pub fn for_tests() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            ..Self::default()
        }
    }

    pub fn bot_user_id(&self) -> u64 {
        self.application_id
    }

    /// Whether `presented` (an IDENTIFY token or an `Authorization` value) is this bot's token;
    /// the `Bot ` prefix is optional, as it is for Discord's gateway.
    pub fn token_matches(&self, presented: &str) -> bool {
        presented.strip_prefix("Bot ").unwrap_or(presented) == self.bot_token
    }
}
