//! The REST routes over real HTTP: authentication, Discord's error answers, command
//! registration, the interaction callback with its window and single acknowledgement, the
//! webhook routes with their 15-minute token, uploads (multipart, `files[n]`, the size limit, the
//! CDN), channel messages, rate-limit headers and armed 429s. A hand-written gateway client plays
//! the connected bot. Every answer the fake gave must match Discord's published response schema.

mod support;

use std::time::Duration;

use awc::http::Method;
use fake_discord::{
    ArmRateLimit, ComponentClick, ControlClient, ControlClientError, FakeConfig, InteractionKind,
    RunningFake, SlashCommand, Upload,
};
use serde_json::{Value, json};

use support::{Gateway, call, fake_png, http, multipart};

struct Bot {
    fake: RunningFake,
    control: ControlClient,
    _gateway: Gateway,
}

impl Bot {
    /// A fake with a connected, identified bot and `/generate` registered.
    async fn start(config: FakeConfig) -> Bot {
        let fake = RunningFake::start(config).expect("fake starts");
        let (mut gateway, _hello) =
            Gateway::connect(&format!("{}?v=10&encoding=json", fake.gateway_url())).await;
        let ready = gateway.identify(&format!("Bot {}", fake.token()), 1).await;
        assert_eq!(ready["t"], "READY");
        let bot = Bot {
            control: fake.control(),
            fake,
            _gateway: gateway,
        };
        let commands = json!([{
            "name": "generate", "description": "Make an image",
            "options": [
                {"type": 3, "name": "prompt", "description": "What to draw", "required": true},
                {"type": 3, "name": "style", "description": "A style", "autocomplete": true},
                {"type": 11, "name": "image", "description": "A start image"}
            ]
        }]);
        let (status, _, body) = bot
            .api(Method::PUT, &bot.commands_path(), Some(commands))
            .await;
        assert_eq!(status, 200, "{body}");
        bot
    }

    fn commands_path(&self) -> String {
        format!(
            "/applications/{}/commands",
            self.fake.config().application_id
        )
    }

    fn request(&self, method: Method, path: &str) -> awc::ClientRequest {
        http()
            .request(method, format!("{}{path}", self.fake.api_url()))
            .insert_header(("Authorization", format!("Bot {}", self.fake.token())))
    }

    async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, awc::http::header::HeaderMap, Value) {
        call(self.request(method, path), body).await
    }

    async fn generate(&self) -> fake_discord::Injected {
        self.control
            .inject_command(&SlashCommand::new("generate").string("prompt", "a cat"))
            .await
            .expect("inject /generate")
    }

    fn callback_path(injected: &fake_discord::Injected) -> String {
        format!("/interactions/{}/{}/callback", injected.id, injected.token)
    }

    fn webhook_path(&self, injected: &fake_discord::Injected, rest: &str) -> String {
        format!(
            "/webhooks/{}/{}{rest}",
            self.fake.config().application_id,
            injected.token
        )
    }

    /// Every answer matched Discord's response schema for its route.
    async fn assert_answers_match_the_schema(&self) {
        for record in self.control.requests().await.expect("log") {
            assert!(
                record.response_schema_errors.is_empty(),
                "{} {} answered outside Discord's schema: {:?}",
                record.method,
                record.route,
                record.response_schema_errors
            );
        }
    }
}

fn error_code(body: &Value) -> Option<u64> {
    body.get("code").and_then(Value::as_u64)
}

