//! The test control API under `/_fake/`: make users act (run a slash command, type into an
//! autocompleted option, click a component), read what the bot did (interactions, channel
//! messages, commands, the request log, the gateway), arm 429s, disturb the gateway (drop the
//! socket, ask for a reconnect, invalidate the session), expire a token, and wait for change.
//! Errors are `{"error": "what was wrong and what to do"}`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::commands::CommandScope;
use crate::control_types::{
    AckView, ChangeVersion, CommandsView, ComponentClick, ControlError, GatewayView, Injected,
    InteractionView, MessageView, SlashCommand,
};
use crate::gateway_sessions::{Outbound, control_frame};
use crate::interaction_payloads::{self, InjectError};
use crate::interactions::InteractionRecord;
use crate::messages::MessageRecord;
use crate::rate_limits::ArmRateLimit;
use crate::world::{Shared, World};

/// The longest a `changes` request waits.
const MAX_WAIT: Duration = Duration::from_secs(30);

type SharedData = web::Data<Arc<Shared>>;

fn json_reply<T: Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    match serde_json::to_string(value) {
        Ok(body) => HttpResponse::build(status)
            .content_type("application/json")
            .body(body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the answer: {e}"),
        ),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    json_reply(
        status,
        &ControlError {
            error: message.into(),
        },
    )
}

/// The body as `T`, or the 400 message saying why not.
fn parse<T: DeserializeOwned>(raw: &Bytes, what: &str) -> Result<T, String> {
    serde_json::from_slice(raw).map_err(|e| {
        format!(
            "the body is not a valid {what}: {e}; see fake_discord::control_types for its fields"
        )
    })
}

