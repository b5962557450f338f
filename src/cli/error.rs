//! The command line's error: every layer's error, converted at this boundary into one message.

/// What can make a subcommand fail. Each variant wraps one layer's typed error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Gpus(#[from] super::gpus::GpusError),
}

impl CliError {
    /// The process exit code: 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Gpus(_) => 1,
        }
    }
}
