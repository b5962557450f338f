//! Configuration: `config.toml`, its defaults, environment overrides and error reporting.
//!
//! Every setting has a default, so an empty file is a valid configuration; the shipped
//! `config.toml` documents each one. Errors name the file, the line, the key and what was
//! expected. Secrets never come from the file: the Discord token is read from `DISCORD_TOKEN`
//! and HTTP API tokens from `COMFY_FLEET_API_TOKENS`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::gpu::DiscoveryMode;

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

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub comfyui: ComfyUiConfig,
    pub gpus: GpusConfig,
    pub instances: InstancesConfig,
    /// ComfyUI servers comfy-fleet does not launch, used like managed ones.
    pub remote: Vec<RemoteConfig>,
    pub lifecycle: LifecycleConfig,
    pub scheduler: SchedulerSection,
    pub limits: LimitsConfig,
    pub http: HttpConfig,
    pub discord: DiscordConfig,
    pub logging: LoggingConfig,
    pub workflows: WorkflowsConfig,
    /// Where the file was read from (not a setting).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// How to start one ComfyUI server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComfyUiConfig {
    /// The ComfyUI checkout (the folder holding `main.py`). Empty runs the demo backend.
    pub path: PathBuf,
    /// The Python that runs `main.py` when `command` is empty.
    pub python: String,
    /// The full command, overriding `python main.py` and the demo backend.
    pub command: Vec<String>,
    /// Arguments appended after the ones comfy-fleet computes.
    pub extra_args: Vec<String>,
    /// Extra environment variables for every instance.
    pub env: BTreeMap<String, String>,
    /// Address instances listen on.
    pub listen: IpAddr,
    /// Parent folder of each instance's own input/output/temp/user folders and database.
    pub state_dir: PathBuf,
    /// Settings of the demo backend (`fake-comfyui`), used only when `path` and `command` are empty.
    pub demo: DemoConfig,
}

impl Default for ComfyUiConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            python: "python3".into(),
            command: Vec::new(),
            extra_args: Vec::new(),
            env: BTreeMap::new(),
            listen: IpAddr::from([127, 0, 0, 1]),
            state_dir: PathBuf::from(".fleet-run"),
            demo: DemoConfig::default(),
        }
    }
}

/// The demo backend's simulated timings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Time each node takes.
    #[serde(with = "humantime_serde")]
    pub node_time: Duration,
    /// Time each sampler step takes.
    #[serde(with = "humantime_serde")]
    pub step_time: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            node_time: Duration::from_millis(100),
            step_time: Duration::from_millis(50),
        }
    }
}

/// What the launched command is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// The built-in `fake-comfyui`: no GPU work, labelled as a demo everywhere.
    Demo,
    /// A real ComfyUI (or an operator-given command).
    ComfyUi,
}

impl ComfyUiConfig {
    /// Which backend the settings select.
    pub fn backend_kind(&self) -> BackendKind {
        let fake = |c: &str| {
            Path::new(c)
                .file_name()
                .is_some_and(|n| n == "fake-comfyui")
        };
        match self.command.first() {
            Some(first) if fake(first) => BackendKind::Demo,
            Some(_) => BackendKind::ComfyUi,
            None if self.path.as_os_str().is_empty() => BackendKind::Demo,
            None => BackendKind::ComfyUi,
        }
    }

    /// The program and leading arguments that start one instance, and its working directory.
    pub fn launch_command(&self) -> (Vec<String>, Option<PathBuf>) {
        let dir = (!self.path.as_os_str().is_empty()).then(|| self.path.clone());
        if !self.command.is_empty() {
            return (self.command.clone(), dir);
        }
        match self.backend_kind() {
            BackendKind::Demo => {
                let mut cmd = vec![resolve_sibling("fake-comfyui")];
                cmd.push("--fake-node-time".into());
                cmd.push(humantime::format_duration(self.demo.node_time).to_string());
                cmd.push("--fake-step-time".into());
                cmd.push(humantime::format_duration(self.demo.step_time).to_string());
                (cmd, None)
            }
            BackendKind::ComfyUi => (vec![self.python.clone(), "main.py".into()], dir),
        }
    }
}

