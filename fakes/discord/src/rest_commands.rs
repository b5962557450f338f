//! Application command routes: bulk overwrite (`PUT`) and list (`GET`) of global commands
//! (`/applications/{application_id}/commands`) and guild commands
//! (`/applications/{application_id}/guilds/{guild_id}/commands`).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::Value;

use crate::commands::CommandScope;
use crate::discord_error::DiscordError;
use crate::form_errors::FormErrors;
use crate::rest_exchange::{Reply, RestCall, handle, path_id};
use crate::world::{Shared, World};

pub const GLOBAL: &str = "/applications/{application_id}/commands";
pub const GUILD: &str = "/applications/{application_id}/guilds/{guild_id}/commands";

fn scope(
    world: &World,
    application: &str,
    guild: Option<&str>,
) -> Result<CommandScope, DiscordError> {
    if path_id(application)? != world.config.application_id {
        return Err(DiscordError::not_authorized_for_application());
    }
    match guild {
        None => Ok(CommandScope::Global),
        Some(guild) => {
            let guild = path_id(guild)?;
            if world.config.guild_ids.contains(&guild) {
                Ok(CommandScope::Guild(guild))
            } else {
                Err(DiscordError::missing_access())
            }
        }
    }
}

fn overwrite(
    world: &mut World,
    call: &RestCall,
    scope: CommandScope,
) -> Result<Reply, DiscordError> {
    let body = call.validated(|_| FormErrors::default())?;
    let requested = match &body {
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    };
    let application_id = world.config.application_id;
    let stored = world
        .commands
        .overwrite(scope, &requested, application_id, &world.ids)
        .map_err(|errors| DiscordError::invalid_form_body(&errors))?;
    Ok(Reply::ok(Value::Array(stored)))
}

pub async fn put_global(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    path: web::Path<String>,
    raw: Bytes,
) -> HttpResponse {
    let application = path.into_inner();
    handle(
        &shared,
        &req,
        raw,
        "PUT",
        GLOBAL,
        format!("application:{application}"),
        |w, call| {
            let scope = scope(w, &application, None)?;
            overwrite(w, call, scope)
        },
    )
    .await
}

pub async fn get_global(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    path: web::Path<String>,
    raw: Bytes,
) -> HttpResponse {
    let application = path.into_inner();
    handle(
        &shared,
        &req,
        raw,
        "GET",
        GLOBAL,
        format!("application:{application}"),
        |w, _| {
            let scope = scope(w, &application, None)?;
            Ok(Reply::ok(Value::Array(w.commands.list(scope))))
        },
    )
    .await
}

pub async fn put_guild(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (application, guild) = path.into_inner();
    handle(
        &shared,
        &req,
        raw,
        "PUT",
        GUILD,
        format!("guild:{guild}"),
        |w, call| {
            let scope = scope(w, &application, Some(&guild))?;
            overwrite(w, call, scope)
        },
    )
    .await
}

pub async fn get_guild(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    raw: Bytes,
) -> HttpResponse {
    let (application, guild) = path.into_inner();
    handle(
        &shared,
        &req,
        raw,
        "GET",
        GUILD,
        format!("guild:{guild}"),
        |w, _| {
            let scope = scope(w, &application, Some(&guild))?;
            Ok(Reply::ok(Value::Array(w.commands.list(scope))))
        },
    )
    .await
}
