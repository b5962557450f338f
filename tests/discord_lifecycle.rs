//! The bot's life around its jobs, end to end against the fake Discord: buttons that still work
//! after comfy-fleet restarted, progress handed over to a channel message before the
//! interaction token expires (or once it has), a dropped gateway resumed, roles that give
//! priority and exemption, Discord's 429s honoured, progress edits throttled, and the shutdown
//! (no new jobs, running ones delivered, the gateway closed cleanly).

mod support;

use std::time::Duration;

use comfy_fleet_actors::rate_limit::WindowLimit;
use comfy_fleet_actors::{JobEvent, UserId};
use fake_discord::gateway_sessions::ConnectionEnd;
use fake_discord::{ArmRateLimit, ComponentClick, Invoker, SlashCommand};
use futures_util::StreamExt;
use support::discord_bot::{
    answer_says, assert_valid_requests, bot_config, fake_discord, field, job_message, job_says,
    start_app,
};

/// The fake's default text channel, where interactions happen unless a test says otherwise.
const CHANNEL: u64 = 1_180_000_000_000_000_200;

#[actix_rt::test]
async fn result_buttons_still_work_after_comfy_fleet_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let (app, _trigger) = start_app(bot_config(dir.path(), &fake, 1, "10ms"), &control).await;
    let first = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "a red fox in snow")
                .string("aspect", "3:2"),
        )
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&first.id, |i| job_says(i, "Done"))
        .await
        .unwrap();
    let result = job_message(&view).unwrap().clone();
    let seed = field(&result, "seed").unwrap().to_string();
    app.stop().await;

    // A new comfy-fleet process knows nothing of the first job.
    let (app, _trigger) = start_app(bot_config(dir.path(), &fake, 1, "10ms"), &control).await;
    let reroll = control
        .click(&ComponentClick::button(&result.id, "cf1:reroll:generate").by(Invoker::user(77)))
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&reroll.id, |i| job_says(i, "Done"))
        .await
        .unwrap();
    let again = job_message(&view).unwrap();
    assert_eq!(field(again, "prompt"), Some("a red fox in snow"));
    assert_eq!(
        field(again, "size"),
        field(&result, "size"),
        "the same size"
    );
    assert_ne!(field(again, "seed"), Some(seed.as_str()), "a new seed");
    assert!(
        again.content().contains("<@77>"),
        "the clicker owns the re-roll"
    );

    let upscale = control
        .click(&ComponentClick::button(&result.id, "cf1:upscale:0"))
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&upscale.id, |i| job_says(i, "Done"))
        .await
        .unwrap();
    let upscaled = job_message(&view).unwrap();
    assert_eq!(upscaled.attachments().len(), 1);
    let source = field(upscaled, "image").unwrap();
    assert!(
        source.contains(result.attachments()[0]["filename"].as_str().unwrap()),
        "{source}"
    );
    assert_valid_requests(&control).await;
    app.stop().await;
}

#[actix_rt::test]
async fn progress_moves_to_a_channel_message_before_the_token_expires_and_when_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let mut config = bot_config(dir.path(), &fake, 2, "400ms");
    config.discord.token_handover = Duration::from_secs(1);
    let (app, _trigger) = start_app(config, &control).await;
    let long = control
        .inject_command(&SlashCommand::new("generate").string("prompt", "a long one"))
        .await
        .unwrap();
    let messages = control
        .wait_for_channel_messages(CHANNEL, |m| {
            m.iter()
                .any(|m| m.content().contains("Done") && m.content().contains("/generate"))
        })
        .await
        .unwrap();
    let moved = messages
        .iter()
        .find(|m| m.content().contains("Done"))
        .unwrap();
    assert_eq!(
        moved.attachments().len(),
        1,
        "the result is attached to the channel message"
    );
    assert_eq!(field(moved, "prompt"), Some("a long one"));
    let view = control.interaction(&long.id).await.unwrap();
    let old = job_message(&view).unwrap();
    assert!(
        old.content().contains("continues in a new message"),
        "{}",
        old.content()
    );
    assert!(
        old.custom_ids().is_empty(),
        "no stale Cancel button on the old message"
    );

    assert_valid_requests(&control).await;
    app.stop().await;
}

