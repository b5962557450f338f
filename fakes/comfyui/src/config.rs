//! Command line of the fake: ComfyUI 0.33.0's flags (parsed leniently, unknown ones are logged and
//! skipped) plus the `--fake-*` knobs for timing and fault injection, each also readable from a
//! `FAKE_COMFYUI_*` environment variable (the flag wins).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::catalog::MODEL_FOLDERS;
use crate::model_paths::{MODEL_EXTENSIONS, has_model_extension};

/// Text printed by `--help`.
pub const HELP: &str = "\
usage: fake-comfyui [ComfyUI flags] [fake flags]

A stand-in for ComfyUI 0.33.0: same HTTP routes, websocket messages, validation errors,
queue/history/jobs behaviour and output files, without any model.

ComfyUI flags honoured:
  --listen [IP[,IP...]]       addresses to bind (default 127.0.0.1; bare flag = 0.0.0.0,::)
  --port PORT                 default 8188
  --input-directory DIR       default ./input
  --output-directory DIR      default ./output
  --temp-directory DIR        temp files go to DIR/temp (default ./temp), wiped at start
  --user-directory DIR        default ./user
  --base-directory DIR        base for the default directories (default: current directory)
  --models-directory DIR      model folders listed by /models/{folder} and loader combos
                              (default BASE/models)
  --extra-model-paths-config FILE [FILE...]
                              more model folders, from extra_model_paths.yaml files (sections
                              with base_path, is_default and `folder: path` lines or `|` lists)
  --database-url URL          sqlite:///PATH creates PATH and locks it (default BASE/user/comfyui.db);
                              sqlite:///:memory: uses no file
  --cuda-device ID            reported device is cuda:0 (ComfyUI hides the other GPUs)
  --cpu                       report a cpu device
  --cache-none                disable the node output cache
  --max-upload-size MB        upload limit (default 100)
  --disable-api-nodes         drop the paid API nodes from /object_info
  --disable-metadata          do not write the prompt into saved PNGs
  --preview-method METHOD     'none' disables sampler preview frames (the fake defaults to sending them)
  --log-stdout                info lines go to stdout instead of stderr
  every other ComfyUI flag is accepted and ignored; unknown flags are logged and ignored.

Fake flags (environment variable in brackets; the flag wins):
  --fake-node-time DUR        time spent per executed node, humantime (default 2ms) [FAKE_COMFYUI_NODE_TIME]
  --fake-step-time DUR        time per progress step of nodes with a `steps` input (default 2ms)
                              [FAKE_COMFYUI_STEP_TIME]
  --fake-fail-node ID|CLASS   raise an execution_error at that node id or class [FAKE_COMFYUI_FAIL_NODE]
  --fake-oom                  raise torch.OutOfMemoryError at the first sampler-like node (or the
                              first executed node) [FAKE_COMFYUI_OOM=1]
  --fake-crash-after-nodes N  abort the process (SIGABRT) after executing N nodes of a prompt
                              [FAKE_COMFYUI_CRASH_AFTER_NODES]
  --fake-hang-after-nodes N   after N executed nodes, the prompt never finishes and no more
                              websocket frames are sent for it; HTTP keeps answering
                              [FAKE_COMFYUI_HANG_AFTER_NODES]
  --fake-start-delay DUR      wait this long before listening [FAKE_COMFYUI_START_DELAY]
  --fake-refuse-port          exit 1 with the port-in-use message [FAKE_COMFYUI_REFUSE_PORT=1]
  --fake-model FOLDER/FILE    list FILE in the model folder FOLDER (/models/FOLDER and the loaders'
                              choices) as if it were installed; repeat for more files. Loaders
                              accept it without reading anything (the demo backend's model files)
                              [FAKE_COMFYUI_MODELS=FOLDER/FILE,FOLDER/FILE...]
  -h, --help                  this text
";

/// Errors in the command line or environment.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("argument {flag}: expected a value")]
    MissingValue { flag: String },
    #[error("argument {flag}: invalid value {value:?}: {reason}")]
    BadValue {
        flag: String,
        value: String,
        reason: String,
    },
}

/// How many values a ComfyUI flag takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arity {
    None,
    One,
    Optional,
}

