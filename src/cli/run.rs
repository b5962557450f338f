//! `comfy-fleet run`: runs one workflow (a file in either format, or a template with `--set`
//! parameters) and saves its outputs.
//!
//! With `--url` it runs on that existing ComfyUI server; without, it boots the configured
//! instances (the fleet), runs the job there, downloads the outputs and shuts everything down.
//! Steps are kept apart: [`resolve_source`] finds the workflow, [`direct_prompt`] builds the
//! prompt for a server, [`execute`] runs it on a client, [`run_managed`] runs on a fleet.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use comfy_fleet_actors::{JobEvent, UserId};
use serde_json::Value;
use uuid::Uuid;

use super::CliError;
use crate::comfy::client::{ClientConfig, Upload};
use crate::comfy::events::{BinaryFrame, ServerEvent, WsMessage};
use crate::comfy::protocol::{FileRef, FolderType};
use crate::comfy::{ComfyClient, PromptOutcome, RunOptions};
use crate::config::Config;
use crate::fleet::Fleet;
use crate::fleet::events::Subscribe;
use crate::fleet::images;
use crate::fleet::submit::{JobRequest, JobSource, submit};
use crate::workflow::{ObjectInfo, Template, TemplateSet, Workflow};

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
    /// Give up when the server sends nothing for this long (e.g. `10m`). Default: wait as
    /// long as the server answers.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub silence_timeout: Option<Duration>,
    /// Timeout of each HTTP request (uploads, downloads, history).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "60s")]
    pub request_timeout: Duration,
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

/// Runs the subcommand: prints each output path on stdout, progress on stderr.
pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let config = load_config(&args)?;
    let workflows_dir = args
        .workflows
        .clone()
        .unwrap_or_else(|| config.workflows.dir.clone());
    let source = resolve_source(&args.workflow, &workflows_dir)?;
    let settings = parse_settings(&args.set)?;
    let inputs = read_inputs(&args.inputs)?;
    let system = actix_rt::System::new();
    let written = match &args.url {
        Some(url) => {
            let client_config = ClientConfig {
                request_timeout: args.request_timeout,
                ..ClientConfig::default()
            };
            let options = RunOptions {
                silence_timeout: args.silence_timeout,
                client_id: None,
            };
            system.block_on(async {
                let client = ComfyClient::new(url, client_config)?;
                let (prompt, mut uploads) = direct_prompt(&client, &source, &settings).await?;
                uploads.extend(inputs);
                execute(&client, &prompt, &uploads, &args.out, &options).await
            })?
        }
        None => {
            crate::telemetry::init(config.logging.format, &config.logging.level);
            system.block_on(run_managed(config, source, settings, inputs, &args.out))?
        }
    };
    let mut stdout = std::io::stdout().lock();
    for path in written {
        // A closed stdout (`| head`) is not worth failing for: the files are written.
        let _ = writeln!(stdout, "{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The config: the file when it exists; with `--url` and no file, the defaults.
fn load_config(args: &RunArgs) -> Result<Config, CliError> {
    if args.url.is_some() && !args.config.exists() {
        return Ok(Config::default());
    }
    Ok(Config::load(&args.config)?)
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
        let Some((name, value)) = set.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--set {set}: expected NAME=VALUE, e.g. --set seed=42"
            )));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(CliError::Usage(format!(
                "--set {set}: the parameter name is empty"
            )));
        }
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

/// The template to prepare: the named one, or a file's workflow with its parameters
/// discovered from well-known nodes.
fn as_template(source: &Source) -> Template {
    match source {
        Source::Template(t) => (**t).clone(),
        Source::File(path, workflow) => Template {
            name: path
                .file_stem()
                .map_or("workflow".into(), |s| s.to_string_lossy().into_owned()),
            description: String::new(),
            workflow: workflow.clone(),
            params: None,
            models: Vec::new(),
            path: path.clone(),
        },
    }
}

/// Builds the API prompt for a server: conversion and parameters need its node definitions.
/// Returns the prompt and the images to upload first.
pub async fn direct_prompt(
    client: &ComfyClient,
    source: &Source,
    settings: &Settings,
) -> Result<(Value, Vec<InputImage>), CliError> {
    let mut uploads = Vec::new();
    let mut values = settings.values.clone();
    for image in &settings.images {
        let checked = images::checked_image(image, 256 * 1024 * 1024)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let name = format!(
            "{}-{}.{}",
            Uuid::new_v4().simple(),
            image.param,
            checked.extension
        );
        values.insert(image.param.clone(), Value::String(name.clone()));
        uploads.push(InputImage {
            path: PathBuf::from(&image.filename),
            name,
            bytes: image.bytes.clone(),
        });
    }
    if let Source::File(path, workflow) = source
        && values.is_empty()
        && workflow.format() == crate::workflow::Format::Api
    {
        // An API workflow without parameters runs exactly as written.
        let _ = path;
        let prompt = match workflow {
            Workflow::Api(p) => Value::Object(p.0.clone()),
            Workflow::Ui(v) => v.clone(),
        };
        return Ok((prompt, uploads));
    }
    let info = client.object_info().await?;
    let info = ObjectInfo::from_value(info.as_value().clone())?;
    let template = as_template(source);
    let prepared = if values.is_empty() && matches!(source, Source::File(..)) {
        Value::Object(template.workflow.to_api(&info)?.0)
    } else {
        let prepared = template.prepare(&values, &info)?;
        if let Some(seed) = prepared.seed {
            eprintln!("seed {seed}");
        }
        prepared.prompt
    };
    Ok((prepared, uploads))
}

