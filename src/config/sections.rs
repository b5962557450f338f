//! The sections of config.toml that belong to the program itself: how instances are launched
//! and where, the HTTP API, the Discord bot, logging and templates. The supervision, scheduling
//! and rate-limit sections are the actors' own config types (`InstanceConfig`,
//! `SchedulerConfig`, `RateLimitConfig`), read as they are.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::gpu::DiscoveryMode;

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
    /// The fleet's one model library, registered with every instance; empty means
    /// `<state_dir>/models`.
    pub models_dir: PathBuf,
    /// Refuse to add or remove files in the model library (an operator's own models folder).
    pub models_read_only: bool,
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
            models_dir: PathBuf::new(),
            models_read_only: false,
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

    /// The model library's folder: `models_dir`, or `<state_dir>/models` when it is empty.
    pub fn library_dir(&self) -> PathBuf {
        if self.models_dir.as_os_str().is_empty() {
            self.state_dir.join("models")
        } else {
            self.models_dir.clone()
        }
    }

    /// The model library these settings describe.
    pub fn library(&self) -> std::io::Result<crate::models::ModelLibrary> {
        crate::models::ModelLibrary::new(
            &self.library_dir(),
            self.models_read_only,
            &self.state_dir,
        )
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
    /// The server's base folder (holding its `input/`, `output/` and `temp/`) as seen from
    /// this machine. ComfyUI has no API to delete files: with it, comfy-fleet deletes the
    /// images it uploaded and the outputs it collected there once a job ends; without it, they
    /// stay on the server.
    #[serde(default)]
    pub base_directory: Option<PathBuf>,
}

/// The fleet's own store of finished jobs' output files (`<comfyui.state_dir>/outputs/`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputsConfig {
    /// How long a finished job's files are kept (never longer than its record).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// The most the store holds, in MiB; the oldest jobs' files go first beyond it.
    pub max_size_mb: u64,
}

impl Default for OutputsConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(24 * 3600),
            max_size_mb: 10 * 1024,
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
    /// Largest request body (JSON, or multipart with every image), in MiB.
    pub max_body_mb: u64,
    /// Image parts one multipart request may carry at most.
    pub max_images: usize,
    /// Serve `/metrics` without a token even when tokens are set (for a Prometheus that
    /// scrapes without one).
    pub metrics_public: bool,
    /// The user id of requests without a token when no tokens are configured.
    pub anonymous_user: String,
    /// Users (from `COMFY_FLEET_API_TOKENS`, or `anonymous_user`) who see the whole fleet in
    /// `/v1/status` (every job, instance URLs and details, loaded models) and may add and
    /// remove files of the model library through the API. Other users see their own jobs and
    /// the pool's shape.
    pub operators: Vec<String>,
    /// Largest model file an operator may upload through the API, in MiB.
    pub max_model_upload_mb: u64,
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
            max_images: 4,
            metrics_public: false,
            anonymous_user: "local".into(),
            operators: Vec::new(),
            max_model_upload_mb: 32 * 1024,
            sse_keep_alive: Duration::from_secs(15),
            tokens: BTreeMap::new(),
        }
    }
}

/// The Discord bot. It runs when `DISCORD_TOKEN` is set; there is no switch in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// A base URL every REST call goes to instead of `https://discord.com` (and so the gateway
    /// URL Discord hands out); empty for none. `COMFY_FLEET_DISCORD_PROXY` overrides it.
    pub api_proxy: String,
    /// Register the commands in these guilds (instantly) instead of globally; empty = global.
    pub guilds: Vec<u64>,
    /// Guilds whose members may use the bot; empty = any guild (and direct messages).
    pub allowed_guilds: Vec<u64>,
    /// Channels the bot answers in; empty = any channel.
    pub allowed_channels: Vec<u64>,
    /// Role ids whose members may use `/fleet`.
    pub operator_roles: Vec<String>,
    /// Least time between two progress edits of one message.
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
    /// How long after a command its progress moves from the interaction response to an
    /// ordinary channel message (Discord's interaction token lives 15 minutes).
    #[serde(with = "humantime_serde")]
    pub token_handover: Duration,
    /// Show the latest sampler preview image in progress messages.
    pub previews: bool,
    /// Longest time one attachment download may take.
    #[serde(with = "humantime_serde")]
    pub download_timeout: Duration,
    /// The token, from `DISCORD_TOKEN` only.
    #[serde(skip)]
    pub token: Option<String>,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            api_proxy: String::new(),
            guilds: Vec::new(),
            allowed_guilds: Vec::new(),
            allowed_channels: Vec::new(),
            operator_roles: Vec::new(),
            progress_interval: Duration::from_millis(1500),
            token_handover: Duration::from_secs(14 * 60),
            previews: true,
            download_timeout: Duration::from_secs(30),
            token: None,
        }
    }
}

/// Discord's interaction tokens expire this long after the interaction.
pub const DISCORD_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

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

/// Workflow templates, and the servers' node definitions jobs are checked against.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowsConfig {
    pub dir: PathBuf,
    /// Least time between two fetches of `/object_info` caused by jobs naming a list value (a
    /// model, a file) that the fleet's copy lacks.
    #[serde(with = "humantime_serde")]
    pub object_info_refresh: Duration,
}

impl Default for WorkflowsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("workflows"),
            object_info_refresh: Duration::from_secs(10),
        }
    }
}
