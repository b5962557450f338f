//! Routes about the bot itself and the gateway: `GET /gateway`, `GET /gateway/bot`,
//! `GET /users/@me`, `GET /applications/@me` and `GET /oauth2/applications/@me` (which serenity
//! calls).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::json;

use crate::identity;
use crate::rest_exchange::{Reply, handle};
use crate::world::Shared;

pub const GATEWAY: &str = "/gateway";
pub const GATEWAY_BOT: &str = "/gateway/bot";
pub const USERS_ME: &str = "/users/@me";
pub const APPLICATIONS_ME: &str = "/applications/@me";
pub const OAUTH2_APPLICATIONS_ME: &str = "/oauth2/applications/@me";

pub async fn gateway(shared: web::Data<Arc<Shared>>, req: HttpRequest, raw: Bytes) -> HttpResponse {
    handle(
        &shared,
        &req,
        raw,
        "GET",
        GATEWAY,
        "gateway".into(),
        |w, _| Ok(Reply::ok(json!({"url": w.gateway_url()}))),
    )
    .await
}

pub async fn gateway_bot(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    raw: Bytes,
) -> HttpResponse {
    handle(
        &shared,
        &req,
        raw,
        "GET",
        GATEWAY_BOT,
        "gateway".into(),
        |w, _| {
            let identified = w
                .gateway
                .connections()
                .iter()
                .filter(|c| c.identified)
                .count() as u64;
            Ok(Reply::ok(json!({
                "url": w.gateway_url(),
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000u64.saturating_sub(identified),
                    "reset_after": 86_400_000,
                    "max_concurrency": 1
                }
            })))
        },
    )
    .await
}

pub async fn users_me(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    raw: Bytes,
) -> HttpResponse {
    handle(
        &shared,
        &req,
        raw,
        "GET",
        USERS_ME,
        "user".into(),
        |w, _| Ok(Reply::ok(identity::bot_user_private(&w.config))),
    )
    .await
}

pub async fn applications_me(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    raw: Bytes,
) -> HttpResponse {
    handle(
        &shared,
        &req,
        raw,
        "GET",
        APPLICATIONS_ME,
        "application".into(),
        |w, _| Ok(Reply::ok(identity::application(&w.config))),
    )
    .await
}

pub async fn oauth2_applications_me(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    raw: Bytes,
) -> HttpResponse {
    handle(
        &shared,
        &req,
        raw,
        "GET",
        OAUTH2_APPLICATIONS_ME,
        "application".into(),
        |w, _| Ok(Reply::ok(identity::application(&w.config))),
    )
    .await
}
