//! The interaction webhook routes (`/webhooks/{application_id}/{interaction_token}…`): get, edit
//! and delete the original response, create followups, and get, edit and delete them. The token
//! opens them for 15 minutes after an acknowledged interaction (401, code 50027 after that).
//! A followup sent while a deferred response still shows its loading state edits that response
//! instead, as the documentation describes.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::Value;

use crate::discord_error::DiscordError;
use crate::interactions::InteractionRecord;
use crate::message_rules;
use crate::message_writes;
use crate::rest_exchange::{Reply, RestCall, handle, path_id};
use crate::world::{Shared, World};

pub const EXECUTE: &str = "/webhooks/{webhook_id}/{webhook_token}";
pub const ORIGINAL: &str = "/webhooks/{webhook_id}/{webhook_token}/messages/@original";
pub const MESSAGE: &str = "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}";

/// The interaction behind `webhook_id` + `token`, if the token is still valid.
fn interaction(
    world: &World,
    call: &RestCall,
    webhook: &str,
    token: &str,
) -> Result<InteractionRecord, DiscordError> {
    if path_id(webhook).map_err(|_| DiscordError::unknown_webhook())? != world.config.application_id
    {
        return Err(DiscordError::unknown_webhook());
    }
    world
        .interactions
        .by_valid_token(token, call.now)
        .cloned()
        .ok_or_else(DiscordError::invalid_webhook_token)
}

/// The message `@original` or `{message_id}` names for this interaction.
fn target(record: &InteractionRecord, message: Option<&str>) -> Result<u64, DiscordError> {
    match message {
        None => record
            .original_message_id
            .ok_or_else(DiscordError::unknown_message),
        Some(raw) => {
            let id = path_id(raw).map_err(|_| DiscordError::unknown_message())?;
            if record.original_message_id == Some(id) || record.followup_ids.contains(&id) {
                Ok(id)
            } else {
                Err(DiscordError::unknown_message())
            }
        }
    }
}

fn body_checks(call: &RestCall, record: &InteractionRecord) -> Result<Value, DiscordError> {
    let body = call.validated(message_rules::check_components)?;
    message_rules::check_upload_sizes(&call.body.files, record.attachment_size_limit)?;
    Ok(body)
}

fn get_message(
    world: &mut World,
    call: &RestCall,
    webhook: &str,
    token: &str,
    message: Option<&str>,
) -> Result<Reply, DiscordError> {
    let record = interaction(world, call, webhook, token)?;
    let id = target(&record, message)?;
    world
        .messages
        .live(id)
        .map(|m| Reply::ok(m.current.clone()))
        .ok_or_else(DiscordError::unknown_message)
}

fn edit_message(
    world: &mut World,
    call: &RestCall,
    webhook: &str,
    token: &str,
    message: Option<&str>,
) -> Result<Reply, DiscordError> {
    let record = interaction(world, call, webhook, token)?;
    let id = target(&record, message)?;
    let body = body_checks(call, &record)?;
    let edited = message_writes::edit(world, id, &body, &call.body.files, call.now)?;
    if record.original_message_id == Some(id)
        && let Some(stored) = world.interactions.get_mut(record.id)
    {
        stored.awaiting_deferred_edit = false;
    }
    Ok(Reply::ok(edited))
}

fn delete_message(
    world: &mut World,
    call: &RestCall,
    webhook: &str,
    token: &str,
    message: Option<&str>,
) -> Result<Reply, DiscordError> {
    let record = interaction(world, call, webhook, token)?;
    let id = target(&record, message)?;
    let at = world.ms(call.now);
    if world.messages.delete(id, at) {
        Ok(Reply::NoContent)
    } else {
        Err(DiscordError::unknown_message())
    }
}

fn followup(
    world: &mut World,
    call: &RestCall,
    webhook: &str,
    token: &str,
) -> Result<Reply, DiscordError> {
    let record = interaction(world, call, webhook, token)?;
    if record.lifecycle.acknowledgement().is_none() {
        // The interaction's webhook exists only once the interaction was answered.
        return Err(DiscordError::unknown_webhook());
    }
    let body = body_checks(call, &record)?;
    message_rules::check_not_empty(&body, &call.body.files)?;
    if record.awaiting_deferred_edit
        && let Some(original) = record.original_message_id
    {
        let edited = message_writes::edit(world, original, &body, &call.body.files, call.now)?;
        if let Some(stored) = world.interactions.get_mut(record.id) {
            stored.awaiting_deferred_edit = false;
        }
        return Ok(Reply::ok(edited));
    }
    let frame = message_writes::interaction_frame(world, &record, 0);
    let id = frame.id;
    let message = message_writes::create(
        world,
        frame,
        Some(record.id),
        &body,
        &call.body.files,
        call.now,
    )?;
    if let Some(stored) = world.interactions.get_mut(record.id) {
        stored.followup_ids.push(id);
    }
    Ok(Reply::ok(message))
}

type SharedData = web::Data<Arc<Shared>>;

pub async fn get_original(
    shared: SharedData,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (webhook, token) = path.into_inner();
    let resource = format!("webhook:{webhook}:{token}");
    handle(&shared, &req, raw, "GET", ORIGINAL, resource, |w, call| {
        get_message(w, call, &webhook, &token, None)
    })
    .await
}

pub async fn patch_original(
    shared: SharedData,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (webhook, token) = path.into_inner();
    let resource = format!("webhook:{webhook}:{token}");
    handle(
        &shared,
        &req,
        raw,
        "PATCH",
        ORIGINAL,
        resource,
        |w, call| edit_message(w, call, &webhook, &token, None),
    )
    .await
}

pub async fn delete_original(
    shared: SharedData,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (webhook, token) = path.into_inner();
    let resource = format!("webhook:{webhook}:{token}");
    handle(
        &shared,
        &req,
        raw,
        "DELETE",
        ORIGINAL,
        resource,
        |w, call| delete_message(w, call, &webhook, &token, None),
    )
    .await
}

pub async fn post_followup(
    shared: SharedData,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (webhook, token) = path.into_inner();
    let resource = format!("webhook:{webhook}:{token}");
    handle(&shared, &req, raw, "POST", EXECUTE, resource, |w, call| {
        followup(w, call, &webhook, &token)
    })
    .await
}

pub async fn get_followup(
    shared: SharedData,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (webhook, token, message) = path.into_inner();
    let resource = format!("webhook:{webhook}:{token}");
    handle(&shared, &req, raw, "GET", MESSAGE, resource, |w, call| {
        get_message(w, call, &webhook, &token, Some(&message))
    })
    .await
}

pub async fn patch_followup(
    shared: SharedData,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (webhook, token, message) = path.into_inner();
    let resource = format!("webhook:{webhook}:{token}");
    handle(&shared, &req, raw, "PATCH", MESSAGE, resource, |w, call| {
        edit_message(w, call, &webhook, &token, Some(&message))
    })
    .await
}

pub async fn delete_followup(
    shared: SharedData,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (webhook, token, message) = path.into_inner();
    let resource = format!("webhook:{webhook}:{token}");
    handle(
        &shared,
        &req,
        raw,
        "DELETE",
        MESSAGE,
        resource,
        |w, call| delete_message(w, call, &webhook, &token, Some(&message)),
    )
    .await
}