/// Boots the fleet, runs the job on it, downloads the outputs, and stops every instance.
pub async fn run_managed(
    config: Config,
    source: Source,
    settings: Settings,
    inputs: Vec<InputImage>,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, CliError> {
    let readiness = config.lifecycle.readiness_timeout;
    let drain = config.lifecycle.drain_timeout;
    let fleet = Fleet::boot(config).await?;
    eprintln!("booting {} instance(s)…", fleet.instances.len());
    let result = run_on_fleet(&fleet, source, settings, inputs, out_dir, readiness).await;
    fleet.shutdown(drain).await;
    result
}

async fn run_on_fleet(
    fleet: &Fleet,
    source: Source,
    settings: Settings,
    inputs: Vec<InputImage>,
    out_dir: &Path,
    readiness: Duration,
) -> Result<Vec<PathBuf>, CliError> {
    let ready = fleet
        .phases
        .wait_until(|board| board.values().any(|v| v.phase.accepts_jobs()));
    tokio::select! {
        _ = ready => {}
        _ = tokio::time::sleep(readiness) => {
            return Err(CliError::Job(format!(
                "no instance became ready within {} (lifecycle.readiness_timeout)",
                humantime::format_duration(readiness)
            )));
        }
        _ = tokio::signal::ctrl_c() => return Err(CliError::Job("interrupted".into())),
    }
    let (template_source, params) = match &source {
        Source::Template(t) => (JobSource::Template(t.name.clone()), settings.values),
        Source::File(_, workflow) => (JobSource::Workflow(workflow.clone()), settings.values),
    };
    let request = JobRequest {
        user: UserId::new("cli"),
        roles: Vec::new(),
        source: template_source,
        params,
        images: settings.images,
        uploads: inputs.into_iter().map(|i| (i.name, i.bytes)).collect(),
        extra_data: serde_json::json!({ "comfy_fleet": { "via": "cli" } }),
    };
    let handle = &fleet.handle;
    let submitted = submit(handle, request)
        .await
        .map_err(|e| CliError::Job(e.to_string()))?;
    if let Some(seed) = submitted.seed {
        eprintln!("seed {seed}");
    }
    eprintln!("job {} queued", submitted.job);
    let sub = handle
        .events
        .send(Subscribe(submitted.job))
        .await
        .map_err(|e| CliError::Job(e.to_string()))?
        .ok_or_else(|| CliError::Job("the job vanished from the fleet".into()))?;
    let mut live = sub.live;
    let mut pending: std::collections::VecDeque<JobEvent> = sub.past.into();
    loop {
        let event = match pending.pop_front() {
            Some(e) => e,
            None => tokio::select! {
                e = live.recv() => match e {
                    Some(e) => e,
                    None => return Err(CliError::Job("the job's event stream ended early".into())),
                },
                _ = tokio::signal::ctrl_c() => {
                    let _ = handle.scheduler.send(comfy_fleet_actors::messages::Cancel { job: submitted.job }).await;
                    return Err(CliError::Job("interrupted: the job was cancelled".into()));
                }
            },
        };
        match event {
            JobEvent::Queued { position, .. } => eprintln!("queued, position {position}"),
            JobEvent::Started {
                instance, attempt, ..
            } => eprintln!("running on {instance} (attempt {attempt})"),
            JobEvent::Executing { node, title, .. } => {
                eprintln!(
                    "executing node {node}{}",
                    title.map(|t| format!(" ({t})")).unwrap_or_default()
                )
            }
            JobEvent::Progress {
                node, value, max, ..
            } => eprintln!("  node {node}: {value}/{max}"),
            JobEvent::Preview { .. } => {}
            JobEvent::Retrying {
                attempt, reason, ..
            } => eprintln!("retrying (attempt {attempt}): {reason}"),
            JobEvent::Done { outputs, .. } => {
                let record = handle.table.get(submitted.job);
                let instance = record
                    .and_then(|r| r.instance)
                    .ok_or_else(|| CliError::Job("no instance on record".into()))?;
                let url = fleet
                    .phases
                    .snapshot()
                    .get(&instance)
                    .and_then(|v| v.url.clone())
                    .ok_or_else(|| {
                        CliError::Job(format!(
                            "instance {instance} is gone; its outputs cannot be fetched"
                        ))
                    })?;
                let client = ComfyClient::new(&url, ClientConfig::default())?;
                if outputs.is_empty() {
                    eprintln!("the job finished without output files");
                    return Ok(Vec::new());
                }
                std::fs::create_dir_all(out_dir).map_err(|e| CliError::io(out_dir, e))?;
                let mut written = Vec::new();
                for o in outputs {
                    let bytes = client
                        .view(&FileRef {
                            filename: o.filename.clone(),
                            subfolder: o.subfolder.clone(),
                            kind: o.kind.clone(),
                        })
                        .await?;
                    written.push(write_new_file(out_dir, &o.filename, &bytes)?);
                }
                return Ok(written);
            }
            JobEvent::Failed { message, .. } => return Err(CliError::Job(message)),
            JobEvent::Cancelled { .. } => {
                return Err(CliError::Job("the job was cancelled".into()));
            }
        }
    }
}

/// An input file read into memory, with the name it is uploaded under.
#[derive(Debug, Clone)]
pub struct InputImage {
    pub path: PathBuf,
    pub name: String,
    pub bytes: Vec<u8>,
}

fn read_inputs(paths: &[PathBuf]) -> Result<Vec<InputImage>, CliError> {
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
            Ok(InputImage {
                path: path.clone(),
                name,
                bytes,
            })
        })
        .collect()
}

