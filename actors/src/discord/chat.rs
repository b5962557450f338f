//! The `Chat` port: everything the session asks of Discord. The serenity adapter implements it
//! over Discord's REST API (honouring 429s itself); the session's tests implement it with an
//! in-memory recorder. Futures are local (`!Send`), like every port's.

use std::time::Duration;

use futures_util::future::LocalBoxFuture;

use super::commands::CommandSpec;
use super::interaction::{Attachment, InteractionToken};
use super::message::{Ack, ChatMessage, MessagePlace};

/// Why Discord did not do what the bot asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChatError {
    /// The interaction's token no longer opens its routes (answered too late, or more than 15
    /// minutes old): continue with an ordinary channel message.
    #[error("the interaction has expired: {0}")]
    Expired(String),
    /// Discord kept answering 429 after the bot waited as long as it asked, as often as the bot
    /// retries.
    #[error("Discord rate-limited the bot; it asked to wait {}", humantime::format_duration(*retry_after))]
    RateLimited { retry_after: Duration },
    /// Discord refused the request.
    #[error("Discord answered {status} (code {code}): {message}")]
    Refused {
        status: u16,
        code: i64,
        message: String,
    },
    /// An attachment could not be fetched: a host other than Discord's CDN, too large, too slow.
    #[error("{0}")]
    Download(String),
    /// Discord could not be reached.
    #[error("Discord could not be reached: {0}")]
    Unreachable(String),
}

/// What the session asks of Discord.
pub trait Chat {
    /// Answers an interaction for the first time (within Discord's 3 seconds).
    fn acknowledge(
        &self,
        interaction: &InteractionToken,
        ack: Ack,
    ) -> LocalBoxFuture<'_, Result<(), ChatError>>;
    /// A new message in reply to an interaction (after it was answered); its place, to edit.
    fn followup(
        &self,
        interaction: &InteractionToken,
        message: ChatMessage,
    ) -> LocalBoxFuture<'_, Result<MessagePlace, ChatError>>;
    /// An ordinary message in a channel (no token needed: how progress continues once an
    /// interaction's token is about to expire).
    fn post(
        &self,
        channel: &str,
        message: ChatMessage,
    ) -> LocalBoxFuture<'_, Result<MessagePlace, ChatError>>;
    /// Replaces a message the bot made.
    fn edit(
        &self,
        place: &MessagePlace,
        message: ChatMessage,
    ) -> LocalBoxFuture<'_, Result<(), ChatError>>;
    /// Downloads an attachment, at most `limit` bytes, and only from Discord's attachment hosts.
    fn download(
        &self,
        attachment: &Attachment,
        limit: u64,
    ) -> LocalBoxFuture<'_, Result<Vec<u8>, ChatError>>;
    /// Replaces the registered slash commands (a bulk overwrite): globally when `guilds` is
    /// empty, else in each of those guilds.
    fn register_commands(
        &self,
        commands: Vec<CommandSpec>,
        guilds: Vec<String>,
    ) -> LocalBoxFuture<'_, Result<(), ChatError>>;
}