/// A program name as it will be run: the binary next to the running executable when one of
/// that name exists there (so `fake-comfyui` is found after `cargo build`), else the name as is
/// (looked up in `PATH`).
pub fn resolve_sibling(program: &str) -> String {
    if !program.contains('/')
        && let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        // Test binaries live one level below the main binaries (target/debug/deps).
        for candidate in [dir.join(program), dir.join("..").join(program)] {
            if candidate.is_file() {
                return candidate.to_string_lossy().into_owned();
            }
        }
    }
    program.to_string()
}

/// GPU discovery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpusConfig {
    pub discovery: DiscoveryMode,
    /// Path of `libnvidia-ml.so.1` when it is not where the loader looks.
    pub nvml_library: Option<PathBuf>,
    /// GPUs to use when NVML finds none (or with `discovery = "declared"`).
    pub declared: Vec<DeclaredGpuConfig>,
    /// Instances started with `--cpu` when there is no GPU at all.
    pub cpu_instances: u32,
    /// How often the GPU monitor samples memory, utilisation and temperature.
    #[serde(with = "humantime_serde")]
    pub sample_interval: Duration,
}

impl Default for GpusConfig {
    fn default() -> Self {
        Self {
            discovery: DiscoveryMode::Auto,
            nvml_library: None,
            declared: Vec::new(),
            cpu_instances: 1,
            sample_interval: Duration::from_secs(5),
        }
    }
}

impl GpusConfig {
    /// The declared GPUs as discovery takes them.
    pub fn declared_gpus(&self) -> Vec<crate::gpu::DeclaredGpu> {
        self.declared
            .iter()
            .map(|d| crate::gpu::DeclaredGpu {
                id: d.id.clone(),
                name: d.name.clone(),
                memory_total_bytes: (d.memory_mb > 0).then_some(d.memory_mb * 1024 * 1024),
            })
            .collect()
    }
}

/// A GPU named in the config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredGpuConfig {
    /// What `CUDA_VISIBLE_DEVICES` gets: a UUID (`GPU-…`) or an index.
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Memory in MiB, for placement by VRAM headroom.
    #[serde(default)]
    pub memory_mb: u64,
}

/// How many instances per GPU, and on which ports.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstancesConfig {
    pub per_gpu: u32,
    /// First port; instance k gets `base_port + k`. 0 picks free ports.
    pub base_port: u16,
}

impl Default for InstancesConfig {
    fn default() -> Self {
        Self {
            per_gpu: 1,
            base_port: 0,
        }
    }
}

/// A ComfyUI server that comfy-fleet attaches to without launching it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    pub name: String,
    pub url: String,
}

