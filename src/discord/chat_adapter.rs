//! The `Chat` port over Discord's REST API: interaction callbacks, followups and edits through
//! the interaction's token, channel messages, command registration, attachment downloads.

use std::rc::Rc;

use comfy_fleet_actors::discord::commands::CommandSpec;
use comfy_fleet_actors::discord::interaction::{Attachment, InteractionToken};
use comfy_fleet_actors::discord::message::{Ack, ChatMessage, MessagePlace};
use comfy_fleet_actors::discord::{Chat, ChatError};
use futures_util::future::LocalBoxFuture;
use reqwest::Method;
use serde_json::Value;

use super::downloads::AttachmentDownloads;
use super::payloads::{Write, ack_body, command_json, message_body};
use super::rest::{Body, DiscordRest, Request, RestError};

/// Discord's error codes that mean "this interaction's token no longer works".
const UNKNOWN_INTERACTION: i64 = 10062;
const UNKNOWN_WEBHOOK: i64 = 10015;
const INVALID_WEBHOOK_TOKEN: i64 = 50027;

impl From<RestError> for ChatError {
    fn from(e: RestError) -> Self {
        match e {
            RestError::Status { code, .. }
                if [UNKNOWN_INTERACTION, UNKNOWN_WEBHOOK, INVALID_WEBHOOK_TOKEN]
                    .contains(&code) =>
            {
                ChatError::Expired(e.to_string())
            }
            RestError::Status {
                status,
                code,
                message,
                errors,
                ..
            } => ChatError::Refused {
                status,
                code,
                message: match errors {
                    Some(errors) => format!("{message} {errors}"),
                    None => message,
                },
            },
            RestError::RateLimited { retry_after, .. } => ChatError::RateLimited { retry_after },
            RestError::Transport { .. } | RestError::Decode { .. } => {
                ChatError::Unreachable(e.to_string())
            }
        }
    }
}

/// Discord, as the session's `Chat`.
pub struct DiscordChat {
    rest: Rc<DiscordRest>,
    application_id: String,
    downloads: AttachmentDownloads,
}

impl DiscordChat {
    pub fn new(
        rest: Rc<DiscordRest>,
        application_id: String,
        downloads: AttachmentDownloads,
    ) -> Self {
        Self {
            rest,
            application_id,
            downloads,
        }
    }

    async fn message(&self, request: Request) -> Result<String, ChatError> {
        let answer = self.rest.send(request).await?;
        answer
            .as_ref()
            .and_then(|m| m.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ChatError::Unreachable("Discord's answer has no message id".into()))
    }

    /// Sends a request whose answer says nothing the caller needs.
    async fn send(&self, request: Request) -> Result<(), ChatError> {
        self.rest.send(request).await?;
        Ok(())
    }
}

fn webhook(interaction: &InteractionToken) -> String {
    format!(
        "/webhooks/{}/{}",
        interaction.application_id, interaction.token
    )
}