#[actix_rt::test]
async fn a_token_that_ended_early_moves_the_progress_to_the_channel_at_the_next_edit() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let (app, _trigger) = start_app(bot_config(dir.path(), &fake, 1, "300ms"), &control).await;
    let early = control
        .inject_command(&SlashCommand::new("generate").string("prompt", "expires early"))
        .await
        .unwrap();
    control
        .wait_for_interaction(&early.id, |i| job_message(i).is_some())
        .await
        .unwrap();
    control.expire_token(&early.id).await.unwrap();
    let messages = control
        .wait_for_channel_messages(CHANNEL, |m| {
            m.iter().any(|m| {
                m.content().contains("Done") && field(m, "prompt") == Some("expires early")
            })
        })
        .await
        .unwrap();
    let refused = control
        .requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.error_code == Some(50027))
        .count();
    assert_eq!(
        refused, 1,
        "one edit met the expired token; then the channel took over"
    );
    let moved = messages
        .iter()
        .find(|m| m.content().contains("Done"))
        .unwrap();
    assert_eq!(moved.attachments().len(), 1);
    assert_valid_requests(&control).await;
    app.stop().await;
}

#[actix_rt::test]
async fn a_dropped_gateway_is_resumed_and_the_next_command_served() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let (app, _trigger) = start_app(bot_config(dir.path(), &fake, 1, "10ms"), &control).await;
    control.drop_gateway().await.unwrap();
    let gateway = control
        .wait_for_gateway(|g| g.connections.iter().any(|c| c.resumed))
        .await
        .unwrap();
    assert_eq!(gateway.sessions.len(), 1, "resumed, not identified again");
    let injected = control
        .inject_command(&SlashCommand::new("generate").string("prompt", "after the drop"))
        .await
        .unwrap();
    control
        .wait_for_interaction(&injected.id, |i| job_says(i, "Done"))
        .await
        .unwrap();
    app.stop().await;
}

#[actix_rt::test]
async fn member_roles_give_priority_and_exemption() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let mut config = bot_config(dir.path(), &fake, 1, "250ms");
    config.scheduler.pipeline_depth = 1;
    config.scheduler.priority_roles = vec!["77".into()];
    config.limits.exempt_roles = vec!["88".into()];
    config.limits.per_user = vec![WindowLimit::new(1, Duration::from_secs(600))];
    let (app, _trigger) = start_app(config, &control).await;

    let mut ids = Vec::new();
    for (user, roles) in [(1, vec![]), (2, vec![]), (3, vec![]), (4, vec![77])] {
        let injected = control
            .inject_command(
                &SlashCommand::new("generate")
                    .string("prompt", &format!("job of {user}"))
                    .by(Invoker::user(user).with_roles(roles)),
            )
            .await
            .unwrap();
        // Each one queued before the next is asked for.
        control
            .wait_for_interaction(&injected.id, |i| job_message(i).is_some())
            .await
            .unwrap();
        ids.push(injected.id);
    }
    for id in &ids {
        control
            .wait_for_interaction(id, |i| job_says(i, "Done"))
            .await
            .unwrap();
    }
    let started = |user: u64| {
        app.fleet()
            .table
            .jobs_of(&UserId::new(format!("discord:{user}")))[0]
            .started_at
            .unwrap()
    };
    assert!(
        started(4) < started(2),
        "the priority role went before earlier jobs"
    );
    assert!(started(4) < started(3));
    assert!(
        started(1) < started(4),
        "the job already running was not preempted"
    );

    // The per-user limit is 1: the exempt role may go on, others wait.
    for (user, roles, says) in [(5, vec![88], None), (6, vec![], Some("Not now"))] {
        for round in 0..2 {
            let injected = control
                .inject_command(
                    &SlashCommand::new("generate")
                        .string("prompt", "again")
                        .by(Invoker::user(user).with_roles(roles.clone())),
                )
                .await
                .unwrap();
            let view = control
                .wait_for_interaction(&injected.id, |i| {
                    job_message(i).is_some() || answer_says(i, "Not now")
                })
                .await
                .unwrap();
            if round == 1 {
                match says {
                    None => assert!(
                        job_message(&view).is_some(),
                        "the exempt role is not limited"
                    ),
                    Some(text) => assert!(answer_says(&view, text), "{view:?}"),
                }
            }
        }
    }
    app.stop().await;
}

#[actix_rt::test]
async fn discords_429s_are_waited_out_before_the_retry() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let (app, _trigger) = start_app(bot_config(dir.path(), &fake, 1, "10ms"), &control).await;
    for (method, route, retry_after) in [
        (
            "POST",
            "/interactions/{interaction_id}/{interaction_token}/callback",
            0.3,
        ),
        (
            "PATCH",
            "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
            0.5,
        ),
    ] {
        control
            .arm_rate_limit(&ArmRateLimit {
                count: 1,
                method: Some(method.into()),
                route: Some(route.into()),
                retry_after,
                global: false,
            })
            .await
            .unwrap();
    }
    let injected = control
        .inject_command(&SlashCommand::new("generate").string("prompt", "slowly"))
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&injected.id, |i| job_says(i, "Done"))
        .await
        .unwrap();
    assert!(
        view.acknowledgement.is_some(),
        "acknowledged despite the 429"
    );
    let limited = control
        .wait_for_rate_limited(|r| r.len() == 2 && r.iter().all(|r| r.retry.is_some()))
        .await
        .unwrap();
    for record in &limited {
        let retry = record.retry.as_ref().unwrap();
        assert!(
            retry.waited,
            "{} {}: retried before retry_after: {retry:?}",
            record.method, record.route
        );
    }
    app.stop().await;
}

