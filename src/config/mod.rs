//! Configuration: the one schema of `config.toml`, its defaults, environment overrides,
//! validation and error reporting.
//!
//! Every setting has a default, so an empty file is a valid configuration; the shipped
//! `config.toml` documents each one. The supervision, scheduling and rate-limit sections are the
//! actors' own config types, read as they are: there is no second copy to keep in step.
//! [`Config::validate`] runs every check `serve` depends on, so `check-config` and `serve` agree.
//! Errors name the file, the line, the dotted key and what was expected. Secrets never come from
//! the file: the Discord token is read from `DISCORD_TOKEN` and HTTP API tokens from
//! `COMFY_FLEET_API_TOKENS`.

mod sections;
mod source_map;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use comfy_fleet_actors::instance::InstanceConfig;
use comfy_fleet_actors::rate_limit::RateLimitConfig;
use comfy_fleet_actors::scheduling::SchedulerConfig;
use serde::{Deserialize, Serialize};

pub use sections::{
    BackendKind, ComfyUiConfig, DISCORD_TOKEN_LIFETIME, DeclaredGpuConfig, DemoConfig,
    DiscordConfig, DiscoveryMode, GpusConfig, HttpConfig, InstancesConfig, LogFormat,
    LoggingConfig, OutputsConfig, RemoteConfig, WorkflowsConfig, resolve_sibling,
};
pub use source_map::{Position, SourceMap};

pub use crate::shutdown::ShutdownConfig;

/// Environment variable naming the config file when `--config` is not given.
pub const ENV_CONFIG: &str = "COMFY_FLEET_CONFIG";
/// The ComfyUI checkout (overrides `comfyui.path`).
pub const ENV_COMFYUI_PATH: &str = "COMFY_FLEET_COMFYUI_PATH";
/// Where instance folders go (overrides `comfyui.state_dir`).
pub const ENV_STATE_DIR: &str = "COMFY_FLEET_STATE_DIR";
/// The template folder (overrides `workflows.dir`).
pub const ENV_WORKFLOWS_DIR: &str = "COMFY_FLEET_WORKFLOWS_DIR";
/// HTTP API tokens: `token=user,token2=user2`.
pub const ENV_API_TOKENS: &str = "COMFY_FLEET_API_TOKENS";
/// The Discord bot token.
pub const ENV_DISCORD_TOKEN: &str = "DISCORD_TOKEN";
/// The base URL Discord REST calls go through (overrides `discord.api_proxy`).
pub const ENV_DISCORD_PROXY: &str = "COMFY_FLEET_DISCORD_PROXY";

/// Every environment variable that holds a secret: never logged, never passed to a child.
pub const SECRET_ENV_VARS: &[&str] = &[ENV_API_TOKENS, ENV_DISCORD_TOKEN];

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub comfyui: ComfyUiConfig,
    pub gpus: GpusConfig,
    pub instances: InstancesConfig,
    /// ComfyUI servers comfy-fleet does not launch, used like managed ones.
    pub remote: Vec<RemoteConfig>,
    /// How every instance is started, watched, restarted and stopped.
    pub lifecycle: InstanceConfig,
    /// How the whole program stops on SIGINT/SIGTERM.
    pub shutdown: ShutdownConfig,
    /// The fleet queue: capacity, placement, retries, priorities.
    pub scheduler: SchedulerConfig,
    /// Per-user and global limits.
    pub limits: RateLimitConfig,
    pub http: HttpConfig,
    /// Finished jobs' output files, kept by the fleet.
    pub outputs: OutputsConfig,
    pub discord: DiscordConfig,
    pub logging: LoggingConfig,
    pub workflows: WorkflowsConfig,
    /// Where the file was read from (not a setting).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// Where each key is written in that file (not a setting).
    #[serde(skip)]
    pub source_map: SourceMap,
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type or an unknown name.
    #[error("{}{}: {}{message}", path.display(), at(position), key.as_ref().map(|k| format!("`{k}`: ")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        position: Option<Position>,
        key: Option<String>,
        message: String,
    },
    /// A value is well-formed but cannot work (a zero interval, a fraction above 1…).
    #[error("{}{}: `{key}`: {message}", path.display(), at(position))]
    Invalid {
        path: PathBuf,
        position: Option<Position>,
        key: String,
        message: String,
    },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

