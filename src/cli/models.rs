//! `comfy-fleet models`: the fleet's model library from the command line: list it, add a file,
//! remove one, and install the files templates need. It works on the folder itself, so it works
//! with or without a running fleet; a running fleet notices the change at its next job or
//! listing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::HumanBytes;

use super::CliError;
use super::byte_progress::ByteProgress;
use crate::config::Config;
use crate::launch::{StateLock, StateLockError};
use crate::models::{DownloadEvent, ModelKind, ModelLibrary, fetch, plan};
use crate::workflow::TemplateSet;

/// Arguments of `comfy-fleet models`.
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
    /// The config file (its `comfyui.models_dir`, `comfyui.state_dir` and `workflows.dir`).
    #[arg(long, short, global = true, env = crate::config::ENV_CONFIG, default_value = "config.toml")]
    pub config: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// List the library's files: kind, name, size, SHA-256 (of the files comfy-fleet added).
    List {
        /// Only this kind (`checkpoints`, `loras`, `vae`, …).
        #[arg(long)]
        kind: Option<String>,
    },
    /// Copy a model file into the library.
    Add {
        /// The file to copy.
        file: PathBuf,
        /// Its kind: ComfyUI's models folder (`checkpoints`, `loras`, `vae`, …).
        #[arg(long)]
        kind: String,
        /// Its name in the library (may hold sub-folders: `styles/ink.safetensors`); default:
        /// the file's own name.
        #[arg(long)]
        name: Option<String>,
        /// Delete it when the running fleet stops.
        #[arg(long)]
        ephemeral: bool,
    },
    /// Remove a file from the library: `KIND/NAME` (e.g. `loras/ink.safetensors`).
    Remove {
        /// `KIND/NAME`.
        name: String,
    },
    /// Download the model files the templates' maps list (`[[model]]` with a `url`) that the
    /// library lacks; interrupted downloads resume, checksums are checked where known.
    Install {
        /// Template names (see `comfy-fleet templates`).
        #[arg(required = true)]
        templates: Vec<String>,
        /// The templates folder (default: the config's `workflows.dir`).
        #[arg(long, value_name = "DIR")]
        workflows: Option<PathBuf>,
    },
}

