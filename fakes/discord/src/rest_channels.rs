//! Channel message routes the bot uses outside interactions: create a message
//! (`POST /channels/{channel_id}/messages`), and get or edit one
//! (`/channels/{channel_id}/messages/{message_id}`).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;

use crate::discord_error::DiscordError;
use crate::message_rules;
use crate::message_writes;
use crate::rest_exchange::{Reply, RestCall, handle, path_id};
use crate::world::{Shared, World};

pub const MESSAGES: &str = "/channels/{channel_id}/messages";
pub const MESSAGE: &str = "/channels/{channel_id}/messages/{message_id}";

fn channel(world: &World, raw: &str) -> Result<u64, DiscordError> {
    let id = path_id(raw).map_err(|_| DiscordError::unknown_channel())?;
    if world.channels.contains(&id) {
        Ok(id)
    } else {
        Err(DiscordError::unknown_channel())
    }
}

fn message_in(world: &World, channel_id: u64, raw: &str) -> Result<u64, DiscordError> {
    let id = path_id(raw).map_err(|_| DiscordError::unknown_message())?;
    match world.messages.live(id) {
        Some(m) if m.channel_id == channel_id => Ok(id),
        _ => Err(DiscordError::unknown_message()),
    }
}

fn create(world: &mut World, call: &RestCall, channel_raw: &str) -> Result<Reply, DiscordError> {
    let channel_id = channel(world, channel_raw)?;
    let body = call.validated(message_rules::check_components)?;
    message_rules::check_not_empty(&body, &call.body.files)?;
    message_rules::check_upload_sizes(&call.body.files, world.config.attachment_size_limit)?;
    let frame = message_writes::channel_frame(world, channel_id);
    let message = message_writes::create(world, frame, None, &body, &call.body.files, call.now)?;
    Ok(Reply::ok(message))
}

fn edit(
    world: &mut World,
    call: &RestCall,
    channel_raw: &str,
    message_raw: &str,
) -> Result<Reply, DiscordError> {
    let channel_id = channel(world, channel_raw)?;
    let id = message_in(world, channel_id, message_raw)?;
    let body = call.validated(message_rules::check_components)?;
    message_rules::check_upload_sizes(&call.body.files, world.config.attachment_size_limit)?;
    Ok(Reply::ok(message_writes::edit(
        world,
        id,
        &body,
        &call.body.files,
        call.now,
    )?))
}

fn get(world: &mut World, channel_raw: &str, message_raw: &str) -> Result<Reply, DiscordError> {
    let channel_id = channel(world, channel_raw)?;
    let id = message_in(world, channel_id, message_raw)?;
    world
        .messages
        .live(id)
        .map(|m| Reply::ok(m.current.clone()))
        .ok_or_else(DiscordError::unknown_message)
}

pub async fn post_message(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    path: web::Path<String>,
    raw: Bytes,
) -> HttpResponse {
    let channel = path.into_inner();
    handle(
        &shared,
        &req,
        raw,
        "POST",
        MESSAGES,
        format!("channel:{channel}"),
        |w, call| create(w, call, &channel),
    )
    .await
}

pub async fn patch_message(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (channel, message) = path.into_inner();
    handle(
        &shared,
        &req,
        raw,
        "PATCH",
        MESSAGE,
        format!("channel:{channel}"),
        |w, call| edit(w, call, &channel, &message),
    )
    .await
}

pub async fn get_message(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (channel, message) = path.into_inner();
    handle(
        &shared,
        &req,
        raw,
        "GET",
        MESSAGE,
        format!("channel:{channel}"),
        |w, _| get(w, &channel, &message),
    )
    .await
}
