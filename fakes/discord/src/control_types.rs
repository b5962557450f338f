//! The types of the test control API (`/_fake/...`), shared by the server and the typed client:
//! what a test asks the fake to do (a user runs a slash command, clicks a button, types into an
//! autocompleted option) and what it reads back (interactions, messages, commands, the gateway).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::gateway_sessions::{ConnectionRecord, SessionView};
use crate::interaction_lifecycle::InteractionKind;
use crate::messages::MessageVersion;

/// Who triggers an interaction, and where.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Invoker {
    /// Defaults to a fixed test user.
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// Role ids the member has (guild interactions).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The member's permission bit set, as a decimal string (defaults to all).
    #[serde(default)]
    pub permissions: Option<String>,
    /// Defaults to the first guild of the fake's configuration.
    #[serde(default)]
    pub guild_id: Option<String>,
    /// A direct message with the bot instead of a guild channel.
    #[serde(default)]
    pub direct_message: bool,
    /// Defaults to the first channel of the fake's configuration.
    #[serde(default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
}

impl Invoker {
    pub fn user(id: u64) -> Self {
        Self {
            user_id: Some(id.to_string()),
            ..Self::default()
        }
    }

    pub fn named(mut self, username: &str) -> Self {
        self.username = Some(username.to_string());
        self
    }

    pub fn with_roles<I: IntoIterator<Item = u64>>(mut self, roles: I) -> Self {
        self.roles = roles.into_iter().map(|r| r.to_string()).collect();
        self
    }

    pub fn with_permissions(mut self, permissions: u64) -> Self {
        self.permissions = Some(permissions.to_string());
        self
    }

    pub fn in_guild(mut self, guild_id: u64) -> Self {
        self.guild_id = Some(guild_id.to_string());
        self
    }

    pub fn in_channel(mut self, channel_id: u64) -> Self {
        self.channel_id = Some(channel_id.to_string());
        self
    }

    pub fn in_direct_message(mut self) -> Self {
        self.direct_message = true;
        self
    }

    pub fn with_locale(mut self, locale: &str) -> Self {
        self.locale = Some(locale.to_string());
        self
    }
}

/// A file a user attaches.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Upload {
    pub filename: String,
    #[serde(default)]
    pub content_type: Option<String>,
    /// The bytes (base64 on the wire).
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

impl Upload {
    pub fn new(filename: &str, data: impl Into<Vec<u8>>) -> Self {
        Self {
            filename: filename.to_string(),
            content_type: None,
            data: data.into(),
        }
    }
}

/// The value a user gives an option (application-commands: "Application Command Option Type").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum OptionValue {
    String(String),
    Integer(i64),
    Boolean(bool),
    /// A user id.
    User(String),
    /// A channel id.
    Channel(String),
    /// A role id.
    Role(String),
    /// A user or role id.
    Mentionable(String),
    Number(f64),
    Attachment(Upload),
}

impl OptionValue {
    /// The option type number Discord uses.
    pub fn type_number(&self) -> u64 {
        match self {
            Self::String(_) => 3,
            Self::Integer(_) => 4,
            Self::Boolean(_) => 5,
            Self::User(_) => 6,
            Self::Channel(_) => 7,
            Self::Role(_) => 8,
            Self::Mentionable(_) => 9,
            Self::Number(_) => 10,
            Self::Attachment(_) => 11,
        }
    }
}

/// One option a user filled in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OptionInput {
    pub name: String,
    pub value: OptionValue,
    /// The option being typed into (autocomplete).
    #[serde(default)]
    pub focused: bool,
}

/// A user running a slash command (or typing into one, for autocomplete).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SlashCommand {
    pub name: String,
    #[serde(default)]
    pub subcommand_group: Option<String>,
    #[serde(default)]
    pub subcommand: Option<String>,
    #[serde(default)]
    pub options: Vec<OptionInput>,
    #[serde(default)]
    pub invoker: Invoker,
}