fn inject_error(e: InjectError) -> HttpResponse {
    let status = match e {
        InjectError::NoSession => StatusCode::CONFLICT,
        InjectError::UnknownCommand(_)
        | InjectError::UnknownMessage(_)
        | InjectError::UnknownComponent { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

/// Builds, records and dispatches an interaction.
fn dispatch(
    world: &mut World,
    build: impl FnOnce(
        &mut World,
        Instant,
    ) -> Result<(serde_json::Value, InteractionRecord), InjectError>,
) -> Result<Injected, InjectError> {
    if !world.gateway.has_session() {
        return Err(InjectError::NoSession);
    }
    let (payload, record) = build(world, Instant::now())?;
    let sequence = world
        .gateway
        .dispatch("INTERACTION_CREATE", payload.clone())
        .map_err(|_| InjectError::NoSession)?;
    let injected = Injected {
        id: record.id.to_string(),
        token: record.token.clone(),
        application_id: world.config.application_id.to_string(),
        sequence,
        payload,
    };
    world.interactions.insert(record);
    Ok(injected)
}

pub async fn inject_command(shared: SharedData, raw: Bytes) -> HttpResponse {
    let spec: SlashCommand = match parse(&raw, "SlashCommand") {
        Ok(s) => s,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match shared.change(|w| {
        dispatch(w, |w, now| {
            interaction_payloads::command_interaction(w, &spec, false, now)
        })
    }) {
        Ok(injected) => json_reply(StatusCode::OK, &injected),
        Err(e) => inject_error(e),
    }
}

pub async fn inject_autocomplete(shared: SharedData, raw: Bytes) -> HttpResponse {
    let spec: SlashCommand = match parse(&raw, "SlashCommand") {
        Ok(s) => s,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match shared.change(|w| {
        dispatch(w, |w, now| {
            interaction_payloads::command_interaction(w, &spec, true, now)
        })
    }) {
        Ok(injected) => json_reply(StatusCode::OK, &injected),
        Err(e) => inject_error(e),
    }
}

pub async fn inject_component(shared: SharedData, raw: Bytes) -> HttpResponse {
    let click: ComponentClick = match parse(&raw, "ComponentClick") {
        Ok(c) => c,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match shared.change(|w| {
        dispatch(w, |w, now| {
            interaction_payloads::component_interaction(w, &click, now)
        })
    }) {
        Ok(injected) => json_reply(StatusCode::OK, &injected),
        Err(e) => inject_error(e),
    }
}

fn message_view(record: &MessageRecord) -> MessageView {
    MessageView {
        id: record.id.to_string(),
        channel_id: record.channel_id.to_string(),
        message: record.current.clone(),
        history: record.history.clone(),
        deleted_at_ms: record.deleted_at_ms,
    }
}

fn interaction_view(world: &World, record: &InteractionRecord) -> InteractionView {
    let now = Instant::now();
    InteractionView {
        id: record.id.to_string(),
        token: record.token.clone(),
        kind: record.lifecycle.kind(),
        created_ms: record.created_ms,
        acknowledgement: record.lifecycle.acknowledgement().map(|ack| AckView {
            callback_type: ack.callback_type,
            at_ms: world.ms(ack.at),
            after_ms: ack
                .at
                .duration_since(record.lifecycle.created())
                .as_millis() as u64,
        }),
        token_valid: record.lifecycle.token_valid(now),
        original: record
            .original_message_id
            .and_then(|id| world.messages.any(id))
            .map(message_view),
        followups: record
            .followup_ids
            .iter()
            .filter_map(|id| world.messages.any(*id))
            .map(message_view)
            .collect(),
        autocomplete_choices: record.autocomplete_choices.clone(),
        modal: record.modal.clone(),
    }
}

/// A snowflake path parameter, or the 400 message saying why not.
fn id_param(raw: &str, what: &str) -> Result<u64, String> {
    raw.parse()
        .map_err(|_| format!("{what} must be a snowflake (a decimal id), not {raw:?}"))
}

pub async fn interaction(shared: SharedData, path: web::Path<String>) -> HttpResponse {
    let id = match id_param(&path, "the interaction id") {
        Ok(id) => id,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match shared.read(|w| w.interactions.get(id).map(|r| interaction_view(w, r))) {
        Some(view) => json_reply(StatusCode::OK, &view),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no interaction {id}; use the id the inject call returned"),
        ),
    }
}

pub async fn expire_token(shared: SharedData, path: web::Path<String>) -> HttpResponse {
    let id = match id_param(&path, "the interaction id") {
        Ok(id) => id,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let found = shared.change(|w| match w.interactions.get_mut(id) {
        Some(record) => {
            record.lifecycle.revoke();
            true
        }
        None => false,
    });
    if found {
        HttpResponse::NoContent().finish()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("no interaction {id}; use the id the inject call returned"),
        )
    }
}

pub async fn channel_messages(shared: SharedData, path: web::Path<String>) -> HttpResponse {
    let id = match id_param(&path, "the channel id") {
        Ok(id) => id,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let views: Vec<MessageView> = shared.read(|w| {
        w.messages
            .in_channel(id)
            .into_iter()
            .map(message_view)
            .collect()
    });
    json_reply(StatusCode::OK, &views)
}

pub async fn commands(shared: SharedData) -> HttpResponse {
    let view = shared.read(|w| {
        let mut view = CommandsView::default();
        for (scope, list) in w.commands.all() {
            match scope {
                CommandScope::Global => view.global = list,
                CommandScope::Guild(g) => {
                    view.guilds.insert(g.to_string(), list);
                }
            }
        }
        view
    });
    json_reply(StatusCode::OK, &view)
}

pub async fn requests(shared: SharedData) -> HttpResponse {
    let log = shared.read(|w| w.requests.all().to_vec());
    json_reply(StatusCode::OK, &log)
}

pub async fn arm_rate_limit(shared: SharedData, raw: Bytes) -> HttpResponse {
    let arm: ArmRateLimit = match parse(&raw, "ArmRateLimit") {
        Ok(a) => a,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    if !(arm.retry_after.is_finite() && arm.retry_after >= 0.0) {
        return error(
            StatusCode::BAD_REQUEST,
            "retry_after must be a non-negative number of seconds",
        );
    }
    if let Some(route) = &arm.route
        && let Some(method) = &arm.method
        && !crate::spec::ApiSpec::get().has_operation(method, route)
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "{method} {route} is not a route of Discord's API description; give the template as in openapi.json, e.g. /webhooks/{{webhook_id}}/{{webhook_token}}/messages/@original"
            ),
        );
    }
    shared.change(|w| w.rate_limits.arm(arm));
    HttpResponse::NoContent().finish()
}

pub async fn rate_limited(shared: SharedData) -> HttpResponse {
    let limited = shared.read(|w| w.rate_limits.limited().to_vec());
    json_reply(StatusCode::OK, &limited)
}

pub async fn gateway(shared: SharedData) -> HttpResponse {
    let view = shared.read(|w| GatewayView {
        sessions: w.gateway.sessions(),
        connections: w.gateway.connections().to_vec(),
    });
    json_reply(StatusCode::OK, &view)
}

fn no_connection() -> HttpResponse {
    error(
        StatusCode::CONFLICT,
        "no gateway connection carries the current session; connect the bot (or wait for it to resume) first",
    )
}

pub async fn gateway_drop(shared: SharedData) -> HttpResponse {
    if shared.change(|w| w.gateway.tell_current(Outbound::Drop)) {
        HttpResponse::NoContent().finish()
    } else {
        no_connection()
    }
}

pub async fn gateway_reconnect(shared: SharedData) -> HttpResponse {
    if shared.change(|w| {
        w.gateway
            .tell_current(Outbound::Frame(control_frame(7, serde_json::Value::Null)))
    }) {
        HttpResponse::NoContent().finish()
    } else {
        no_connection()
    }
}

pub async fn gateway_invalidate(shared: SharedData, req: HttpRequest) -> HttpResponse {
    let resumable = query(&req).get("resumable").is_some_and(|v| v == "true");
    if shared.change(|w| w.gateway.invalidate_current(resumable)) {
        HttpResponse::NoContent().finish()
    } else {
        no_connection()
    }
}

fn query(req: &HttpRequest) -> BTreeMap<String, String> {
    req.query_string()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `GET /_fake/changes?after=N&timeout_ms=M`: answers once the change counter passes `N` (or
/// after `M` ms, at most 30 s) with the counter.
pub async fn changes(shared: SharedData, req: HttpRequest) -> HttpResponse {
    let q = query(&req);
    let after = q.get("after").and_then(|v| v.parse().ok()).unwrap_or(0);
    let timeout = q
        .get("timeout_ms")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(MAX_WAIT)
        .min(MAX_WAIT);
    let version = shared.wait_change(after, timeout).await;
    json_reply(StatusCode::OK, &ChangeVersion { version })
}

/// `GET /_fake/health`: the fake's addresses.
pub async fn health(shared: SharedData) -> HttpResponse {
    let (base, gateway) = shared.read(|w| (w.base_url.clone(), w.gateway_url()));
    json_reply(
        StatusCode::OK,
        &json!({"api": format!("{base}/api/v10"), "gateway": gateway}),
    )
}
