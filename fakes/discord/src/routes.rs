//! The route table: Discord's REST API under `/api/v10` (route templates as in the OpenAPI
//! description), the gateway websocket, the CDN, and the test control API under `/_fake/`.
//! Unknown API paths answer Discord's 404 (or 50041 for another API version) and are logged as
//! not implemented; a known path with another method answers 405.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;

use crate::discord_error::DiscordError;
use crate::rest_exchange::handle;
use crate::world::Shared;
use crate::{
    cdn_route, control_api, gateway_connection, rest_channels, rest_commands, rest_identity,
    rest_interactions, rest_webhooks,
};

/// The route of requests the fake does not implement, in the request log.
pub const UNIMPLEMENTED: &str = "(not implemented by fake-discord)";

fn method_name(req: &HttpRequest) -> &'static str {
    match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        _ => "OTHER",
    }
}

async fn method_not_allowed(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    raw: Bytes,
) -> HttpResponse {
    handle(
        &shared,
        &req,
        raw,
        method_name(&req),
        UNIMPLEMENTED,
        "unknown".into(),
        |_, _| Err(DiscordError::method_not_allowed()),
    )
    .await
}

async fn fallback(shared: web::Data<Arc<Shared>>, req: HttpRequest, raw: Bytes) -> HttpResponse {
    let path = req.path().to_string();
    let other_version = path.starts_with("/api/v") && !path.starts_with("/api/v10/");
    handle(
        &shared,
        &req,
        raw,
        method_name(&req),
        UNIMPLEMENTED,
        "unknown".into(),
        move |_, _| {
            if other_version {
                Err(DiscordError::invalid_api_version())
            } else {
                Err(DiscordError::not_found())
            }
        },
    )
    .await
}

fn api_resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use rest_commands as c;
    use rest_webhooks as wh;
    cfg.service(
        web::scope("/api/v10")
            .service(
                api_resource(c::GLOBAL)
                    .route(web::put().to(c::put_global))
                    .route(web::get().to(c::get_global)),
            )
            .service(
                api_resource(c::GUILD)
                    .route(web::put().to(c::put_guild))
                    .route(web::get().to(c::get_guild)),
            )
            .service(
                api_resource(rest_interactions::CALLBACK)
                    .route(web::post().to(rest_interactions::callback)),
            )
            .service(
                api_resource(wh::ORIGINAL)
                    .route(web::get().to(wh::get_original))
                    .route(web::patch().to(wh::patch_original))
                    .route(web::delete().to(wh::delete_original)),
            )
            .service(
                api_resource(wh::MESSAGE)
                    .route(web::get().to(wh::get_followup))
                    .route(web::patch().to(wh::patch_followup))
                    .route(web::delete().to(wh::delete_followup)),
            )
            .service(api_resource(wh::EXECUTE).route(web::post().to(wh::post_followup)))
            .service(
                api_resource(rest_channels::MESSAGES)
                    .route(web::post().to(rest_channels::post_message)),
            )
            .service(
                api_resource(rest_channels::MESSAGE)
                    .route(web::get().to(rest_channels::get_message))
                    .route(web::patch().to(rest_channels::patch_message)),
            )
            .service(
                api_resource(rest_identity::GATEWAY).route(web::get().to(rest_identity::gateway)),
            )
            .service(
                api_resource(rest_identity::GATEWAY_BOT)
                    .route(web::get().to(rest_identity::gateway_bot)),
            )
            .service(
                api_resource(rest_identity::USERS_ME).route(web::get().to(rest_identity::users_me)),
            )
            .service(
                api_resource(rest_identity::APPLICATIONS_ME)
                    .route(web::get().to(rest_identity::applications_me)),
            )
            .service(
                api_resource(rest_identity::OAUTH2_APPLICATIONS_ME)
                    .route(web::get().to(rest_identity::oauth2_applications_me)),
            ),
    )
    .route("/gateway", web::get().to(gateway_connection::connect))
    .route(
        "/gateway/resume",
        web::get().to(gateway_connection::connect),
    )
    .route(cdn_route::ATTACHMENT, web::get().to(cdn_route::attachment))
    .service(
        web::scope("/_fake")
            .route(
                "/interactions/commands",
                web::post().to(control_api::inject_command),
            )
            .route(
                "/interactions/autocomplete",
                web::post().to(control_api::inject_autocomplete),
            )
            .route(
                "/interactions/components",
                web::post().to(control_api::inject_component),
            )
            .route(
                "/interactions/{id}",
                web::get().to(control_api::interaction),
            )
            .route(
                "/interactions/{id}/expire",
                web::post().to(control_api::expire_token),
            )
            .route(
                "/channels/{id}/messages",
                web::get().to(control_api::channel_messages),
            )
            .route("/commands", web::get().to(control_api::commands))
            .route("/requests", web::get().to(control_api::requests))
            .route("/rate-limits", web::post().to(control_api::arm_rate_limit))
            .route("/rate-limits", web::get().to(control_api::rate_limited))
            .route("/gateway", web::get().to(control_api::gateway))
            .route("/gateway/drop", web::post().to(control_api::gateway_drop))
            .route(
                "/gateway/reconnect",
                web::post().to(control_api::gateway_reconnect),
            )
            .route(
                "/gateway/invalidate",
                web::post().to(control_api::gateway_invalidate),
            )
            .route("/changes", web::get().to(control_api::changes))
            .route("/health", web::get().to(control_api::health)),
    )
    .default_service(web::to(fallback));
}
