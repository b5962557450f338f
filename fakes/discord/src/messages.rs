//! Messages the bot has created (interaction responses, followups, channel messages): each is
//! kept as the message object Discord answers with, with every version it went through (when,
//! and what it looked like), and built from request bodies the way Discord builds them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::form_errors::{FieldError, FormErrors};
use crate::request_body::UploadedFile;

/// Flags a message may be created with (SUPPRESS_EMBEDS, EPHEMERAL, SUPPRESS_NOTIFICATIONS,
/// IS_VOICE_MESSAGE, IS_COMPONENTS_V2); Discord ignores the others.
pub const SETTABLE_FLAGS: u64 = 4 | 64 | 4096 | 8192 | 32768;
/// EPHEMERAL (1 << 6).
pub const EPHEMERAL: u64 = 64;
/// LOADING (1 << 7): the "is thinking…" placeholder of a deferred response.
pub const LOADING: u64 = 128;

/// One state of a message, and when (ms since the fake started) it began.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct MessageVersion {
    pub at_ms: u64,
    pub message: Value,
}

/// A message and its history.
#[derive(Debug, Clone)]
pub struct MessageRecord {
    pub id: u64,
    pub channel_id: u64,
    pub interaction_id: Option<u64>,
    pub current: Value,
    pub history: Vec<MessageVersion>,
    pub deleted_at_ms: Option<u64>,
}

/// Every message, by id.
#[derive(Debug, Default)]
pub struct MessageStore {
    by_id: BTreeMap<u64, MessageRecord>,
}

impl MessageStore {
    pub fn insert(
        &mut self,
        id: u64,
        channel_id: u64,
        interaction_id: Option<u64>,
        message: Value,
        at_ms: u64,
    ) {
        self.by_id.insert(
            id,
            MessageRecord {
                id,
                channel_id,
                interaction_id,
                current: message.clone(),
                history: vec![MessageVersion { at_ms, message }],
                deleted_at_ms: None,
            },
        );
    }

    /// A message that exists (was not deleted).
    pub fn live(&self, id: u64) -> Option<&MessageRecord> {
        self.by_id.get(&id).filter(|m| m.deleted_at_ms.is_none())
    }

    /// Any message, deleted or not.
    pub fn any(&self, id: u64) -> Option<&MessageRecord> {
        self.by_id.get(&id)
    }

    /// Replaces a live message's content with `message`, keeping the old version in history.
    pub fn update(&mut self, id: u64, message: Value, at_ms: u64) -> Option<&MessageRecord> {
        let record = self
            .by_id
            .get_mut(&id)
            .filter(|m| m.deleted_at_ms.is_none())?;
        record.current = message.clone();
        record.history.push(MessageVersion { at_ms, message });
        Some(record)
    }

    pub fn delete(&mut self, id: u64, at_ms: u64) -> bool {
        match self
            .by_id
            .get_mut(&id)
            .filter(|m| m.deleted_at_ms.is_none())
        {
            Some(record) => {
                record.deleted_at_ms = Some(at_ms);
                true
            }
            None => false,
        }
    }

    /// Messages of a channel, oldest first (deleted ones included, marked).
    pub fn in_channel(&self, channel_id: u64) -> Vec<&MessageRecord> {
        self.by_id
            .values()
            .filter(|m| m.channel_id == channel_id)
            .collect()
    }
}

/// What a new message is, beyond its body.
#[derive(Debug, Clone)]
pub struct MessageFrame {
    pub id: u64,
    pub channel_id: u64,
    /// Message type: 0 DEFAULT, 20 CHAT_INPUT_COMMAND, 23 CONTEXT_MENU_COMMAND.
    pub kind: u64,
    pub author: Value,
    pub timestamp: String,
    /// Set for interaction messages: the application (as `application_id` and `webhook_id`)
    /// and the `interaction`/`interaction_metadata` objects.
    pub application_id: Option<u64>,
    pub interaction: Option<(Value, Value)>,
    /// Flags forced on (LOADING for deferred responses).
    pub extra_flags: u64,
}

