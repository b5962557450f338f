//! `comfy-fleet run`: runs one workflow (a file in either format, or a template with `--set`
//! parameters) and saves its outputs.
//!
//! The parameters are checked first, as far as the template's map allows without a server
//! (names, declared types and bounds), so a typo costs no boot. The job then takes the same
//! path as every other job: the application starts (with `--url`, on that existing ComfyUI
//! server as its one attached instance; without, on one of the configured instances, since one
//! job needs no more), the job is submitted, followed and its outputs fetched through the fleet,
//! and the application stops. Ctrl-C cancels the job; a second one stops at once.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use comfy_fleet_actors::messages::Cancel;
use comfy_fleet_actors::{JobEvent, UserId};
use futures_util::StreamExt;
use serde_json::Value;

use super::CliError;
use super::progress::JobProgress;
use crate::app::App;
use crate::comfy::{ClientConfig, ComfyClient};
use crate::config::{Config, DeclaredGpuConfig, DiscoveryMode, RemoteConfig};
use crate::fleet::images;
use crate::fleet::plan::PlanKind;
use crate::fleet::submit::{JobRequest, JobSource, submit};
use crate::shutdown::Shutdown;
use crate::workflow::{
    ObjectInfo, Template, TemplateSet, Workflow, WorkflowError, parse_assignment,
};

/// Arguments of `comfy-fleet run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The workflow: a JSON file in either format (UI "Save" or "Export (API)"), or the name
    /// of a template in the workflows folder (see `comfy-fleet templates`).
    pub workflow: String,
    /// Run on this existing ComfyUI server. Without it, the configured instances are booted,
    /// used and shut down.
    #[arg(long, env = "COMFY_FLEET_URL")]
    pub url: Option<String>,
    /// Set a parameter: `--set prompt="a cat"`, `--set seed=random`, `--set image=@cat.png`
    /// (an image file for an image parameter). Repeat for several.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// An image to upload to the server's input folder under its own file name (so a
    /// LoadImage node naming it finds it). Repeat for several.
    #[arg(long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Where to write the outputs (created if missing; existing files are never replaced).
    #[arg(long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// Give up on the job when the server sends nothing for this long (e.g. `10m`; default:
    /// the config's `lifecycle.job_silence`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub silence_timeout: Option<Duration>,
    /// The config file (for the instances to boot without `--url`, and the workflows folder).
    #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = "config.toml")]
    pub config: PathBuf,
    /// The templates folder (default: the config's `workflows.dir`, else `workflows`).
    #[arg(long, value_name = "DIR")]
    pub workflows: Option<PathBuf>,
}

/// Where the workflow comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file, in either format.
    File(PathBuf, Workflow),
    /// A template from the workflows folder.
    Template(Box<Template>),
}

/// Parameters from `--set`: values, and image files (`@path`) by parameter.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub values: BTreeMap<String, Value>,
    pub images: Vec<images::InputImage>,
}

/// An input file (`--input`) read into memory, uploaded under its own name.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The name of the attached instance `--url` runs on.
const URL_INSTANCE: &str = "url";

