//! Every bot command end to end: a user acts in the fake Discord → the bot (serenity gateway,
//! the session, Discord's REST API through `discord.api_proxy`) → the fleet → `fake-comfyui`
//! → the result attached in the fake Discord; and each command's error paths. Waits are on the
//! fake's change notifications, never sleeps.

mod support;

/// The fake's guild, where interactions happen unless a test says otherwise.
const GUILD: u64 = 1_180_000_000_000_000_100;

use fake_discord::{ComponentClick, Invoker, SlashCommand, Upload};
use support::discord_bot::{
    answer_says, assert_valid_requests, bot_config, fake_discord, fake_discord_with, field,
    job_message, job_says, start_app,
};
use support::images::{noisy_png, png};

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

#[actix_rt::test]
async fn image_commands_take_attachments_and_send_back_their_results() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let (app, _trigger) = start_app(bot_config(dir.path(), &fake, 1, "10ms"), &control).await;

    let flux = control
        .inject_command(
            &SlashCommand::new("editflux")
                .attachment("image", Upload::new("cat.png", png(64, 48)))
                .string("instruction", "make the cat blue"),
        )
        .await
        .unwrap();
    let qwen = control
        .inject_command(
            &SlashCommand::new("editqwen")
                .attachment("image", Upload::new("room.png", png(96, 64)))
                .attachment("image2", Upload::new("sofa.jpg", png(32, 32)))
                .string(
                    "instruction",
                    "put the sofa from image 2 in the room of image 1",
                ),
        )
        .await
        .unwrap();
    let upscale = control
        .inject_command(
            &SlashCommand::new("upscale")
                .attachment("image", Upload::new("small.png", png(40, 30))),
        )
        .await
        .unwrap();
    for (id, command) in [
        (&flux.id, "editflux"),
        (&qwen.id, "editqwen"),
        (&upscale.id, "upscale"),
    ] {
        let view = control
            .wait_for_interaction(id, |i| job_says(i, "Done") || answer_says(i, "⚠"))
            .await
            .unwrap();
        let result = job_message(&view).unwrap_or_else(|| panic!("/{command}: {view:?}"));
        assert!(
            result.content().contains("Done"),
            "/{command}: {}",
            result.content()
        );
        assert_eq!(result.attachments().len(), 1, "/{command}");
        let image = field(result, "image").unwrap();
        assert!(
            image.starts_with('[') && image.contains("](http"),
            "/{command}: {image}"
        );
        let ids = result.custom_ids();
        assert!(ids.contains(&format!("cf1:reroll:{command}")), "{ids:?}");
        assert_eq!(
            ids.contains(&"cf1:upscale:0".to_string()),
            command != "upscale",
            "/{command}: an upscale is not offered another upscale"
        );
    }
    let flux = control.interaction(&flux.id).await.unwrap();
    assert_eq!(
        field(job_message(&flux).unwrap(), "instruction"),
        Some("make the cat blue")
    );
    // The bot fetched each attachment from the fake's CDN (through the proxy's origin).
    let log = control.requests().await.unwrap();
    let downloads = log
        .iter()
        .filter(|r| {
            r.route == "/attachments/{channel_id}/{attachment_id}/{filename}" && r.method == "GET"
        })
        .count();
    assert_eq!(downloads, 4);
    assert_valid_requests(&control).await;
    app.stop().await;
}

