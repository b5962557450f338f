//! Placement: which instance takes the next job.
//!
//! Candidates are instances whose phase accepts jobs (`Ready`) and that no operator drained,
//! that hold fewer jobs than the pipeline depth, and whose GPU has at least the configured VRAM
//! headroom free (when the GPU monitor has sampled that GPU; unknown GPUs are not skipped).
//! Among candidates, in order:
//! 1. not an instance this job already failed on (when any other candidate exists);
//! 2. the most of the job's models already loaded (affinity): a job waits behind one job on the
//!    instance that has its checkpoint rather than load it again on an idle instance — a load
//!    costs far more than one job's wait, and the idle instance stays free for a job it suits;
//! 3. for a job that has to load its models: an instance where that pushes out only a model set
//!    another instance also holds (or nothing), so no model leaves the fleet's VRAM needlessly;
//! 4. an idle instance before a busy one, among equally affine instances;
//! 5. the fewest jobs held (least loaded);
//! 6. the instance id, so ties are broken the same way every time.
//!
//! [`PlacementRules::choose_loaded`] is the same choice restricted to instances that have all of
//! a job's models loaded: the scheduler's look-ahead uses it to let a free slot take a later job
//! that suits it (see `policy.rs`).

use std::cell::OnceCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use crate::ids::{GpuId, InstanceId};
use crate::ports::GpuInfo;

use super::instance_slot::InstanceSlot;

/// The rules placement applies, from the scheduler config.
#[derive(Debug, Clone, Copy)]
pub struct PlacementRules {
    pub pipeline_depth: usize,
    pub vram_headroom_bytes: Option<u64>,
}

/// What placement needs to know about a job.
#[derive(Debug, Clone, Copy)]
pub struct JobNeeds<'a> {
    pub models: &'a [String],
    /// Instances this job already failed on.
    pub avoid: &'a [InstanceId],
}

impl PlacementRules {
    /// Whether `slot` can take one more job now.
    pub fn can_take(&self, slot: &InstanceSlot, gpus: &HashMap<GpuId, GpuInfo>) -> bool {
        slot.accepts_jobs() && slot.load() < self.pipeline_depth && self.has_headroom(slot, gpus)
    }

    fn has_headroom(&self, slot: &InstanceSlot, gpus: &HashMap<GpuId, GpuInfo>) -> bool {
        match (self.vram_headroom_bytes, &slot.gpu) {
            (Some(headroom), Some(gpu)) => gpus
                .get(gpu)
                .is_none_or(|info| info.memory_free_bytes >= headroom),
            _ => true,
        }
    }

    /// The instance that should take a job with `needs`, or `None` when no instance can.
    pub fn choose(
        &self,
        instances: &BTreeMap<InstanceId, InstanceSlot>,
        gpus: &HashMap<GpuId, GpuInfo>,
        needs: JobNeeds<'_>,
    ) -> Option<InstanceId> {
        // How many accepting instances hold each model set; built only when a candidate would
        // have to load the job's models.
        let holders: OnceCell<HashMap<&[String], usize>> = OnceCell::new();
        let evicts_last_copy = |slot: &InstanceSlot| {
            let Some(evicted) = slot.loaded.would_evict(needs.models) else {
                return false;
            };
            let holders = holders.get_or_init(|| {
                let mut holders = HashMap::new();
                for other in instances.values().filter(|s| s.accepts_jobs()) {
                    for set in other.loaded.sets() {
                        *holders.entry(set).or_insert(0) += 1;
                    }
                }
                holders
            });
            holders.get(evicted).copied().unwrap_or(0) <= 1
        };
        // A retry never goes back to an instance it failed on while another one takes jobs,
        // even a busy one: a server that died under a job fails the next one at once, and
        // going back would burn every retry of the job in a few milliseconds, before the
        // instance has even noticed its process is gone.
        let elsewhere = instances
            .values()
            .any(|slot| slot.accepts_jobs() && !needs.avoid.contains(&slot.id));
        instances
            .values()
            .filter(|slot| self.can_take(slot, gpus))
            .filter(|slot| !(elsewhere && needs.avoid.contains(&slot.id)))
            .min_by_key(|slot| {
                let matches = slot.loaded.matches(needs.models);
                (
                    needs.avoid.contains(&slot.id),
                    Reverse(matches),
                    matches < needs.models.len() && evicts_last_copy(slot),
                    slot.load() > 0,
                    slot.load(),
                    &slot.id,
                )
            })
            .map(|slot| slot.id.clone())
    }

