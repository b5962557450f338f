//! The shutdown path, a first-class part of the program: how a stop is asked for, how far it has
//! gone, and how long a graceful stop may take.
//!
//! A stop goes through [`Stage`]s: `Running`, then `Draining` (the first SIGINT/SIGTERM, or a
//! [`ShutdownTrigger::request`]: no new work, running jobs may finish until the drain deadline),
//! then `Immediate` (a second signal: everything stops now). [`Shutdown`] is the cheap, cloneable
//! receiving side every part of the application waits on; [`Shutdown::drain`] runs a graceful
//! stop and gives up on it when the stop is escalated or overruns its deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The `[shutdown]` section of config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// On the first SIGINT/SIGTERM no new jobs are taken, and running ones may finish for this
    /// long; then they are cancelled and the instances stop. A second signal stops at once.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// How far the program is into stopping. Stages only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Running,
    /// No new work; running work may finish until the drain deadline.
    Draining,
    /// Stop everything now.
    Immediate,
}

/// Asks for a stop; each request moves one stage further. Cheap to clone.
#[derive(Clone)]
pub struct ShutdownTrigger {
    stage: Arc<watch::Sender<Stage>>,
}

impl ShutdownTrigger {
    /// Moves to the next stage (`Running` → `Draining` → `Immediate`) and returns it; `cause`
    /// says why, in the log.
    pub fn request(&self, cause: &str) -> Stage {
        let mut now = Stage::Immediate;
        self.stage.send_modify(|stage| {
            *stage = match *stage {
                Stage::Running => Stage::Draining,
                Stage::Draining | Stage::Immediate => Stage::Immediate,
            };
            now = *stage;
        });
        match now {
            Stage::Draining => tracing::info!(
                cause,
                "stopping: no new jobs; running ones may finish within the drain deadline"
            ),
            _ => tracing::warn!(cause, "stopping now, without waiting for running jobs"),
        }
        now
    }

    /// Skips the drain: everything stops now.
    pub fn stop_now(&self, cause: &str) {
        if self.stage.send_replace(Stage::Immediate) != Stage::Immediate {
            tracing::warn!(cause, "stopping now, without waiting for running jobs");
        }
    }
}

/// Watches for a stop. Cheap to clone; every clone sees the same stages.
#[derive(Clone)]
pub struct Shutdown {
    stage: watch::Receiver<Stage>,
}

/// How a graceful stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    /// It finished by itself.
    Finished,
    /// A second request came first: stop now.
    Escalated,
    /// It ran past its deadline: stop now.
    Overran,
}

impl Shutdown {
    /// The current stage.
    pub fn stage(&self) -> Stage {
        *self.stage.borrow()
    }

    /// Resolves once a stop is asked for (`Draining` or further). Never resolves while the
    /// program runs normally.
    pub async fn requested(&mut self) {
        self.reached(Stage::Draining).await
    }

    /// Resolves once the stop is escalated to `Immediate`.
    pub async fn escalated(&mut self) {
        self.reached(Stage::Immediate).await
    }

    async fn reached(&mut self, stage: Stage) {
        if self.stage.wait_for(|s| *s >= stage).await.is_err() {
            // Every trigger is gone, so no stop can be asked for any more.
            std::future::pending::<()>().await;
        }
    }

    /// Runs a graceful stop (`graceful`), giving up on it when the stop is escalated or when it
    /// takes longer than `deadline`; the caller then stops what is left at once.
    pub async fn drain(&self, graceful: impl Future<Output = ()>, deadline: Duration) -> DrainEnd {
        let mut watcher = self.clone();
        tokio::select! {
            () = graceful => DrainEnd::Finished,
            () = watcher.escalated() => DrainEnd::Escalated,
            () = tokio::time::sleep(deadline) => DrainEnd::Overran,
        }
    }
}

/// A trigger and its watcher, for stops asked for by code (tests, the `run` command).
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(Stage::Running);
    (
        ShutdownTrigger {
            stage: Arc::new(tx),
        },
        Shutdown { stage: rx },
    )
}

/// Stops on SIGINT and SIGTERM: the first drains, the second stops at once. The returned
/// trigger can also ask for a stop. Must be called inside the runtime (it spawns the listener).
pub fn on_signals() -> std::io::Result<(ShutdownTrigger, Shutdown)> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (trigger, shutdown) = channel();
    let on_signal = trigger.clone();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            if on_signal.request(name) == Stage::Immediate {
                break;
            }
        }
    });
    Ok((trigger, shutdown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn the_first_request_drains_and_the_second_stops_at_once() {
        let (trigger, mut shutdown) = channel();
        assert_eq!(shutdown.stage(), Stage::Running);
        assert_eq!(trigger.request("test"), Stage::Draining);
        shutdown.requested().await;
        assert_eq!(shutdown.stage(), Stage::Draining);
        assert_eq!(trigger.request("test"), Stage::Immediate);
        shutdown.escalated().await;
        assert_eq!(
            trigger.request("test"),
            Stage::Immediate,
            "stages never go back"
        );
    }

    #[actix_rt::test]
    async fn a_drain_ends_when_its_work_is_done() {
        let (_trigger, shutdown) = channel();
        let end = shutdown.drain(async {}, Duration::from_secs(3600)).await;
        assert_eq!(end, DrainEnd::Finished);
    }

    #[actix_rt::test]
    async fn a_second_request_cuts_a_drain_short() {
        let (trigger, shutdown) = channel();
        trigger.request("first");
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let never = async move {
            let _ = started_tx.send(());
            std::future::pending::<()>().await
        };
        let escalate = async move {
            let _ = started_rx.await;
            trigger.request("second");
        };
        let (end, ()) = tokio::join!(shutdown.drain(never, Duration::from_secs(3600)), escalate);
        assert_eq!(end, DrainEnd::Escalated);
    }

    #[actix_rt::test]
    async fn a_drain_that_overruns_its_deadline_is_given_up() {
        let (_trigger, shutdown) = channel();
        let end = shutdown
            .drain(std::future::pending(), Duration::from_millis(1))
            .await;
        assert_eq!(end, DrainEnd::Overran);
    }

    #[actix_rt::test]
    async fn stop_now_skips_the_drain() {
        let (trigger, mut shutdown) = channel();
        trigger.stop_now("test");
        shutdown.requested().await;
        shutdown.escalated().await;
    }
}