/// The message object Discord answers with for a new message made from `body`.
pub fn create(frame: &MessageFrame, body: &Value, attachments: Vec<Value>) -> Value {
    let flags = body.get("flags").and_then(Value::as_u64).unwrap_or(0) & SETTABLE_FLAGS;
    let ephemeral = flags & EPHEMERAL != 0;
    let mut m = Map::new();
    m.insert("type".into(), json!(frame.kind));
    m.insert(
        "content".into(),
        json!(body.get("content").and_then(Value::as_str).unwrap_or("")),
    );
    m.insert("mentions".into(), json!([]));
    m.insert("mention_roles".into(), json!([]));
    m.insert(
        "attachments".into(),
        Value::Array(mark_ephemeral(attachments, ephemeral)),
    );
    m.insert("embeds".into(), embeds_of(body));
    m.insert("timestamp".into(), json!(frame.timestamp));
    m.insert("edited_timestamp".into(), Value::Null);
    m.insert("flags".into(), json!(flags | frame.extra_flags));
    m.insert("components".into(), components_of(body));
    m.insert("id".into(), json!(frame.id.to_string()));
    m.insert("channel_id".into(), json!(frame.channel_id.to_string()));
    m.insert("author".into(), frame.author.clone());
    m.insert("pinned".into(), json!(false));
    m.insert("mention_everyone".into(), json!(false));
    m.insert(
        "tts".into(),
        json!(body.get("tts").and_then(Value::as_bool).unwrap_or(false)),
    );
    if let Some(app) = frame.application_id {
        m.insert("application_id".into(), json!(app.to_string()));
        m.insert("webhook_id".into(), json!(app.to_string()));
    }
    if let Some((interaction, metadata)) = &frame.interaction {
        m.insert("interaction".into(), interaction.clone());
        m.insert("interaction_metadata".into(), metadata.clone());
    }
    if let Some(poll) = body.get("poll").filter(|p| p.is_object()) {
        m.insert("poll".into(), without_nulls(poll));
    }
    Value::Object(m)
}

/// The message object after an edit with `body` (PATCH semantics: fields present replace,
/// `attachments` (when given) is the full list to keep plus the new files).
pub fn edit(
    current: &Value,
    body: &Value,
    attachments: Option<Vec<Value>>,
    timestamp: &str,
) -> Value {
    let mut m = current.as_object().cloned().unwrap_or_default();
    let old_flags = m.get("flags").and_then(Value::as_u64).unwrap_or(0);
    let ephemeral = old_flags & EPHEMERAL != 0;
    if let Some(content) = body.get("content") {
        m.insert("content".into(), json!(content.as_str().unwrap_or("")));
    }
    if body.get("embeds").is_some() {
        m.insert("embeds".into(), embeds_of(body));
    }
    if body.get("components").is_some() {
        m.insert("components".into(), components_of(body));
    }
    if let Some(flags) = body.get("flags").and_then(Value::as_u64) {
        // Only SUPPRESS_EMBEDS and IS_COMPONENTS_V2 can change on an existing message.
        let changeable = 4 | 32768;
        m.insert(
            "flags".into(),
            json!((old_flags & !changeable) | (flags & changeable)),
        );
    }
    if let Some(attachments) = attachments {
        m.insert(
            "attachments".into(),
            Value::Array(mark_ephemeral(attachments, ephemeral)),
        );
    }
    // The first edit of a deferred response ends its loading state.
    let flags = m.get("flags").and_then(Value::as_u64).unwrap_or(0) & !LOADING;
    m.insert("flags".into(), json!(flags));
    m.insert("edited_timestamp".into(), json!(timestamp));
    Value::Object(m)
}

fn mark_ephemeral(attachments: Vec<Value>, ephemeral: bool) -> Vec<Value> {
    if !ephemeral {
        return attachments;
    }
    attachments
        .into_iter()
        .map(|mut a| {
            if let Some(fields) = a.as_object_mut() {
                fields.insert("ephemeral".into(), json!(true));
            }
            a
        })
        .collect()
}

