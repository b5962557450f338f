//! Every bot command end to end: a user acts in the fake Discord → the bot (serenity gateway,
//! the session, Discord's REST API through `discord.api_proxy`) → the fleet → `fake-comfyui`
//! → the result attached in the fake Discord; and each command's error paths. Waits are on the
//! fake's change notifications, never sleeps.

mod support;

use fake_discord::{Invoker, SlashCommand};
use support::discord_bot::{
    answer_says, assert_valid_requests, bot_config, fake_discord, field, job_message, job_says,
    start_app,
};

#[actix_rt::test]
async fn generate_runs_on_the_fleet_and_the_result_comes_back_with_its_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let config = bot_config(dir.path(), &fake, 1, "20ms");
    let (app, _trigger) = start_app(config, &control).await;
    let commands = control.commands().await.unwrap();
    let names: Vec<&str> = commands
        .global
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for expected in [
        "generate", "editflux", "editqwen", "upscale", "status", "help", "loras", "cancel", "fleet",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} not registered: {names:?}"
        );
    }

    let injected = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "a lighthouse at dawn")
                .string("size", "832x1216")
                .integer("steps", 12)
                .by(Invoker::user(4242).with_roles([77])),
        )
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&injected.id, |i| job_says(i, "Done"))
        .await
        .unwrap();
    assert_eq!(
        view.acknowledgement.as_ref().map(|a| a.callback_type),
        Some(5)
    );
    assert!(answer_says(&view, "queued") || answer_says(&view, "next in the queue"));
    assert_eq!(
        view.original.as_ref().unwrap().flags() & 64,
        64,
        "the receipt is private"
    );
    let result = job_message(&view).unwrap();
    assert_eq!(result.flags() & 64, 0, "the result is public");
    let attachments = result.attachments();
    assert_eq!(attachments.len(), 1, "{:?}", result.message);
    assert_eq!(attachments[0]["content_type"], "image/png");
    assert_eq!(attachments[0]["width"], 832);
    assert_eq!(attachments[0]["height"], 1216);
    let png = control
        .download(attachments[0]["url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(field(result, "prompt"), Some("a lighthouse at dawn"));
    assert_eq!(field(result, "size"), Some("832x1216"));
    assert!(
        field(result, "seed").is_some(),
        "the seed used is on the message"
    );
    let ids = result.custom_ids();
    assert!(ids.contains(&"cf1:reroll:generate".to_string()), "{ids:?}");
    assert!(ids.contains(&"cf1:upscale:0".to_string()), "{ids:?}");
    assert!(
        result.history.iter().any(|v| v.message["content"]
            .as_str()
            .unwrap_or("")
            .contains("Running")),
        "progress was shown while it ran"
    );
    assert_valid_requests(&control).await;
    app.stop().await;
}
