//! Creating and editing messages in the world from validated request bodies, shared by the
//! interaction callback, the interaction webhook routes and the channel routes: uploaded files
//! go to the CDN and become attachment objects, and every write is kept as a message version.

use std::time::Instant;

use serde_json::{Value, json};

use crate::discord_error::DiscordError;
use crate::identity;
use crate::interactions::InteractionRecord;
use crate::messages::{self, MessageFrame};
use crate::request_body::UploadedFile;
use crate::timestamp::now_iso;
use crate::world::World;

/// The attachment list after this write (see `messages::resolve_attachments`), files stored.
fn attachments(
    world: &mut World,
    channel_id: u64,
    body: &Value,
    files: &[UploadedFile],
    existing: &[Value],
) -> Result<Option<Vec<Value>>, DiscordError> {
    let base_url = world.base_url.clone();
    let ids = &world.ids;
    let cdn = &mut world.cdn;
    messages::resolve_attachments(body, files, existing, |file, entry| {
        let filename = entry
            .and_then(|e| e.get("filename"))
            .and_then(Value::as_str)
            .unwrap_or(&file.filename)
            .to_string();
        let mut object = cdn.store(
            &base_url,
            channel_id,
            ids.next(),
            &filename,
            file.content_type.as_deref(),
            file.data.clone(),
        );
        if let (Some(fields), Some(description)) = (
            object.as_object_mut(),
            entry
                .and_then(|e| e.get("description"))
                .and_then(Value::as_str),
        ) {
            fields.insert("description".into(), json!(description));
        }
        object
    })
    .map_err(|errors| DiscordError::invalid_form_body(&errors))
}

/// The frame of a message an interaction makes (author: the bot; `webhook_id` and
/// `application_id`: the application; `interaction` and `interaction_metadata`).
pub fn interaction_frame(
    world: &World,
    record: &InteractionRecord,
    extra_flags: u64,
) -> MessageFrame {
    let user = record
        .payload
        .get("member")
        .and_then(|m| m.get("user"))
        .or_else(|| record.payload.get("user"))
        .cloned()
        .unwrap_or(Value::Null);
    let interaction_type = record.lifecycle.kind().type_number();
    let name = record
        .payload
        .get("data")
        .and_then(|d| d.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let owners = record
        .payload
        .get("authorizing_integration_owners")
        .cloned()
        .unwrap_or(json!({}));
    let interaction =
        json!({"id": record.id.to_string(), "type": interaction_type, "name": name, "user": user});
    let mut metadata = json!({
        "id": record.id.to_string(),
        "type": interaction_type,
        "user": user,
        "authorizing_integration_owners": owners
    });
    if let (Some(source), Some(fields)) = (record.source_message_id, metadata.as_object_mut()) {
        fields.insert("interacted_message_id".into(), json!(source.to_string()));
    }
    MessageFrame {
        id: world.ids.next(),
        channel_id: record.channel_id,
        kind: if interaction_type == 2 { 20 } else { 0 },
        author: identity::bot_user(&world.config),
        timestamp: now_iso(),
        application_id: Some(world.config.application_id),
        interaction: Some((interaction, metadata)),
        extra_flags,
    }
}

/// The frame of a message the bot posts in a channel.
pub fn channel_frame(world: &World, channel_id: u64) -> MessageFrame {
    MessageFrame {
        id: world.ids.next(),
        channel_id,
        kind: 0,
        author: identity::bot_user(&world.config),
        timestamp: now_iso(),
        application_id: None,
        interaction: None,
        extra_flags: 0,
    }
}

/// Creates and stores a message; returns its object.
pub fn create(
    world: &mut World,
    frame: MessageFrame,
    interaction_id: Option<u64>,
    body: &Value,
    files: &[UploadedFile],
    now: Instant,
) -> Result<Value, DiscordError> {
    let attachments = attachments(world, frame.channel_id, body, files, &[])?.unwrap_or_default();
    let message = messages::create(&frame, body, attachments);
    let at = world.ms(now);
    world.messages.insert(
        frame.id,
        frame.channel_id,
        interaction_id,
        message.clone(),
        at,
    );
    Ok(message)
}

/// Edits a live message; returns its new object (10008 when it does not exist).
pub fn edit(
    world: &mut World,
    message_id: u64,
    body: &Value,
    files: &[UploadedFile],
    now: Instant,
) -> Result<Value, DiscordError> {
    let (current, channel_id) = world
        .messages
        .live(message_id)
        .map(|m| (m.current.clone(), m.channel_id))
        .ok_or_else(DiscordError::unknown_message)?;
    let existing = current
        .get("attachments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let attachments = attachments(world, channel_id, body, files, &existing)?;
    let edited = messages::edit(&current, body, attachments, &now_iso());
    let at = world.ms(now);
    world.messages.update(message_id, edited.clone(), at);
    Ok(edited)
}