#[actix_rt::test]
async fn help_status_loras_pages_and_autocomplete_answer_from_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let (app, _trigger) = start_app(bot_config(dir.path(), &fake, 1, "10ms"), &control).await;

    let help = control
        .inject_command(&SlashCommand::new("help"))
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&help.id, |i| i.original.is_some())
        .await
        .unwrap();
    assert_eq!(view.acknowledgement.as_ref().unwrap().callback_type, 4);
    let text = view.original.as_ref().unwrap();
    assert!(text.content().contains("`/generate`") && text.content().contains("Re-roll"));
    assert_eq!(text.flags() & 64, 64);

    let status = control
        .inject_command(&SlashCommand::new("status"))
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&status.id, |i| answer_says(i, "Instances"))
        .await
        .unwrap();
    let text = view.original.unwrap().content().to_string();
    assert!(
        text.contains("CPU") && text.contains("Queue") && text.contains("Your jobs"),
        "{text}"
    );

    let loras = control
        .inject_command(&SlashCommand::new("loras"))
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&loras.id, |i| answer_says(i, "page 1 of 2"))
        .await
        .unwrap();
    let page = view.original.unwrap();
    assert!(page.content().contains("film_grain.safetensors"));
    let next = page.custom_ids()[1].clone();
    let click = control
        .click(&ComponentClick::button(&page.id, &next))
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&click.id, |i| i.acknowledgement.is_some())
        .await
        .unwrap();
    assert_eq!(
        view.acknowledgement.unwrap().callback_type,
        7,
        "the page is turned in place"
    );
    let turned = control
        .wait_for_interaction(&loras.id, |i| answer_says(i, "page 2 of 2"))
        .await
        .unwrap();
    assert!(turned.original.unwrap().content().contains("style_23"));

    let typed = control
        .inject_autocomplete(
            &SlashCommand::new("generate")
                .string("prompt", "x")
                .focused("lora", "FILM"),
        )
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&typed.id, |i| i.autocomplete_choices.is_some())
        .await
        .unwrap();
    assert_eq!(
        view.autocomplete_choices.unwrap(),
        serde_json::json!([{"name": "film_grain.safetensors", "value": "film_grain.safetensors"}])
    );
    let typed = control
        .inject_autocomplete(&SlashCommand::new("upscale").focused("model", ""))
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&typed.id, |i| i.autocomplete_choices.is_some())
        .await
        .unwrap();
    let names: Vec<String> = view
        .autocomplete_choices
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["4x_NMKD-Siax.pth", "RealESRGAN_x4plus.safetensors"]);
    assert_valid_requests(&control).await;
    app.stop().await;
}

#[actix_rt::test]
async fn jobs_are_cancelled_by_their_button_and_by_the_command_and_only_by_their_owner() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let (app, _trigger) = start_app(bot_config(dir.path(), &fake, 1, "1s"), &control).await;
    let ann = || Invoker::user(11);
    let first = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "slow one")
                .by(ann()),
        )
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&first.id, |i| job_says(i, "Running"))
        .await
        .unwrap();
    let message = job_message(&view).unwrap();
    let cancel = message.custom_ids()[0].clone();
    assert!(cancel.starts_with("cf1:cancel:"), "{cancel}");
    let stranger = control
        .click(&ComponentClick::button(&message.id, &cancel).by(Invoker::user(99)))
        .await
        .unwrap();
    let refused = control
        .wait_for_interaction(&stranger.id, |i| !i.followups.is_empty())
        .await
        .unwrap();
    assert!(
        refused.followups[0]
            .content()
            .contains("started by someone else")
    );
    assert_eq!(refused.followups[0].flags() & 64, 64);
    control
        .click(&ComponentClick::button(&message.id, &cancel).by(ann()))
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&first.id, |i| job_says(i, "Cancelled"))
        .await
        .unwrap();
    assert!(
        job_message(&view).unwrap().custom_ids().is_empty(),
        "no buttons left"
    );

    let second = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "another")
                .by(ann()),
        )
        .await
        .unwrap();
    control
        .wait_for_interaction(&second.id, |i| job_message(i).is_some())
        .await
        .unwrap();
    let cancel = control
        .inject_command(&SlashCommand::new("cancel").by(ann()))
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&cancel.id, |i| answer_says(i, "cancelled"))
        .await
        .unwrap();
    assert_eq!(view.original.unwrap().flags() & 64, 64);
    control
        .wait_for_interaction(&second.id, |i| job_says(i, "Cancelled"))
        .await
        .unwrap();
    assert_valid_requests(&control).await;
    app.stop().await;
}

