//! Builds INTERACTION_CREATE payloads for what a test says a user did, shaped like the examples
//! and field tables of Discord's documentation (receiving-and-responding, application-commands,
//! components reference): `member` with `user`, `roles`, `flags` and `permissions`,
//! `app_permissions`, `entitlements`, `authorizing_integration_owners`, `context`,
//! `attachment_size_limit`, `channel`, `locale`, a fresh `token`, `version: 1`, and for commands
//! `data` with `options` and `resolved` (attachments stored on the fake's CDN). A user can only
//! run a command that is registered, with options the command defines, as in Discord's client.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::control_types::{ComponentClick, Invoker, OptionInput, OptionValue, SlashCommand};
use crate::interaction_lifecycle::{InteractionKind, Lifecycle};
use crate::interactions::InteractionRecord;
use crate::world::World;

/// The test user that triggers interactions when a test names none.
pub const DEFAULT_USER_ID: u64 = 1_180_000_000_000_000_300;
/// All permissions (the docs' example member has `"permissions": "2147483647"`).
const ALL_PERMISSIONS: &str = "2251799813685247";
/// What a bot in a text channel is typically allowed (view, send, embed, attach, history…).
const APP_PERMISSIONS: &str = "562949953601536";

/// Why the fake refuses to inject an interaction.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InjectError {
    #[error(
        "no command named /{0} is registered for this guild or globally; register it first (PUT /applications/{{app}}/commands or …/guilds/{{guild}}/commands)"
    )]
    UnknownCommand(String),
    #[error("/{command} has no {what} named {name:?}; the registered command defines: {defined}")]
    UnknownOption {
        command: String,
        what: &'static str,
        name: String,
        defined: String,
    },
    #[error("option {name:?} of /{command} is of type {expected}, not {given} as given")]
    WrongOptionType {
        command: String,
        name: String,
        expected: u64,
        given: u64,
    },
    #[error("option {name:?} of /{command} is required; give it a value")]
    MissingOption { command: String, name: String },
    #[error("option {name:?} of /{command} only takes one of its choices: {choices}")]
    NotAChoice {
        command: String,
        name: String,
        choices: String,
    },
    #[error(
        "an autocomplete interaction needs exactly one focused option with autocomplete enabled in the command; {0}"
    )]
    Autocomplete(String),
    #[error("the bot is not in guild {0}; add it to the fake's guild_ids")]
    UnknownGuild(String),
    #[error("message {0} does not exist (or was deleted); click a message the bot sent")]
    UnknownMessage(String),
    #[error("message {message} has no component with custom_id {custom_id:?}; it has {present}")]
    UnknownComponent {
        message: String,
        custom_id: String,
        present: String,
    },
    #[error("{field} must be a snowflake (a decimal id), not {value:?}")]
    BadId { field: &'static str, value: String },
    #[error(
        "no bot is connected to the gateway (no session was identified); start the bot before injecting interactions"
    )]
    NoSession,
}

/// Where and by whom, resolved from an `Invoker`.
struct Place {
    user: Value,
    guild_id: Option<u64>,
    channel_id: u64,
    member: Option<Value>,
    locale: String,
}

fn parse_id(field: &'static str, value: &str) -> Result<u64, InjectError> {
    value.parse().map_err(|_| InjectError::BadId {
        field,
        value: value.to_string(),
    })
}

fn user_object(id: &str, username: &str) -> Value {
    json!({
        "id": id,
        "username": username,
        "avatar": null,
        "discriminator": "0",
        "public_flags": 0,
        "flags": 0,
        "banner": null,
        "accent_color": null,
        "global_name": username,
        "avatar_decoration_data": null,
        "collectibles": null,
        "primary_guild": null
    })
}