/// Every flag of ComfyUI 0.33.0's `main.py --help`, with its arity.
const COMFY_FLAGS: &[(&str, Arity)] = {
    use Arity as A;
    &[
        ("listen", A::Optional),
        ("port", A::One),
        ("tls-keyfile", A::One),
        ("tls-certfile", A::One),
        ("enable-cors-header", A::Optional),
        ("max-upload-size", A::One),
        ("base-directory", A::One),
        ("extra-model-paths-config", A::One),
        ("output-directory", A::One),
        ("temp-directory", A::One),
        ("input-directory", A::One),
        ("auto-launch", A::None),
        ("disable-auto-launch", A::None),
        ("cuda-device", A::One),
        ("default-device", A::One),
        ("cuda-malloc", A::None),
        ("disable-cuda-malloc", A::None),
        ("force-fp32", A::None),
        ("force-fp16", A::None),
        ("fp32-unet", A::None),
        ("fp64-unet", A::None),
        ("bf16-unet", A::None),
        ("fp16-unet", A::None),
        ("fp8_e4m3fn-unet", A::None),
        ("fp8_e5m2-unet", A::None),
        ("fp8_e8m0fnu-unet", A::None),
        ("fp16-vae", A::None),
        ("fp32-vae", A::None),
        ("bf16-vae", A::None),
        ("cpu-vae", A::None),
        ("fp8_e4m3fn-text-enc", A::None),
        ("fp8_e5m2-text-enc", A::None),
        ("fp16-text-enc", A::None),
        ("fp32-text-enc", A::None),
        ("bf16-text-enc", A::None),
        ("fp16-intermediates", A::None),
        ("force-channels-last", A::None),
        ("directml", A::Optional),
        ("oneapi-device-selector", A::One),
        ("supports-fp8-compute", A::None),
        ("enable-triton-backend", A::None),
        ("disable-triton-backend", A::None),
        ("preview-method", A::Optional),
        ("preview-size", A::One),
        ("cache-ram", A::Optional),
        ("cache-classic", A::None),
        ("cache-lru", A::One),
        ("cache-none", A::None),
        ("high-ram", A::None),
        ("use-split-cross-attention", A::None),
        ("use-quad-cross-attention", A::None),
        ("use-pytorch-cross-attention", A::None),
        ("use-sage-attention", A::None),
        ("use-flash-attention", A::None),
        ("use-ck-attention", A::None),
        ("disable-xformers", A::None),
        ("force-upcast-attention", A::None),
        ("dont-upcast-attention", A::None),
        ("enable-manager", A::None),
        ("disable-manager-ui", A::None),
        ("enable-manager-legacy-ui", A::None),
        ("gpu-only", A::None),
        ("highvram", A::None),
        ("lowvram", A::None),
        ("novram", A::None),
        ("cpu", A::None),
        ("reserve-vram", A::One),
        ("vram-headroom", A::One),
        ("disable-nvml-pressure", A::None),
        ("async-offload", A::Optional),
        ("disable-async-offload", A::None),
        ("disable-dynamic-vram", A::None),
        ("enable-dynamic-vram", A::None),
        ("fast-disk", A::None),
        ("disable-cuda-graphs", A::None),
        ("force-non-blocking", A::None),
        ("default-hashing-function", A::One),
        ("disable-smart-memory", A::None),
        ("deterministic", A::None),
        ("fast", A::Optional),
        ("debug-hang", A::None),
        ("disable-pinned-memory", A::None),
        ("mmap-torch-files", A::None),
        ("disable-mmap", A::None),
        ("dont-print-server", A::None),
        ("quick-test-for-ci", A::None),
        ("windows-standalone-build", A::None),
        ("disable-metadata", A::None),
        ("disable-all-custom-nodes", A::None),
        ("whitelist-custom-nodes", A::One),
        ("disable-api-nodes", A::None),
        ("multi-user", A::None),
        ("verbose", A::Optional),
        ("log-stdout", A::None),
        ("front-end-version", A::One),
        ("front-end-root", A::One),
        ("user-directory", A::One),
        ("models-directory", A::One),
        ("enable-compress-response-body", A::None),
        ("comfy-api-base", A::One),
        ("database-url", A::One),
        ("enable-assets", A::None),
        ("enable-asset-hashing", A::None),
        ("feature-flag", A::One),
        ("list-feature-flags", A::None),
        // the fake's own
        ("fake-node-time", A::One),
        ("fake-step-time", A::One),
        ("fake-fail-node", A::One),
        ("fake-oom", A::None),
        ("fake-crash-after-nodes", A::One),
        ("fake-hang-after-nodes", A::One),
        ("fake-start-delay", A::One),
        ("fake-refuse-port", A::None),
        ("fake-model", A::One),
    ]
};

