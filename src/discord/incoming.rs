//! serenity's interactions → the session's plain [`Interaction`]: who, where, the upload limit,
//! and what they did (command options with their attachments resolved, the focused option of an
//! autocomplete, a button's `custom_id` with the clicked message's embed and attachments).

use std::time::Instant;

use comfy_fleet_actors::discord::interaction::{
    Attachment, ChatUser, ClickedMessage, CommandCall, CommandOption, Interaction, InteractionKind,
    InteractionToken, OptionValue,
};
use comfy_fleet_actors::discord::message::{Embed, EmbedField};
use serenity::all::{
    CommandData, CommandDataOption, CommandDataOptionValue, ComponentInteractionDataKind,
    Interaction as Serenity, Member, Message, User,
};

/// Discord's upload limit without boosts, for an interaction that does not say its own.
const DEFAULT_UPLOAD_LIMIT: u64 = 10 * 1024 * 1024;

fn upload_limit(attachment_size_limit: u32) -> u64 {
    match u64::from(attachment_size_limit) {
        0 => DEFAULT_UPLOAD_LIMIT,
        limit => limit,
    }
}

/// The interaction as the session takes it; `None` for kinds the bot does not use (pings,
/// modals, select menus).
pub fn convert(interaction: Serenity, received: Instant) -> Option<Interaction> {
    match interaction {
        Serenity::Command(c) => Some(Interaction {
            token: token(c.id.to_string(), &c.token, c.application_id.to_string()),
            received,
            user: user(&c.user, c.member.as_deref()),
            guild: c.guild_id.map(|g| g.to_string()),
            channel: Some(c.channel_id.to_string()),
            upload_limit: upload_limit(c.attachment_size_limit),
            kind: InteractionKind::Command(call(&c.data)),
        }),
        Serenity::Autocomplete(c) => {
            let focused = c.data.autocomplete()?;
            let (focused, typed) = (focused.name.to_string(), focused.value.to_string());
            Some(Interaction {
                token: token(c.id.to_string(), &c.token, c.application_id.to_string()),
                received,
                user: user(&c.user, c.member.as_deref()),
                guild: c.guild_id.map(|g| g.to_string()),
                channel: Some(c.channel_id.to_string()),
                upload_limit: upload_limit(c.attachment_size_limit),
                kind: InteractionKind::Autocomplete {
                    call: call(&c.data),
                    focused,
                    typed,
                },
            })
        }
        Serenity::Component(c) => {
            if !matches!(c.data.kind, ComponentInteractionDataKind::Button) {
                return None;
            }
            Some(Interaction {
                token: token(c.id.to_string(), &c.token, c.application_id.to_string()),
                received,
                user: user(&c.user, c.member.as_ref()),
                guild: c.guild_id.map(|g| g.to_string()),
                channel: Some(c.channel_id.to_string()),
                upload_limit: upload_limit(c.attachment_size_limit),
                kind: InteractionKind::Button {
                    custom_id: c.data.custom_id.clone(),
                    message: clicked(&c.message),
                },
            })
        }
        _ => None,
    }
}

fn token(id: String, token: &str, application_id: String) -> InteractionToken {
    InteractionToken {
        id,
        token: token.to_string(),
        application_id,
    }
}

fn user(user: &User, member: Option<&Member>) -> ChatUser {
    let name = user
        .global_name
        .clone()
        .unwrap_or_else(|| user.name.clone());
    let roles = member
        .map(|m| m.roles.iter().map(|r| r.to_string()).collect())
        .unwrap_or_default();
    ChatUser::discord(&user.id.to_string(), &name, roles)
}

fn call(data: &CommandData) -> CommandCall {
    let mut call = CommandCall::new(&data.name);
    let mut options: &[CommandDataOption] = &data.options;
    // `/fleet drain instance:gpu0` arrives as one subcommand option holding the real ones.
    if let [only] = options
        && let CommandDataOptionValue::SubCommand(inner) = &only.value
    {
        call.subcommand = Some(only.name.clone());
        options = inner;
    }
    for option in options {
        let value = match &option.value {
            CommandDataOptionValue::String(s) => OptionValue::Text(s.clone()),
            CommandDataOptionValue::Integer(i) => OptionValue::Integer(*i),
            CommandDataOptionValue::Number(x) => OptionValue::Number(*x),
            CommandDataOptionValue::Boolean(b) => OptionValue::Boolean(*b),
            CommandDataOptionValue::Attachment(id) => match data.resolved.attachments.get(id) {
                Some(a) => OptionValue::Attachment(Attachment {
                    filename: a.filename.clone(),
                    url: a.url.clone(),
                    size: u64::from(a.size),
                    content_type: a.content_type.clone(),
                }),
                None => continue,
            },
            // The focused option of an autocomplete, and kinds the bot's commands do not have.
            _ => continue,
        };
        call.options.push(CommandOption {
            name: option.name.clone(),
            value,
        });
    }
    call
}

fn clicked(message: &Message) -> ClickedMessage {
    ClickedMessage {
        id: message.id.to_string(),
        content: message.content.clone(),
        embed: message.embeds.first().map(|e| Embed {
            title: e.title.clone().unwrap_or_default(),
            description: e.description.clone().unwrap_or_default(),
            fields: e
                .fields
                .iter()
                .map(|f| EmbedField::new(&f.name, &f.value, f.inline))
                .collect(),
            image: None,
        }),
        attachments: message
            .attachments
            .iter()
            .map(|a| Attachment {
                filename: a.filename.clone(),
                url: a.url.clone(),
                size: u64::from(a.size),
                content_type: a.content_type.clone(),
            })
            .collect(),
    }
}
