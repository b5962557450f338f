//! Logging: the tracing subscriber (text or JSON), filtered by `RUST_LOG` or the config's level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` wins over `level`; a bad filter falls back to
/// `info` with a warning instead of failing. Calling it twice is harmless.
pub fn init(format: LogFormat, level: &str) {
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => match EnvFilter::try_new(&env) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new("info"),
                Some(format!("RUST_LOG={env:?} is not a valid filter ({e})")),
            ),
        },
        _ => match EnvFilter::try_new(level) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new("info"),
                Some(format!(
                    "logging.level={level:?} is not a valid filter ({e})"
                )),
            ),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init().is_ok(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
            .is_ok(),
    };
    if installed && let Some(message) = bad {
        tracing::warn!("{message}; logging at info");
    }
}