/// The attachment list of a message after a create (`existing` empty) or an edit, from the
/// body's `attachments` and the uploaded files: entries naming an existing attachment keep it,
/// entries naming a placeholder `n` take `files[n]`, files no entry names are added too.
/// `None` when the body says nothing about attachments (an edit then keeps them).
pub fn resolve_attachments(
    body: &Value,
    files: &[UploadedFile],
    existing: &[Value],
    mut upload: impl FnMut(&UploadedFile, Option<&Value>) -> Value,
) -> Result<Option<Vec<Value>>, FormErrors> {
    let entries = body.get("attachments").and_then(Value::as_array);
    if entries.is_none() && files.is_empty() {
        return Ok(None);
    }
    let mut errors = FormErrors::default();
    let mut result = Vec::new();
    let mut used = vec![false; files.len()];
    match entries {
        Some(entries) => {
            for (i, entry) in entries.iter().enumerate() {
                let id = entry.get("id").and_then(id_number);
                let kept = existing.iter().find(|a| {
                    a.get("id").and_then(id_number).is_some()
                        && a.get("id").and_then(id_number) == id
                });
                if let Some(kept) = kept {
                    result.push(updated_existing(kept, entry));
                    continue;
                }
                let file = id.and_then(|n| {
                    files
                        .iter()
                        .position(|f| f.index == Some(n))
                        .filter(|&p| !used[p])
                });
                match file {
                    Some(p) => {
                        used[p] = true;
                        result.push(upload(&files[p], Some(entry)));
                    }
                    None => errors.push(
                        &["attachments".into(), i.to_string(), "id".into()],
                        FieldError::new(
                            "ATTACHMENT_NOT_FOUND",
                            "Unknown attachment: no existing attachment or files[n] part has this id.",
                        ),
                    ),
                }
            }
        }
        None => result.extend(existing.iter().cloned()),
    }
    for (p, file) in files.iter().enumerate() {
        if !used[p] {
            result.push(upload(file, None));
        }
    }
    if errors.is_empty() {
        Ok(Some(result))
    } else {
        Err(errors)
    }
}

fn updated_existing(kept: &Value, entry: &Value) -> Value {
    let mut kept = kept.clone();
    if let (Some(fields), Some(description)) = (
        kept.as_object_mut(),
        entry.get("description").and_then(Value::as_str),
    ) {
        fields.insert("description".into(), json!(description));
    }
    kept
}

/// A snowflake or placeholder given as a JSON integer or a string of digits.
pub fn id_number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn embeds_of(body: &Value) -> Value {
    let embeds = body
        .get("embeds")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Value::Array(
        embeds
            .iter()
            .map(|e| {
                let mut e = without_nulls(e);
                if let Some(fields) = e.as_object_mut() {
                    fields.entry("type").or_insert(json!("rich"));
                }
                e
            })
            .collect(),
    )
}

/// Components as Discord answers them: nulls dropped and every component numbered (`id`),
/// depth first from 1, unless the bot numbered it.
fn components_of(body: &Value) -> Value {
    let components = body
        .get("components")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut next = 1;
    let taken = collect_ids(&components);
    Value::Array(
        components
            .iter()
            .map(|c| number(c, &mut next, &taken))
            .collect(),
    )
}

fn collect_ids(items: &[Value]) -> Vec<u64> {
    let mut ids = Vec::new();
    for item in items {
        if let Some(id) = item.get("id").and_then(Value::as_u64) {
            ids.push(id);
        }
        if let Some(children) = item.get("components").and_then(Value::as_array) {
            ids.extend(collect_ids(children));
        }
    }
    ids
}

fn number(component: &Value, next: &mut u64, taken: &[u64]) -> Value {
    let mut c = without_nulls(component);
    if let Some(fields) = c.as_object_mut() {
        if !fields.contains_key("id") {
            while taken.contains(next) {
                *next += 1;
            }
            fields.insert("id".into(), json!(*next));
            *next += 1;
        }
        if let Some(Value::Array(children)) = fields.get("components").cloned() {
            fields.insert(
                "components".into(),
                Value::Array(children.iter().map(|ch| number(ch, next, taken)).collect()),
            );
        }
    }
    c
}