    /// The instance that should take a job with `needs` among those that can take it now, have
    /// all its models loaded and are not ones it failed on; `None` when there is none (or the
    /// job names no model).
    pub fn choose_loaded(
        &self,
        instances: &BTreeMap<InstanceId, InstanceSlot>,
        gpus: &HashMap<GpuId, GpuInfo>,
        needs: JobNeeds<'_>,
    ) -> Option<InstanceId> {
        instances
            .values()
            .filter(|slot| {
                !needs.avoid.contains(&slot.id)
                    && slot.loaded.has_all(needs.models)
                    && self.can_take(slot, gpus)
            })
            .min_by_key(|slot| (slot.load(), &slot.id))
            .map(|slot| slot.id.clone())
    }

    /// Whether any instance can take a job now.
    pub fn any_free(
        &self,
        instances: &BTreeMap<InstanceId, InstanceSlot>,
        gpus: &HashMap<GpuId, GpuInfo>,
    ) -> bool {
        instances.values().any(|slot| self.can_take(slot, gpus))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::JobId;
    use crate::messages::InstancePhase;

    const GIB: u64 = 1 << 30;

    fn rules(depth: usize, headroom: Option<u64>) -> PlacementRules {
        PlacementRules {
            pipeline_depth: depth,
            vram_headroom_bytes: headroom,
        }
    }

    fn fleet(specs: &[(&str, InstancePhase, usize)]) -> BTreeMap<InstanceId, InstanceSlot> {
        specs
            .iter()
            .map(|(name, phase, load)| {
                let mut slot = InstanceSlot::new(
                    InstanceId::new(*name),
                    Some(GpuId(format!("GPU-{name}"))),
                    8,
                );
                slot.phase = *phase;
                for _ in 0..*load {
                    slot.holding.insert(JobId::new());
                }
                (slot.id.clone(), slot)
            })
            .collect()
    }

    fn gpu(name: &str, free: u64) -> (GpuId, GpuInfo) {
        let id = GpuId(format!("GPU-{name}"));
        let info = GpuInfo {
            index: 0,
            id: id.clone(),
            name: "test".into(),
            pci_bus_id: String::new(),
            memory_total_bytes: 24 * GIB,
            memory_used_bytes: 24 * GIB - free,
            memory_free_bytes: free,
            utilization_percent: None,
            temperature_celsius: None,
            processes: Vec::new(),
        };
        (id, info)
    }

    fn plain() -> JobNeeds<'static> {
        JobNeeds {
            models: &[],
            avoid: &[],
        }
    }

    fn pick(
        rules: PlacementRules,
        instances: &BTreeMap<InstanceId, InstanceSlot>,
        gpus: &HashMap<GpuId, GpuInfo>,
        needs: JobNeeds<'_>,
    ) -> Option<String> {
        rules.choose(instances, gpus, needs).map(|id| id.0)
    }

    #[test]
    fn only_ready_instances_take_jobs() {
        use InstancePhase::*;
        let instances = fleet(&[
            ("a", Starting, 0),
            ("b", Draining, 0),
            ("c", Crashed, 0),
            ("d", Quarantined, 0),
            ("e", Ready, 1),
        ]);
        assert_eq!(
            pick(rules(2, None), &instances, &HashMap::new(), plain()),
            Some("e".into())
        );
        let none_ready = fleet(&[("a", Starting, 0), ("b", Stopped, 0), ("c", Restarting, 0)]);
        assert_eq!(
            pick(rules(2, None), &none_ready, &HashMap::new(), plain()),
            None
        );
    }

    #[test]
    fn pipeline_depth_bounds_the_jobs_per_instance() {
        let instances = fleet(&[
            ("a", InstancePhase::Ready, 2),
            ("b", InstancePhase::Ready, 1),
        ]);
        assert_eq!(
            pick(rules(2, None), &instances, &HashMap::new(), plain()),
            Some("b".into())
        );
        assert_eq!(
            pick(rules(1, None), &instances, &HashMap::new(), plain()),
            None
        );
        assert!(!rules(1, None).any_free(&instances, &HashMap::new()));
        assert!(rules(3, None).any_free(&instances, &HashMap::new()));
    }

    #[test]
    fn least_loaded_wins_and_ties_go_to_the_lowest_id() {
        let instances = fleet(&[
            ("c", InstancePhase::Ready, 2),
            ("b", InstancePhase::Ready, 1),
            ("a", InstancePhase::Ready, 1),
        ]);
        assert_eq!(
            pick(rules(4, None), &instances, &HashMap::new(), plain()),
            Some("a".into())
        );
    }