impl Chat for DiscordChat {
    fn acknowledge(
        &self,
        interaction: &InteractionToken,
        ack: Ack,
    ) -> LocalBoxFuture<'_, Result<(), ChatError>> {
        let request = Request {
            method: Method::POST,
            path: format!(
                "/interactions/{}/{}/callback",
                interaction.id, interaction.token
            ),
            route: "POST /interactions/{interaction_id}/{interaction_token}/callback",
            bucket: format!("callback {}", interaction.id),
            body: ack_body(&ack),
            urgent: true,
        };
        Box::pin(self.send(request))
    }

    fn followup(
        &self,
        interaction: &InteractionToken,
        message: ChatMessage,
    ) -> LocalBoxFuture<'_, Result<MessagePlace, ChatError>> {
        let request = Request {
            method: Method::POST,
            path: webhook(interaction),
            route: "POST /webhooks/{application_id}/{interaction_token}",
            bucket: format!("POST webhook {}", interaction.token),
            body: message_body(&message, Write::Create { interaction: true }),
            urgent: false,
        };
        let interaction = interaction.clone();
        Box::pin(async move {
            let message = self.message(request).await?;
            Ok(MessagePlace::Followup {
                interaction,
                message,
            })
        })
    }

    fn post(
        &self,
        channel: &str,
        message: ChatMessage,
    ) -> LocalBoxFuture<'_, Result<MessagePlace, ChatError>> {
        let request = Request {
            method: Method::POST,
            path: format!("/channels/{channel}/messages"),
            route: "POST /channels/{channel_id}/messages",
            bucket: format!("POST channel {channel}"),
            body: message_body(&message, Write::Create { interaction: false }),
            urgent: false,
        };
        let channel = channel.to_string();
        Box::pin(async move {
            let message = self.message(request).await?;
            Ok(MessagePlace::Channel { channel, message })
        })
    }

    fn edit(
        &self,
        place: &MessagePlace,
        message: ChatMessage,
    ) -> LocalBoxFuture<'_, Result<(), ChatError>> {
        let (path, route, bucket) = match place {
            MessagePlace::Original(interaction) => (
                format!("{}/messages/@original", webhook(interaction)),
                "PATCH /webhooks/{application_id}/{interaction_token}/messages/@original",
                format!("PATCH webhook {}", interaction.token),
            ),
            MessagePlace::Followup {
                interaction,
                message,
            } => (
                format!("{}/messages/{message}", webhook(interaction)),
                "PATCH /webhooks/{application_id}/{interaction_token}/messages/{message_id}",
                format!("PATCH webhook {}", interaction.token),
            ),
            MessagePlace::Channel { channel, message } => (
                format!("/channels/{channel}/messages/{message}"),
                "PATCH /channels/{channel_id}/messages/{message_id}",
                format!("PATCH channel {channel}"),
            ),
        };
        let request = Request {
            method: Method::PATCH,
            path,
            route,
            bucket,
            body: message_body(&message, Write::Edit),
            urgent: false,
        };
        Box::pin(self.send(request))
    }

    fn download(
        &self,
        attachment: &Attachment,
        limit: u64,
    ) -> LocalBoxFuture<'_, Result<Vec<u8>, ChatError>> {
        let url = attachment.url.clone();
        Box::pin(async move {
            self.downloads
                .fetch(&url, limit)
                .await
                .map_err(|e| ChatError::Download(e.to_string()))
        })
    }

    fn register_commands(
        &self,
        commands: Vec<CommandSpec>,
        guilds: Vec<String>,
    ) -> LocalBoxFuture<'_, Result<(), ChatError>> {
        let body: Vec<Value> = commands.iter().map(command_json).collect();
        let app = self.application_id.clone();
        Box::pin(async move {
            let paths: Vec<(String, &'static str)> = if guilds.is_empty() {
                vec![(
                    format!("/applications/{app}/commands"),
                    "PUT /applications/{application_id}/commands",
                )]
            } else {
                guilds
                    .iter()
                    .map(|g| {
                        (
                            format!("/applications/{app}/guilds/{g}/commands"),
                            "PUT /applications/{application_id}/guilds/{guild_id}/commands",
                        )
                    })
                    .collect()
            };
            for (path, route) in paths {
                self.rest
                    .send(Request {
                        method: Method::PUT,
                        bucket: format!("PUT {path}"),
                        path,
                        route,
                        body: Body::Json(Value::Array(body.clone())),
                        urgent: false,
                    })
                    .await?;
            }
            Ok(())
        })
    }
}

/// Asks Discord who the bot's application is (`GET /oauth2/applications/@me`): its id, and
/// whether the token works at all.
pub async fn application_id(rest: &DiscordRest) -> Result<String, RestError> {
    let answer = rest
        .send(Request {
            method: Method::GET,
            path: "/oauth2/applications/@me".into(),
            route: "GET /oauth2/applications/@me",
            bucket: "GET application".into(),
            body: Body::None,
            urgent: false,
        })
        .await?;
    answer
        .as_ref()
        .and_then(|a| a.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or(RestError::Decode {
            route: "GET /oauth2/applications/@me",
            reason: "the answer has no `id`".into(),
        })
}