/// Instance lifecycle and supervision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// From launch to HTTP up and object_info loaded.
    #[serde(with = "humantime_serde")]
    pub readiness_timeout: Duration,
    /// Run a tiny prompt before declaring an instance ready.
    pub warmup: bool,
    /// Ping interval while idle.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// Consecutive failed pings that count as a crash.
    pub health_failures: u32,
    /// Restart backoff: first delay, growth factor, cap and jitter fraction.
    #[serde(with = "humantime_serde")]
    pub restart_backoff_initial: Duration,
    pub restart_backoff_multiplier: f64,
    #[serde(with = "humantime_serde")]
    pub restart_backoff_max: Duration,
    pub restart_jitter: f64,
    /// Crash-loop breaker: this many crashes within the window quarantines the instance.
    pub crash_loop_max_crashes: u32,
    #[serde(with = "humantime_serde")]
    pub crash_loop_window: Duration,
    /// How long a quarantined instance waits before it is tried again.
    #[serde(with = "humantime_serde")]
    pub quarantine_cooldown: Duration,
    /// A running job that sends nothing for this long is checked, interrupted and retried.
    #[serde(with = "humantime_serde")]
    pub job_silence_timeout: Duration,
    /// SIGTERM, then this long, then SIGKILL.
    #[serde(with = "humantime_serde")]
    pub stop_grace: Duration,
    /// On SIGINT/SIGTERM, running jobs may finish for this long before the instances stop.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            readiness_timeout: Duration::from_secs(180),
            warmup: false,
            health_interval: Duration::from_secs(15),
            health_failures: 3,
            restart_backoff_initial: Duration::from_secs(1),
            restart_backoff_multiplier: 2.0,
            restart_backoff_max: Duration::from_secs(60),
            restart_jitter: 0.2,
            crash_loop_max_crashes: 5,
            crash_loop_window: Duration::from_secs(600),
            quarantine_cooldown: Duration::from_secs(900),
            job_silence_timeout: Duration::from_secs(600),
            stop_grace: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// The fleet queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSection {
    /// Jobs waiting at most; more is refused with "the queue is full".
    pub queue_capacity: usize,
    /// Jobs handed to one ComfyUI at once (its own queue stays this short).
    pub pipeline_depth: usize,
    /// Attempts on other instances after an instance failed under a job.
    pub max_retries: u32,
    /// GPU memory that must stay free for a job to be placed there (MiB, 0 = no check).
    pub vram_headroom_mb: u64,
    /// Finished jobs kept for status queries.
    pub job_retention: usize,
    /// Model sets (a job's checkpoint with its LoRAs, VAE, text encoders) a GPU keeps loaded;
    /// model affinity assumes each instance holds the sets of its last this-many jobs.
    pub loaded_models_per_instance: usize,
    /// Queued jobs a freed slot may look through for one whose models it has (0 = strict order).
    pub affinity_lookahead: usize,
    /// Fair-share rounds beyond the next job's the look-ahead may reach (0 keeps fairness exact).
    pub affinity_rounds_ahead: u64,
    /// Let a job wait for a busy instance that has its models rather than load them elsewhere
    /// (only while no GPU would idle).
    pub affinity_wait: bool,
    /// Most times the look-ahead may pass over one queued job.
    pub max_overtakes: u32,
    /// Queue positions below this are told to the submitter at every change.
    pub position_updates_first: usize,
    /// Further back, a position is told again after changing by this fraction.
    pub position_update_change: f64,
    /// Everyone queued is told a new ETA when the fleet's pace changed by this fraction.
    pub eta_update_change: f64,
    /// Users whose jobs go first.
    pub priority_users: Vec<String>,
    /// Roles (Discord roles) whose jobs go first.
    pub priority_roles: Vec<String>,
}

impl Default for SchedulerSection {
    fn default() -> Self {
        Self {
            queue_capacity: 1000,
            pipeline_depth: 2,
            max_retries: 2,
            vram_headroom_mb: 0,
            job_retention: 10_000,
            loaded_models_per_instance: 2,
            affinity_lookahead: 8,
            affinity_rounds_ahead: 0,
            affinity_wait: true,
            max_overtakes: 8,
            position_updates_first: 10,
            position_update_change: 0.1,
            eta_update_change: 1.0,
            priority_users: Vec::new(),
            priority_roles: Vec::new(),
        }
    }
}

/// Per-user and global limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Jobs one user may submit per `user_window`.
    pub user_jobs: u32,
    #[serde(with = "humantime_serde")]
    pub user_window: Duration,
    /// Jobs everyone together may submit per `global_window`.
    pub global_jobs: u32,
    #[serde(with = "humantime_serde")]
    pub global_window: Duration,
    /// Jobs one user may have queued or running at once.
    pub user_concurrent: u32,
    pub exempt_users: Vec<String>,
    pub exempt_roles: Vec<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            user_jobs: 10,
            user_window: Duration::from_secs(600),
            global_jobs: 300,
            global_window: Duration::from_secs(600),
            user_concurrent: 3,
            exempt_users: Vec::new(),
            exempt_roles: Vec::new(),
        }
    }
}

