//! The command line's error: every layer's error, converted at this boundary into one message.

use std::path::PathBuf;

use crate::comfy::ComfyError;

/// What can make a subcommand fail. Each variant wraps one layer's typed error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// ComfyUI refused, failed or could not be reached; the message is ComfyUI's own.
    #[error("{0}")]
    Comfy(#[from] ComfyError),
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A workflow file is not something comfy-fleet can submit.
    #[error("{}: {reason}", path.display())]
    Workflow { path: PathBuf, reason: String },
    /// A workflow, template or parameter was rejected by the workflow layer (parsing,
    /// conversion, injection); the message names the node or parameter.
    #[error("{0}")]
    WorkflowLayer(#[from] crate::workflow::WorkflowError),
    #[error(transparent)]
    Gpus(#[from] super::gpus::GpusError),
    /// The job failed or could not run; the message says why.
    #[error("{0}")]
    Job(String),
    /// The model library refused or failed a change.
    #[error(transparent)]
    Library(#[from] crate::models::LibraryError),
    /// The application could not start or serve (config, boot, address, readiness).
    #[error(transparent)]
    App(#[from] crate::app::AppError),
}

impl CliError {
    /// The process exit code: 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            _ => 1,
        }
    }

    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
