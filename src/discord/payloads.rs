//! The bot's plain messages, answers and command specs as Discord's JSON (API v10): message
//! bodies (content, one embed, buttons in action rows, attachments), interaction callbacks and
//! application commands.

use comfy_fleet_actors::discord::commands::{CommandSpec, OptionSpec};
use comfy_fleet_actors::discord::job_commands::OptionKind;
use comfy_fleet_actors::discord::message::{
    Ack, Button, ButtonStyle, ChatFile, ChatMessage, Embed, Files,
};
use serde_json::{Map, Value, json};

use super::rest::Body;

/// Message flag: only the user who acted sees it.
const EPHEMERAL: u64 = 1 << 6;
/// Buttons per action row.
const ROW: usize = 5;

/// Whether a body creates a message or edits one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A new message; `ephemeral` is honoured (interaction responses and followups only).
    Create {
        interaction: bool,
    },
    Edit,
}

/// A message as a request body: JSON, or multipart when it carries new files.
pub fn message_body(message: &ChatMessage, write: Write) -> Body {
    let (payload, files) = message_json(message, write);
    with_files(payload, files)
}

fn with_files(payload: Value, files: Vec<ChatFile>) -> Body {
    if files.is_empty() {
        Body::Json(payload)
    } else {
        Body::Multipart { payload, files }
    }
}

/// The message's JSON and the files to upload with it.
pub fn message_json(message: &ChatMessage, write: Write) -> (Value, Vec<ChatFile>) {
    let mut body = Map::new();
    body.insert("content".into(), Value::String(message.content.clone()));
    match (&message.embed, write) {
        (Some(embed), _) => {
            body.insert("embeds".into(), json!([embed_json(embed)]));
        }
        (None, Write::Edit) => {
            body.insert("embeds".into(), json!([]));
        }
        (None, Write::Create { .. }) => {}
    }
    if !message.buttons.is_empty() || write == Write::Edit {
        body.insert("components".into(), components(&message.buttons));
    }
    if let Write::Create { interaction: true } = write
        && message.ephemeral
    {
        body.insert("flags".into(), json!(EPHEMERAL));
    }
    // Mentions show the name without pinging anyone.
    body.insert("allowed_mentions".into(), json!({"parse": []}));
    let files = match &message.files {
        Files::Keep => Vec::new(),
        Files::Replace(files) => {
            let listed: Vec<Value> = files
                .iter()
                .enumerate()
                .map(|(i, f)| json!({"id": i, "filename": f.name}))
                .collect();
            body.insert("attachments".into(), Value::Array(listed));
            files.clone()
        }
    };
    (Value::Object(body), files)
}

fn embed_json(embed: &Embed) -> Value {
    let mut out = Map::new();
    if !embed.title.is_empty() {
        out.insert("title".into(), json!(embed.title));
    }
    if !embed.description.is_empty() {
        out.insert("description".into(), json!(embed.description));
    }
    if !embed.fields.is_empty() {
        let fields: Vec<Value> = embed
            .fields
            .iter()
            .take(comfy_fleet_actors::discord::message::MAX_FIELDS)
            .map(|f| json!({"name": f.name, "value": f.value, "inline": f.inline}))
            .collect();
        out.insert("fields".into(), Value::Array(fields));
    }
    if let Some(image) = &embed.image {
        out.insert(
            "image".into(),
            json!({"url": format!("attachment://{image}")}),
        );
    }
    Value::Object(out)
}

fn components(buttons: &[Button]) -> Value {
    let rows: Vec<Value> = buttons
        .chunks(ROW)
        .take(ROW)
        .map(|row| {
            let row: Vec<Value> = row
                .iter()
                .map(|b| {
                    json!({
                        "type": 2,
                        "style": style(b.style),
                        "label": b.label,
                        "custom_id": b.custom_id,
                        "disabled": b.disabled,
                    })
                })
                .collect();
            json!({"type": 1, "components": row})
        })
        .collect();
    Value::Array(rows)
}

fn style(style: ButtonStyle) -> u8 {
    match style {
        ButtonStyle::Primary => 1,
        ButtonStyle::Secondary => 2,
        ButtonStyle::Success => 3,
        ButtonStyle::Danger => 4,
    }
}

/// An interaction callback.
pub fn ack_body(ack: &Ack) -> Body {
    match ack {
        Ack::Defer { ephemeral: true } => {
            Body::Json(json!({"type": 5, "data": {"flags": EPHEMERAL}}))
        }
        Ack::Defer { ephemeral: false } => Body::Json(json!({"type": 5})),
        Ack::DeferUpdate => Body::Json(json!({"type": 6})),
        Ack::Reply(message) => {
            let (data, files) = message_json(message, Write::Create { interaction: true });
            with_files(json!({"type": 4, "data": data}), files)
        }
        Ack::Update(message) => {
            let (data, files) = message_json(message, Write::Edit);
            with_files(json!({"type": 7, "data": data}), files)
        }
        Ack::Choices(choices) => {
            let choices: Vec<Value> = choices
                .iter()
                .map(|c| json!({"name": c.name, "value": c.value}))
                .collect();
            Body::Json(json!({"type": 8, "data": {"choices": choices}}))
        }
    }
}

