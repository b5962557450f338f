//! Every shipped template runs end to end on the demo backend: the shipped `config.toml` (its
//! demo command, so `fake-comfyui` lists the model files the templates name), `App::start`, each
//! template submitted through the real submit path with the images it needs, and a PNG of the
//! size the template's nodes make comes back. Also the model lists the bot's autocomplete reads
//! (`FleetHandle::models`), which come from the same instances.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use comfy_fleet::app::App;
use comfy_fleet::config::{BackendKind, Config, DiscoveryMode};
use comfy_fleet::fleet::images::InputImage;
use comfy_fleet::fleet::model_choices::ModelKind;
use comfy_fleet::fleet::submit::{JobRequest, JobSource, submit};
use comfy_fleet::shutdown;
use comfy_fleet_actors::{JobEvent, UserId};
use futures_util::StreamExt;
use serde_json::{Value, json};
use support::fixtures::captured;
use support::images::png_size;
use support::waits::within;
use support::workflows_dir;

/// The shipped config, with its own state folder, one CPU instance and quick demo timings.
fn shipped_config(dir: &Path) -> Config {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let mut config = Config::load(&shipped).unwrap();
    assert_eq!(
        config.comfyui.backend_kind(),
        BackendKind::Demo,
        "the shipped config runs the demo backend"
    );
    config.comfyui.state_dir = dir.join("state");
    config.comfyui.demo.node_time = Duration::from_millis(1);
    config.comfyui.demo.step_time = Duration::ZERO;
    config.gpus.discovery = DiscoveryMode::Declared;
    config.gpus.cpu_instances = 1;
    config.workflows.dir = workflows_dir();
    config.logging.metrics_interval = Duration::ZERO;
    config
}

/// The 32×24 PNG of the captures (4:3).
fn source_png() -> Vec<u8> {
    std::fs::read(captured("upload_source.png")).unwrap()
}

fn image(param: &str) -> InputImage {
    InputImage {
        param: param.into(),
        filename: format!("{param}.png"),
        bytes: source_png(),
    }
}

/// Runs `template` with `params` and `images`; returns the size of its first output, a PNG.
async fn run(app: &App, template: &str, params: Value, images: Vec<InputImage>) -> (u32, u32) {
    let params: BTreeMap<String, Value> = serde_json::from_value(params).unwrap();
    let request = JobRequest {
        user: UserId::new("tester"),
        roles: Vec::new(),
        source: JobSource::Template(template.into()),
        params,
        images,
        uploads: Vec::new(),
        extra_data: json!({}),
    };
    let job = submit(app.fleet(), request)
        .await
        .unwrap_or_else(|e| panic!("{template} is accepted: {e}"))
        .job;
    let events = app.fleet().follow(job).await.unwrap();
    let events: Vec<JobEvent> = within(&format!("{template} to finish"), events.collect()).await;
    match events.last() {
        Some(JobEvent::Done { outputs, .. }) => assert_eq!(outputs.len(), 1, "{template}"),
        other => panic!("{template} ends with Done, not {other:?}: {events:?}"),
    }
    let (output, png) = app.fleet().output(job, 0).await.unwrap();
    assert!(output.filename.ends_with(".png"), "{template}: {output:?}");
    png_size(&png)
}

#[actix_rt::test]
async fn every_shipped_template_makes_a_png_of_its_size_on_the_demo_backend() {
    let dir = tempfile::tempdir().unwrap();
    let (_trigger, stop) = shutdown::channel();
    let app = App::start(shipped_config(dir.path()), None, stop)
        .await
        .unwrap();
    within("the instance to be ready", app.ready())
        .await
        .unwrap();
    let templates = app.fleet().catalog.templates.names();
    assert_eq!(
        templates,
        ["demo", "editflux", "editqwen", "generate", "upscale"]
    );

    // demo: the canvas size.
    let size = run(&app, "demo", json!({"width": 96, "height": 80}), vec![]).await;
    assert_eq!(size, (96, 80), "demo");
    // generate: the latent size.
    let size = run(
        &app,
        "generate",
        json!({"prompt": "a lighthouse", "width": 512, "height": 576, "steps": 2}),
        vec![],
    )
    .await;
    assert_eq!(size, (512, 576), "generate");
    // editflux: FluxKontextImageScale takes a 4:3 image to the Kontext resolution 1184×880.
    let size = run(
        &app,
        "editflux",
        json!({"prompt": "make it a watercolor", "steps": 2}),
        vec![image("image")],
    )
    .await;
    assert_eq!(size, (1184, 880), "editflux");
    // editqwen: image 1 scaled the same way sets the size; image 2 is only a reference.
    let size = run(
        &app,
        "editqwen",
        json!({"prompt": "put image 2 in the sky"}),
        vec![image("image"), image("image2")],
    )
    .await;
    assert_eq!(size, (1184, 880), "editqwen");
    // upscale: RealESRGAN_x4plus makes the 32×24 image 4 times larger.
    let size = run(&app, "upscale", json!({}), vec![image("image")]).await;
    assert_eq!(size, (128, 96), "upscale");

    // The model lists the bot offers come from the same instance.
    let fleet = app.fleet();
    let models = |kind| async move { fleet.models(kind).await.unwrap() };
    assert_eq!(
        models(ModelKind::Checkpoints).await,
        ["sd_xl_base_1.0.safetensors"]
    );
    assert_eq!(
        models(ModelKind::Loras).await,
        ["Qwen-Image-Edit-2509-Lightning-4steps-V1.0-bf16.safetensors"]
    );
    assert_eq!(
        models(ModelKind::UpscaleModels).await,
        ["RealESRGAN_x4plus.safetensors"]
    );
    assert_eq!(
        models(ModelKind::Vae).await,
        ["ae.safetensors", "qwen_image_vae.safetensors"]
    );
    assert_eq!(
        models(ModelKind::DiffusionModels).await,
        [
            "flux1-dev-kontext_fp8_scaled.safetensors",
            "qwen_image_edit_2509_fp8_e4m3fn.safetensors"
        ]
    );
    assert_eq!(
        models(ModelKind::TextEncoders).await,
        [
            "clip_l.safetensors",
            "qwen_2.5_vl_7b_fp8_scaled.safetensors",
            "t5xxl_fp8_e4m3fn_scaled.safetensors"
        ]
    );
    app.stop().await;
}
