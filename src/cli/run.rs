//! `comfy-fleet run`: runs one workflow on an existing ComfyUI server and saves its outputs.
//!
//! Two steps, kept apart so other workflow sources and managed instances can reuse them:
//! [`load_api_prompt`] gets the API-format prompt, [`execute`] runs it on a client (uploads the
//! inputs, runs the prompt with progress on stderr, downloads the outputs into a folder).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use super::CliError;
use crate::comfy::client::{ClientConfig, Upload};
use crate::comfy::events::{BinaryFrame, ServerEvent, WsMessage};
use crate::comfy::protocol::FolderType;
use crate::comfy::{ComfyClient, PromptOutcome, RunOptions};

/// Arguments of `comfy-fleet run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The workflow: an API-format JSON file (`{"3": {"class_type": …, "inputs": …}}`),
    /// as saved by ComfyUI's "Export (API)".
    pub workflow: PathBuf,
    /// The ComfyUI server to run on.
    #[arg(long, default_value = "http://127.0.0.1:8188", env = "COMFY_FLEET_URL")]
    pub url: String,
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
}

/// Runs the subcommand: prints each output path on stdout, progress on stderr.
pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let prompt = load_api_prompt(&args.workflow)?;
    let inputs = read_inputs(&args.inputs)?;
    let config = ClientConfig {
        request_timeout: args.request_timeout,
        ..ClientConfig::default()
    };
    let options = RunOptions {
        silence_timeout: args.silence_timeout,
        client_id: None,
    };
    let system = actix_rt::System::new();
    let written = system.block_on(async {
        let client = ComfyClient::new(&args.url, config)?;
        execute(&client, &prompt, &inputs, &args.out, &options).await
    })?;
    let mut stdout = std::io::stdout().lock();
    for path in written {
        // A closed stdout (`| head`) is not worth failing for: the files are written.
        let _ = writeln!(stdout, "{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads an API-format workflow file and checks its shape.
pub fn load_api_prompt(path: &Path) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| CliError::Workflow {
        path: path.to_owned(),
        reason: format!("not valid JSON: {e}"),
    })?;
    check_api_prompt(&value).map_err(|reason| CliError::Workflow {
        path: path.to_owned(),
        reason,
    })?;
    Ok(value)
}

/// Checks that `value` is an API-format prompt: `{node_id: {class_type, inputs}}`.
pub fn check_api_prompt(value: &Value) -> Result<(), String> {
    let Some(nodes) = value.as_object() else {
        return Err("expected a JSON object of nodes ({\"3\": {\"class_type\": …}})".into());
    };
    if nodes.contains_key("nodes") && nodes.contains_key("links") {
        return Err("this is a UI-format workflow (saved with \"Save\"); \
                    export it with \"Export (API)\" in ComfyUI and pass that file"
            .into());
    }
    if nodes.is_empty() {
        return Err("the workflow has no nodes".into());
    }
    for (id, node) in nodes {
        if node.get("class_type").and_then(Value::as_str).is_none() {
            return Err(format!(
                "node {id} has no \"class_type\": this is not an API-format workflow \
                 (export it with \"Export (API)\" in ComfyUI)"
            ));
        }
    }
    Ok(())
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
        .run_prompt(prompt_id, prompt, None, options, &mut |e| progress.show(e))
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
    fn api_prompts_pass_and_ui_workflows_are_explained() {
        assert!(
            check_api_prompt(&serde_json::json!({"1": {"class_type": "X", "inputs": {}}})).is_ok()
        );
        let ui = serde_json::json!({"nodes": [], "links": [], "version": 0.4});
        assert!(check_api_prompt(&ui).unwrap_err().contains("Export (API)"));
        assert!(
            check_api_prompt(&serde_json::json!({"1": {"inputs": {}}}))
                .unwrap_err()
                .contains("node 1")
        );
        assert!(check_api_prompt(&serde_json::json!([])).is_err());
        assert!(check_api_prompt(&serde_json::json!({})).is_err());
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