/// The HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Accept whole workflows (either format) as well as template names.
    pub allow_workflows: bool,
    /// Largest request body (JSON or multipart), in MiB.
    pub max_body_mb: u64,
    /// The user id of requests without a token when no tokens are configured.
    pub anonymous_user: String,
    /// Quiet time after which a job's event stream gets a `: keep-alive` comment (0 = never).
    #[serde(with = "humantime_serde")]
    pub sse_keep_alive: Duration,
    /// Tokens from `COMFY_FLEET_API_TOKENS` (`token=user,…`); never written in the file.
    #[serde(skip)]
    pub tokens: BTreeMap<String, String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allow_workflows: true,
            max_body_mb: 25,
            anonymous_user: "local".into(),
            sse_keep_alive: Duration::from_secs(15),
            tokens: BTreeMap::new(),
        }
    }
}

/// The Discord bot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// Start the bot (needs `DISCORD_TOKEN`).
    pub enabled: bool,
    /// Register commands in this guild only (instant) instead of globally.
    pub guild_id: Option<u64>,
    /// Largest accepted attachment, in MiB.
    pub max_attachment_mb: u64,
    /// Least time between two progress edits of one message.
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
    /// The token, from `DISCORD_TOKEN` only.
    #[serde(skip)]
    pub token: Option<String>,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            guild_id: None,
            max_attachment_mb: 10,
            progress_interval: Duration::from_secs(2),
            token: None,
        }
    }
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// Logging and the periodic metrics line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter; `RUST_LOG` wins when set.
    pub level: String,
    /// How often the `fleet.metrics` event is logged.
    #[serde(with = "humantime_serde")]
    pub metrics_interval: Duration,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
            metrics_interval: Duration::from_secs(30),
        }
    }
}

/// Workflow templates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowsConfig {
    pub dir: PathBuf,
}

impl Default for WorkflowsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("workflows"),
        }
    }
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {}{message}", path.display(), key.as_ref().map(|k| format!("`{k}`: ")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        key: Option<String>,
        message: String,
    },
    #[error("{}: `{key}`: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

impl Config {
    /// Reads and validates a config file, then applies the environment.
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