/// Runs the subcommand: prints each output path on stdout, progress on stderr.
pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let mut config = load_config(&args)?;
    if let Some(dir) = &args.workflows {
        config.workflows.dir = dir.clone();
    }
    if let Some(silence) = args.silence_timeout {
        config.lifecycle.job_silence = silence;
    }
    config.http.enabled = false;
    // One workflow from the command line: no Discord bot, whatever the environment says.
    config.discord.token = None;
    let source = resolve_source(&args.workflow, &config.workflows.dir)?;
    let settings = parse_settings(&args.set)?;
    check_settings(&source, &settings)?;
    let inputs = read_inputs(&args.inputs)?;
    crate::telemetry::init(config.logging.format, &config.logging.level);
    // With `--url` nothing is launched: the run's own state (the outputs it collects) goes in
    // a private folder, removed at the end, so runs never contend for a shared one.
    let private_state = args
        .url
        .as_ref()
        .map(|_| std::env::temp_dir().join(format!("comfy-fleet-run-{}", std::process::id())));
    match &args.url {
        Some(url) => attach_only(&mut config, url),
        None => one_instance(&mut config)?,
    }
    if let Some(dir) = &private_state {
        config.comfyui.state_dir = dir.clone();
    }
    let written = actix_rt::System::new().block_on(async {
        if let Some(url) = &args.url {
            // Fail in a second, in ComfyUI's words, rather than after the readiness timeout.
            ComfyClient::new(url, ClientConfig::default())?
                .system_stats()
                .await?;
        }
        let (_trigger, shutdown) = crate::shutdown::on_signals()
            .map_err(|e| CliError::Usage(format!("cannot watch for signals: {e}")))?;
        let app = App::start(config, None, shutdown.clone()).await?;
        let result = run_job(&app, shutdown, source, settings, inputs, &args.out).await;
        app.stop().await;
        result
    });
    if let Some(dir) = &private_state {
        let _ = std::fs::remove_dir_all(dir);
    }
    let written = written?;
    let mut stdout = std::io::stdout().lock();
    for path in written {
        // A closed stdout (`| head`) is not worth failing for: the files are written.
        let _ = writeln!(stdout, "{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The config: the file when it exists; with `--url` and no file, the defaults (quietened).
fn load_config(args: &RunArgs) -> Result<Config, CliError> {
    if args.url.is_some() && !args.config.exists() {
        let mut config = Config::default();
        config.logging.level = "warn".into();
        return Ok(config);
    }
    Ok(Config::load(&args.config)?)
}

/// The config runs nothing but the server at `url`, as an attached instance.
fn attach_only(config: &mut Config, url: &str) {
    config.gpus.discovery = DiscoveryMode::Declared;
    config.gpus.declared.clear();
    config.gpus.cpu_instances = 0;
    config.remote = vec![RemoteConfig {
        name: URL_INSTANCE.into(),
        url: url.trim_end_matches('/').to_string(),
        base_directory: None,
    }];
}

/// The checks that need no server: each `--set` names a parameter of the template, and its
/// value fits the type, bounds and choices the template's map declares. What only the server
/// knows (a type the map leaves out, the server's own bounds, installed models) is checked
/// when the job is submitted.
pub fn check_settings(source: &Source, settings: &Settings) -> Result<(), CliError> {
    let Source::Template(template) = source else {
        return Ok(());
    };
    let Some(params) = &template.params else {
        return Ok(());
    };
    let no_server = ObjectInfo::from_value(Value::Object(serde_json::Map::new()))?;
    let names = settings
        .values
        .keys()
        .chain(settings.images.iter().map(|image| &image.param));
    for name in names {
        if !params.iter().any(|p| &p.name == name) {
            return Err(WorkflowError::UnknownParameter {
                name: name.clone(),
                valid: params.iter().map(|p| p.name.clone()).collect(),
            }
            .into());
        }
    }
    for (name, value) in &settings.values {
        let Some(param) = params.iter().find(|p| &p.name == name) else {
            continue;
        };
        // Without a `type` in the map only the server can tell the rules: checked later.
        if let Ok(rules) = param.rules("", &no_server) {
            rules.coerce(name, value)?;
        }
    }
    Ok(())
}

/// The config boots one instance: the first GPU's (or one CPU instance), or the first remote
/// when nothing is launched here. One job needs no more, and one ComfyUI boots sooner than
/// several competing for the disk and memory.
fn one_instance(config: &mut Config) -> Result<(), CliError> {
    let checked = crate::fleet::preflight(config).map_err(crate::app::AppError::from)?;
    let Some(first) = checked.plans.first() else {
        return Ok(());
    };
    match &first.kind {
        PlanKind::Managed { gpu, .. } => {
            config.remote.clear();
            config.instances.per_gpu = 1;
            match gpu {
                Some(gpu) => {
                    let info = checked.discovery.gpus.iter().find(|g| &g.id == gpu);
                    config.gpus.discovery = DiscoveryMode::Declared;
                    config.gpus.declared = vec![DeclaredGpuConfig {
                        id: gpu.0.clone(),
                        name: info.map(|g| g.name.clone()).unwrap_or_default(),
                        memory_mb: info.map_or(0, |g| g.memory_total_bytes / (1024 * 1024)),
                    }];
                }
                None => config.gpus.cpu_instances = 1,
            }
        }
        PlanKind::Attached { .. } => config.remote.truncate(1),
    }
    Ok(())
}

/// Submits the job, prints its progress, and writes its outputs into `out_dir`.
async fn run_job(
    app: &App,
    mut shutdown: Shutdown,
    source: Source,
    settings: Settings,
    inputs: Vec<InputFile>,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, CliError> {
    app.ready().await?;
    let job_source = match &source {
        Source::Template(t) => JobSource::Template(t.name.clone()),
        Source::File(_, workflow) => JobSource::Workflow(workflow.clone()),
    };
    for input in &inputs {
        eprintln!("uploading {} as {}", input.path.display(), input.name);
    }
    let request = JobRequest {
        user: UserId::new("cli"),
        roles: Vec::new(),
        source: job_source,
        params: settings.values,
        images: settings.images,
        uploads: inputs.into_iter().map(|i| (i.name, i.bytes)).collect(),
        extra_data: serde_json::json!({ "comfy_fleet": { "via": "cli" } }),
    };
    let fleet = app.fleet();
    let submitted = submit(fleet, request)
        .await
        .map_err(|e| CliError::Job(e.to_string()))?;
    let mut progress = JobProgress::on_stderr(&submitted.job.to_string());
    if let Some(seed) = submitted.seed {
        progress.note(&format!("seed {seed}"));
    }
    progress.note(&format!("job {} queued", submitted.job));
    let mut events = fleet
        .follow(submitted.job)
        .await
        .map_err(|e| CliError::Job(e.to_string()))?;
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = shutdown.requested() => {
                progress.abandon();
                let _ = fleet.scheduler.send(Cancel { job: submitted.job }).await;
                return Err(CliError::Job("interrupted: the job was cancelled".into()));
            }
        };
        let Some(event) = event else {
            progress.abandon();
            return Err(CliError::Job("the job's event stream ended early".into()));
        };
        progress.event(&event);
        match event {
            JobEvent::Done { outputs, .. } => {
                if outputs.is_empty() {
                    progress.finish("the job finished without output files");
                    return Ok(Vec::new());
                }
                std::fs::create_dir_all(out_dir).map_err(|e| CliError::io(out_dir, e))?;
                let mut written = Vec::new();
                for index in 0..outputs.len() {
                    let (output, bytes) = fleet
                        .output(submitted.job, index)
                        .await
                        .map_err(|e| CliError::Job(e.to_string()))?;
                    written.push(write_new_file(out_dir, &output.filename, &bytes)?);
                }
                progress.finish(&format!(
                    "done: {} file(s) in {}",
                    written.len(),
                    out_dir.display()
                ));
                return Ok(written);
            }
            JobEvent::Failed { message, .. } => {
                progress.abandon();
                return Err(CliError::Job(message));
            }
            JobEvent::Cancelled { .. } => {
                progress.abandon();
                return Err(CliError::Job("the job was cancelled".into()));
            }
            _ => {}
        }
    }
}

fn read_inputs(paths: &[PathBuf]) -> Result<Vec<InputFile>, CliError> {
    paths
        .iter()
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| {
                    CliError::Usage(format!("--input {}: not a file name", path.display()))
                })?
                .to_owned();
            let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
            Ok(InputFile {
                path: path.clone(),
                name,
                bytes,
            })
        })
        .collect()
}