#[actix_rt::test]
async fn identity_and_gateway_routes_answer_like_discord() {
    let bot = Bot::start(FakeConfig::for_tests()).await;
    let (status, headers, body) =
        call(http().get(format!("{}/gateway", bot.fake.api_url())), None).await;
    assert_eq!(
        (status, body),
        (200, json!({"url": bot.fake.gateway_url()}))
    );
    for header in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-reset-after",
        "x-ratelimit-bucket",
    ] {
        assert!(headers.contains_key(header), "missing {header}");
    }
    let (status, _, body) = call(
        http().get(format!("{}/gateway/bot", bot.fake.api_url())),
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (401, json!({"message": "401: Unauthorized", "code": 0}))
    );
    let (status, _, body) = bot.api(Method::GET, "/gateway/bot", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["shards"], 1);
    assert_eq!(body["session_start_limit"]["max_concurrency"], 1);
    let (status, _, me) = bot.api(Method::GET, "/users/@me", None).await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], bot.fake.config().application_id.to_string());
    assert_eq!(me["bot"], true);
    let (status, _, app) = bot.api(Method::GET, "/oauth2/applications/@me", None).await;
    assert_eq!(
        (status, app["id"].clone()),
        (200, json!(bot.fake.config().application_id.to_string()))
    );
    let (status, _, body) = bot.api(Method::GET, "/guilds/1/audit-logs", None).await;
    assert_eq!(
        (status, body),
        (404, json!({"message": "404: Not Found", "code": 0}))
    );
    let (status, _, body) = bot.api(Method::DELETE, "/users/@me", None).await;
    assert_eq!((status, error_code(&body)), (405, Some(0)));
    let (status, _, body) = call(
        http().get(format!("{}/api/v9/gateway", bot.fake.base_url())),
        None,
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, Some(50041)));
    let log = bot.control.requests().await.expect("log");
    assert!(
        log.iter()
            .any(|r| r.route == "(not implemented by fake-discord)"
                && r.path.ends_with("/audit-logs"))
    );
    bot.assert_answers_match_the_schema().await;
}

#[actix_rt::test]
async fn bulk_overwrite_keeps_ids_and_refuses_bad_commands() {
    let bot = Bot::start(FakeConfig::for_tests()).await;
    let first = bot.control.commands().await.expect("commands").global;
    let again = json!([{"name": "generate", "description": "Make an image, again"}, {"name": "status", "description": "Fleet status"}]);
    let (status, _, stored) = bot
        .api(Method::PUT, &bot.commands_path(), Some(again))
        .await;
    assert_eq!(status, 200);
    assert_eq!(stored[0]["id"], first[0]["id"], "same name, same id");
    assert_eq!(stored.as_array().map(Vec::len), Some(2));
    let (_, _, listed) = bot.api(Method::GET, &bot.commands_path(), None).await;
    assert_eq!(listed, stored);

    let (status, _, body) = bot
        .api(
            Method::PUT,
            &bot.commands_path(),
            Some(json!([{"name": "Bad Name", "description": "x"}])),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, Some(50035)));
    assert_eq!(
        body["errors"]["0"]["name"]["_errors"][0]["code"],
        "APPLICATION_COMMAND_INVALID_NAME"
    );
    assert_eq!(
        bot.control.commands().await.expect("commands").global.len(),
        2,
        "a refused set changes nothing"
    );

    let guild = bot.fake.config().guild_ids[0];
    let app = bot.fake.config().application_id;
    let path = format!("/applications/{app}/guilds/{guild}/commands");
    let (status, _, body) = bot
        .api(
            Method::PUT,
            &path,
            Some(json!([{"name": "local", "description": "guild only"}])),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["guild_id"], guild.to_string());
    let (status, _, body) = bot
        .api(
            Method::PUT,
            &format!("/applications/{app}/guilds/42/commands"),
            Some(json!([])),
        )
        .await;
    assert_eq!((status, error_code(&body)), (403, Some(50001)));
    let (status, _, body) = bot
        .api(Method::PUT, "/applications/42/commands", Some(json!([])))
        .await;
    assert_eq!((status, error_code(&body)), (403, Some(20012)));
    bot.assert_answers_match_the_schema().await;
}