#[actix_rt::test]
async fn fleet_commands_need_an_operator_role() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let mut config = bot_config(dir.path(), &fake, 1, "10ms");
    config.discord.operator_roles = vec!["900".into()];
    config.discord.guilds = vec![GUILD];
    let (app, _trigger) = start_app(config, &control).await;
    let commands = control.commands().await.unwrap();
    assert!(commands.global.is_empty(), "registered in the guild only");
    assert_eq!(commands.guilds[&GUILD.to_string()].len(), 9);
    let operator = || Invoker::user(1).with_roles([900]);
    let cases = [
        (
            SlashCommand::new("fleet")
                .subcommand("metrics")
                .by(operator()),
            "queue 0, running 0",
        ),
        (
            SlashCommand::new("fleet")
                .subcommand("pause")
                .by(operator()),
            "The queue is paused now",
        ),
        (
            SlashCommand::new("fleet")
                .subcommand("metrics")
                .by(operator()),
            "queue 0 (paused)",
        ),
        (
            SlashCommand::new("fleet")
                .subcommand("resume")
                .by(operator()),
            "The queue is running now",
        ),
        (
            SlashCommand::new("fleet")
                .subcommand("drain")
                .string("instance", "cpu0")
                .by(operator()),
            "Draining `cpu0`",
        ),
        (
            SlashCommand::new("fleet")
                .subcommand("restart")
                .string("instance", "cpu0")
                .by(operator()),
            "Restarting `cpu0`",
        ),
        (
            SlashCommand::new("fleet")
                .subcommand("drain")
                .string("instance", "gpu42")
                .by(operator()),
            "no instance `gpu42`",
        ),
        (
            SlashCommand::new("fleet")
                .subcommand("metrics")
                .by(Invoker::user(2).with_roles([5])),
            "operator roles",
        ),
    ];
    for (command, says) in cases {
        let injected = control.inject_command(&command).await.unwrap();
        let view = control
            .wait_for_interaction(&injected.id, |i| answer_says(i, says))
            .await
            .unwrap();
        assert_eq!(view.original.unwrap().flags() & 64, 64);
    }
    app.stop().await;
}

#[actix_rt::test]
async fn bad_requests_get_private_answers_that_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let mut config = bot_config(dir.path(), &fake, 1, "10ms");
    config.limits.per_user = vec![comfy_fleet_actors::rate_limit::WindowLimit::new(
        1,
        std::time::Duration::from_secs(600),
    )];
    config.limits.max_image_mb = 1;
    let (app, _trigger) = start_app(config, &control).await;
    let by = |user: u64| Invoker::user(user);
    let cases: Vec<(SlashCommand, &str)> = vec![
        (
            SlashCommand::new("generate")
                .string("prompt", "x")
                .string("size", "1024x1024")
                .string("aspect", "16:9")
                .by(by(1)),
            "`aspect` cannot be given with `size`",
        ),
        (
            SlashCommand::new("upscale")
                .attachment(
                    "image",
                    Upload::new("notes.png", b"these are my notes".to_vec()),
                )
                .by(by(2)),
            "not a PNG, JPEG or WebP image (it looks like text)",
        ),
        (
            SlashCommand::new("upscale")
                .attachment("image", Upload::new("huge.png", noisy_png(800)))
                .by(by(3)),
            "images may be at most 1 MiB",
        ),
        (
            SlashCommand::new("generate")
                .string("prompt", "x")
                .string("model", "not_installed.safetensors")
                .by(by(4)),
            "`model`: \"not_installed.safetensors\" is not one of the allowed values: sd_xl_base_1.0.safetensors",
        ),
    ];
    for (command, says) in cases {
        let injected = control.inject_command(&command).await.unwrap();
        let view = control
            .wait_for_interaction(&injected.id, |i| answer_says(i, says))
            .await
            .unwrap_or_else(|e| panic!("{says}: {e}"));
        assert_eq!(view.original.unwrap().flags() & 64, 64, "{says}: private");
        assert!(view.followups.is_empty(), "{says}: no public message");
    }
    // The rate limit: the first job runs, the second waits its turn, said with the wait.
    let first = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "one")
                .by(by(5)),
        )
        .await
        .unwrap();
    control
        .wait_for_interaction(&first.id, |i| job_message(i).is_some())
        .await
        .unwrap();
    let second = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "two")
                .by(by(5)),
        )
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&second.id, |i| answer_says(i, "Not now"))
        .await
        .unwrap();
    let text = view.original.unwrap().content().to_string();
    assert!(
        text.contains("1 job per 10m") && text.contains("about 10 min"),
        "{text}"
    );
    assert_valid_requests(&control).await;
    app.stop().await;
}