/// Where the database lives, from `--database-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// `sqlite:///:memory:`: no file.
    Memory,
    /// A file path.
    File(PathBuf),
    /// A URL the fake does not understand (logged, no file).
    Other(String),
}

/// Fault injection switches.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub fail_node: Option<String>,
    pub oom: bool,
    pub crash_after_nodes: Option<u64>,
    pub hang_after_nodes: Option<u64>,
    pub start_delay: Duration,
    pub refuse_port: bool,
}

/// A model file the fake lists without it being on disk (`--fake-model FOLDER/FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    /// The models folder (`checkpoints`, `loras`, `upscale_models`…).
    pub folder: String,
    /// The file name as the loaders list it (may hold sub-folders: `sdxl/base.safetensors`).
    pub file: String,
}

impl ListedModel {
    /// Parses `FOLDER/FILE`: FOLDER one of ComfyUI's model folders, FILE with a model extension.
    fn parse(flag: &str, value: &str) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::BadValue {
            flag: flag.to_string(),
            value: value.to_string(),
            reason,
        };
        let (folder, file) = value
            .trim()
            .split_once('/')
            .filter(|(folder, file)| !folder.is_empty() && !file.is_empty())
            .ok_or_else(|| {
                bad("expected FOLDER/FILE, e.g. checkpoints/sd_xl_base_1.0.safetensors".into())
            })?;
        if !MODEL_FOLDERS.contains(&folder) {
            return Err(bad(format!(
                "{folder:?} is not a model folder; use one of {}",
                MODEL_FOLDERS.join(", ")
            )));
        }
        if file
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(bad(format!("{file:?} is not a plain relative file name")));
        }
        if !has_model_extension(file) {
            return Err(bad(format!(
                "ComfyUI lists only model files ending in .{}",
                MODEL_EXTENSIONS.join(", .")
            )));
        }
        Ok(Self {
            folder: folder.to_string(),
            file: file.to_string(),
        })
    }
}

/// The parsed configuration.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub argv: Vec<String>,
    /// The directory relative paths were resolved against (the process's working directory).
    pub cwd: PathBuf,
    pub listen: Vec<IpAddr>,
    pub listen_text: String,
    pub port: u16,
    pub input_dir: PathBuf,
    pub output_dir: PathBuf,
    pub temp_dir: PathBuf,
    pub user_dir: PathBuf,
    pub models_dir: PathBuf,
    /// The `--extra-model-paths-config` files, in order.
    pub extra_model_paths: Vec<PathBuf>,
    pub database: DatabaseLocation,
    pub cpu: bool,
    pub cuda_device: Option<String>,
    /// `CUDA_VISIBLE_DEVICES` from the environment, shown when `--cuda-device` is not given.
    pub cuda_visible_devices: Option<String>,
    pub cache_none: bool,
    pub max_upload_bytes: u64,
    pub disable_api_nodes: bool,
    pub disable_metadata: bool,
    pub previews: bool,
    pub log_stdout: bool,
    pub enable_assets: bool,
    pub node_time: Duration,
    pub step_time: Duration,
    pub faults: Faults,
    /// Model files listed as if installed (`--fake-model`).
    pub listed_models: Vec<ListedModel>,
    pub help: bool,
    /// Flags that were not recognised (already skipped).
    pub ignored: Vec<String>,
}

fn absolute(p: &Path, base: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn parse_duration(flag: &str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|e| ConfigError::BadValue {
        flag: flag.to_string(),
        value: value.to_string(),
        reason: format!("{e} (use a humantime duration such as 0ms, 250ms or 3s)"),
    })
}