/// Runs `prompt` on `client`: uploads `inputs`, runs it (progress on stderr), and downloads
/// every output file into `out_dir`. Returns the written paths, in output order.
pub async fn execute(
    client: &ComfyClient,
    prompt: &Value,
    inputs: &[InputImage],
    out_dir: &Path,
    options: &RunOptions,
) -> Result<Vec<PathBuf>, CliError> {
    client.system_stats().await?;
    for input in inputs {
        let stored = client
            .upload_image(&Upload {
                filename: &input.name,
                bytes: &input.bytes,
                subfolder: "",
                overwrite: true,
                folder: FolderType::Input,
            })
            .await?;
        eprintln!(
            "uploaded {} as {}",
            input.path.display(),
            stored.load_image_name()
        );
    }

    let prompt_id = Uuid::new_v4();
    eprintln!("submitting prompt {prompt_id} to {}", client.url());
    let mut progress = ProgressReport::new(prompt);
    let outcome = client
        .run_prompt(prompt_id, prompt, None, options, |e| progress.show(e))
        .await?;
    save_outputs(client, &outcome, out_dir).await
}

async fn save_outputs(
    client: &ComfyClient,
    outcome: &PromptOutcome,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, CliError> {
    for (node, texts) in &outcome.texts {
        for text in texts {
            eprintln!("node {node} text: {text}");
        }
    }
    if outcome.files.is_empty() {
        eprintln!("the prompt finished without output files");
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(out_dir).map_err(|e| CliError::io(out_dir, e))?;
    let mut written = Vec::new();
    for (_, file) in &outcome.files {
        let bytes = client.view(file).await?;
        written.push(write_new_file(out_dir, &file.filename, &bytes)?);
    }
    Ok(written)
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

/// Prints a prompt's progress on stderr, naming nodes by id, class and title.
struct ProgressReport<'a> {
    prompt: &'a Value,
}

impl<'a> ProgressReport<'a> {
    fn new(prompt: &'a Value) -> Self {
        Self { prompt }
    }

    fn node_label(&self, id: &str) -> String {
        let node = &self.prompt[id];
        let class = node["class_type"].as_str().unwrap_or("?");
        match node["_meta"]["title"].as_str() {
            Some(title) if title != class => format!("node {id} ({class}, \"{title}\")"),
            _ => format!("node {id} ({class})"),
        }
    }

    fn show(&mut self, event: &ServerEvent) {
        match event {
            ServerEvent::Message(WsMessage::ExecutionStart(_)) => eprintln!("started"),
            ServerEvent::Message(WsMessage::ExecutionCached(d)) if !d.nodes.is_empty() => {
                eprintln!("cached: {}", d.nodes.join(", "))
            }
            ServerEvent::Message(WsMessage::Executing(d)) => {
                if let Some(node) = &d.node {
                    eprintln!("executing {}", self.node_label(node));
                }
            }
            ServerEvent::Message(WsMessage::Progress(d)) => {
                let node = d.node.as_deref().unwrap_or("?");
                eprintln!(
                    "{}: step {}/{}",
                    self.node_label(node),
                    d.value as u64,
                    d.max as u64
                );
            }
            ServerEvent::Message(WsMessage::ExecutionSuccess(_)) => eprintln!("finished"),
            ServerEvent::Binary(BinaryFrame::Text { node_id, text }) => {
                eprintln!("{}: {}", self.node_label(node_id), text.trim_end())
            }
            ServerEvent::ConnectionLost { reason } => {
                eprintln!("connection lost ({reason}); resynchronising")
            }
            ServerEvent::Reconnected => eprintln!("reconnected"),
            _ => {}
        }
    }
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
