//! The Discord bot end to end, in this process: a fake Discord (`fake_discord::RunningFake`,
//! its own thread and actix system) and the application (`App::start`) with a fleet of
//! `fake-comfyui` child processes that have every template's model files, the bot connected to
//! the fake through `discord.api_proxy`. Tests act as users through the fake's control client
//! and wait on what the fake saw.

use std::path::{Path, PathBuf};
use std::time::Duration;

use comfy_fleet::app::App;
use comfy_fleet::config::{Config, DiscoveryMode};
use comfy_fleet::shutdown::{self, ShutdownTrigger};
use comfy_fleet::workflow::TemplateSet;
use fake_discord::{ControlClient, FakeConfig, InteractionView, MessageView, RunningFake};

use super::waits::SAFETY;
use super::{FAKE_COMFYUI, workflows_dir};

/// LoRA files every test fleet has (more than one `/loras` page).
pub fn lora_names() -> Vec<String> {
    (1..=23)
        .map(|i| format!("style_{i:02}.safetensors"))
        .chain(["film_grain.safetensors".to_string()])
        .collect()
}

/// A models folder with every file the shipped templates name, the LoRAs of [`lora_names`]
/// and a second upscale model (empty files: the demo backend only lists them).
pub fn demo_models(dir: &Path) -> PathBuf {
    let models = dir.join("models");
    let templates = TemplateSet::load(&workflows_dir()).expect("the shipped templates load");
    let mut files: Vec<(String, String)> = templates
        .iter()
        .flat_map(|t| t.models.iter().map(|m| (m.folder.clone(), m.file.clone())))
        .collect();
    files.extend(lora_names().into_iter().map(|n| ("loras".to_string(), n)));
    files.push(("upscale_models".into(), "4x_NMKD-Siax.pth".into()));
    for (folder, file) in files {
        let folder = models.join(folder);
        std::fs::create_dir_all(&folder).expect("model folder");
        std::fs::write(folder.join(file), b"").expect("model file");
    }
    models
}

/// A fleet of `instances` demo instances whose nodes take `node_time` (sampler steps 20 ms), with
/// the bot pointed at `fake`.
pub fn bot_config(dir: &Path, fake: &RunningFake, instances: u32, node_time: &str) -> Config {
    let mut c = Config::default();
    c.comfyui.state_dir = dir.join("state");
    c.comfyui.command = vec![
        FAKE_COMFYUI.to_string(),
        "--fake-node-time".into(),
        node_time.into(),
        "--fake-step-time".into(),
        "20ms".into(),
        "--models-directory".into(),
        demo_models(dir).to_string_lossy().into_owned(),
    ];
    c.workflows.dir = workflows_dir();
    c.logging.metrics_interval = Duration::ZERO;
    c.gpus.discovery = DiscoveryMode::Declared;
    c.gpus.cpu_instances = instances;
    c.lifecycle.stop_grace = Duration::from_secs(5);
    c.shutdown.drain_timeout = Duration::from_secs(20);
    c.http.enabled = false;
    c.discord.token = Some(fake.token().to_string());
    c.discord.api_proxy = fake.base_url().to_string();
    c.discord.progress_interval = Duration::from_millis(300);
    c
}

/// The application with the bot, ready: an instance takes jobs, the commands are registered and
/// the gateway is identified.
pub async fn start_app(config: Config, control: &ControlClient) -> (App, ShutdownTrigger) {
    let (trigger, shutdown) = shutdown::channel();
    let app = App::start(config, None, shutdown)
        .await
        .expect("the application starts with the bot");
    tokio::time::timeout(SAFETY, app.ready())
        .await
        .expect("ready in time")
        .expect("an instance is ready");
    control
        .wait_for_gateway(|g| g.sessions.iter().any(|s| s.connected))
        .await
        .expect("the bot identifies on the gateway");
    (app, trigger)
}

/// A fake Discord for one test.
pub fn fake_discord() -> RunningFake {
    fake_discord_with(|_| {})
}

/// A fake Discord for one test, set up by `change`.
pub fn fake_discord_with(change: impl FnOnce(&mut FakeConfig)) -> RunningFake {
    let mut config = FakeConfig::for_tests();
    change(&mut config);
    RunningFake::start(config).expect("the fake Discord starts")
}

/// The interaction's public job message (its first followup).
pub fn job_message(view: &InteractionView) -> Option<&MessageView> {
    view.followups.first()
}

/// Whether the interaction's job message says `text`.
pub fn job_says(view: &InteractionView, text: &str) -> bool {
    job_message(view).is_some_and(|m| m.content().contains(text))
}

/// The private answer (the original response) says `text`.
pub fn answer_says(view: &InteractionView, text: &str) -> bool {
    view.original
        .as_ref()
        .is_some_and(|m| m.content().contains(text))
}

/// The embed field `name` of a message.
pub fn field<'a>(message: &'a MessageView, name: &str) -> Option<&'a str> {
    message.message["embeds"][0]["fields"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["value"].as_str())
}

/// Every request the bot sent was accepted by the fake's OpenAPI validation.
pub async fn assert_valid_requests(control: &ControlClient) {
    for record in control.requests().await.expect("the request log") {
        assert_eq!(
            record.form_errors, None,
            "the fake refused the bot's {} {}: {:?}",
            record.method, record.path, record.body
        );
        assert!(record.status < 500, "{record:?}");
    }
}