fn parse_count(flag: &str, value: &str) -> Result<u64, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::BadValue {
        flag: flag.to_string(),
        value: value.to_string(),
        reason: "expected a non-negative integer".into(),
    })
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

impl FakeConfig {
    /// Parses `args` (without the program name) and `env` (a lookup function) relative to `cwd`.
    pub fn parse(
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Result<FakeConfig, ConfigError> {
        let mut values: Vec<(String, Option<String>)> = Vec::new();
        let mut ignored = Vec::new();
        let mut help = false;
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if arg == "-h" || arg == "--help" {
                help = true;
                continue;
            }
            let Some(stripped) = arg.strip_prefix("--") else {
                ignored.push(arg.clone());
                continue;
            };
            let (name, inline) = match stripped.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (stripped.to_string(), None),
            };
            let arity = COMFY_FLAGS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, a)| *a);
            let takes_next = |i: usize| args.get(i).is_some_and(|next| !next.starts_with("--"));
            match arity {
                Some(Arity::None) => values.push((name, inline)),
                Some(Arity::One) => {
                    if inline.is_some() {
                        values.push((name, inline));
                    } else if let Some(next) = args.get(i) {
                        values.push((name, Some(next.clone())));
                        i += 1;
                    } else {
                        return Err(ConfigError::MissingValue { flag: arg.clone() });
                    }
                    // nargs='+' flags take every following value
                    if values
                        .last()
                        .is_some_and(|(n, _)| n == "extra-model-paths-config")
                    {
                        while takes_next(i) {
                            values.push((
                                "extra-model-paths-config".to_string(),
                                Some(args[i].clone()),
                            ));
                            i += 1;
                        }
                    }
                }
                Some(Arity::Optional) => {
                    if inline.is_some() {
                        values.push((name, inline));
                    } else if takes_next(i) {
                        values.push((name, Some(args[i].clone())));
                        i += 1;
                        if matches!(values.last(), Some((n, _)) if n == "cache-ram" || n == "fast" || n == "verbose")
                        {
                            while takes_next(i) {
                                i += 1;
                            }
                        }
                    } else {
                        values.push((name, None));
                    }
                }
                None => {
                    ignored.push(arg.clone());
                    while takes_next(i) {
                        ignored.push(args[i].clone());
                        i += 1;
                    }
                }
            }
        }
        let get = |name: &str| -> Option<Option<String>> {
            values
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let has = |name: &str| get(name).is_some();
        let value = |name: &str| get(name).flatten();

        let base = value("base-directory")
            .map(|b| absolute(Path::new(&b), cwd))
            .unwrap_or_else(|| cwd.to_path_buf());
        let dir = |flag: &str, default: &str| {
            value(flag)
                .map(|d| absolute(Path::new(&d), cwd))
                .unwrap_or_else(|| base.join(default))
        };
        let input_dir = dir("input-directory", "input");
        let output_dir = dir("output-directory", "output");
        let user_dir = dir("user-directory", "user");
        let models_dir = dir("models-directory", "models");
        // `--extra-model-paths-config` may be repeated and takes several files each time.
        let extra_model_paths: Vec<PathBuf> = values
            .iter()
            .filter(|(n, _)| n == "extra-model-paths-config")
            .filter_map(|(_, v)| v.as_deref())
            .map(|v| absolute(Path::new(v), cwd))
            .collect();
        let temp_dir = match value("temp-directory") {
            Some(t) => absolute(Path::new(&t), cwd).join("temp"),
            None => base.join("temp"),
        };

        let (listen, listen_text) = match get("listen") {
            None => (vec![IpAddr::from([127, 0, 0, 1])], "127.0.0.1".to_string()),
            Some(None) => (
                vec![
                    IpAddr::from([0, 0, 0, 0]),
                    IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 0]),
                ],
                "0.0.0.0,::".to_string(),
            ),
            Some(Some(text)) => {
                let mut ips = Vec::new();
                for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let ip = if part == "localhost" {
                        IpAddr::from([127, 0, 0, 1])
                    } else {
                        part.parse().map_err(|_| ConfigError::BadValue {
                            flag: "--listen".into(),
                            value: text.clone(),
                            reason: format!("{part:?} is not an IP address"),
                        })?
                    };
                    ips.push(ip);
                }
                if ips.is_empty() {
                    ips.push(IpAddr::from([127, 0, 0, 1]));
                }
                (ips, text)
            }
        };
        let port = match value("port") {
            Some(p) => p.trim().parse().map_err(|_| ConfigError::BadValue {
                flag: "--port".into(),
                value: p.clone(),
                reason: "expected a port number 0-65535".into(),
            })?,
            None => 8188,
        };
        let database = match value("database-url") {
            Some(url) => database_location(&url, cwd),
            None => DatabaseLocation::File(base.join("user").join("comfyui.db")),
        };
        let max_upload_bytes = match value("max-upload-size") {
            Some(v) => {
                let mb: f64 = v.trim().parse().map_err(|_| ConfigError::BadValue {
                    flag: "--max-upload-size".into(),
                    value: v.clone(),
                    reason: "expected a number of megabytes".into(),
                })?;
                (mb.max(0.0) * 1024.0 * 1024.0).round() as u64
            }
            None => 100 * 1024 * 1024,
        };

        // fake flags, falling back to the environment
        let fake = |flag: &str, env_name: &str| -> Option<String> {
            value(flag).or_else(|| env(env_name).filter(|v| !v.trim().is_empty()))
        };
        let fake_bool = |flag: &str, env_name: &str| -> bool {
            has(flag) || env(env_name).is_some_and(|v| truthy(&v))
        };
        let node_time = match fake("fake-node-time", "FAKE_COMFYUI_NODE_TIME") {
            Some(v) => parse_duration("--fake-node-time", &v)?,
            None => Duration::from_millis(2),
        };
        let step_time = match fake("fake-step-time", "FAKE_COMFYUI_STEP_TIME") {
            Some(v) => parse_duration("--fake-step-time", &v)?,
            None => Duration::from_millis(2),
        };
        let start_delay = match fake("fake-start-delay", "FAKE_COMFYUI_START_DELAY") {
            Some(v) => parse_duration("--fake-start-delay", &v)?,
            None => Duration::ZERO,
        };
        let crash_after_nodes = fake("fake-crash-after-nodes", "FAKE_COMFYUI_CRASH_AFTER_NODES")
            .map(|v| parse_count("--fake-crash-after-nodes", &v))
            .transpose()?;
        let hang_after_nodes = fake("fake-hang-after-nodes", "FAKE_COMFYUI_HANG_AFTER_NODES")
            .map(|v| parse_count("--fake-hang-after-nodes", &v))
            .transpose()?;
        let faults = Faults {
            fail_node: fake("fake-fail-node", "FAKE_COMFYUI_FAIL_NODE"),
            oom: fake_bool("fake-oom", "FAKE_COMFYUI_OOM"),
            crash_after_nodes,
            hang_after_nodes,
            start_delay,
            refuse_port: fake_bool("fake-refuse-port", "FAKE_COMFYUI_REFUSE_PORT"),
        };

        let model_flags: Vec<String> = values
            .iter()
            .filter(|(n, _)| n == "fake-model")
            .filter_map(|(_, v)| v.clone())
            .collect();
        let listed_models = if model_flags.is_empty() {
            env("FAKE_COMFYUI_MODELS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| ListedModel::parse("FAKE_COMFYUI_MODELS", v))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            model_flags
                .iter()
                .map(|v| ListedModel::parse("--fake-model", v))
                .collect::<Result<Vec<_>, _>>()?
        };

        let mut argv = vec!["main.py".to_string()];
        argv.extend(args.iter().cloned());
        Ok(FakeConfig {
            argv,
            cwd: cwd.to_path_buf(),
            listen,
            listen_text,
            port,
            input_dir,
            output_dir,
            temp_dir,
            user_dir,
            models_dir,
            extra_model_paths,
            database,
            cpu: has("cpu"),
            cuda_device: value("cuda-device"),
            cuda_visible_devices: env("CUDA_VISIBLE_DEVICES"),
            cache_none: has("cache-none"),
            max_upload_bytes,
            disable_api_nodes: has("disable-api-nodes"),
            disable_metadata: has("disable-metadata"),
            previews: value("preview-method").is_none_or(|m| m != "none"),
            log_stdout: has("log-stdout"),
            enable_assets: has("enable-assets"),
            node_time,
            step_time,
            faults,
            listed_models,
            help,
            ignored,
        })
    }
}

