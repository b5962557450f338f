//! What reaches the bot from Discord, as plain types: who acted, where, and what they did (ran a
//! command, typed into an option with autocomplete, clicked a button). The serenity adapter
//! converts Discord's payloads into these; the session never sees serenity's types.

use std::time::Instant;

use crate::ids::UserId;

use super::message::Embed;

/// Someone who used the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatUser {
    /// `discord:<user id>`: the user as the rate limiter and the scheduler know them, distinct
    /// from HTTP API users.
    pub id: UserId,
    /// The Discord user id (a snowflake), for mentions.
    pub discord_id: String,
    /// The name to show.
    pub name: String,
    /// Role ids of the member in the guild (none in direct messages).
    pub roles: Vec<String>,
}

impl ChatUser {
    /// A Discord user by snowflake.
    pub fn discord(discord_id: &str, name: &str, roles: Vec<String>) -> Self {
        Self {
            id: UserId::new(format!("discord:{discord_id}")),
            discord_id: discord_id.to_string(),
            name: name.to_string(),
            roles,
        }
    }

    /// `<@id>`: a mention, which Discord shows as the user's name.
    pub fn mention(&self) -> String {
        format!("<@{}>", self.discord_id)
    }
}

/// What the routes of one interaction need: its id and token (valid 15 minutes after it was
/// answered) and the application's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InteractionToken {
    pub id: String,
    pub token: String,
    pub application_id: String,
}

/// One interaction.
#[derive(Debug, Clone)]
pub struct Interaction {
    pub token: InteractionToken,
    /// When the adapter received it (Discord wants an answer within 3 seconds of its creation).
    pub received: Instant,
    pub user: ChatUser,
    /// `None` in a direct message.
    pub guild: Option<String>,
    pub channel: Option<String>,
    /// The largest file this interaction's responses may carry (`attachment_size_limit`).
    pub upload_limit: u64,
    pub kind: InteractionKind,
}

/// What the user did.
#[derive(Debug, Clone, PartialEq)]
pub enum InteractionKind {
    /// Ran a slash command.
    Command(CommandCall),
    /// Is typing into the option `focused` of a command; `typed` is what they typed so far.
    Autocomplete {
        call: CommandCall,
        focused: String,
        typed: String,
    },
    /// Clicked a button of one of the bot's messages.
    Button {
        custom_id: String,
        message: ClickedMessage,
    },
}

/// A slash command with the options the user filled in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommandCall {
    pub name: String,
    /// The subcommand (`/fleet pause` → `pause`).
    pub subcommand: Option<String>,
    pub options: Vec<CommandOption>,
}

impl CommandCall {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    /// The value of an option, if the user gave it.
    pub fn option(&self, name: &str) -> Option<&OptionValue> {
        self.options
            .iter()
            .find(|o| o.name == name)
            .map(|o| &o.value)
    }

    /// Adds an option (tests and the re-roll button build calls this way).
    pub fn with(mut self, name: &str, value: OptionValue) -> Self {
        self.options.push(CommandOption {
            name: name.to_string(),
            value,
        });
        self
    }
}

/// One option of a command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOption {
    pub name: String,
    pub value: OptionValue,
}

/// An option's value, by Discord's option types.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    Text(String),
    Integer(i64),
    Number(f64),
    Boolean(bool),
    Attachment(Attachment),
}

/// A file a user attached (or one of the bot's result images).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    /// Where to download it (Discord's CDN).
    pub url: String,
    /// Its size as Discord reports it (0 when not known).
    pub size: u64,
    pub content_type: Option<String>,
}

impl Attachment {
    /// An attachment known only by its URL (from a result message's fields).
    pub fn from_url(url: &str) -> Self {
        let filename = url
            .split('?')
            .next()
            .and_then(|path| path.rsplit('/').next())
            .filter(|name| !name.is_empty())
            .unwrap_or("image")
            .to_string();
        Self {
            filename,
            url: url.to_string(),
            size: 0,
            content_type: None,
        }
    }
}

/// The message whose button was clicked, as Discord sends it with the click: everything a
/// button needs after a restart of comfy-fleet (the job's parameters are its embed's fields,
/// the result images its attachments).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClickedMessage {
    pub id: String,
    pub content: String,
    pub embed: Option<Embed>,
    pub attachments: Vec<Attachment>,
}
