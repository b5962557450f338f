//! Who the bot is, in the shapes Discord sends it: the user object (message authors, READY),
//! the private user (`GET /users/@me`), the application (`GET /oauth2/applications/@me`) and the
//! READY event.

use serde_json::{Value, json};

use crate::config::FakeConfig;

/// Application flags of a bot without privileged intents granted (none set).
const NO_APPLICATION_FLAGS: u64 = 0;

/// The bot's public user object.
pub fn bot_user(config: &FakeConfig) -> Value {
    json!({
        "id": config.bot_user_id().to_string(),
        "username": config.bot_username,
        "avatar": null,
        "discriminator": "0000",
        "public_flags": 0,
        "flags": 0,
        "bot": true,
        "banner": null,
        "accent_color": null,
        "global_name": null,
        "avatar_decoration_data": null,
        "collectibles": null,
        "primary_guild": null
    })
}

/// The bot as `GET /users/@me` and READY show it (with the private fields).
pub fn bot_user_private(config: &FakeConfig) -> Value {
    let mut user = bot_user(config);
    if let Some(fields) = user.as_object_mut() {
        fields.insert("mfa_enabled".into(), json!(false));
        fields.insert("locale".into(), json!("en-US"));
        fields.insert("premium_type".into(), json!(0));
        fields.insert("email".into(), Value::Null);
        fields.insert("verified".into(), json!(true));
    }
    user
}

/// Application flags as READY and the application object carry them: the
/// GATEWAY_*_LIMITED bits of the privileged intents this application was granted.
pub fn application_flags(config: &FakeConfig) -> u64 {
    let mut flags = NO_APPLICATION_FLAGS;
    if config.allowed_privileged_intents & (1 << 8) != 0 {
        flags |= 1 << 13; // GATEWAY_PRESENCE_LIMITED
    }
    if config.allowed_privileged_intents & (1 << 1) != 0 {
        flags |= 1 << 15; // GATEWAY_GUILD_MEMBERS_LIMITED
    }
    if config.allowed_privileged_intents & (1 << 15) != 0 {
        flags |= 1 << 19; // GATEWAY_MESSAGE_CONTENT_LIMITED
    }
    flags
}

/// The application object of `GET /applications/@me` and `GET /oauth2/applications/@me`.
pub fn application(config: &FakeConfig) -> Value {
    let flags = application_flags(config);
    json!({
        "id": config.application_id.to_string(),
        "name": config.bot_username,
        "icon": null,
        "description": "",
        "type": null,
        "bot": bot_user(config),
        "bot_public": false,
        "bot_require_code_grant": false,
        "verify_key": format!("{:064x}", u128::from(config.application_id)),
        "flags": flags,
        "flags_new": flags.to_string(),
        "redirect_uris": [],
        "interactions_endpoint_url": null,
        "role_connections_verification_url": null,
        "owner": json!({
            "id": "1180000000000000002",
            "username": "owner",
            "avatar": null,
            "discriminator": "0",
            "public_flags": 0,
            "flags": 0,
            "global_name": null,
            "primary_guild": null
        }),
        "approximate_guild_count": config.guild_ids.len(),
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0,
        "team": null,
        "eligible_oauth2_scopes": [],
        "integration_types_config": {"0": {}}
    })
}

/// READY's `d` (gateway-events: "Ready Event Fields").
pub fn ready_event(
    config: &FakeConfig,
    session_id: &str,
    resume_url: &str,
    shard: Option<[u64; 2]>,
) -> Value {
    let guilds: Vec<Value> = config
        .guild_ids
        .iter()
        .map(|id| json!({"id": id.to_string(), "unavailable": true}))
        .collect();
    let mut ready = json!({
        "v": 10,
        "user": bot_user_private(config),
        "guilds": guilds,
        "session_id": session_id,
        "resume_gateway_url": resume_url,
        "application": {"id": config.application_id.to_string(), "flags": application_flags(config)}
    });
    if let (Some(shard), Some(fields)) = (shard, ready.as_object_mut()) {
        fields.insert("shard".into(), json!(shard));
    }
    ready
}