impl SlashCommand {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            subcommand_group: None,
            subcommand: None,
            options: Vec::new(),
            invoker: Invoker::default(),
        }
    }

    pub fn subcommand(mut self, name: &str) -> Self {
        self.subcommand = Some(name.to_string());
        self
    }

    pub fn subcommand_group(mut self, name: &str) -> Self {
        self.subcommand_group = Some(name.to_string());
        self
    }

    pub fn option(mut self, name: &str, value: OptionValue) -> Self {
        self.options.push(OptionInput {
            name: name.to_string(),
            value,
            focused: false,
        });
        self
    }

    pub fn string(self, name: &str, value: &str) -> Self {
        self.option(name, OptionValue::String(value.to_string()))
    }

    pub fn integer(self, name: &str, value: i64) -> Self {
        self.option(name, OptionValue::Integer(value))
    }

    pub fn attachment(self, name: &str, upload: Upload) -> Self {
        self.option(name, OptionValue::Attachment(upload))
    }

    /// The option the user is typing into, with what they typed so far (autocomplete).
    pub fn focused(mut self, name: &str, typed: &str) -> Self {
        self.options.push(OptionInput {
            name: name.to_string(),
            value: OptionValue::String(typed.to_string()),
            focused: true,
        });
        self
    }

    pub fn by(mut self, invoker: Invoker) -> Self {
        self.invoker = invoker;
        self
    }
}

/// A user clicking a button (or choosing in a select menu) on one of the bot's messages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ComponentClick {
    pub message_id: String,
    pub custom_id: String,
    /// Chosen values, for select menus.
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub invoker: Invoker,
}

impl ComponentClick {
    pub fn button(message_id: &str, custom_id: &str) -> Self {
        Self {
            message_id: message_id.to_string(),
            custom_id: custom_id.to_string(),
            values: Vec::new(),
            invoker: Invoker::default(),
        }
    }

    pub fn by(mut self, invoker: Invoker) -> Self {
        self.invoker = invoker;
        self
    }
}

/// An interaction the fake dispatched (INTERACTION_CREATE).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Injected {
    pub id: String,
    pub token: String,
    pub application_id: String,
    /// The dispatch's sequence number on the gateway.
    pub sequence: u64,
    /// The interaction object exactly as dispatched.
    pub payload: Value,
}

/// A message and every version it went through.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageView {
    pub id: String,
    pub channel_id: String,
    /// The message object as Discord would answer it now.
    pub message: Value,
    /// Every version, oldest first (the first is the creation).
    pub history: Vec<MessageVersion>,
    pub deleted_at_ms: Option<u64>,
}

impl MessageView {
    pub fn content(&self) -> &str {
        self.message
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn attachments(&self) -> Vec<Value> {
        self.message
            .get("attachments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// The `custom_id`s of every component, depth first.
    pub fn custom_ids(&self) -> Vec<String> {
        crate::messages::custom_ids(&self.message)
    }

    pub fn flags(&self) -> u64 {
        self.message
            .get("flags")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }
}

/// The initial response an interaction got.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AckView {
    /// Interaction callback type (4, 5, 6, 7, 8, 9).
    pub callback_type: u8,
    /// Milliseconds since the fake started.
    pub at_ms: u64,
    /// Milliseconds after the interaction was created.
    pub after_ms: u64,
}

/// Everything the bot did with one interaction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InteractionView {
    pub id: String,
    pub token: String,
    pub kind: InteractionKind,
    pub created_ms: u64,
    pub acknowledgement: Option<AckView>,
    /// Whether the webhook routes still take this interaction's token.
    pub token_valid: bool,
    /// The original response (also the clicked message after an UPDATE_MESSAGE).
    pub original: Option<MessageView>,
    pub followups: Vec<MessageView>,
    /// `data.choices` of an autocomplete result.
    pub autocomplete_choices: Option<Value>,
    /// `data` of a MODAL response.
    pub modal: Option<Value>,
}

/// Registered commands.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CommandsView {
    pub global: Vec<Value>,
    /// By guild id.
    pub guilds: BTreeMap<String, Vec<Value>>,
}

/// The gateway as the fake saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GatewayView {
    pub sessions: Vec<SessionView>,
    pub connections: Vec<ConnectionRecord>,
}

/// The fake's change counter (it grows with every request and event).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChangeVersion {
    pub version: u64,
}

/// An error of the control API: what was wrong and what to do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ControlError {
    pub error: String,
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("data is not base64: {e}")))
    }
}
