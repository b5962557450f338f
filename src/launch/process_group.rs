//! A launched process and its process group: signalling the group, and watching the leader's
//! exit on a thread of its own.
//!
//! When the leader exits, its remaining group members (ComfyUI's own children) are killed
//! while the leader is still a zombie: until it is reaped its pid — the group id — cannot be
//! given to another process, so the signal cannot reach a stranger. For the same reason the
//! group is only ever signalled under the lock that reaping takes.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use comfy_fleet_actors::ports::ExitInfo;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;
use tokio::sync::watch;

use super::procfs;

/// How long the watcher waits for killed group members to vanish before reaping the leader.
const STRAGGLER_WAIT: Duration = Duration::from_secs(10);

/// One launched process, leader of its own process group (its pid is the group id).
#[derive(Debug)]
pub struct ProcessGroup {
    pid: i32,
    /// Set once the leader has been reaped; from then on the group must not be signalled.
    reaped: Mutex<bool>,
    exit: watch::Sender<Option<ExitInfo>>,
}

impl ProcessGroup {
    pub fn new(pid: u32) -> Arc<Self> {
        Arc::new(Self {
            pid: pid as i32,
            reaped: Mutex::new(false),
            exit: watch::Sender::new(None),
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal` to every process of the group, unless the leader has already been
    /// reaped. Returns whether it was sent.
    pub fn signal(&self, signal: Signal) -> bool {
        let Ok(reaped) = self.reaped.lock() else {
            return false;
        };
        !*reaped && killpg(Pid::from_raw(self.pid), signal).is_ok()
    }

    /// How the leader ended, once it has.
    pub fn exit_info(&self) -> Option<ExitInfo> {
        self.exit.borrow().clone()
    }

    /// Resolves when the leader has exited and the rest of its group is gone.
    pub fn wait_exit(&self) -> impl Future<Output = ExitInfo> + 'static {
        let mut rx = self.exit.subscribe();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(info) => info.clone().unwrap_or(UNKNOWN_EXIT),
                Err(_) => UNKNOWN_EXIT,
            }
        }
    }

    /// Blocks until the leader exits, kills what is left of its group, reaps the leader and
    /// publishes the exit. Runs on its own thread.
    pub fn watch_blocking(&self) -> ExitInfo {
        let pid = Pid::from_raw(self.pid);
        let status = loop {
            match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Err(Errno::EINTR) => continue,
                other => break other,
            }
        };
        let info = match status {
            Ok(WaitStatus::Exited(_, code)) => ExitInfo {
                code: Some(code),
                signal: None,
            },
            Ok(WaitStatus::Signaled(_, signal, _)) => ExitInfo {
                code: None,
                signal: Some(signal as i32),
            },
            _ => UNKNOWN_EXIT,
        };
        if status.is_ok() {
            // The leader is a zombie now: the group id is still ours.
            if killpg(pid, Signal::SIGKILL).is_ok() {
                self.wait_for_stragglers();
            }
        }
        let mut reaped = self.reaped.lock().unwrap_or_else(|p| p.into_inner());
        if status.is_ok() {
            let _ = waitpid(pid, None);
        }
        *reaped = true;
        drop(reaped);
        self.exit.send_replace(Some(info.clone()));
        info
    }

    fn wait_for_stragglers(&self) {
        let deadline = Instant::now() + STRAGGLER_WAIT;
        loop {
            match procfs::group_members(self.pid) {
                Ok(members) if members.is_empty() => return,
                Err(_) => return,
                Ok(members) if Instant::now() >= deadline => {
                    tracing::warn!(
                        pgid = self.pid,
                        "{} process(es) of the group survive SIGKILL: {:?}",
                        members.len(),
                        members.iter().map(|m| m.pid).collect::<Vec<_>>()
                    );
                    return;
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

const UNKNOWN_EXIT: ExitInfo = ExitInfo {
    code: None,
    signal: None,
};
