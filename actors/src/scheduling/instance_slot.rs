//! What the scheduler knows about one instance: its phase, the jobs it holds, its GPU and the
//! models it probably has loaded.

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
        }
    }

    /// Jobs it holds (pipeline slots in use).
    pub fn load(&self) -> usize {
        self.holding.len()
    }
}
