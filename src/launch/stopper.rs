//! Stopping a launched instance: SIGTERM to its process group, the grace period, SIGKILL, and
//! then the clean-up of its ephemeral files and of its on-disk record.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfy_fleet_actors::InstanceId;
use comfy_fleet_actors::ports::ProcessStopper;
use futures_util::future::LocalBoxFuture;
use nix::sys::signal::Signal;

use super::ephemeral::EphemeralManifest;
use super::process_group::ProcessGroup;
use super::record::remove_record;

/// How long to wait after SIGKILL before giving up on the group (a process stuck in the
/// kernel); only a safety net, SIGKILL normally ends a process at once.
const AFTER_KILL: Duration = Duration::from_secs(30);

/// What a clean stop removes once the group is gone.
#[derive(Debug)]
pub struct StopCleanup {
    pub manifest: EphemeralManifest,
    pub record: PathBuf,
}

impl StopCleanup {
    fn run(&self, instance: &InstanceId) {
        match self.manifest.clean() {
            Ok(report) => {
                if !report.removed.is_empty() {
                    tracing::info!(%instance, "deleted {} ephemeral file(s)", report.removed.len());
                }
                for (file, why) in report.failed {
                    tracing::warn!(%instance, "cannot delete ephemeral file {}: {why}", file.display());
                }
            }
            Err(e) => tracing::warn!(
                %instance,
                "cannot read the ephemeral-file list {}: {e}",
                self.manifest.path().display()
            ),
        }
        if let Err(e) = remove_record(&self.record) {
            tracing::warn!(%instance, "cannot remove {}: {e}", self.record.display());
        }
    }
}

/// The [`ProcessStopper`] of one launched instance. Idempotent, and safe once the process has
/// died by itself.
pub struct GroupStopper {
    pub instance: InstanceId,
    pub group: Arc<ProcessGroup>,
    /// Taken by the first stop that completes.
    pub cleanup: Arc<Mutex<Option<StopCleanup>>>,
}

impl ProcessStopper for GroupStopper {
    fn stop(&self, grace: Duration) -> LocalBoxFuture<'static, ()> {
        let instance = self.instance.clone();
        let group = Arc::clone(&self.group);
        let cleanup = Arc::clone(&self.cleanup);
        Box::pin(async move {
            if group.signal(Signal::SIGTERM) {
                tracing::info!(%instance, pgid = group.pid(), "SIGTERM sent to the process group");
            }
            let exit = match tokio::time::timeout(grace, group.wait_exit()).await {
                Ok(exit) => Some(exit),
                Err(_) => {
                    tracing::warn!(
                        %instance,
                        pgid = group.pid(),
                        "still running {} after SIGTERM: SIGKILL",
                        humantime::format_duration(grace)
                    );
                    group.signal(Signal::SIGKILL);
                    tokio::time::timeout(AFTER_KILL, group.wait_exit())
                        .await
                        .ok()
                }
            };
            match exit {
                Some(ref exit) => tracing::info!(%instance, "stopped ({exit})"),
                None => tracing::error!(
                    %instance,
                    pgid = group.pid(),
                    "the process group survives SIGKILL; its record is kept for the next start"
                ),
            }
            if exit.is_some() {
                // Held while cleaning, so a concurrent stop returns only once this is done.
                let mut pending = cleanup.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(cleanup) = pending.take() {
                    cleanup.run(&instance);
                }
            }
        })
    }
}
