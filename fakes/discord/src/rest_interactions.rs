//! `POST /interactions/{interaction_id}/{interaction_token}/callback`: the initial response to an
//! interaction (receiving-and-responding: "Interaction Callback"). One per interaction, within
//! the acknowledgement window; types 4 (message), 5 (deferred message), 6 (deferred update),
//! 7 (update the component's message), 8 (autocomplete choices) and 9 (modal). Answers 204, or
//! 200 with the interaction callback response when `with_response=true`.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::discord_error::DiscordError;
use crate::form_errors::{FieldError, FormErrors};
use crate::interaction_lifecycle::CallbackRefusal;
use crate::message_rules;
use crate::message_writes;
use crate::messages::{EPHEMERAL, LOADING};
use crate::rest_exchange::{Reply, RestCall, handle, path_id};
use crate::world::World;

pub const CALLBACK: &str = "/interactions/{interaction_id}/{interaction_token}/callback";

pub async fn callback(
    shared: web::Data<Arc<crate::world::Shared>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (id, token) = path.into_inner();
    handle(
        &shared,
        &req,
        raw,
        "POST",
        CALLBACK,
        format!("interaction:{id}"),
        |w, call| respond(w, call, &id, &token),
    )
    .await
}

fn respond(
    world: &mut World,
    call: &RestCall,
    id: &str,
    token: &str,
) -> Result<Reply, DiscordError> {
    let id = path_id(id).map_err(|_| DiscordError::unknown_interaction())?;
    let record = world
        .interactions
        .get(id)
        .filter(|r| r.token == token)
        .cloned()
        .ok_or_else(DiscordError::unknown_interaction)?;
    // Discord first looks at the interaction's state, then at the body.
    let mut lifecycle = record.lifecycle.clone();
    let callback_type = call
        .body
        .json
        .as_ref()
        .and_then(|b| b.get("type"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    match lifecycle.acknowledge(u8::try_from(callback_type).unwrap_or(0), call.now) {
        Err(CallbackRefusal::AlreadyAcknowledged) => {
            return Err(DiscordError::already_acknowledged());
        }
        Err(CallbackRefusal::UnknownInteraction) => return Err(DiscordError::unknown_interaction()),
        Err(CallbackRefusal::TypeNotAllowed) | Ok(()) => {}
    }
    let body = call.validated(|body| {
        let mut errors = body
            .get("data")
            .map(message_rules::check_components)
            .unwrap_or_default();
        if !record
            .lifecycle
            .kind()
            .accepts_callback(u8::try_from(callback_type).unwrap_or(0))
        {
            errors.push(
                &["type".into()],
                FieldError::new(
                    "INTERACTION_CALLBACK_TYPE_INVALID",
                    "This interaction callback type is not valid for this interaction type.",
                ),
            );
        }
        errors
    })?;
    message_rules::check_upload_sizes(&call.body.files, record.attachment_size_limit)?;
    let data = body
        .get("data")
        .filter(|d| d.is_object())
        .cloned()
        .unwrap_or(json!({}));
    let mut updated = record.clone();
    updated.lifecycle = lifecycle;
    let message = match callback_type {
        4 => {
            message_rules::check_not_empty(&data, &call.body.files)?;
            let frame = message_writes::interaction_frame(world, &record, 0);
            let id = frame.id;
            let message = message_writes::create(
                world,
                frame,
                Some(record.id),
                &data,
                &call.body.files,
                call.now,
            )?;
            updated.original_message_id = Some(id);
            Some(message)
        }
        5 => {
            let ephemeral = data.get("flags").and_then(Value::as_u64).unwrap_or(0) & EPHEMERAL;
            let frame = message_writes::interaction_frame(world, &record, LOADING);
            let id = frame.id;
            let placeholder = json!({"flags": ephemeral});
            let message =
                message_writes::create(world, frame, Some(record.id), &placeholder, &[], call.now)?;
            updated.original_message_id = Some(id);
            updated.awaiting_deferred_edit = true;
            Some(message)
        }
        6 => {
            updated.original_message_id = record.source_message_id;
            None
        }
        7 => {
            let source = record
                .source_message_id
                .ok_or_else(DiscordError::unknown_message)?;
            let message = message_writes::edit(world, source, &data, &call.body.files, call.now)?;
            updated.original_message_id = Some(source);
            Some(message)
        }
        8 => {
            updated.autocomplete_choices = Some(data.get("choices").cloned().unwrap_or(json!([])));
            None
        }
        9 => {
            updated.modal = Some(data.clone());
            None
        }
        _ => {
            let mut errors = FormErrors::default();
            errors.push(
                &["type".into()],
                FieldError::choices(&[json!(4), json!(5), json!(6), json!(7), json!(8), json!(9)]),
            );
            return Err(DiscordError::invalid_form_body(&errors));
        }
    };
    if let Some(stored) = world.interactions.get_mut(record.id) {
        *stored = updated;
    }
    if !call.query_flag("with_response") {
        return Ok(Reply::NoContent);
    }
    let mut interaction =
        json!({"id": record.id.to_string(), "type": record.lifecycle.kind().type_number()});
    if let (Some(message), Some(fields)) = (&message, interaction.as_object_mut()) {
        let flags = message.get("flags").and_then(Value::as_u64).unwrap_or(0);
        fields.insert("response_message_id".into(), message["id"].clone());
        fields.insert(
            "response_message_loading".into(),
            json!(flags & LOADING != 0),
        );
        fields.insert(
            "response_message_ephemeral".into(),
            json!(flags & EPHEMERAL != 0),
        );
    }
    let mut answer = json!({"interaction": interaction});
    // The resource (with its message) only for CHANNEL_MESSAGE_WITH_SOURCE and UPDATE_MESSAGE.
    let message = message.filter(|_| matches!(callback_type, 4 | 7));
    if let (Some(message), Some(fields)) = (message, answer.as_object_mut()) {
        fields.insert(
            "resource".into(),
            json!({"type": callback_type, "message": message}),
        );
    }
    Ok(Reply::ok(answer))
}