/// Runs the subcommand.
pub fn run(args: ModelsArgs) -> Result<ExitCode, CliError> {
    let config = load_config(&args.config)?;
    let library = config
        .comfyui
        .library()
        .map_err(|e| CliError::io(config.comfyui.library_dir(), e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
    match args.command {
        ModelsCommand::List { kind } => list(&library, kind.as_deref()),
        ModelsCommand::Add {
            file,
            kind,
            name,
            ephemeral,
        } => runtime.block_on(add(
            &library,
            &config,
            &file,
            &kind,
            name.as_deref(),
            ephemeral,
        )),
        ModelsCommand::Remove { name } => remove(&library, &name),
        ModelsCommand::Install {
            templates,
            workflows,
        } => {
            let dir = workflows.unwrap_or_else(|| config.workflows.dir.clone());
            runtime.block_on(install(&library, &dir, &templates))
        }
    }
}

/// The config file when it exists, else the defaults (with the environment applied).
fn load_config(path: &Path) -> Result<Config, CliError> {
    if path.exists() {
        return Ok(Config::load(path)?);
    }
    let mut config = Config::default();
    config.apply_env(|k| std::env::var(k).ok())?;
    Ok(config)
}

fn list(library: &ModelLibrary, kind: Option<&str>) -> Result<ExitCode, CliError> {
    let kind = kind.map(ModelKind::parse).transpose().map_err(usage)?;
    let files = library.list(kind);
    let mut text = String::new();
    if files.is_empty() {
        let _ = writeln!(
            text,
            "no model files in {}{}",
            library.dir().display(),
            kind.map(|k| format!("/{k}")).unwrap_or_default()
        );
    }
    for file in files {
        let _ = writeln!(
            text,
            "{}/{}  {}  {}{}",
            file.kind,
            file.name,
            HumanBytes(file.size),
            file.sha256.as_deref().unwrap_or("-"),
            if file.ephemeral { "  (ephemeral)" } else { "" }
        );
    }
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

async fn add(
    library: &ModelLibrary,
    config: &Config,
    file: &Path,
    kind: &str,
    name: Option<&str>,
    ephemeral: bool,
) -> Result<ExitCode, CliError> {
    let kind = ModelKind::parse(kind).map_err(usage)?;
    let name = match name {
        Some(name) => name.to_string(),
        None => file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| CliError::Usage(format!("{}: not a file name", file.display())))?
            .to_string(),
    };
    if ephemeral && !fleet_running(&config.comfyui.state_dir) {
        return Err(CliError::Usage(format!(
            "--ephemeral files are deleted when the running fleet stops, and no fleet runs on {}; \
             start `comfy-fleet serve` first, or add the file without --ephemeral",
            config.comfyui.state_dir.display()
        )));
    }
    let size = std::fs::metadata(file)
        .map_err(|e| CliError::io(file, e))?
        .len();
    let mut progress = ByteProgress::on_stderr(&format!("{kind}/{name}"));
    progress.start(0, Some(size));
    let added = library
        .add_file(kind, &name, file, ephemeral, |n| progress.advance(n))
        .await;
    match added {
        Ok(added) => {
            progress.finish(&format!(
                "added, {}, sha256 {}",
                HumanBytes(added.size),
                added.sha256.as_deref().unwrap_or("-")
            ));
            println!("{}/{}", added.kind, added.name);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            progress.finish("not added");
            Err(e.into())
        }
    }
}

fn remove(library: &ModelLibrary, spec: &str) -> Result<ExitCode, CliError> {
    let (kind, name) = spec.split_once('/').ok_or_else(|| {
        CliError::Usage(format!(
            "`{spec}`: name the file as KIND/NAME, e.g. loras/ink.safetensors (see `comfy-fleet models list`)"
        ))
    })?;
    let kind = ModelKind::parse(kind).map_err(usage)?;
    let removed = library.remove(kind, name)?;
    eprintln!(
        "removed {}/{} ({})",
        removed.kind,
        removed.name,
        HumanBytes(removed.size)
    );
    Ok(ExitCode::SUCCESS)
}

async fn install(
    library: &ModelLibrary,
    workflows: &Path,
    names: &[String],
) -> Result<ExitCode, CliError> {
    let set = TemplateSet::load(workflows)?;
    let templates = names
        .iter()
        .map(|n| set.get(n))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = plan(&templates, library)?;
    for present in &plan.present {
        eprintln!("{present}: already installed");
    }
    let client = reqwest::Client::builder()
        .user_agent(concat!("comfy-fleet/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CliError::Usage(format!("cannot set up downloads: {e}")))?;
    let mut failures = Vec::new();
    for download in &plan.fetch {
        let label = format!("{}/{}", download.kind, download.name);
        let mut progress = ByteProgress::on_stderr(&label);
        let result = fetch(&client, library, download, |event| match event {
            DownloadEvent::Started {
                resumed_from,
                total,
            } => progress.start(resumed_from, total),
            DownloadEvent::Received(n) => progress.advance(n),
            DownloadEvent::Verifying => progress.note(if download.sha256.is_some() {
                "checking the SHA-256"
            } else {
                "computing the SHA-256 (the template gives none to check)"
            }),
        })
        .await;
        match result {
            Ok(file) => {
                progress.finish(&format!(
                    "installed, {}, sha256 {}",
                    HumanBytes(file.size),
                    file.sha256.as_deref().unwrap_or("-")
                ));
            }
            Err(e) => {
                progress.finish("failed");
                failures.push(e.to_string());
            }
        }
    }
    for (template, file) in &plan.manual {
        failures.push(format!(
            "{file} (template {template}) has no url in its map; copy it in with `comfy-fleet models add`"
        ));
    }
    if failures.is_empty() {
        eprintln!(
            "the models of {} are installed in {}",
            names.join(", "),
            library.dir().display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::Job(format!(
            "{} model file(s) not installed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        )))
    }
}

/// Whether a comfy-fleet holds the state folder (so there is a fleet to outlive).
fn fleet_running(state_dir: &Path) -> bool {
    if !state_dir.is_dir() {
        return false;
    }
    matches!(
        StateLock::acquire(state_dir),
        Err(StateLockError::Taken { .. })
    )
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}