/// A file path when such a file exists, else a template name.
pub fn resolve_source(workflow: &str, workflows_dir: &Path) -> Result<Source, CliError> {
    let path = Path::new(workflow);
    if path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
        let parsed = Workflow::parse(&bytes).map_err(|e| CliError::Workflow {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        return Ok(Source::File(path.to_owned(), parsed));
    }
    let looks_like_path = workflow.contains('/') || workflow.ends_with(".json");
    let templates = match TemplateSet::load(workflows_dir) {
        Ok(t) => t,
        Err(e) if looks_like_path => {
            return Err(CliError::Usage(format!(
                "no such file: {workflow} (and the templates did not load: {e})"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    match templates.get(workflow) {
        Ok(t) => Ok(Source::Template(Box::new(t.clone()))),
        Err(_) if looks_like_path => Err(CliError::Usage(format!("no such file: {workflow}"))),
        Err(_) => Err(CliError::Usage(format!(
            "`{workflow}` is neither a file nor a template; templates in {}: {}",
            workflows_dir.display(),
            templates.names().join(", ")
        ))),
    }
}

/// Parses `--set NAME=VALUE` (`@path` reads an image file).
pub fn parse_settings(sets: &[String]) -> Result<Settings, CliError> {
    let mut settings = Settings::default();
    for set in sets {
        let (name, value) = parse_assignment(set).map_err(|e| CliError::Usage(e.to_string()))?;
        if let Some(file) = value.strip_prefix('@') {
            let bytes = std::fs::read(file).map_err(|e| CliError::io(file, e))?;
            let filename = Path::new(file)
                .file_name()
                .map_or(file.into(), |n| n.to_string_lossy().into_owned());
            settings.images.push(images::InputImage {
                param: name.to_string(),
                filename,
                bytes,
            });
        } else {
            settings
                .values
                .insert(name.to_string(), Value::String(value.to_string()));
        }
    }
    Ok(settings)
}

/// Writes `bytes` to `dir/name`, or `dir/stem-1.ext`, `-2`… if taken; never replaces a file.
pub fn write_new_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, CliError> {
    // The server chose the name: keep only its last component.
    let name = Path::new(name)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .unwrap_or("output");
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    for n in 0u32.. {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}{ext}"))
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(mut f) => {
                f.write_all(bytes)
                    .map_err(|e| CliError::io(&candidate, e))?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(CliError::io(&candidate, e)),
        }
    }
    unreachable!("u32 range exhausted while looking for a free file name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_split_values_and_image_files() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("cat.png");
        std::fs::write(&img, b"png bytes").unwrap();
        let s = parse_settings(&[
            "seed=42".into(),
            "prompt=a = b".into(),
            format!("image=@{}", img.display()),
        ])
        .unwrap();
        assert_eq!(s.values["seed"], Value::String("42".into()));
        assert_eq!(s.values["prompt"], Value::String("a = b".into()));
        assert_eq!(s.images[0].param, "image");
        assert_eq!(s.images[0].filename, "cat.png");
        assert!(
            parse_settings(&["seed".into()])
                .unwrap_err()
                .to_string()
                .contains("NAME=VALUE")
        );
        assert!(parse_settings(&["image=@/nonexistent.png".into()]).is_err());
    }

    #[test]
    fn unknown_names_list_the_templates() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
        let err = resolve_source("nosuch", &dir).unwrap_err().to_string();
        assert!(
            err.contains("neither a file nor a template") && err.contains("demo"),
            "{err}"
        );
        assert!(matches!(
            resolve_source("demo", &dir).unwrap(),
            Source::Template(_)
        ));
        let err = resolve_source("missing/flow.json", &dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such file"), "{err}");
    }

    #[test]
    fn settings_are_checked_against_the_map_without_a_server() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
        let source = resolve_source("demo", &dir).unwrap();
        let check = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            check_settings(&source, &parse_settings(&sets).unwrap())
        };
        check(&["width=512", "seed=random"]).unwrap();
        let err = check(&["width=99999"]).unwrap_err().to_string();
        assert!(err.contains("width") && err.contains("2048"), "{err}");
        let err = check(&["colour=1"]).unwrap_err().to_string();
        assert!(err.contains("colour") && err.contains("color"), "{err}");
        // What the map leaves to the server waits for it.
        let generate = resolve_source("generate", &dir).unwrap();
        let sets = parse_settings(&["steps=30".into()]).unwrap();
        check_settings(&generate, &sets).unwrap();
    }

    #[test]
    fn new_files_never_replace_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_new_file(dir.path(), "img_00001_.png", b"one").unwrap();
        let b = write_new_file(dir.path(), "img_00001_.png", b"two").unwrap();
        let c = write_new_file(dir.path(), "../evil", b"three").unwrap();
        assert_eq!(a.file_name().unwrap(), "img_00001_.png");
        assert_eq!(b.file_name().unwrap(), "img_00001_-1.png");
        assert_eq!(c, dir.path().join("evil"));
        assert_eq!(std::fs::read(&a).unwrap(), b"one");
        assert_eq!(std::fs::read(&b).unwrap(), b"two");
    }
}
