//! The start-up sweep: finds the instances a previous, crashed comfy-fleet recorded, kills what
//! is left of their process groups, deletes their ephemeral files and removes the records.
//!
//! A recorded leader counts as ours only if its start time still matches (a recycled pid is
//! left alone). When the leader is gone, the processes still in its group are its leftovers:
//! Linux hands out no pid that is still some group's id, so the group cannot be a stranger's.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::ephemeral::EphemeralManifest;
use super::procfs::{self, ProcStat};
use super::record::{InstanceRecord, RECORDS_DIR, remove_record};

/// How long the sweep waits for killed processes to vanish.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// What the sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Instances whose leftover processes were killed.
    pub killed: Vec<KilledGroup>,
    /// Ephemeral files deleted.
    pub ephemeral_removed: usize,
    /// Records removed (including unreadable ones).
    pub records_removed: usize,
    /// Records left in place: this very process launched them and they still run.
    pub skipped_own: Vec<String>,
}

/// The processes of one recorded group that the sweep killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KilledGroup {
    pub instance: String,
    pub pgid: i32,
    pub pids: Vec<i32>,
}

/// Why the sweep could not run.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the instance records in {dir}: {reason}")]
pub struct SweepError {
    pub dir: PathBuf,
    pub reason: String,
}

/// Cleans up after a previous run that did not stop cleanly. Call once at start-up, before the
/// first launch, with the launcher's state root.
pub fn sweep_stale(state_root: &Path) -> Result<SweepReport, SweepError> {
    let records = InstanceRecord::read_all(state_root).map_err(|e| SweepError {
        dir: state_root.join(RECORDS_DIR),
        reason: e.to_string(),
    })?;
    let mut report = SweepReport::default();
    for (path, record) in records {
        let record = match record {
            Ok(record) => record,
            Err(why) => {
                tracing::warn!(
                    "removing unreadable instance record {}: {why}",
                    path.display()
                );
                if remove_record(&path).is_ok() {
                    report.records_removed += 1;
                }
                continue;
            }
        };
        let leader = procfs::read_stat(record.pid).ok().flatten();
        let me = std::process::id();
        if record.launched_by == me && leader.is_some_and(|l| l.ppid == me as i32 && !l.is_zombie())
        {
            report.skipped_own.push(record.instance.clone());
            continue;
        }
        let pids = leftovers(&record, leader);
        if !pids.is_empty() {
            let _ = killpg(Pid::from_raw(record.pgid), Signal::SIGKILL);
            wait_until_gone(record.pgid);
            tracing::warn!(
                instance = %record.instance,
                pgid = record.pgid,
                "killed {} process(es) left running by a previous comfy-fleet: {:?} (`{}`)",
                pids.len(),
                pids,
                record.command.join(" ")
            );
            report.killed.push(KilledGroup {
                instance: record.instance.clone(),
                pgid: record.pgid,
                pids,
            });
        }
        match EphemeralManifest::in_state_dir(&record.state_dir).clean() {
            Ok(clean) => {
                if !clean.removed.is_empty() {
                    tracing::info!(
                        instance = %record.instance,
                        "deleted {} ephemeral file(s) left by a previous comfy-fleet",
                        clean.removed.len()
                    );
                }
                report.ephemeral_removed += clean.removed.len();
                for (file, why) in clean.failed {
                    tracing::warn!(instance = %record.instance, "cannot delete {}: {why}", file.display());
                }
            }
            Err(e) => tracing::warn!(
                instance = %record.instance,
                "cannot read the ephemeral-file list in {}: {e}",
                record.state_dir.display()
            ),
        }
        match remove_record(&path) {
            Ok(()) => report.records_removed += 1,
            Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
        }
    }
    if report.records_removed > 0 {
        tracing::info!(
            "start-up sweep: {} stale instance record(s), {} process group(s) killed, {} ephemeral \
             file(s) deleted",
            report.records_removed,
            report.killed.len(),
            report.ephemeral_removed
        );
    }
    Ok(report)
}

/// The live processes of the recorded group that are the recorded run's.
fn leftovers(record: &InstanceRecord, leader: Option<ProcStat>) -> Vec<i32> {
    if let Some(leader) = leader
        && leader.start_time != record.start_time
    {
        // The pid now belongs to another process, so the recorded group no longer exists.
        return Vec::new();
    }
    procfs::group_members(record.pgid)
        .map(|members| {
            members
                .into_iter()
                .filter(|m| m.start_time >= record.start_time)
                .map(|m| m.pid)
                .collect()
        })
        .unwrap_or_default()
}

fn wait_until_gone(pgid: i32) {
    let deadline = Instant::now() + KILL_WAIT;
    while Instant::now() < deadline {
        match procfs::group_members(pgid) {
            Ok(members) if !members.is_empty() => std::thread::sleep(Duration::from_millis(5)),
            _ => return,
        }
    }
    tracing::warn!(pgid, "processes of the group survive SIGKILL");
}