fn place(world: &mut World, invoker: &Invoker) -> Result<Place, InjectError> {
    let user_id = match &invoker.user_id {
        Some(id) => parse_id("user_id", id)?.to_string(),
        None => DEFAULT_USER_ID.to_string(),
    };
    let username = invoker
        .username
        .clone()
        .unwrap_or_else(|| "tester".to_string());
    let user = user_object(&user_id, &username);
    let channel_id = match &invoker.channel_id {
        Some(id) => parse_id("channel_id", id)?,
        None => world.config.channel_ids.first().copied().unwrap_or(1),
    };
    world.channels.insert(channel_id);
    let locale = invoker
        .locale
        .clone()
        .unwrap_or_else(|| "en-US".to_string());
    if invoker.direct_message {
        return Ok(Place {
            user,
            guild_id: None,
            channel_id,
            member: None,
            locale,
        });
    }
    let guild_id = match &invoker.guild_id {
        Some(id) => parse_id("guild_id", id)?,
        None => world.config.guild_ids.first().copied().unwrap_or(1),
    };
    if !world.config.guild_ids.contains(&guild_id) {
        return Err(InjectError::UnknownGuild(guild_id.to_string()));
    }
    for role in &invoker.roles {
        parse_id("roles", role)?;
    }
    let member = json!({
        "avatar": null,
        "banner": null,
        "communication_disabled_until": null,
        "deaf": false,
        "flags": 0,
        "joined_at": "2024-01-01T00:00:00.000000+00:00",
        "mute": false,
        "nick": null,
        "pending": false,
        "permissions": invoker.permissions.clone().unwrap_or_else(|| ALL_PERMISSIONS.to_string()),
        "premium_since": null,
        "roles": invoker.roles,
        "unusual_dm_activity_until": null,
        "user": user
    });
    Ok(Place {
        user,
        guild_id: Some(guild_id),
        channel_id,
        member: Some(member),
        locale,
    })
}

/// A fresh interaction token (Discord's are long opaque URL-safe strings).
fn new_token(id: u64) -> String {
    let secret = format!(
        "interaction:{id}:{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    URL_SAFE_NO_PAD.encode(secret)
}

/// The envelope every interaction shares.
fn envelope(
    world: &World,
    kind: InteractionKind,
    id: u64,
    token: &str,
    at: &Place,
    data: Value,
) -> Value {
    let mut d = Map::new();
    d.insert("app_permissions".into(), json!(APP_PERMISSIONS));
    d.insert(
        "application_id".into(),
        json!(world.config.application_id.to_string()),
    );
    d.insert(
        "attachment_size_limit".into(),
        json!(world.config.attachment_size_limit),
    );
    let owners = match at.guild_id {
        Some(guild) => json!({"0": guild.to_string()}),
        None => json!({"0": "0"}),
    };
    d.insert("authorizing_integration_owners".into(), owners);
    let channel = match at.guild_id {
        Some(guild) => json!({
            "flags": 0,
            "guild_id": guild.to_string(),
            "id": at.channel_id.to_string(),
            "last_message_id": null,
            "name": "general",
            "nsfw": false,
            "parent_id": null,
            "permissions": APP_PERMISSIONS,
            "position": 0,
            "rate_limit_per_user": 0,
            "topic": null,
            "type": 0
        }),
        None => json!({
            "flags": 0,
            "id": at.channel_id.to_string(),
            "last_message_id": null,
            "recipients": [at.user],
            "type": 1
        }),
    };
    d.insert("channel".into(), channel);
    d.insert("channel_id".into(), json!(at.channel_id.to_string()));
    d.insert(
        "context".into(),
        json!(if at.guild_id.is_some() { 0 } else { 1 }),
    );
    d.insert("data".into(), data);
    d.insert("entitlement_sku_ids".into(), json!([]));
    d.insert("entitlements".into(), json!([]));
    if let Some(guild) = at.guild_id {
        d.insert(
            "guild".into(),
            json!({"features": [], "id": guild.to_string(), "locale": "en-US"}),
        );
        d.insert("guild_id".into(), json!(guild.to_string()));
        d.insert("guild_locale".into(), json!("en-US"));
    }
    d.insert("id".into(), json!(id.to_string()));
    d.insert("locale".into(), json!(at.locale));
    match &at.member {
        Some(member) => {
            d.insert("member".into(), member.clone());
        }
        None => {
            d.insert("user".into(), at.user.clone());
        }
    }
    d.insert("token".into(), json!(token));
    d.insert("type".into(), json!(kind.type_number()));
    d.insert("version".into(), json!(1));
    Value::Object(d)
}

fn new_record(
    world: &World,
    kind: InteractionKind,
    id: u64,
    token: String,
    payload: Value,
    at: &Place,
    now: Instant,
) -> InteractionRecord {
    InteractionRecord {
        id,
        token,
        lifecycle: Lifecycle::new(
            kind,
            now,
            world.config.ack_window,
            world.config.token_lifetime,
        ),
        payload,
        channel_id: at.channel_id,
        guild_id: at.guild_id,
        attachment_size_limit: world.config.attachment_size_limit,
        source_message_id: None,
        original_message_id: None,
        awaiting_deferred_edit: false,
        followup_ids: Vec::new(),
        autocomplete_choices: None,
        modal: None,
        created_ms: world.ms(now),
    }
}

/// The option list the user's input must match: the command's, or a subcommand's.
fn defined_options<'a>(
    command: &'a Value,
    spec: &SlashCommand,
) -> Result<Vec<&'a Value>, InjectError> {
    let top: Vec<&Value> = command
        .get("options")
        .and_then(Value::as_array)
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    let descend = |options: Vec<&'a Value>, name: &str, kind: u64, what: &'static str| {
        options
            .into_iter()
            .find(|o| {
                o.get("type").and_then(Value::as_u64) == Some(kind)
                    && o.get("name").and_then(Value::as_str) == Some(name)
            })
            .map(|o| {
                o.get("options")
                    .and_then(Value::as_array)
                    .map(|v| v.iter().collect())
                    .unwrap_or_default()
            })
            .ok_or_else(|| InjectError::UnknownOption {
                command: spec.name.clone(),
                what,
                name: name.to_string(),
                defined: "(see the registered command)".to_string(),
            })
    };
    let mut level = top;
    if let Some(group) = &spec.subcommand_group {
        level = descend(level, group, 2, "subcommand group")?;
    }
    if let Some(sub) = &spec.subcommand {
        level = descend(level, sub, 1, "subcommand")?;
    }
    Ok(level)
}