/// The `custom_id`s of every component of a message object, depth first.
pub fn custom_ids(message: &Value) -> Vec<String> {
    fn walk(items: &[Value], out: &mut Vec<String>) {
        for item in items {
            if let Some(id) = item.get("custom_id").and_then(Value::as_str) {
                out.push(id.to_string());
            }
            if let Some(children) = item.get("components").and_then(Value::as_array) {
                walk(children, out);
            }
            if let Some(accessory) = item.get("accessory").filter(|a| a.is_object()) {
                walk(std::slice::from_ref(accessory), out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(items) = message.get("components").and_then(Value::as_array) {
        walk(items, &mut out);
    }
    out
}

/// A copy of `value` without object fields that are null.
pub fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame() -> MessageFrame {
        MessageFrame {
            id: 10,
            channel_id: 20,
            kind: 20,
            author: json!({"id": "1", "username": "bot"}),
            timestamp: "2024-01-01T00:00:00.000000+00:00".into(),
            application_id: Some(1),
            interaction: None,
            extra_flags: LOADING,
        }
    }

    fn file(index: u64, name: &str) -> UploadedFile {
        UploadedFile {
            field: format!("files[{index}]"),
            index: Some(index),
            filename: name.into(),
            content_type: None,
            data: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn components_get_ids_and_lose_nulls() {
        let message = create(
            &frame(),
            &json!({"content": "hi", "components": [{"type": 1, "components": [
                {"type": 2, "style": 1, "custom_id": "go", "label": "Go", "emoji": null}]}]}),
            Vec::new(),
        );
        assert_eq!(
            message["components"],
            json!([{"type": 1, "id": 1, "components": [{"type": 2, "style": 1, "custom_id": "go", "label": "Go", "id": 2}]}])
        );
        assert_eq!(message["flags"], LOADING);
        assert_eq!(message["webhook_id"], "1");
    }

    #[test]
    fn an_edit_replaces_given_fields_and_ends_loading() {
        let first = create(&frame(), &json!({"content": "", "flags": 64}), Vec::new());
        let second = edit(&first, &json!({"content": "done"}), None, "later");
        assert_eq!(second["content"], "done");
        assert_eq!(second["flags"], 64);
        assert_eq!(second["edited_timestamp"], "later");
        assert_eq!(second["components"], json!([]));
    }

    #[test]
    fn attachments_resolve_placeholders_keep_listed_ones_and_add_unlisted_files() {
        let existing = vec![
            json!({"id": "500", "filename": "old.png"}),
            json!({"id": "501", "filename": "gone.png"}),
        ];
        let files = vec![file(0, "new.png"), file(1, "extra.png")];
        let resolved = resolve_attachments(
            &json!({"attachments": [{"id": "500"}, {"id": 0, "description": "d"}]}),
            &files,
            &existing,
            |f, entry| json!({"filename": f.filename, "described": entry.and_then(|e| e.get("description")).cloned()}),
        )
        .expect("all ids known")
        .expect("attachments given");
        assert_eq!(
            resolved,
            vec![
                json!({"id": "500", "filename": "old.png"}),
                json!({"filename": "new.png", "described": "d"}),
                json!({"filename": "extra.png", "described": null}),
            ]
        );
        let refused = resolve_attachments(
            &json!({"attachments": [{"id": 7}]}),
            &[],
            &existing,
            |_, _| json!({}),
        )
        .expect_err("7 names nothing");
        assert_eq!(
            refused.flat(),
            vec![(
                "attachments.0.id".to_string(),
                "ATTACHMENT_NOT_FOUND".to_string()
            )]
        );
        assert_eq!(
            resolve_attachments(&json!({"content": "x"}), &[], &existing, |_, _| json!({})),
            Ok(None)
        );
    }
}