fn database_location(url: &str, cwd: &Path) -> DatabaseLocation {
    match url.strip_prefix("sqlite:///") {
        Some(":memory:") => DatabaseLocation::Memory,
        Some(rest) if !rest.is_empty() => DatabaseLocation::File(absolute(Path::new(rest), cwd)),
        _ => DatabaseLocation::Other(url.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> FakeConfig {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        FakeConfig::parse(&args, &|_| None, Path::new("/work")).unwrap()
    }

    #[test]
    fn defaults_match_comfyui() {
        let c = parse(&[]);
        assert_eq!(c.port, 8188);
        assert_eq!(c.listen_text, "127.0.0.1");
        assert_eq!(c.input_dir, Path::new("/work/input"));
        assert_eq!(c.temp_dir, Path::new("/work/temp"));
    }

    #[test]
    fn temp_directory_gets_temp_appended_and_unknown_flags_are_skipped() {
        let c = parse(&[
            "--temp-directory",
            "/t",
            "--bogus",
            "x",
            "--port",
            "9000",
            "--cpu",
            "--listen",
        ]);
        assert_eq!(c.temp_dir, Path::new("/t/temp"));
        assert_eq!(c.port, 9000);
        assert!(c.cpu);
        assert_eq!(c.listen_text, "0.0.0.0,::");
        assert_eq!(c.ignored, vec!["--bogus", "x"]);
    }

    #[test]
    fn env_fallback_and_flag_precedence() {
        let args = vec!["--fake-node-time".to_string(), "5ms".to_string()];
        let env = |k: &str| match k {
            "FAKE_COMFYUI_NODE_TIME" => Some("1s".to_string()),
            "FAKE_COMFYUI_OOM" => Some("1".to_string()),
            _ => None,
        };
        let c = FakeConfig::parse(&args, &env, Path::new("/")).unwrap();
        assert_eq!(c.node_time, Duration::from_millis(5));
        assert!(c.faults.oom);
    }

    #[test]
    fn listed_models_come_from_every_flag_or_else_the_environment() {
        let c = parse(&[
            "--fake-model",
            "checkpoints/sd_xl_base_1.0.safetensors",
            "--fake-model=upscale_models/RealESRGAN_x4plus.safetensors",
        ]);
        let listed: Vec<(&str, &str)> = c
            .listed_models
            .iter()
            .map(|m| (m.folder.as_str(), m.file.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                ("checkpoints", "sd_xl_base_1.0.safetensors"),
                ("upscale_models", "RealESRGAN_x4plus.safetensors")
            ]
        );
        let env = |k: &str| {
            (k == "FAKE_COMFYUI_MODELS").then(|| "loras/a.safetensors, vae/sub/b.pt".to_string())
        };
        let c = FakeConfig::parse(&[], &env, Path::new("/")).unwrap();
        assert_eq!(c.listed_models.len(), 2);
        assert_eq!(c.listed_models[1].file, "sub/b.pt");
        assert!(parse(&[]).listed_models.is_empty());
    }

    #[test]
    fn a_listed_model_must_name_a_model_folder_and_a_model_file() {
        for (value, says) in [
            ("sd_xl.safetensors", "expected FOLDER/FILE"),
            ("weights/a.safetensors", "not a model folder"),
            ("loras/../a.safetensors", "not a plain relative file name"),
            ("loras/notes.txt", ".safetensors"),
        ] {
            let args = vec!["--fake-model".to_string(), value.to_string()];
            let err = FakeConfig::parse(&args, &|_| None, Path::new("/"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("--fake-model") && err.contains(says), "{err}");
        }
    }

    #[test]
    fn bad_duration_is_reported() {
        let args = vec!["--fake-step-time".to_string(), "soon".to_string()];
        let err = FakeConfig::parse(&args, &|_| None, Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("--fake-step-time"));
    }
}
