//! Configuration: `config.toml`, its defaults, environment overrides and error reporting.
