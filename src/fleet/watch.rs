//! Instance phases as the rest of the program sees them: the scheduler tells the
//! [`PhaseBoard`] every phase change it applied, in the order it applied them, and anyone can
//! read the board from any thread or wait on it (readiness of `serve`, `run` and `/readyz`, an
//! instance's URL for its outputs, `/v1/status`).

use std::collections::BTreeMap;
use std::sync::Arc;

use comfy_fleet_actors::InstanceId;
use comfy_fleet_actors::messages::{InstancePhase, InstanceUpdate};
use comfy_fleet_actors::ports::PhaseObserver;
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

/// The scheduler's view, published as it applies each phase.
impl PhaseObserver for PhaseBoard {
    fn phase_applied(&self, update: &InstanceUpdate) {
        self.update(update);
    }
}
