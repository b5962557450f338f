//! Everything the fake sends, read with serenity 0.12.5's own models: every gateway frame
//! (HELLO, READY, INTERACTION_CREATE for commands, autocomplete and components, HEARTBEAT_ACK,
//! RECONNECT, INVALID_SESSION, RESUMED) as a `GatewayEvent`, and REST answers as `Message`,
//! `Command`, `CurrentUser` and `CurrentApplicationInfo`. serenity refuses payloads that miss
//! fields it requires (e.g. `member.flags`, `attachment_size_limit`), so this catches them.

mod support;

use fake_discord::{
    ComponentClick, FakeConfig, Invoker, OptionValue, RunningFake, SlashCommand, Upload,
};
use serde_json::{Value, json};
use serenity::all::{Command, CurrentApplicationInfo, CurrentUser, Interaction, Message};
use serenity::model::event::{Event, GatewayEvent};

use support::{Gateway, TINY_PNG, call, http};

fn gateway_event(frame: &Value) -> GatewayEvent {
    serde_json::from_value(frame.clone())
        .unwrap_or_else(|e| panic!("serenity refuses {frame}: {e}"))
}

fn interaction(frame: &Value) -> Interaction {
    match gateway_event(frame) {
        GatewayEvent::Dispatch(_, Event::InteractionCreate(event)) => event.interaction,
        other => panic!("expected INTERACTION_CREATE, got {other:?}"),
    }
}

async fn api(
    fake: &RunningFake,
    method: awc::http::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, _, body) = call(
        http()
            .request(method, format!("{}{path}", fake.api_url()))
            .insert_header(("Authorization", format!("Bot {}", fake.token()))),
        body,
    )
    .await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[actix_rt::test]
async fn serenity_reads_every_frame_and_answer_of_the_fake() {
    let fake = RunningFake::start(FakeConfig::for_tests()).expect("fake starts");
    let control = fake.control();
    let (mut gateway, hello) = Gateway::connect(&format!("{}?v=10", fake.gateway_url())).await;
    assert!(matches!(gateway_event(&hello), GatewayEvent::Hello(1000)));
    let ready = gateway.identify(&format!("Bot {}", fake.token()), 1).await;
    match gateway_event(&ready) {
        GatewayEvent::Dispatch(1, Event::Ready(event)) => {
            assert_eq!(
                event.ready.application.id.get(),
                fake.config().application_id
            );
            assert_eq!(event.ready.guilds.len(), 1);
        }
        other => panic!("expected READY, got {other:?}"),
    }
    gateway.send(json!({"op": 1, "d": 1})).await;
    assert!(matches!(
        gateway_event(&gateway.next_json().await),
        GatewayEvent::HeartbeatAck
    ));

    let app = fake.config().application_id;
    let commands = api(
        &fake,
        awc::http::Method::PUT,
        &format!("/applications/{app}/commands"),
        Some(json!([{"name": "generate", "description": "Make an image", "options": [
            {"type": 3, "name": "prompt", "description": "What", "required": true, "autocomplete": true},
            {"type": 4, "name": "steps", "description": "Steps", "min_value": 1, "max_value": 50},
            {"type": 6, "name": "for", "description": "Someone"},
            {"type": 11, "name": "image", "description": "Start image"}]}])),
    )
    .await;
    let parsed: Vec<Command> =
        serde_json::from_value(commands).expect("serenity reads the stored commands");
    assert_eq!(parsed[0].name, "generate");

    let injected = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "a cat")
                .integer("steps", 20)
                .option("for", OptionValue::User("99".into()))
                .attachment("image", Upload::new("a.png", TINY_PNG.to_vec()))
                .by(Invoker::user(5).with_roles([1, 2])),
        )
        .await
        .expect("inject");
    match interaction(&gateway.next_json().await) {
        Interaction::Command(command) => {
            assert_eq!(command.id.to_string(), injected.id);
            assert_eq!(command.attachment_size_limit, 10 * 1024 * 1024);
            let member = command.member.as_ref().expect("a guild member");
            assert_eq!(member.roles.len(), 2);
            assert_eq!(command.data.resolved.attachments.len(), 1);
            assert_eq!(command.data.resolved.users.len(), 1);
            assert_eq!(command.data.options().len(), 4);
        }
        other => panic!("expected a command, got {other:?}"),
    }

    let typing = control
        .inject_autocomplete(&SlashCommand::new("generate").focused("prompt", "a c"))
        .await
        .expect("autocomplete");
    match interaction(&gateway.next_json().await) {
        Interaction::Autocomplete(auto) => {
            assert_eq!(auto.id.to_string(), typing.id);
            assert_eq!(
                auto.data.autocomplete().map(|f| f.value.to_string()),
                Some("a c".to_string())
            );
        }
        other => panic!("expected autocomplete, got {other:?}"),
    }

    let dm = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "private")
                .by(Invoker::user(6).in_direct_message()),
        )
        .await
        .expect("inject in a DM");
    match interaction(&gateway.next_json().await) {
        Interaction::Command(command) => {
            assert_eq!(command.id.to_string(), dm.id);
            assert!(command.member.is_none());
            assert_eq!(command.user.id.get(), 6);
        }
        other => panic!("expected a command, got {other:?}"),
    }

    let buttons = json!([{"type": 1, "components": [{"type": 2, "style": 1, "label": "Again", "custom_id": "again"}]}]);
    let (status, _, _) = call(
        http().post(format!(
            "{}/interactions/{}/{}/callback",
            fake.api_url(),
            injected.id,
            injected.token
        )),
        Some(json!({"type": 4, "data": {"content": "done", "components": buttons}})),
    )
    .await;
    assert_eq!(status, 204);
    let original = api(
        &fake,
        awc::http::Method::GET,
        &format!("/webhooks/{app}/{}/messages/@original", injected.token),
        None,
    )
    .await;
    let message: Message =
        serde_json::from_value(original.clone()).expect("serenity reads the message");
    assert_eq!(message.content, "done");
    assert_eq!(message.components.len(), 1);
    let click = control
        .click(&ComponentClick::button(
            original["id"].as_str().expect("id"),
            "again",
        ))
        .await
        .expect("click");
    match interaction(&gateway.next_json().await) {
        Interaction::Component(component) => {
            assert_eq!(component.id.to_string(), click.id);
            assert_eq!(component.data.custom_id, "again");
            assert_eq!(component.message.id, message.id);
        }
        other => panic!("expected a component interaction, got {other:?}"),
    }

    let me: CurrentUser =
        serde_json::from_value(api(&fake, awc::http::Method::GET, "/users/@me", None).await)
            .expect("user");
    assert!(me.bot);
    let info: CurrentApplicationInfo = serde_json::from_value(
        api(
            &fake,
            awc::http::Method::GET,
            "/oauth2/applications/@me",
            None,
        )
        .await,
    )
    .expect("application");
    assert_eq!(info.id.get(), app);

    control.request_reconnect().await.expect("reconnect");
    assert!(matches!(
        gateway_event(&gateway.next_json().await),
        GatewayEvent::Reconnect
    ));
    control.invalidate_session(true).await.expect("invalidate");
    assert!(matches!(
        gateway_event(&gateway.next_json().await),
        GatewayEvent::InvalidateSession(true)
    ));
}