#[actix_rt::test]
async fn progress_edits_are_throttled_to_the_interval_and_show_the_latest_state() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let mut config = bot_config(dir.path(), &fake, 1, "150ms");
    config.discord.progress_interval = Duration::from_millis(500);
    let (app, _trigger) = start_app(config, &control).await;
    let injected = control
        .inject_command(
            &SlashCommand::new("generate")
                .string("prompt", "many steps")
                .integer("steps", 40)
                .by(Invoker::user(5)),
        )
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&injected.id, |i| job_says(i, "Done"))
        .await
        .unwrap();
    let message = job_message(&view).unwrap();
    let edits = message.history.len() - 1;
    let job = app.fleet().table.jobs_of(&UserId::new("discord:5"))[0].id;
    let events: Vec<JobEvent> = app.fleet().follow(job).await.unwrap().collect().await;
    let changes = events.iter().filter(|e| !e.is_final()).count();
    assert!(changes >= 40, "40 sampler steps at least: {changes}");
    assert!(
        edits * 4 < changes,
        "{edits} edits for {changes} changes: states in between were coalesced"
    );
    let span = message.history.last().unwrap().at_ms - message.history[0].at_ms;
    assert!(
        edits as u64 <= span / 500 + 3,
        "{edits} edits in {span} ms with one edit per 500 ms at most (and the final one)"
    );
    assert!(message.history.iter().any(|v| {
        v.message["content"]
            .as_str()
            .is_some_and(|c| c.contains('%'))
    }));
    let previewed = message.history.iter().any(|v| {
        v.message["attachments"].as_array().is_some_and(|a| {
            a.iter().any(|f| {
                f["filename"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("preview."))
            })
        })
    });
    assert!(previewed, "the sampler's preview was shown while it ran");
    let last = message.attachments();
    assert!(
        last.iter()
            .all(|f| !f["filename"].as_str().unwrap_or("").starts_with("preview.")),
        "the result replaced the preview: {last:?}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn the_shutdown_refuses_new_jobs_delivers_running_ones_and_closes_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let control = fake.control();
    let (app, _trigger) = start_app(bot_config(dir.path(), &fake, 1, "300ms"), &control).await;
    let running = control
        .inject_command(&SlashCommand::new("generate").string("prompt", "finish me"))
        .await
        .unwrap();
    control
        .wait_for_interaction(&running.id, |i| job_says(i, "Running"))
        .await
        .unwrap();
    let mut stop = Box::pin(app.stop());
    // Poll the stop once: the bot stops taking commands before anything else happens.
    tokio::select! {
        biased;
        () = &mut stop => panic!("the stop waits for the running job"),
        () = std::future::ready(()) => {}
    }
    let stopping = actix_rt::spawn(stop);
    let late = control
        .inject_command(&SlashCommand::new("generate").string("prompt", "too late"))
        .await
        .unwrap();
    let view = control
        .wait_for_interaction(&late.id, |i| answer_says(i, "restarting"))
        .await
        .unwrap();
    assert_eq!(view.acknowledgement.unwrap().callback_type, 4);
    control
        .wait_for_interaction(&running.id, |i| job_says(i, "Done"))
        .await
        .unwrap();
    stopping.await.unwrap();
    let gateway = control.gateway().await.unwrap();
    assert_eq!(
        gateway.connections.last().unwrap().end,
        Some(ConnectionEnd::Client { code: Some(1000) }),
        "the gateway was closed cleanly"
    );
}

#[actix_rt::test]
async fn a_wrong_token_stops_the_start_with_what_to_do_and_leaves_no_instance_running() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_discord();
    let mut config = bot_config(dir.path(), &fake, 1, "10ms");
    config.discord.token = Some("not-the-bot-token".into());
    let (_trigger, shutdown) = comfy_fleet::shutdown::channel();
    let error = match comfy_fleet::app::App::start(config, None, shutdown).await {
        Ok(_) => panic!("the application must not start with a token Discord refuses"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("Discord refused DISCORD_TOKEN") && error.contains("Reset Token"),
        "{error}"
    );
    assert!(
        support::processes::processes_mentioning(dir.path()).is_empty(),
        "the instances were stopped"
    );
    let gateway = fake.control().gateway().await.unwrap();
    assert!(
        gateway.connections.is_empty(),
        "no gateway connection was made"
    );
}
