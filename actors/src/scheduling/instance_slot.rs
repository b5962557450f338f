//! What the scheduler knows about one instance: its phase, the jobs it holds, its GPU, the
//! models it probably has loaded, and whether an operator drained it.

use std::collections::BTreeSet;

use crate::ids::{GpuId, InstanceId, JobId};
use crate::messages::InstancePhase;

use super::affinity::LoadedModels;

/// One registered instance as the scheduler tracks it.
#[derive(Debug, Clone)]
pub struct InstanceSlot {
    pub id: InstanceId,
    pub gpu: Option<GpuId>,
    pub phase: InstancePhase,
    pub url: Option<String>,
    pub detail: Option<String>,
    /// Jobs handed to it and not yet reported finished, including cancelled ones it still works
    /// on (they hold their pipeline slot until the instance lets go of them).
    pub holding: BTreeSet<JobId>,
    pub loaded: LoadedModels,
    /// Drained by an operator: takes no new jobs, whatever its phase, until restarted.
    pub drained: bool,
}

impl InstanceSlot {
    pub fn new(id: InstanceId, gpu: Option<GpuId>, models_bound: usize) -> Self {
        Self {
            id,
            gpu,
            phase: InstancePhase::Starting,
            url: None,
            detail: None,
            holding: BTreeSet::new(),
            loaded: LoadedModels::new(models_bound),
            drained: false,
        }
    }

    /// Whether new jobs may be placed on it (its phase accepts them and no operator drained it).
    pub fn accepts_jobs(&self) -> bool {
        self.phase.accepts_jobs() && !self.drained
    }

    /// Jobs it holds (pipeline slots in use).
    pub fn load(&self) -> usize {
        self.holding.len()
    }
}
