//! The real [`Launcher`]: starts one ComfyUI (or `fake-comfyui`) process per instance, in its
//! own process group, pinned to its GPU, with its own port, folders and database.
//!
//! Launch order: check the command and folders, reserve the port, fork on the launcher thread
//! (releasing the port just before), record the process group on disk, then hand over the
//! process with a future for its exit and a stopper.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use comfy_fleet_actors::ports::{LaunchError, LaunchSpec, Launched, Launcher};
use futures_util::future::LocalBoxFuture;
use nix::sys::signal::Signal;

use super::command_line::{comfyui_args, comfyui_env};
use super::folders::InstanceFolders;
use super::output_log::forward_lines;
use super::port::{PortBook, url_for};
use super::process_group::ProcessGroup;
use super::procfs;
use super::record::InstanceRecord;
use super::safe_name::checked_relative_path;
use super::spawner;
use super::stopper::{GroupStopper, StopCleanup};

/// Launches managed ComfyUI processes; records them under `<state_root>/instances/`.
#[derive(Debug, Clone)]
pub struct ProcessLauncher {
    state_root: PathBuf,
    ports: Arc<PortBook>,
    /// The model library every instance registers (else each has `<state>/models`).
    models_dir: Option<PathBuf>,
}

impl ProcessLauncher {
    /// A launcher whose records live under `state_root` (made absolute). Call
    /// [`super::sweep_stale`] on the same root once at start-up, before launching.
    pub fn new(state_root: &Path) -> io::Result<Self> {
        Ok(Self {
            state_root: std::path::absolute(state_root)?,
            ports: Arc::new(PortBook::default()),
            models_dir: None,
        })
    }

    /// Registers the model library `dir` with every instance it launches.
    pub fn with_models_dir(mut self, dir: PathBuf) -> Self {
        self.models_dir = Some(dir);
        self
    }

    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    async fn launch_now(&self, spec: LaunchSpec) -> Result<Launched, LaunchError> {
        let instance = spec.instance.clone();
        let command_text = spec.command.join(" ");
        let spawn_error = |reason: String| LaunchError::Spawn {
            instance: instance.clone(),
            command: command_text.clone(),
            reason,
        };
        let folders_error = |reason: String| LaunchError::Folders {
            instance: instance.clone(),
            reason,
        };
        let Some((program, leading_args)) = spec.command.split_first() else {
            return Err(spawn_error(
                "the command is empty: set comfyui.command or comfyui.path".into(),
            ));
        };
        checked_relative_path(&instance.0, false)
            .map_err(|e| folders_error(format!("the instance id cannot name a file: {e}")))?;
        if let Some(dir) = &spec.working_dir
            && !dir.is_dir()
        {
            return Err(spawn_error(format!(
                "the working directory {} does not exist: is comfyui.path right?",
                dir.display()
            )));
        }
        let mut folders = InstanceFolders::new(&spec.state_dir).map_err(|e| {
            folders_error(format!("cannot resolve {}: {e}", spec.state_dir.display()))
        })?;
        if let Some(dir) = &self.models_dir {
            folders = folders.with_models_dir(dir.clone());
        }
        folders
            .prepare()
            .map_err(|e| folders_error(e.to_string()))?;
        let reservation = self
            .ports
            .reserve(&spec.listen, spec.port)
            .map_err(|reason| LaunchError::Port {
                instance: instance.clone(),
                reason,
            })?;
        let port = reservation.port;

        let mut command = Command::new(program);
        command
            .args(leading_args)
            .args(comfyui_args(&spec, port, &folders))
            .envs(comfyui_env(&spec))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for secret in crate::config::SECRET_ENV_VARS {
            // ComfyUI runs third-party custom nodes: it never sees comfy-fleet's secrets.
            command.env_remove(secret);
        }
        if let Some(dir) = &spec.working_dir {
            command.current_dir(dir);
        }
        spawner::isolate(&mut command);
        let mut child = spawner::spawn(command, Some(reservation.socket))
            .await
            .map_err(|e| spawn_error(describe_spawn_error(&e)))?;
        let pid = child.id();
        let group = ProcessGroup::new(pid);

        // The watcher reaps the process whatever happens next.
        let watcher = {
            let group = Arc::clone(&group);
            let lease = reservation.lease;
            let instance = instance.clone();
            std::thread::Builder::new()
                .name(format!("{instance}-wait"))
                .spawn(move || {
                    let exit = group.watch_blocking();
                    drop(lease);
                    tracing::info!(%instance, pid, "process exited ({exit})");
                })
        };
        if let Err(e) = watcher {
            group.signal(Signal::SIGKILL);
            return Err(spawn_error(format!(
                "cannot start the thread that waits for it: {e}"
            )));
        }
        for (stream, source) in [
            (
                "stdout",
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
            ),
            (
                "stderr",
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
            ),
        ] {
            if let Some(source) = source
                && let Err(e) = forward_lines(instance.clone(), stream, source)
            {
                tracing::warn!(%instance, "cannot log the process's {stream}: {e}");
            }
        }

        let record = InstanceRecord {
            instance: instance.0.clone(),
            pid: pid as i32,
            pgid: pid as i32,
            start_time: procfs::read_stat(pid as i32)
                .ok()
                .flatten()
                .map_or(0, |s| s.start_time),
            command: std::iter::once(program.clone())
                .chain(leading_args.iter().cloned())
                .collect(),
            state_dir: folders.state_dir().to_path_buf(),
            launched_by: std::process::id(),
        };
        let record_path = record.write(&self.state_root).map_err(|e| {
            group.signal(Signal::SIGKILL);
            folders_error(format!(
                "cannot write its record under {}: {e} (without it, a crash of comfy-fleet \
                 could leave the process running)",
                self.state_root.display()
            ))
        })?;

        tracing::info!(
            %instance,
            pid,
            port,
            gpu = spec.gpu.as_ref().map_or("none (--cpu)", |g| g.0.as_str()),
            "launched `{command_text}`"
        );
        Ok(Launched {
            pid,
            url: url_for(&spec.listen, port),
            port,
            exited: Box::pin(group.wait_exit()),
            stopper: Box::new(GroupStopper {
                instance,
                group,
                cleanup: Arc::new(Mutex::new(Some(StopCleanup {
                    manifest: folders.ephemeral(),
                    record: record_path,
                }))),
            }),
        })
    }
}

impl Launcher for ProcessLauncher {
    fn launch(&self, spec: LaunchSpec) -> LocalBoxFuture<'_, Result<Launched, LaunchError>> {
        Box::pin(self.launch_now(spec))
    }
}

/// The OS's reason, with a hint at the setting to check.
fn describe_spawn_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("{e}: is comfyui.command (or comfyui.python) right?"),
        io::ErrorKind::PermissionDenied => format!("{e}: is the program executable?"),
        _ => e.to_string(),
    }
}