/// An application command (a slash command).
pub fn command_json(spec: &CommandSpec) -> Value {
    let mut out = json!({
        "name": spec.name,
        "description": spec.description,
        "type": 1,
    });
    let options: Vec<Value> = if spec.subcommands.is_empty() {
        spec.options.iter().map(option_json).collect()
    } else {
        spec.subcommands
            .iter()
            .map(|sub| {
                json!({
                    "type": 1,
                    "name": sub.name,
                    "description": sub.description,
                    "options": sub.options.iter().map(option_json).collect::<Vec<_>>(),
                })
            })
            .collect()
    };
    if !options.is_empty() {
        out["options"] = Value::Array(options);
    }
    out
}

fn option_json(option: &OptionSpec) -> Value {
    let kind = match option.kind {
        OptionKind::Text => 3,
        OptionKind::Integer => 4,
        OptionKind::Boolean => 5,
        OptionKind::Number => 10,
        OptionKind::Attachment => 11,
    };
    let mut out = json!({
        "type": kind,
        "name": option.name,
        "description": option.description,
        "required": option.required,
    });
    let bound = |x: f64| {
        if option.kind == OptionKind::Integer {
            json!(x as i64)
        } else {
            json!(x)
        }
    };
    if matches!(option.kind, OptionKind::Integer | OptionKind::Number) {
        if let Some(min) = option.min {
            out["min_value"] = bound(min);
        }
        if let Some(max) = option.max {
            out["max_value"] = bound(max);
        }
    }
    if let Some(max) = option.max_length {
        out["max_length"] = json!(max);
    }
    if option.autocomplete {
        out["autocomplete"] = json!(true);
    }
    if !option.choices.is_empty() {
        out["choices"] = option
            .choices
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use comfy_fleet_actors::discord::message::{Choice, EmbedField};

    use super::*;

    fn buttons(n: usize) -> Vec<Button> {
        (0..n)
            .map(|i| {
                Button::new(
                    &format!("b{i}"),
                    format!("cf1:loras:{i}"),
                    ButtonStyle::Secondary,
                )
            })
            .collect()
    }

    #[test]
    fn an_edit_replaces_text_embed_and_buttons_and_keeps_files_unless_told() {
        let message = ChatMessage::text("hello");
        let (json, files) = message_json(&message, Write::Edit);
        assert_eq!(json["embeds"], json!([]));
        assert_eq!(json["components"], json!([]));
        assert!(json.get("attachments").is_none(), "the files stay");
        assert!(files.is_empty());
        let cleared = ChatMessage::text("x").with_files(Vec::new());
        assert_eq!(
            message_json(&cleared, Write::Edit).0["attachments"],
            json!([])
        );
    }

    #[test]
    fn new_files_are_listed_and_uploaded_as_parts() {
        let message = ChatMessage::text("done")
            .with_embed(Embed {
                title: "/generate".into(),
                fields: vec![EmbedField::new("prompt", "a cat", false)],
                ..Embed::default()
            })
            .with_buttons(buttons(7))
            .with_files(vec![
                ChatFile::new("a.png", vec![1u8]),
                ChatFile::new("b.png", vec![2u8]),
            ]);
        let Body::Multipart { payload, files } = message_body(&message, Write::Edit) else {
            panic!("files go as multipart");
        };
        assert_eq!(files.len(), 2);
        assert_eq!(
            payload["attachments"],
            json!([{"id": 0, "filename": "a.png"}, {"id": 1, "filename": "b.png"}])
        );
        assert_eq!(payload["embeds"][0]["fields"][0]["name"], "prompt");
        let rows = payload["components"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "5 buttons a row");
        assert_eq!(rows[1]["components"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn callbacks_have_discords_types_and_ephemeral_flags() {
        let Body::Json(defer) = ack_body(&Ack::Defer { ephemeral: true }) else {
            panic!()
        };
        assert_eq!(defer, json!({"type": 5, "data": {"flags": 64}}));
        let Body::Json(reply) = ack_body(&Ack::Reply(ChatMessage::private("no"))) else {
            panic!()
        };
        assert_eq!(
            (reply["type"].clone(), reply["data"]["flags"].clone()),
            (json!(4), json!(64))
        );
        let Body::Json(update) = ack_body(&Ack::Update(ChatMessage::private("page"))) else {
            panic!()
        };
        assert!(
            update["data"].get("flags").is_none(),
            "an update cannot change who sees it"
        );
        let Body::Json(choices) = ack_body(&Ack::Choices(vec![Choice {
            name: "a".into(),
            value: "a".into(),
        }])) else {
            panic!()
        };
        assert_eq!(
            choices,
            json!({"type": 8, "data": {"choices": [{"name": "a", "value": "a"}]}})
        );
    }

    #[test]
    fn commands_carry_integer_bounds_as_integers_and_subcommands_as_options() {
        let spec = CommandSpec {
            name: "generate".into(),
            description: "Make".into(),
            options: vec![OptionSpec {
                name: "steps".into(),
                description: "Steps".into(),
                kind: OptionKind::Integer,
                min: Some(1.0),
                max: Some(60.0),
                ..OptionSpec::default()
            }],
            subcommands: Vec::new(),
        };
        let json = command_json(&spec);
        assert_eq!(json["options"][0]["min_value"], json!(1));
        assert_eq!(json["options"][0]["type"], 4);
        let fleet = CommandSpec {
            name: "fleet".into(),
            description: "Ops".into(),
            options: Vec::new(),
            subcommands: vec![CommandSpec {
                name: "pause".into(),
                description: "Pause".into(),
                ..CommandSpec::default()
            }],
        };
        assert_eq!(command_json(&fleet)["options"][0]["type"], 1);
    }
}
