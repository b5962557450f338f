//! `comfy-fleet convert`: turns a workflow in either format into the API prompt for a server.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::CliError;
use crate::comfy::{ClientConfig, ComfyClient};
use crate::workflow::{ObjectInfo, Workflow};

/// Arguments of `comfy-fleet convert`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("server").required(true).args(["object_info", "url"])))]
pub struct ConvertArgs {
    /// The workflow: UI format (ComfyUI's Save) or API format (Export (API)).
    pub workflow: PathBuf,
    /// The target server's `/object_info`, saved as a JSON file.
    #[arg(long, value_name = "FILE")]
    pub object_info: Option<PathBuf>,
    /// The target ComfyUI server; its `/object_info` is fetched.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Write the prompt here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs the subcommand: prints the API prompt as pretty JSON.
pub fn run(args: ConvertArgs) -> Result<ExitCode, CliError> {
    let object_info = match (&args.object_info, &args.url) {
        (Some(path), _) => ObjectInfo::load(path)?,
        (None, Some(url)) => fetch_object_info(url)?,
        (None, None) => {
            return Err(CliError::Usage(
                "give the target server as --object-info FILE or --url URL".into(),
            ));
        }
    };
    let bytes = std::fs::read(&args.workflow).map_err(|e| CliError::io(&args.workflow, e))?;
    let prompt = Workflow::parse(&bytes)?.to_api(&object_info)?;
    let mut text = serde_json::to_string_pretty(&prompt.into_value())
        .map_err(|e| CliError::Usage(format!("cannot print the prompt: {e}")))?;
    text.push('\n');
    match &args.out {
        Some(path) => write_file(path, &text)?,
        None => {
            // A closed stdout (`| head`) is not worth an error message.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|e| CliError::io(path, e))
}

/// Fetches `/object_info` from a running server with the ComfyUI connector, on a fresh actix
/// system (inside the daemon, reuse an instance's client and its cached copy instead).
pub fn fetch_object_info(url: &str) -> Result<ObjectInfo, CliError> {
    let system = actix_rt::System::new();
    let fetched = system.block_on(async {
        let client = ComfyClient::new(url, ClientConfig::default())?;
        client.object_info().await
    })?;
    // The client is gone, so this is the only reference: no copy is made.
    Ok(std::sync::Arc::unwrap_or_clone(fetched))
}