#[actix_rt::test]
async fn an_interaction_takes_one_valid_callback() {
    let bot = Bot::start(FakeConfig::for_tests()).await;
    let injected = bot.generate().await;
    let wrong_token = format!("/interactions/{}/not-the-token/callback", injected.id);
    let (status, _, body) = bot
        .api(Method::POST, &wrong_token, Some(json!({"type": 5})))
        .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"message": "Unknown interaction", "code": 10062})
        )
    );
    let path = Bot::callback_path(&injected);
    let (status, _, body) = bot
        .api(
            Method::POST,
            &path,
            Some(json!({"type": 7, "data": {"content": "x"}})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, Some(50035)),
        "UPDATE_MESSAGE is for components only"
    );
    assert!(body["errors"]["type"]["_errors"][0]["code"].is_string());
    let (status, _, body) = bot
        .api(
            Method::POST,
            &path,
            Some(json!({"type": 4, "data": {"content": "x".repeat(2001)}})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, Some(50035)));
    assert_eq!(
        body["errors"]["data"]["content"]["_errors"][0]["code"],
        "BASE_TYPE_MAX_LENGTH"
    );
    assert_eq!(
        bot.control
            .interaction(&injected.id)
            .await
            .expect("view")
            .acknowledgement,
        None
    );

    let (status, _, _) = bot
        .api(
            Method::POST,
            &path,
            Some(json!({"type": 4, "data": {"content": "hello"}})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, body) = bot.api(Method::POST, &path, Some(json!({"type": 5}))).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": "Interaction has already been acknowledged.", "code": 40060})
        )
    );
    let view = bot.control.interaction(&injected.id).await.expect("view");
    assert_eq!(view.acknowledgement.map(|a| a.callback_type), Some(4));
    let original = view.original.expect("the response message");
    assert_eq!(original.content(), "hello");
    assert_eq!(original.message["type"], 20);
    assert_eq!(original.message["interaction_metadata"]["id"], injected.id);

    let second = bot.generate().await;
    let (status, _, body) = bot
        .api(
            Method::POST,
            &format!("{}?with_response=true", Bot::callback_path(&second)),
            Some(json!({"type": 5, "data": {"flags": 64}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["interaction"]["id"], second.id);
    assert_eq!(body["interaction"]["response_message_loading"], true);
    assert_eq!(body["interaction"]["response_message_ephemeral"], true);
    assert_eq!(
        body.get("resource"),
        None,
        "a deferred response has no resource yet"
    );
    let deferred = bot
        .control
        .interaction(&second.id)
        .await
        .expect("view")
        .original
        .expect("placeholder");
    assert_eq!(body["interaction"]["response_message_id"], deferred.id);
    assert_eq!(deferred.flags(), 64 | 128);
    let third = bot.generate().await;
    let (status, _, body) = bot
        .api(
            Method::POST,
            &format!("{}?with_response=true", Bot::callback_path(&third)),
            Some(json!({"type": 4, "data": {"content": "now"}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["resource"]["type"].clone(),
            body["resource"]["message"]["content"].clone()
        ),
        (json!(4), json!("now"))
    );
    bot.assert_answers_match_the_schema().await;
}

#[actix_rt::test]
async fn a_callback_after_the_window_is_an_unknown_interaction_and_the_token_dies() {
    let bot = Bot::start(FakeConfig {
        ack_window: Duration::ZERO,
        ..FakeConfig::for_tests()
    })
    .await;
    let injected = bot.generate().await;
    let (status, _, body) = bot
        .api(
            Method::POST,
            &Bot::callback_path(&injected),
            Some(json!({"type": 5})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, Some(10062)));
    let (status, _, body) = bot
        .api(
            Method::PATCH,
            &bot.webhook_path(&injected, "/messages/@original"),
            Some(json!({"content": "late"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"message": "Invalid Webhook Token", "code": 50027})
        )
    );
    let view = bot.control.interaction(&injected.id).await.expect("view");
    assert!(!view.token_valid);
    assert_eq!(view.acknowledgement, None);
}

#[actix_rt::test]
async fn webhook_routes_edit_the_original_and_manage_followups_until_the_token_expires() {
    let bot = Bot::start(FakeConfig::for_tests()).await;
    let injected = bot.generate().await;
    let original_path = bot.webhook_path(&injected, "/messages/@original");
    let (status, _, body) = bot
        .api(
            Method::PATCH,
            &original_path,
            Some(json!({"content": "early"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (404, Some(10008)),
        "nothing to edit before the callback"
    );
    let (status, _, body) = bot
        .api(
            Method::POST,
            &bot.webhook_path(&injected, ""),
            Some(json!({"content": "early"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, Some(10015)));

    let (status, _, _) = bot
        .api(
            Method::POST,
            &Bot::callback_path(&injected),
            Some(json!({"type": 5})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, loading) = bot.api(Method::GET, &original_path, None).await;
    assert_eq!(
        (status, loading["flags"].clone(), loading["content"].clone()),
        (200, json!(128), json!(""))
    );

    // A followup while the deferred response is loading edits that response.
    let (status, _, first) = bot
        .api(
            Method::POST,
            &bot.webhook_path(&injected, ""),
            Some(json!({"content": "working"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["id"], loading["id"]);
    let (status, _, followup) = bot
        .api(
            Method::POST,
            &bot.webhook_path(&injected, ""),
            Some(json!({"content": "only you", "flags": 64})),
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(followup["id"], loading["id"]);
    assert_eq!(followup["flags"], 64);
    let followup_path = bot.webhook_path(
        &injected,
        &format!("/messages/{}", followup["id"].as_str().expect("id")),
    );
    let (status, _, edited) = bot
        .api(
            Method::PATCH,
            &followup_path,
            Some(json!({"content": "only you, edited"})),
        )
        .await;
    assert_eq!(
        (status, edited["content"].clone()),
        (200, json!("only you, edited"))
    );
    assert!(edited["edited_timestamp"].is_string());
    let (status, _, body) = bot.api(Method::DELETE, &followup_path, None).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, _, body) = bot.api(Method::GET, &followup_path, None).await;
    assert_eq!((status, error_code(&body)), (404, Some(10008)));
    let (status, _, body) = bot
        .api(
            Method::GET,
            &bot.webhook_path(&injected, "/messages/1"),
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (404, Some(10008)),
        "not a message of this interaction"
    );

    let view = bot.control.interaction(&injected.id).await.expect("view");
    let original = view.original.expect("original");
    assert_eq!(original.content(), "working");
    assert_eq!(original.history.len(), 2);
    assert_eq!(view.followups.len(), 1);
    assert!(view.followups[0].deleted_at_ms.is_some());
    assert_eq!(view.followups[0].history.len(), 2);

    bot.control
        .expire_token(&injected.id)
        .await
        .expect("expire");
    let (status, _, body) = bot
        .api(
            Method::PATCH,
            &original_path,
            Some(json!({"content": "too late"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (401, Some(50027)));
    bot.assert_answers_match_the_schema().await;
}

#[actix_rt::test]
async fn uploads_go_through_files_n_to_the_cdn_within_the_size_limit() {
    let bot = Bot::start(FakeConfig {
        attachment_size_limit: 1000,
        ..FakeConfig::for_tests()
    })
    .await;
    let image = fake_png(8, 4);
    let injected = bot
        .control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "from this")
                .attachment("image", Upload::new("start.png", image.clone())),
        )
        .await
        .expect("inject");
    assert_eq!(injected.payload["attachment_size_limit"], 1000);
    let resolved = injected.payload["data"]["resolved"]["attachments"]
        .as_object()
        .and_then(|m| m.values().next())
        .cloned()
        .expect("a resolved attachment");
    assert_eq!(resolved["width"], 8);
    let url = resolved["url"].as_str().expect("url");
    assert_eq!(bot.control.download(url).await.expect("download"), image);

    let (status, _, _) = bot
        .api(
            Method::POST,
            &Bot::callback_path(&injected),
            Some(json!({"type": 5})),
        )
        .await;
    assert_eq!(status, 204);
    let original_path = bot.webhook_path(&injected, "/messages/@original");
    let result = fake_png(3, 3);
    let (content_type, body) = multipart(
        &json!({"content": "here", "attachments": [{"id": 0, "filename": "out.png", "description": "result"}]}),
        &[("files[0]", "out.png", &result)],
    );
    let mut response = bot
        .request(Method::PATCH, &original_path)
        .insert_header(("Content-Type", content_type))
        .send_body(body)
        .await
        .expect("upload");
    assert_eq!(response.status().as_u16(), 200);
    let message: Value = response.json().await.expect("message");
    assert_eq!(message["attachments"][0]["filename"], "out.png");
    assert_eq!(message["attachments"][0]["description"], "result");
    let url = message["attachments"][0]["url"].as_str().expect("url");
    assert_eq!(bot.control.download(url).await.expect("download"), result);

    let (content_type, body) = multipart(
        &json!({"attachments": [{"id": 5}]}),
        &[("files[0]", "a.png", &result)],
    );
    let mut response = bot
        .request(Method::PATCH, &original_path)
        .insert_header(("Content-Type", content_type))
        .send_body(body)
        .await
        .expect("upload");
    let refused: Value = response.json().await.expect("error");
    assert_eq!(refused["code"], 50035);
    assert!(refused["errors"]["attachments"]["0"]["id"]["_errors"].is_array());

    let second = bot.generate().await;
    let (content_type, body) = multipart(
        &json!({"type": 4, "data": {"content": "with a file", "attachments": [{"id": 0, "filename": "direct.png"}]}}),
        &[("files[0]", "direct.png", &result)],
    );
    let response = bot
        .request(Method::POST, &Bot::callback_path(&second))
        .insert_header(("Content-Type", content_type))
        .send_body(body)
        .await
        .expect("callback with a file");
    assert_eq!(response.status().as_u16(), 204);
    let answered = bot
        .control
        .interaction(&second.id)
        .await
        .expect("view")
        .original
        .expect("message");
    assert_eq!(answered.attachments()[0]["filename"], "direct.png");

    let too_big = vec![7u8; 1001];
    let (content_type, body) = multipart(
        &json!({"content": "big"}),
        &[("files[0]", "big.bin", &too_big)],
    );
    let mut response = bot
        .request(Method::PATCH, &original_path)
        .insert_header(("Content-Type", content_type))
        .send_body(body)
        .await
        .expect("upload");
    assert_eq!(response.status().as_u16(), 413);
    let refused: Value = response.json().await.expect("error");
    assert_eq!(
        refused,
        json!({"message": "Request entity too large", "code": 40005})
    );
    bot.assert_answers_match_the_schema().await;
}

#[actix_rt::test]
async fn channel_messages_are_created_and_edited_with_discords_rules() {
    let bot = Bot::start(FakeConfig::for_tests()).await;
    let channel = bot.fake.config().channel_ids[0];
    let path = format!("/channels/{channel}/messages");
    let (status, _, message) = bot
        .api(Method::POST, &path, Some(json!({"content": "fleet is up"})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(message["type"], 0);
    assert_eq!(message["author"]["bot"], true);
    let (status, _, body) = bot
        .api(Method::POST, &path, Some(json!({"content": ""})))
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": "Cannot send an empty message", "code": 50006})
        )
    );
    let rows: Vec<Value> = (0..6)
        .map(|i| json!({"type": 1, "components": [{"type": 2, "style": 1, "label": "b", "custom_id": format!("b{i}")}]}))
        .collect();
    let (status, _, body) = bot
        .api(
            Method::POST,
            &path,
            Some(json!({"content": "x", "components": rows})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, Some(50035)));
    assert_eq!(
        body["errors"]["components"]["_errors"][0]["code"],
        "BASE_TYPE_MAX_LENGTH"
    );
    let (status, _, body) = bot
        .api(
            Method::POST,
            "/channels/99/messages",
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, Some(10003)));
    let id = message["id"].as_str().expect("id");
    let (status, _, edited) = bot
        .api(
            Method::PATCH,
            &format!("{path}/{id}"),
            Some(json!({"content": "fleet is up (2 GPUs)"})),
        )
        .await;
    assert_eq!(
        (status, edited["content"].clone()),
        (200, json!("fleet is up (2 GPUs)"))
    );
    let messages = bot
        .control
        .channel_messages(channel)
        .await
        .expect("messages");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].history.len(), 2);
    bot.assert_answers_match_the_schema().await;
}

#[actix_rt::test]
async fn every_answer_has_rate_limit_headers_and_armed_429s_follow_the_docs() {
    let bot = Bot::start(FakeConfig {
        // One window for the whole test, so the count cannot reset between two requests.
        rate_limit_window: Duration::from_secs(3600),
        ..FakeConfig::for_tests()
    })
    .await;
    let remaining = |headers: &awc::http::header::HeaderMap| {
        headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
    };
    let (_, first, _) = bot.api(Method::GET, "/users/@me", None).await;
    let (_, second, _) = bot.api(Method::GET, "/users/@me", None).await;
    assert_eq!(
        first.get("x-ratelimit-bucket"),
        second.get("x-ratelimit-bucket")
    );
    assert_eq!(remaining(&second), remaining(&first).map(|r| r - 1));

    bot.control
        .arm_rate_limit(&ArmRateLimit {
            count: 1,
            method: None,
            route: None,
            retry_after: 60.0,
            global: true,
        })
        .await
        .expect("arm");
    let (status, headers, body) = bot.api(Method::GET, "/users/@me", None).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"message": "You are being rate limited.", "retry_after": 60.0, "global": true})
    );
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("60")
    );
    assert_eq!(
        headers
            .get("x-ratelimit-global")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let (status, _, _) = bot.api(Method::GET, "/users/@me", None).await;
    assert_eq!(status, 200, "one armed 429 only");
    let limited = bot.control.rate_limited().await.expect("429s");
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].route, "/users/@me");
    assert_eq!(
        limited[0].retry.as_ref().map(|r| r.waited),
        Some(false),
        "the retry came at once"
    );

    let refused = bot
        .control
        .arm_rate_limit(&ArmRateLimit {
            count: 1,
            method: Some("PATCH".into()),
            route: Some("/webhooks/{id}/original".into()),
            retry_after: 1.0,
            global: false,
        })
        .await
        .expect_err("not a route of the description");
    assert!(matches!(
        refused,
        ControlClientError::Refused { status: 400, .. }
    ));
}

#[actix_rt::test]
async fn autocomplete_and_button_interactions_round_trip() {
    let bot = Bot::start(FakeConfig::for_tests()).await;
    let typing = bot
        .control
        .inject_autocomplete(
            &SlashCommand::new("generate")
                .string("prompt", "a cat")
                .focused("style", "wat"),
        )
        .await
        .expect("autocomplete");
    assert_eq!(typing.payload["type"], 4);
    let focused = &typing.payload["data"]["options"][1];
    assert_eq!(
        (
            focused["name"].clone(),
            focused["focused"].clone(),
            focused["value"].clone()
        ),
        (json!("style"), json!(true), json!("wat"))
    );
    let path = Bot::callback_path(&typing);
    let (status, _, _) = bot
        .api(
            Method::POST,
            &path,
            Some(json!({"type": 4, "data": {"content": "no"}})),
        )
        .await;
    assert_eq!(status, 400, "autocomplete only takes choices");
    let choices = json!([{"name": "watercolour", "value": "watercolour"}]);
    let (status, _, _) = bot
        .api(
            Method::POST,
            &path,
            Some(json!({"type": 8, "data": {"choices": choices}})),
        )
        .await;
    assert_eq!(status, 204);
    let view = bot.control.interaction(&typing.id).await.expect("view");
    assert_eq!(view.kind, InteractionKind::Autocomplete);
    assert_eq!(view.autocomplete_choices, Some(choices));

    let command = bot.generate().await;
    let buttons = json!([{"type": 1, "components": [
        {"type": 2, "style": 1, "label": "Again", "custom_id": "again"},
        {"type": 2, "style": 4, "label": "Cancel", "custom_id": "cancel"}]}]);
    let (status, _, _) = bot
        .api(
            Method::POST,
            &Bot::callback_path(&command),
            Some(json!({"type": 4, "data": {"content": "done", "components": buttons}})),
        )
        .await;
    assert_eq!(status, 204);
    let message = bot
        .control
        .interaction(&command.id)
        .await
        .expect("view")
        .original
        .expect("message");
    let missing = bot
        .control
        .click(&ComponentClick::button(&message.id, "nope"))
        .await
        .expect_err("no such button");
    assert!(matches!(
        missing,
        ControlClientError::Refused { status: 404, .. }
    ));
    let click = bot
        .control
        .click(&ComponentClick::button(&message.id, "cancel"))
        .await
        .expect("click");
    assert_eq!(click.payload["type"], 3);
    assert_eq!(
        click.payload["data"],
        json!({"custom_id": "cancel", "component_type": 2})
    );
    assert_eq!(click.payload["message"]["id"], message.id);
    let (status, _, _) = bot
        .api(
            Method::POST,
            &Bot::callback_path(&click),
            Some(json!({"type": 7, "data": {"content": "cancelled", "components": []}})),
        )
        .await;
    assert_eq!(status, 204);
    let clicked = bot.control.interaction(&click.id).await.expect("view");
    let updated = clicked.original.expect("the clicked message");
    assert_eq!(updated.id, message.id);
    assert_eq!(updated.content(), "cancelled");
    assert!(updated.custom_ids().is_empty());

    // DEFERRED_UPDATE_MESSAGE, then an edit of @original: the clicked message changes.
    let again = bot
        .control
        .click(&ComponentClick::button(&message.id, "again"))
        .await;
    assert!(again.is_err(), "the button is gone after the update");
    let third = bot.generate().await;
    let (status, _, _) = bot
        .api(
            Method::POST,
            &Bot::callback_path(&third),
            Some(json!({"type": 4, "data": {"content": "pick", "components": buttons}})),
        )
        .await;
    assert_eq!(status, 204);
    let third_message = bot
        .control
        .interaction(&third.id)
        .await
        .expect("view")
        .original
        .expect("message");
    let click = bot
        .control
        .click(&ComponentClick::button(&third_message.id, "again"))
        .await
        .expect("click");
    let (status, _, _) = bot
        .api(
            Method::POST,
            &Bot::callback_path(&click),
            Some(json!({"type": 6})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, edited) = bot
        .api(
            Method::PATCH,
            &bot.webhook_path(&click, "/messages/@original"),
            Some(json!({"content": "working on it"})),
        )
        .await;
    assert_eq!(
        (status, edited["id"].clone()),
        (200, json!(third_message.id))
    );

    // MODAL: the fake keeps what the bot asked for.
    let modal_for = bot.generate().await;
    let modal = json!({"custom_id": "details", "title": "Details", "components": [{"type": 1, "components": [
        {"type": 4, "custom_id": "negative", "style": 2, "label": "Negative prompt"}]}]});
    let (status, _, body) = bot
        .api(
            Method::POST,
            &Bot::callback_path(&modal_for),
            Some(json!({"type": 9, "data": modal})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        bot.control
            .interaction(&modal_for.id)
            .await
            .expect("view")
            .modal,
        Some(modal)
    );
    bot.assert_answers_match_the_schema().await;
}

#[actix_rt::test]
async fn the_control_api_says_what_is_wrong() {
    let fake = RunningFake::start(FakeConfig::for_tests()).expect("fake starts");
    let control = fake.control();
    let no_bot = control
        .inject_command(&SlashCommand::new("generate"))
        .await
        .expect_err("no session yet");
    assert!(
        matches!(&no_bot, ControlClientError::Refused { status: 409, message, .. } if message.contains("gateway"))
    );
    drop(fake);

    let bot = Bot::start(FakeConfig::for_tests()).await;
    let unknown = bot
        .control
        .inject_command(&SlashCommand::new("imagine"))
        .await
        .expect_err("not registered");
    assert!(
        matches!(&unknown, ControlClientError::Refused { status: 404, message, .. } if message.contains("/imagine"))
    );
    let missing = bot
        .control
        .inject_command(&SlashCommand::new("generate"))
        .await
        .expect_err("prompt is required");
    assert!(
        matches!(&missing, ControlClientError::Refused { status: 400, message, .. } if message.contains("prompt"))
    );
    let wrong = bot
        .control
        .inject_command(&SlashCommand::new("generate").integer("prompt", 3))
        .await
        .expect_err("prompt is a string");
    assert!(
        matches!(&wrong, ControlClientError::Refused { status: 400, message, .. } if message.contains("type 3"))
    );
}