fn check_options(
    spec: &SlashCommand,
    defined: &[&Value],
    autocomplete: bool,
) -> Result<(), InjectError> {
    let names = || {
        defined
            .iter()
            .filter_map(|o| o.get("name").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for input in &spec.options {
        let Some(definition) = defined
            .iter()
            .find(|o| o.get("name").and_then(Value::as_str) == Some(input.name.as_str()))
        else {
            return Err(InjectError::UnknownOption {
                command: spec.name.clone(),
                what: "option",
                name: input.name.clone(),
                defined: names(),
            });
        };
        let expected = definition.get("type").and_then(Value::as_u64).unwrap_or(0);
        let given = input.value.type_number();
        // While typing, every focused value is the raw text.
        let typing = autocomplete && input.focused;
        if expected != given && !typing {
            return Err(InjectError::WrongOptionType {
                command: spec.name.clone(),
                name: input.name.clone(),
                expected,
                given,
            });
        }
        if let Some(choices) = definition.get("choices").and_then(Value::as_array)
            && !choices.is_empty()
            && !typing
        {
            let value = option_value(&input.value);
            if !choices.iter().any(|c| c.get("value") == Some(&value)) {
                return Err(InjectError::NotAChoice {
                    command: spec.name.clone(),
                    name: input.name.clone(),
                    choices: choices
                        .iter()
                        .filter_map(|c| c.get("value"))
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    if autocomplete {
        let focused: Vec<&OptionInput> = spec.options.iter().filter(|o| o.focused).collect();
        let [only] = focused.as_slice() else {
            return Err(InjectError::Autocomplete(format!(
                "{} options are focused",
                focused.len()
            )));
        };
        let enabled = defined.iter().any(|o| {
            o.get("name").and_then(Value::as_str) == Some(only.name.as_str())
                && o.get("autocomplete").and_then(Value::as_bool) == Some(true)
        });
        if !enabled {
            return Err(InjectError::Autocomplete(format!(
                "option {:?} does not have autocomplete: true",
                only.name
            )));
        }
        return Ok(());
    }
    for definition in defined {
        let name = definition.get("name").and_then(Value::as_str).unwrap_or("");
        let required = definition
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if required && !spec.options.iter().any(|o| o.name == name) {
            return Err(InjectError::MissingOption {
                command: spec.name.clone(),
                name: name.to_string(),
            });
        }
    }
    Ok(())
}

fn option_value(value: &OptionValue) -> Value {
    match value {
        OptionValue::String(s) => json!(s),
        OptionValue::Integer(i) => json!(i),
        OptionValue::Number(n) => json!(n),
        OptionValue::Boolean(b) => json!(b),
        OptionValue::User(id)
        | OptionValue::Channel(id)
        | OptionValue::Role(id)
        | OptionValue::Mentionable(id) => json!(id),
        OptionValue::Attachment(_) => Value::Null,
    }
}

/// `data.options` and `data.resolved` for the user's input; attachments go to the CDN.
fn options_and_resolved(
    world: &mut World,
    spec: &SlashCommand,
    at: &Place,
) -> Result<(Vec<Value>, Map<String, Value>), InjectError> {
    let mut resolved: Map<String, Value> = Map::new();
    let mut options = Vec::new();
    for input in &spec.options {
        let value = match &input.value {
            OptionValue::Attachment(upload) => {
                let id = world.ids.next();
                let object = world.cdn.store(
                    &world.base_url,
                    at.channel_id,
                    id,
                    &upload.filename,
                    upload.content_type.as_deref(),
                    Bytes::from(upload.data.clone()),
                );
                let object = {
                    let mut o = object;
                    if let Some(fields) = o.as_object_mut() {
                        fields.insert("ephemeral".into(), json!(true));
                        fields.insert("placeholder".into(), json!(""));
                        fields.insert("placeholder_version".into(), json!(1));
                    }
                    o
                };
                insert_resolved(&mut resolved, "attachments", &id.to_string(), object);
                json!(id.to_string())
            }
            OptionValue::User(id) | OptionValue::Mentionable(id) => {
                parse_id("user option", id)?;
                insert_resolved(&mut resolved, "users", id, user_object(id, "someone"));
                if at.guild_id.is_some() {
                    insert_resolved(
                        &mut resolved,
                        "members",
                        id,
                        json!({"avatar": null, "banner": null, "communication_disabled_until": null, "flags": 0,
                               "joined_at": "2024-01-01T00:00:00.000000+00:00", "nick": null, "pending": false,
                               "permissions": ALL_PERMISSIONS, "premium_since": null, "roles": [],
                               "unusual_dm_activity_until": null}),
                    );
                }
                json!(id)
            }
            OptionValue::Role(id) => {
                parse_id("role option", id)?;
                insert_resolved(
                    &mut resolved,
                    "roles",
                    id,
                    json!({"id": id, "name": "role", "color": 0, "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
                           "hoist": false, "icon": null, "unicode_emoji": null, "position": 1, "permissions": "0",
                           "managed": false, "mentionable": false, "flags": 0}),
                );
                json!(id)
            }
            OptionValue::Channel(id) => {
                parse_id("channel option", id)?;
                insert_resolved(
                    &mut resolved,
                    "channels",
                    id,
                    json!({"id": id, "name": "channel", "type": 0, "permissions": APP_PERMISSIONS, "flags": 0,
                           "last_message_id": null, "nsfw": false, "parent_id": null, "rate_limit_per_user": 0,
                           "topic": null, "position": 0, "guild_id": at.guild_id.map(|g| g.to_string())}),
                );
                json!(id)
            }
            other => option_value(other),
        };
        let mut option =
            json!({"name": input.name, "type": input.value.type_number(), "value": value});
        if input.focused
            && let Some(fields) = option.as_object_mut()
        {
            // While typing, Discord sends the raw text as a string, whatever the option type.
            fields.insert("focused".into(), json!(true));
            fields.insert("type".into(), json!(input.value.type_number()));
        }
        options.push(option);
    }
    Ok((options, resolved))
}

fn insert_resolved(resolved: &mut Map<String, Value>, kind: &str, id: &str, object: Value) {
    if let Some(map) = resolved
        .entry(kind.to_string())
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
    {
        map.insert(id.to_string(), object);
    }
}

/// Builds (and records) an APPLICATION_COMMAND or APPLICATION_COMMAND_AUTOCOMPLETE interaction.
pub fn command_interaction(
    world: &mut World,
    spec: &SlashCommand,
    autocomplete: bool,
    now: Instant,
) -> Result<(Value, InteractionRecord), InjectError> {
    let at = place(world, &spec.invoker)?;
    let command = world
        .commands
        .find(at.guild_id, &spec.name, 1)
        .cloned()
        .ok_or_else(|| InjectError::UnknownCommand(spec.name.clone()))?;
    let defined = defined_options(&command, spec)?;
    check_options(spec, &defined, autocomplete)?;
    let (mut options, resolved) = options_and_resolved(world, spec, &at)?;
    if let Some(sub) = &spec.subcommand {
        options = vec![json!({"name": sub, "type": 1, "options": options})];
    }
    if let Some(group) = &spec.subcommand_group {
        options = vec![json!({"name": group, "type": 2, "options": options})];
    }
    let mut data = Map::new();
    data.insert(
        "id".into(),
        command.get("id").cloned().unwrap_or(Value::Null),
    );
    data.insert("name".into(), json!(spec.name));
    if !options.is_empty() {
        data.insert("options".into(), Value::Array(options));
    }
    if !resolved.is_empty() {
        data.insert("resolved".into(), Value::Object(resolved));
    }
    data.insert("type".into(), json!(1));
    if let Some(guild) = command.get("guild_id") {
        data.insert("guild_id".into(), guild.clone());
    }
    let kind = if autocomplete {
        InteractionKind::Autocomplete
    } else {
        InteractionKind::ApplicationCommand
    };
    let id = world.ids.next();
    let token = new_token(id);
    let payload = envelope(world, kind, id, &token, &at, Value::Object(data));
    let record = new_record(world, kind, id, token, payload.clone(), &at, now);
    Ok((payload, record))
}

/// Builds (and records) a MESSAGE_COMPONENT interaction on one of the bot's messages.
pub fn component_interaction(
    world: &mut World,
    click: &ComponentClick,
    now: Instant,
) -> Result<(Value, InteractionRecord), InjectError> {
    let message_id = parse_id("message_id", &click.message_id)?;
    let message = world
        .messages
        .live(message_id)
        .map(|m| (m.current.clone(), m.channel_id))
        .ok_or_else(|| InjectError::UnknownMessage(click.message_id.clone()))?;
    let (message, channel_id) = message;
    let component = find_component(&message, &click.custom_id).ok_or_else(|| {
        InjectError::UnknownComponent {
            message: click.message_id.clone(),
            custom_id: click.custom_id.clone(),
            present: crate::messages::custom_ids(&message).join(", "),
        }
    })?;
    let mut invoker = click.invoker.clone();
    if invoker.channel_id.is_none() {
        invoker.channel_id = Some(channel_id.to_string());
    }
    let at = place(world, &invoker)?;
    let component_type = component.get("type").and_then(Value::as_u64).unwrap_or(2);
    let mut data = json!({"custom_id": click.custom_id, "component_type": component_type});
    if component_type != 2
        && let Some(fields) = data.as_object_mut()
    {
        fields.insert("values".into(), json!(click.values));
    }
    let id = world.ids.next();
    let token = new_token(id);
    let mut payload = envelope(
        world,
        InteractionKind::MessageComponent,
        id,
        &token,
        &at,
        data,
    );
    if let Some(fields) = payload.as_object_mut() {
        fields.insert("message".into(), message);
    }
    let mut record = new_record(
        world,
        InteractionKind::MessageComponent,
        id,
        token,
        payload.clone(),
        &at,
        now,
    );
    record.source_message_id = Some(message_id);
    Ok((payload, record))
}

fn find_component(message: &Value, custom_id: &str) -> Option<Value> {
    fn walk(items: &[Value], custom_id: &str) -> Option<Value> {
        for item in items {
            if item.get("custom_id").and_then(Value::as_str) == Some(custom_id) {
                return Some(item.clone());
            }
            for key in ["components", "accessory"] {
                match item.get(key) {
                    Some(Value::Array(children)) => {
                        if let Some(found) = walk(children, custom_id) {
                            return Some(found);
                        }
                    }
                    Some(child @ Value::Object(_)) => {
                        if let Some(found) = walk(std::slice::from_ref(child), custom_id) {
                            return Some(found);
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }
    walk(message.get("components")?.as_array()?, custom_id)
}