fn at(position: &Option<Position>) -> String {
    position
        .map(|p| format!(":{}:{}", p.line, p.column))
        .unwrap_or_default()
}

impl ConfigError {
    /// The dotted key at fault, when one is known.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Parse { key, .. } => key.as_deref(),
            Self::Invalid { key, .. } => Some(key),
            Self::Read { .. } | Self::Env { .. } => None,
        }
    }
}

impl Config {
    /// Reads a config file, applies the environment, and validates the result.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text, path)?;
        config.apply_env(|k| std::env::var(k).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text; `path` only names the file in errors. Types and names are checked
    /// here; [`Config::validate`] checks the values.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let parse_error = |e: toml::de::Error, key: Option<String>| ConfigError::Parse {
            path: path.to_path_buf(),
            position: e.span().map(|s| Position::of_offset(text, s.start)),
            key,
            message: explain_parse_error(e.message()),
        };
        let root = toml::de::DeTable::parse(text).map_err(|e| parse_error(e, None))?;
        let source_map = SourceMap::of(text, &root);
        let deserializer = toml::de::Deserializer::from(root);
        let mut config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let key = (key != ".").then_some(key);
            parse_error(e.into_inner(), key)
        })?;
        config.source = Some(path.to_path_buf());
        config.source_map = source_map;
        Ok(config)
    }

    /// Applies environment overrides through `get` (a seam for tests).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(p) = get(ENV_COMFYUI_PATH).filter(|v| !v.is_empty()) {
            self.comfyui.path = PathBuf::from(p);
        }
        if let Some(p) = get(ENV_STATE_DIR).filter(|v| !v.is_empty()) {
            self.comfyui.state_dir = PathBuf::from(p);
        }
        if let Some(p) = get(ENV_WORKFLOWS_DIR).filter(|v| !v.is_empty()) {
            self.workflows.dir = PathBuf::from(p);
        }
        if let Some(p) = get(ENV_DISCORD_PROXY).filter(|v| !v.trim().is_empty()) {
            self.discord.api_proxy = p.trim().to_string();
        }
        if let Some(t) = get(ENV_DISCORD_TOKEN).filter(|v| !v.trim().is_empty()) {
            self.discord.token = Some(t.trim().to_string());
        }
        if let Some(spec) = get(ENV_API_TOKENS).filter(|v| !v.trim().is_empty()) {
            self.http.tokens = parse_tokens(&spec)?;
        }
        Ok(())
    }

    /// Checks every value `serve` depends on; the error names the dotted key, where it is
    /// written, what is wrong and what to use instead.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: self
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from("<config>")),
            position: self.source_map.position(&key),
            key,
            message,
        };
        self.lifecycle
            .validate()
            .map_err(|e| invalid(format!("lifecycle.{}", e.key()), e.to_string()))?;
        self.scheduler
            .validate()
            .map_err(|e| invalid(format!("scheduler.{}", e.key()), e.to_string()))?;
        self.limits
            .validate()
            .map_err(|e| invalid(format!("limits.{}", e.key()), e.to_string()))?;
        self.checks()
            .into_iter()
            .next()
            .map_or(Ok(()), |(key, message)| Err(invalid(key, message)))
    }

    /// The program's own checks, as (dotted key, message) pairs.
    fn checks(&self) -> Vec<(String, String)> {
        let mut problems: Vec<(String, String)> = Vec::new();
        let mut check = |ok: bool, key: &str, message: String| {
            if !ok {
                problems.push((key.to_string(), message));
            }
        };
        let c = &self.comfyui;
        check(
            !(c.command.is_empty()
                && !c.path.as_os_str().is_empty()
                && !c.path.join("main.py").is_file()),
            "comfyui.path",
            format!(
                "{} holds no main.py; point it at a ComfyUI checkout, or leave it empty for the demo backend",
                c.path.display()
            ),
        );
        check(
            !c.command.first().is_some_and(|p| p.trim().is_empty()),
            "comfyui.command",
            "the program name is empty; give the program first, e.g. [\"/usr/bin/env\", \"comfyui\"]".into(),
        );
        for (i, gpu) in self.gpus.declared.iter().enumerate() {
            check(
                !gpu.id.trim().is_empty(),
                &format!("gpus.declared[{i}].id"),
                "is empty; give the GPU's UUID (GPU-…) or its index".into(),
            );
        }
        check(
            !self.gpus.sample_interval.is_zero(),
            "gpus.sample_interval",
            "must be longer than zero; use a duration such as \"5s\"".into(),
        );
        check(
            self.instances.per_gpu > 0,
            "instances.per_gpu",
            "must be at least 1".into(),
        );
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.remote.iter().enumerate() {
            check(
                !r.name.trim().is_empty(),
                &format!("remote[{i}].name"),
                "is empty; name the server (it appears in logs and /v1/status)".into(),
            );
            check(
                names.insert(r.name.as_str()),
                &format!("remote[{i}].name"),
                format!("`{}` is used twice; give each remote its own name", r.name),
            );
            check(
                r.url.starts_with("http://") && r.url.len() > "http://".len(),
                &format!("remote[{i}].url"),
                format!(
                    "`{}` is not an http:// URL (e.g. http://127.0.0.1:8188)",
                    r.url
                ),
            );
        }
        check(
            !c.models_read_only || c.library_dir().is_dir(),
            "comfyui.models_read_only",
            format!(
                "the model library {} does not exist, and a read-only library must be an existing \
                 folder; point comfyui.models_dir at your ComfyUI `models` folder",
                c.library_dir().display()
            ),
        );
        check(
            !c.library_dir().is_file(),
            "comfyui.models_dir",
            format!(
                "{} is a file; give the folder that holds (or will hold) the model files",
                c.library_dir().display()
            ),
        );
        check(
            self.http.max_model_upload_mb > 0,
            "http.max_model_upload_mb",
            "must be at least 1 (MiB)".into(),
        );
        for (i, operator) in self.http.operators.iter().enumerate() {
            check(
                !operator.trim().is_empty(),
                &format!("http.operators[{i}]"),
                "is empty; name a user of COMFY_FLEET_API_TOKENS (or http.anonymous_user)".into(),
            );
        }
        check(
            self.http.max_body_mb > 0,
            "http.max_body_mb",
            "must be at least 1 (MiB)".into(),
        );
        check(
            self.http.max_images > 0,
            "http.max_images",
            "must be at least 1 (a template with an image parameter needs one)".into(),
        );
        check(
            !self.http.anonymous_user.trim().is_empty(),
            "http.anonymous_user",
            "is empty; name the user that requests without a token count as, e.g. \"local\"".into(),
        );
        let d = &self.discord;
        check(
            !self.outputs.retention.is_zero(),
            "outputs.retention",
            "must be longer than zero; use a duration such as \"1day\"".into(),
        );
        check(
            self.outputs.max_size_mb > 0,
            "outputs.max_size_mb",
            "must be at least 1 (MiB)".into(),
        );
        check(
            d.api_proxy.is_empty()
                || ((d.api_proxy.starts_with("http://") || d.api_proxy.starts_with("https://"))
                    && d.api_proxy.trim_end_matches('/').len() > "https://".len()),
            "discord.api_proxy",
            format!(
                "`{}` is not an http(s) base URL; use e.g. \"http://127.0.0.1:8090\", or \"\" for none",
                d.api_proxy
            ),
        );
        check(
            !d.progress_interval.is_zero(),
            "discord.progress_interval",
            "must be longer than zero; use a duration such as \"1500ms\"".into(),
        );
        check(
            !d.token_handover.is_zero() && d.token_handover < DISCORD_TOKEN_LIFETIME,
            "discord.token_handover",
            format!(
                "is {}; it must be longer than zero and shorter than the 15-minute interaction token, e.g. \"14m\"",
                humantime::format_duration(d.token_handover)
            ),
        );
        check(
            !d.download_timeout.is_zero(),
            "discord.download_timeout",
            "must be longer than zero; use a duration such as \"30s\"".into(),
        );
        for (key, ids) in [
            ("discord.guilds", &d.guilds),
            ("discord.allowed_guilds", &d.allowed_guilds),
            ("discord.allowed_channels", &d.allowed_channels),
        ] {
            check(
                !ids.contains(&0),
                key,
                "holds 0, which is no Discord id; copy the id with Developer Mode on".into(),
            );
        }
        check(
            !d.operator_roles.iter().any(|r| r.trim().is_empty()),
            "discord.operator_roles",
            "holds an empty role id; list role ids such as \"123456789012345678\"".into(),
        );
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.logging.level) {
            check(
                false,
                "logging.level",
                format!(
                    "`{}` is not a log filter ({e}); use a level such as \"info\" or a filter such as \"info,fleet.http=warn\"",
                    self.logging.level
                ),
            );
        }
        problems
    }

    /// Whether the HTTP API's anonymous user is left out of the rate limits: no tokens are set
    /// and the API listens on loopback only, so every request comes from this machine and acts
    /// as `http.anonymous_user` (a person and their scripts). With tokens, or reachable from
    /// other machines, `[limits]` apply to everyone.
    pub fn anonymous_unlimited(&self) -> bool {
        self.http.enabled && self.http.tokens.is_empty() && self.http.listen.ip().is_loopback()
    }

    /// The rate limits as the limiter applies them: `[limits]`, with the anonymous user exempt
    /// when [`Config::anonymous_unlimited`].
    pub fn effective_limits(&self) -> RateLimitConfig {
        let mut limits = self.limits.clone();
        if self.anonymous_unlimited() {
            let anonymous = comfy_fleet_actors::UserId::new(self.http.anonymous_user.clone());
            if !limits.exempt_users.contains(&anonymous) {
                limits.exempt_users.push(anonymous);
            }
        }
        limits
    }

    /// What is valid but worth a second look, in words for the operator. `serve` logs these;
    /// `check-config` prints them.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let no_tokens = self.http.tokens.is_empty();
        if self.http.enabled && !self.http.listen.ip().is_loopback() && no_tokens {
            warnings.push(format!(
                "http.listen = {} is reachable from other machines and {ENV_API_TOKENS} is not set: \
                 anyone who can reach it can run jobs as `{}`; set tokens, or listen on 127.0.0.1",
                self.http.listen, self.http.anonymous_user
            ));
        }
        if !self.comfyui.listen.is_loopback() {
            warnings.push(format!(
                "comfyui.listen = {} exposes every ComfyUI instance to other machines, with no \
                 authentication (ComfyUI has none){}; keep 127.0.0.1 unless they must be reached directly",
                self.comfyui.listen,
                if no_tokens {
                    " and no API tokens set"
                } else {
                    ""
                }
            ));
        }
        // A serving fleet's traffic would pile up there (a one-off `run --url` leaves only its
        // own job's files).
        let serving = self.http.enabled;
        for remote in self
            .remote
            .iter()
            .filter(|r| serving && r.base_directory.is_none())
        {
            warnings.push(format!(
                "remote `{}` has no base_directory: the images uploaded to it and the outputs \
                 collected from it stay in its folders (ComfyUI has no API to delete files); set \
                 remote.base_directory to the folder holding its input/ and output/",
                remote.name
            ));
        }
        if self.limits.user_concurrent == 0 {
            warnings.push(
                "limits.user_concurrent = 0: no cap on how many jobs one user may have queued or \
                 running at once (only the per-window limits apply)"
                    .into(),
            );
        }
        warnings
    }
}