#[actix_rt::test]
async fn failures_of_comfyui_a_full_queue_and_other_channels_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let mut config = bot_config(dir.path(), &fake, 1, "300ms");
    config
        .comfyui
        .command
        .extend(["--fake-fail-node".into(), "KSampler".into()]);
    config.scheduler.queue_capacity = 1;
    config.scheduler.pipeline_depth = 1;
    config.discord.allowed_channels = vec![1_180_000_000_000_000_200];
    let (app, _trigger) = start_app(config, &control).await;

    let elsewhere = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "x")
                .by(Invoker::user(1).in_channel(1_180_000_000_000_000_999)),
        )
        .await
        .unwrap();
    control
        .wait_for_interaction(&elsewhere.id, |i| {
            answer_says(i, "not take commands in this channel")
        })
        .await
        .unwrap();

    // KSampler fails: the owner is told privately with the node and reason.
    let failing = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "x")
                .by(Invoker::user(2)),
        )
        .await
        .unwrap();
    // Meanwhile the queue fills: an upscale waits behind it, the next one is refused.
    let waiting = control
        .inject_command(
            &SlashCommand::new("upscale")
                .attachment("image", Upload::new("a.png", png(16, 16)))
                .by(Invoker::user(3)),
        )
        .await
        .unwrap();
    control
        .wait_for_interaction(&waiting.id, |i| job_message(i).is_some())
        .await
        .unwrap();
    let refused = control
        .inject_command(
            &SlashCommand::new("upscale")
                .attachment("image", Upload::new("b.png", png(16, 16)))
                .by(Invoker::user(4)),
        )
        .await
        .unwrap();
    let full = control
        .wait_for_interaction(&refused.id, |i| answer_says(i, "queue is full"))
        .await;
    let view = control
        .wait_for_interaction(&failing.id, |i| i.followups.len() >= 2)
        .await
        .unwrap();
    let private = &view.followups[1];
    assert_eq!(private.flags() & 64, 64);
    assert!(
        private.content().contains("KSampler") && private.content().contains("failed"),
        "{}",
        private.content()
    );
    let public = control
        .wait_for_interaction(&failing.id, |i| job_says(i, "failed"))
        .await
        .unwrap();
    assert!(!job_message(&public).unwrap().content().contains("KSampler"));
    full.expect("a full queue is said");
    assert_valid_requests(&control).await;
    app.stop().await;
}

#[actix_rt::test]
async fn results_larger_than_the_upload_limit_are_recompressed_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord_with(|c| c.attachment_size_limit = 60_000);
    let control = fake.control();
    let (app, _trigger) = start_app(bot_config(dir.path(), &fake, 1, "10ms"), &control).await;
    let injected = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "a big picture")
                .string("size", "1344x768"),
        )
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&injected.id, |i| job_says(i, "Done"))
        .await
        .unwrap();
    let result = job_message(&view).unwrap();
    let attachment = &result.attachments()[0];
    assert_eq!(
        attachment["content_type"], "image/jpeg",
        "{:?}",
        result.message
    );
    assert!(attachment["size"].as_u64().unwrap() <= 60_000);
    assert!(
        result.content().contains("upload limit: sent as JPEG"),
        "{}",
        result.content()
    );
    let jpeg = control
        .download(attachment["url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(&jpeg[..2], b"\xff\xd8");
    assert_valid_requests(&control).await;
    app.stop().await;
}