    #[test]
    fn the_instance_with_the_models_loaded_wins_over_an_idle_one_while_it_has_a_free_slot() {
        let mut instances = fleet(&[
            ("a", InstancePhase::Ready, 0),
            ("b", InstancePhase::Ready, 1),
            ("c", InstancePhase::Ready, 1),
        ]);
        let models = vec!["flux1-dev.safetensors".to_string()];
        for name in ["b", "c"] {
            instances
                .get_mut(&InstanceId::new(name))
                .unwrap()
                .loaded
                .record(&models);
        }
        let needs = JobNeeds {
            models: &models,
            avoid: &[],
        };
        // b and c have the model and one job each; a is idle without it: affinity first, then
        // the lowest id among the equally loaded.
        assert_eq!(
            pick(rules(2, None), &instances, &HashMap::new(), needs),
            Some("b".into())
        );
        assert_eq!(
            rules(2, None)
                .choose_loaded(&instances, &HashMap::new(), needs)
                .map(|i| i.0),
            Some("b".into())
        );
        // c goes idle: among equally affine instances the idle one wins.
        instances
            .get_mut(&InstanceId::new("c"))
            .unwrap()
            .holding
            .clear();
        assert_eq!(
            pick(rules(2, None), &instances, &HashMap::new(), needs),
            Some("c".into())
        );
        // With b and c full, the idle a takes it (it has to load the model).
        for name in ["b", "c"] {
            let slot = instances.get_mut(&InstanceId::new(name)).unwrap();
            while slot.holding.len() < 2 {
                slot.holding.insert(JobId::new());
            }
        }
        assert_eq!(
            pick(rules(2, None), &instances, &HashMap::new(), needs),
            Some("a".into())
        );
        assert_eq!(
            rules(2, None).choose_loaded(&instances, &HashMap::new(), needs),
            None
        );
        // A job that names no model goes to the idle instance, and is never a look-ahead pick.
        assert_eq!(
            pick(rules(3, None), &instances, &HashMap::new(), plain()),
            Some("a".into())
        );
        assert_eq!(
            rules(3, None).choose_loaded(&instances, &HashMap::new(), plain()),
            None
        );
    }

    #[test]
    fn a_gpu_short_of_headroom_is_skipped_and_unknown_gpus_are_not() {
        let instances = fleet(&[
            ("a", InstancePhase::Ready, 0),
            ("b", InstancePhase::Ready, 1),
        ]);
        let gpus: HashMap<GpuId, GpuInfo> = [gpu("a", GIB), gpu("b", 10 * GIB)].into();
        assert_eq!(
            pick(rules(2, Some(4 * GIB)), &instances, &gpus, plain()),
            Some("b".into())
        );
        // No headroom configured: the idle one.
        assert_eq!(
            pick(rules(2, None), &instances, &gpus, plain()),
            Some("a".into())
        );
        // Nothing known about a's GPU: not skipped.
        let only_b: HashMap<GpuId, GpuInfo> = [gpu("b", 10 * GIB)].into();
        assert_eq!(
            pick(rules(2, Some(4 * GIB)), &instances, &only_b, plain()),
            Some("a".into())
        );
        let all_short: HashMap<GpuId, GpuInfo> = [gpu("a", GIB), gpu("b", GIB)].into();
        assert_eq!(
            pick(rules(2, Some(4 * GIB)), &instances, &all_short, plain()),
            None
        );
    }

    #[test]
    fn a_retry_waits_for_another_instance_rather_than_go_back_to_the_one_it_failed_on() {
        let instances = fleet(&[
            ("a", InstancePhase::Ready, 0),
            ("b", InstancePhase::Ready, 1),
        ]);
        let avoid = [InstanceId::new("a")];
        let needs = JobNeeds {
            models: &[],
            avoid: &avoid,
        };
        assert_eq!(
            pick(rules(2, None), &instances, &HashMap::new(), needs),
            Some("b".into())
        );
        // b is busy: the retry waits for it (a may be dead and not know it yet).
        let full_b = fleet(&[
            ("a", InstancePhase::Ready, 0),
            ("b", InstancePhase::Ready, 2),
        ]);
        assert_eq!(pick(rules(2, None), &full_b, &HashMap::new(), needs), None);
        // a is the only instance that takes jobs at all: back to it.
        let b_down = fleet(&[
            ("a", InstancePhase::Ready, 0),
            ("b", InstancePhase::Restarting, 0),
        ]);
        assert_eq!(
            pick(rules(2, None), &b_down, &HashMap::new(), needs),
            Some("a".into())
        );
    }
}