/// Parses `token=user,token2=user2`.
fn parse_tokens(spec: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut tokens = BTreeMap::new();
    for (i, pair) in spec
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        match pair.split_once('=') {
            Some((token, user)) if !token.trim().is_empty() && !user.trim().is_empty() => {
                tokens.insert(token.trim().to_string(), user.trim().to_string());
            }
            _ => {
                return Err(ConfigError::Env {
                    var: ENV_API_TOKENS.into(),
                    message: format!("entry {} is not `token=user`", i + 1),
                });
            }
        }
    }
    Ok(tokens)
}

/// Rewords serde's messages where a user needs a hint.
fn explain_parse_error(message: &str) -> String {
    let mut m = message.trim().to_string();
    if m.contains("unknown field `token`") {
        m.push_str(" (secrets are not read from the file: set DISCORD_TOKEN or COMFY_FLEET_API_TOKENS in the environment)");
    } else if m.contains("unknown field `enabled`") && m.contains("api_proxy") {
        m.push_str(" (the Discord bot runs when DISCORD_TOKEN is set in the environment; there is no switch in the file)");
    } else if m.contains("expected a duration") || m.contains("invalid duration") {
        m.push_str(" (durations are written like \"30s\", \"5m\" or \"1h 30m\")");
    }
    m
}

#[cfg(test)]
mod tests;
