//! `comfy-fleet serve` with `DISCORD_TOKEN` set, as a real process: the bot runs on serve's one
//! multi-threaded runtime (reached through `COMFY_FLEET_DISCORD_PROXY`), a command is served end
//! to end, ComfyUI never sees comfy-fleet's secrets, the token is never logged, and SIGTERM
//! closes the gateway cleanly.

mod support;

use fake_discord::SlashCommand;
use fake_discord::gateway_sessions::ConnectionEnd;
use nix::sys::signal::Signal;
use support::discord_bot::{demo_models, fake_discord, job_says};
use support::fleet_process::{FleetProcess, FleetSpec};

#[actix_rt::test]
async fn serve_runs_the_bot_and_keeps_the_secrets_from_comfyui() {
    let fake = fake_discord();
    let control = fake.control();
    let root = tempfile::tempdir().unwrap();
    let models = demo_models(root.path()).display().to_string();
    let spec = FleetSpec::new(1, &["--models-directory", &models]);
    let token = fake.token().to_string();
    let api_tokens = "s3cret-api-token=ann";
    let mut fleet = FleetProcess::start_with_env(
        &spec,
        root.path(),
        &[
            ("DISCORD_TOKEN", &token),
            ("COMFY_FLEET_DISCORD_PROXY", &fake.base_url()),
            ("COMFY_FLEET_API_TOKENS", api_tokens),
        ],
    );
    control
        .wait_for_gateway(|g| g.sessions.iter().any(|s| s.connected))
        .await
        .expect("the bot connects");
    // With API tokens set, /v1/status needs one; /readyz is open.
    support::waits::wait_until_blocking("an instance ready", || fleet.get("/readyz").status == 200);
    let injected = control
        .inject_command(&SlashCommand::new("generate").string("prompt", "from serve"))
        .await
        .unwrap();
    control
        .wait_for_interaction(&injected.id, |i| job_says(i, "Done"))
        .await
        .expect("the job is delivered");

    let instances = fleet.processes();
    assert!(!instances.is_empty(), "the instance runs");
    for process in instances {
        let environ = process.environ();
        for secret in ["DISCORD_TOKEN", "COMFY_FLEET_API_TOKENS"] {
            assert!(
                !environ.contains_key(secret),
                "instance process {} got {secret}",
                process.pid
            );
        }
    }
    let log = fleet.log.text();
    assert!(!log.contains(&token), "the token is never logged");
    assert!(!log.contains("s3cret-api-token"), "nor the API tokens");
    assert!(
        log.contains("slash commands registered globally"),
        "{}",
        fleet.log.tail(30)
    );

    fleet.signal(Signal::SIGTERM);
    assert!(fleet.wait_exit().success(), "{}", fleet.log.tail(30));
    let gateway = control.gateway().await.unwrap();
    assert_eq!(
        gateway.connections.last().unwrap().end,
        Some(ConnectionEnd::Client { code: Some(1000) })
    );
}