    /// Parses TOML text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let (line, column, key) = match e.span() {
                Some(span) => locate(text, span.start),
                None => (1, 1, None),
            };
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                key,
                message: explain_parse_error(e.message()),
            }
        })?;
        config.source = Some(path.to_path_buf());
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
        if let Some(t) = get(ENV_DISCORD_TOKEN).filter(|v| !v.trim().is_empty()) {
            self.discord.token = Some(t.trim().to_string());
        }
        if let Some(spec) = get(ENV_API_TOKENS).filter(|v| !v.trim().is_empty()) {
            self.http.tokens = parse_tokens(&spec)?;
        }
        Ok(())
    }

    /// Checks what types alone cannot: relations between settings and paths that must exist.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: self
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from("<config>")),
            key: key.into(),
            message,
        };
        let c = &self.comfyui;
        if c.command.is_empty()
            && !c.path.as_os_str().is_empty()
            && !c.path.join("main.py").is_file()
        {
            return Err(invalid(
                "comfyui.path",
                format!(
                    "{} holds no main.py; point it at a ComfyUI checkout, or leave it empty for the demo backend",
                    c.path.display()
                ),
            ));
        }
        if c.command.first().is_some_and(|p| p.trim().is_empty()) {
            return Err(invalid(
                "comfyui.command",
                "the program name is empty".into(),
            ));
        }
        if self.instances.per_gpu == 0 {
            return Err(invalid("instances.per_gpu", "must be at least 1".into()));
        }
        if self.scheduler.pipeline_depth == 0 {
            return Err(invalid(
                "scheduler.pipeline_depth",
                "must be at least 1".into(),
            ));
        }
        if self.scheduler.queue_capacity == 0 {
            return Err(invalid(
                "scheduler.queue_capacity",
                "must be at least 1".into(),
            ));
        }
        let change = self.scheduler.position_update_change;
        if !(change > 0.0 && change < 1.0) {
            return Err(invalid(
                "scheduler.position_update_change",
                format!("is {change}: use a fraction above 0 and below 1, such as 0.1"),
            ));
        }
        let change = self.scheduler.eta_update_change;
        if !(change > 0.0 && change.is_finite()) {
            return Err(invalid(
                "scheduler.eta_update_change",
                format!("is {change}: use a fraction above 0, such as 1.0"),
            ));
        }
        let l = &self.lifecycle;
        if l.restart_backoff_multiplier < 1.0 {
            return Err(invalid(
                "lifecycle.restart_backoff_multiplier",
                "must be 1.0 or more".into(),
            ));
        }
        if !(0.0..=1.0).contains(&l.restart_jitter) {
            return Err(invalid(
                "lifecycle.restart_jitter",
                "must be between 0.0 and 1.0".into(),
            ));
        }
        if l.restart_backoff_max < l.restart_backoff_initial {
            return Err(invalid(
                "lifecycle.restart_backoff_max",
                "must not be shorter than restart_backoff_initial".into(),
            ));
        }
        if l.crash_loop_max_crashes == 0 {
            return Err(invalid(
                "lifecycle.crash_loop_max_crashes",
                "must be at least 1".into(),
            ));
        }
        for (i, r) in self.remote.iter().enumerate() {
            if !r.url.starts_with("http://") {
                return Err(invalid(
                    &format!("remote[{i}].url"),
                    format!(
                        "`{}` is not an http:// URL (e.g. http://127.0.0.1:8188)",
                        r.url
                    ),
                ));
            }
        }
        if self.limits.user_jobs == 0 || self.limits.global_jobs == 0 {
            return Err(invalid(
                "limits",
                "user_jobs and global_jobs must be at least 1".into(),
            ));
        }
        if self.discord.enabled && self.discord.token.is_none() {
            return Err(invalid(
                "discord.enabled",
                format!("the bot is enabled but {ENV_DISCORD_TOKEN} is not set in the environment"),
            ));
        }
        Ok(())
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

/// Line, column (1-based) and dotted key at a byte offset of a TOML text.
fn locate(text: &str, offset: usize) -> (usize, usize, Option<String>) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let mut table = String::new();
    for l in before.lines() {
        let t = l.trim();
        if t.starts_with('[') {
            table = t
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                .to_string();
        }
    }
    let current = text[line_start..].lines().next().unwrap_or("").trim();
    let key = if current.starts_with('[') {
        None
    } else {
        current
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
    };
    let full = match (table.is_empty(), key) {
        (_, None) if table.is_empty() => None,
        (_, None) => Some(table),
        (true, Some(k)) => Some(k),
        (false, Some(k)) => Some(format!("{table}.{k}")),
    };
    (line, column, full)
}

