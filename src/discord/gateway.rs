//! The gateway side: serenity's client, its event handler (every interaction converted and
//! handed to the session with `do_send`, so the gateway never waits on the fleet), and the
//! client's set-up (no privileged intent; behind `discord.api_proxy`, serenity's rate limiter
//! off, since it would bypass the proxy).

use std::sync::Arc;
use std::time::Instant;

use actix::Addr;
use comfy_fleet_actors::discord::DiscordSession;
use comfy_fleet_actors::discord::session::Incoming;
use serenity::all::{
    ApplicationId, ClientBuilder, Context, EventHandler, GatewayIntents, HttpBuilder, Interaction,
    Ready, ResumedEvent,
};
use serenity::async_trait;
use serenity::gateway::ShardManager;

use super::incoming::convert;

/// Hands every interaction to the session.
struct Forwarder {
    session: Addr<DiscordSession>,
}

#[async_trait]
impl EventHandler for Forwarder {
    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let received = Instant::now();
        if let Some(interaction) = convert(interaction, received) {
            self.session.do_send(Incoming(interaction));
        }
    }

    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::info!(
            target: "fleet.discord",
            bot = %ready.user.name,
            guilds = ready.guilds.len(),
            "Discord gateway ready"
        );
    }

    async fn resume(&self, _ctx: Context, _: ResumedEvent) {
        tracing::info!(target: "fleet.discord", "Discord gateway session resumed");
    }
}

/// Connects the gateway (serenity first asks `GET /gateway` for its URL) and runs it on the
/// runtime; returns the shard manager, to close it.
pub async fn connect(
    http: reqwest::Client,
    token: &str,
    proxy: Option<&str>,
    application_id: u64,
    session: Addr<DiscordSession>,
) -> Result<Arc<ShardManager>, serenity::Error> {
    let mut builder = HttpBuilder::new(token)
        .client(http)
        .application_id(ApplicationId::new(application_id.max(1)));
    if let Some(proxy) = proxy {
        // serenity's rate limiter builds its requests without the proxy.
        builder = builder.proxy(proxy).ratelimiter_disabled(true);
    }
    let mut client = ClientBuilder::new_with_http(builder.build(), GatewayIntents::empty())
        .event_handler(Forwarder { session })
        .await?;
    let shards = Arc::clone(&client.shard_manager);
    tokio::spawn(async move {
        if let Err(e) = client.start().await {
            tracing::error!(target: "fleet.discord", "the Discord gateway stopped: {e}");
        }
    });
    Ok(shards)
}
