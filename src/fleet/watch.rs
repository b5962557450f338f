//! Instance phases as the rest of the program sees them: every `InstanceUpdate` passes through
//! [`InstanceWatch`] on its way to the scheduler, is logged, and lands on the [`PhaseBoard`],
//! which anyone can read or wait on (readiness of `serve`, `run` and `/readyz`).
//!
//! Instances also send their `JobFinished` reports through the watch, so the scheduler receives
//! them in the order the instance sent them relative to its phase updates: an instance that
//! crashed under a job is known to be down before that job's retry is placed.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::{Actor, Context, Handler, Recipient};
use comfy_fleet_actors::InstanceId;
use comfy_fleet_actors::messages::{InstancePhase, InstanceUpdate, JobFinished};
use tokio::sync::watch;

/// One instance's last reported phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    pub phase: InstancePhase,
    pub url: Option<String>,
    pub detail: Option<String>,
}

/// The latest phase of every instance; cheap to clone, readable from any thread.
#[derive(Clone)]
pub struct PhaseBoard(Arc<watch::Sender<BTreeMap<InstanceId, InstanceView>>>);

impl Default for PhaseBoard {
    fn default() -> Self {
        Self(Arc::new(watch::channel(BTreeMap::new()).0))
    }
}

impl PhaseBoard {
    pub fn update(&self, u: &InstanceUpdate) {
        let view = InstanceView {
            phase: u.phase,
            url: u.url.clone(),
            detail: u.detail.clone(),
        };
        self.0.send_modify(|board| {
            board.insert(u.instance.clone(), view);
        });
    }

    pub fn snapshot(&self) -> BTreeMap<InstanceId, InstanceView> {
        self.0.borrow().clone()
    }

    /// Instances that take jobs now.
    pub fn ready(&self) -> usize {
        self.0
            .borrow()
            .values()
            .filter(|v| v.phase.accepts_jobs())
            .count()
    }

    /// Waits until `done` holds for the board.
    pub async fn wait_until(
        &self,
        mut done: impl FnMut(&BTreeMap<InstanceId, InstanceView>) -> bool,
    ) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as `self`, so `wait_for` only ends when `done` holds.
        let _ = rx.wait_for(|board| done(board)).await;
    }
}

/// Forwards instance updates to the scheduler after recording them, and job reports in order
/// with them.
pub struct InstanceWatch {
    scheduler: Recipient<InstanceUpdate>,
    finished: Recipient<JobFinished>,
    board: PhaseBoard,
}

impl InstanceWatch {
    pub fn new(
        scheduler: Recipient<InstanceUpdate>,
        finished: Recipient<JobFinished>,
        board: PhaseBoard,
    ) -> Self {
        Self {
            scheduler,
            finished,
            board,
        }
    }
}

impl Actor for InstanceWatch {
    type Context = Context<Self>;
}

impl Handler<InstanceUpdate> for InstanceWatch {
    type Result = ();

    fn handle(&mut self, update: InstanceUpdate, _: &mut Context<Self>) {
        self.board.update(&update);
        self.scheduler.do_send(update);
    }
}

impl Handler<JobFinished> for InstanceWatch {
    type Result = ();

    fn handle(&mut self, report: JobFinished, _: &mut Context<Self>) {
        self.finished.do_send(report);
    }
}
