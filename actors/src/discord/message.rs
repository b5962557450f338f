//! What the bot sends, as plain types: a message (text, one embed of fields, buttons, files),
//! the first answer to an interaction, autocomplete choices, and where a message lives so it can
//! be edited later. The serenity adapter turns these into Discord's JSON.

use std::sync::Arc;

/// Discord's limit on a message's text.
pub const MAX_CONTENT: usize = 2000;
/// Discord's limit on a button's `custom_id`.
pub const MAX_CUSTOM_ID: usize = 100;
/// Discord's limits on an embed field's name and value.
pub const MAX_FIELD_NAME: usize = 256;
pub const MAX_FIELD_VALUE: usize = 1024;
/// Discord's limit on fields per embed.
pub const MAX_FIELDS: usize = 25;
/// Discord's limits on buttons: 5 per row, 5 rows.
pub const MAX_BUTTONS: usize = 25;
/// Discord's limit on autocomplete choices.
pub const MAX_CHOICES: usize = 25;
/// Discord's limit on a choice's name and value.
pub const MAX_CHOICE_TEXT: usize = 100;

/// A message to post or the new state of one to edit. Edits replace the text, the embed and
/// the buttons; files only when [`Files::Replace`] says so.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatMessage {
    pub content: String,
    pub embed: Option<Embed>,
    pub buttons: Vec<Button>,
    pub files: Files,
    /// Visible to the user who acted only (interaction responses and followups).
    pub ephemeral: bool,
}

impl ChatMessage {
    /// A message of text only, cut to Discord's 2000 characters.
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: clip(&content.into(), MAX_CONTENT),
            ..Self::default()
        }
    }

    /// The same, visible to the user who acted only.
    pub fn private(content: impl Into<String>) -> Self {
        Self {
            ephemeral: true,
            ..Self::text(content)
        }
    }

    pub fn with_embed(mut self, embed: Embed) -> Self {
        self.embed = Some(embed);
        self
    }

    pub fn with_buttons(mut self, buttons: Vec<Button>) -> Self {
        self.buttons = buttons;
        self
    }

    pub fn with_files(mut self, files: Vec<ChatFile>) -> Self {
        self.files = Files::Replace(files);
        self
    }
}

/// What an edit does with the files a message carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Files {
    /// Leave them as they are (a new message has none).
    #[default]
    Keep,
    /// Exactly these afterwards (an empty list removes them all).
    Replace(Vec<ChatFile>),
}

/// A file to attach.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatFile {
    pub name: String,
    pub bytes: Arc<[u8]>,
}

impl ChatFile {
    pub fn new(name: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Self {
        Self {
            name: name.into(),
            bytes: bytes.into(),
        }
    }
}

/// An embed: a title, a description and named fields (the bot keeps a job's parameters there).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embed {
    pub title: String,
    pub description: String,
    pub fields: Vec<EmbedField>,
    /// The name of an attached file to show as the embed's image (`attachment://<name>`).
    pub image: Option<String>,
}

impl Embed {
    /// The value of the field called `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedField {
    pub name: String,
    pub value: String,
    pub inline: bool,
}

impl EmbedField {
    /// A field, cut to Discord's limits.
    pub fn new(name: &str, value: &str, inline: bool) -> Self {
        Self {
            name: clip(name, MAX_FIELD_NAME),
            value: clip(value, MAX_FIELD_VALUE),
            inline,
        }
    }
}

/// A button; its `custom_id` comes back when it is clicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    pub custom_id: String,
    pub style: ButtonStyle,
    pub disabled: bool,
}

impl Button {
    pub fn new(label: &str, custom_id: String, style: ButtonStyle) -> Self {
        Self {
            label: label.to_string(),
            custom_id,
            style,
            disabled: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonStyle {
    Primary,
    Secondary,
    Success,
    Danger,
}

/// One autocomplete suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    pub value: String,
}

/// The first answer to an interaction, due within Discord's 3 seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Ack {
    /// "Thinking…": the answer comes later as an edit of the original response.
    Defer { ephemeral: bool },
    /// For a button: nothing visible now; the clicked message may be edited later.
    DeferUpdate,
    /// An answer right away.
    Reply(ChatMessage),
    /// For a button: the clicked message becomes this.
    Update(ChatMessage),
    /// For autocomplete: the suggestions.
    Choices(Vec<Choice>),
}

/// A message the bot can edit: the original response of an interaction, one of its followups
/// (both through the interaction's token, for 15 minutes), or an ordinary channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagePlace {
    Original(super::interaction::InteractionToken),
    Followup {
        interaction: super::interaction::InteractionToken,
        message: String,
    },
    Channel {
        channel: String,
        message: String,
    },
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_to_discords_limit_with_an_ellipsis() {
        let long = "é".repeat(2100);
        let message = ChatMessage::text(long);
        assert_eq!(message.content.chars().count(), MAX_CONTENT);
        assert!(message.content.ends_with('…'));
        assert_eq!(clip("short", 10), "short");
    }

    #[test]
    fn an_attachment_known_by_url_is_named_after_its_path() {
        let a =
            Attachment::from_url("https://cdn.discordapp.com/attachments/1/2/cat.png?ex=1&hm=2");
        assert_eq!(a.filename, "cat.png");
        assert_eq!(Attachment::from_url("https://x/").filename, "image");
    }

    use super::super::interaction::Attachment;
}