/// Rewords serde's messages where a user needs a hint.
fn explain_parse_error(message: &str) -> String {
    let mut m = message.trim().to_string();
    if m.contains("unknown field `token`") {
        m.push_str(" (secrets are not read from the file: set DISCORD_TOKEN or COMFY_FLEET_API_TOKENS in the environment)");
    } else if m.contains("expected a duration") || m.contains("invalid duration") {
        m.push_str(" (durations are written like \"30s\", \"5m\" or \"1h 30m\")");
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.comfyui.listen.to_string(), "127.0.0.1");
        assert_eq!(c.comfyui.backend_kind(), BackendKind::Demo);
        assert_eq!(c.lifecycle.stop_grace, Duration::from_secs(10));
        c.validate().unwrap();
    }

    #[test]
    fn shipped_config_is_valid_and_documents_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c = Config::parse(&text, &path).unwrap();
        c.validate().unwrap();
        // Every section and key of the defaults appears in the shipped file.
        let defaults = toml::to_string(&Config::default()).unwrap();
        let documented: toml::Table = toml::from_str(&text).unwrap();
        let defaults: toml::Table = toml::from_str(&defaults).unwrap();
        for (section, value) in &defaults {
            let Some(table) = value.as_table() else {
                continue;
            };
            let shipped = documented.get(section).and_then(|v| v.as_table());
            let shipped = shipped.unwrap_or_else(|| panic!("config.toml lacks [{section}]"));
            for key in table.keys() {
                assert!(
                    shipped.contains_key(key),
                    "config.toml lacks {section}.{key}"
                );
            }
        }
    }

    #[test]
    fn bad_duration_names_line_key_and_form() {
        let err = parse("[lifecycle]\nstop_grace = \"ten seconds\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.toml:2:"), "{err}");
        assert!(err.contains("`lifecycle.stop_grace`"), "{err}");
        assert!(err.contains("\"30s\""), "{err}");
    }

    #[test]
    fn wrong_type_names_key_and_expectation() {
        let err = parse("[scheduler]\n\nqueue_capacity = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.toml:3:"), "{err}");
        assert!(err.contains("scheduler.queue_capacity"), "{err}");
        assert!(err.contains("integer") || err.contains("usize"), "{err}");
    }

    #[test]
    fn unknown_key_is_refused_with_the_known_ones() {
        let err = parse("[http]\nlisten_addr = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_addr"), "{err}");
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn secrets_in_the_file_are_refused_with_a_pointer_to_the_environment() {
        let err = parse("[discord]\ntoken = \"abc\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("DISCORD_TOKEN"), "{err}");
    }

    #[test]
    fn environment_overrides_paths_and_carries_secrets() {
        let mut c = parse("").unwrap();
        c.apply_env(|k| match k {
            ENV_STATE_DIR => Some("/tmp/fleet".into()),
            ENV_DISCORD_TOKEN => Some(" tok ".into()),
            ENV_API_TOKENS => Some("abc=alice, def=bob".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.comfyui.state_dir, PathBuf::from("/tmp/fleet"));
        assert_eq!(c.discord.token.as_deref(), Some("tok"));
        assert_eq!(c.http.tokens.get("def").map(String::as_str), Some("bob"));
        let bad = c.apply_env(|k| (k == ENV_API_TOKENS).then(|| "abc".into()));
        assert!(bad.unwrap_err().to_string().contains("token=user"));
    }

    #[test]
    fn relations_are_checked() {
        let mut c = parse("[scheduler]\npipeline_depth = 0\n").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("scheduler.pipeline_depth")
        );
        c = parse("[scheduler]\nposition_update_change = 1.5\n").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("scheduler.position_update_change") && err.contains("0.1"),
            "{err}"
        );
        c = parse("[scheduler]\neta_update_change = 0.0\n").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("scheduler.eta_update_change"), "{err}");
        c = parse("[comfyui]\npath = \"/nonexistent/comfy\"\n").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("comfyui.path") && err.contains("main.py"),
            "{err}"
        );
        c = parse("[discord]\nenabled = true\n").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("DISCORD_TOKEN")
        );
        c = parse("[[remote]]\nname = \"r\"\nurl = \"ftp://x\"\n").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("remote[0].url")
        );
    }

    #[test]
    fn a_real_comfyui_path_switches_to_python_main() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.py"), "").unwrap();
        let mut c = parse("").unwrap();
        c.comfyui.path = dir.path().to_path_buf();
        c.validate().unwrap();
        assert_eq!(c.comfyui.backend_kind(), BackendKind::ComfyUi);
        let (cmd, cwd) = c.comfyui.launch_command();
        assert_eq!(cmd, vec!["python3".to_string(), "main.py".into()]);
        assert_eq!(cwd.as_deref(), Some(dir.path()));
    }
}
