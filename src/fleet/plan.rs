//! The instance plan: which instances to run, from the GPUs found and the config.
//!
//! One instance per GPU × `instances.per_gpu`, CPU-only instances when there is no GPU at all,
//! and one attached instance per `[[remote]]`. Pure, so it is unit-tested without processes.

use comfy_fleet_actors::ports::GpuInfo;
use comfy_fleet_actors::{GpuId, InstanceId};

use crate::config::Config;

/// One instance to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePlan {
    pub id: InstanceId,
    pub kind: PlanKind,
}

/// Launched here (on a GPU or the CPU), or attached by URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanKind {
    Managed {
        /// `None` runs ComfyUI with `--cpu`.
        gpu: Option<GpuId>,
        /// 0 picks a free port.
        port: u16,
    },
    Attached {
        url: String,
    },
}

impl InstancePlan {
    pub fn gpu(&self) -> Option<&GpuId> {
        match &self.kind {
            PlanKind::Managed { gpu, .. } => gpu.as_ref(),
            PlanKind::Attached { .. } => None,
        }
    }
}

/// Plans the instances for these GPUs.
pub fn plan_instances(config: &Config, gpus: &[GpuInfo]) -> Vec<InstancePlan> {
    let per_gpu = config.instances.per_gpu.max(1);
    let mut managed: Vec<(String, Option<GpuId>)> = Vec::new();
    if gpus.is_empty() {
        for k in 0..config.gpus.cpu_instances {
            managed.push((format!("cpu{k}"), None));
        }
    } else {
        for gpu in gpus {
            for k in 0..per_gpu {
                let id = if per_gpu == 1 {
                    format!("gpu{}", gpu.index)
                } else {
                    format!("gpu{}-{k}", gpu.index)
                };
                managed.push((id, Some(gpu.id.clone())));
            }
        }
    }
    let base = config.instances.base_port;
    let mut plans: Vec<InstancePlan> = managed
        .into_iter()
        .enumerate()
        .map(|(n, (id, gpu))| {
            let port = if base == 0 {
                0
            } else {
                base.saturating_add(n as u16)
            };
            InstancePlan {
                id: InstanceId::new(id),
                kind: PlanKind::Managed { gpu, port },
            }
        })
        .collect();
    for remote in &config.remote {
        plans.push(InstancePlan {
            id: InstanceId::new(remote.name.clone()),
            kind: PlanKind::Attached {
                url: remote.url.trim_end_matches('/').to_string(),
            },
        });
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RemoteConfig;

    fn gpu(index: u32) -> GpuInfo {
        GpuInfo {
            index,
            id: GpuId(format!("GPU-{index}")),
            name: "test".into(),
            pci_bus_id: String::new(),
            memory_total_bytes: 0,
            memory_used_bytes: 0,
            memory_free_bytes: 0,
            utilization_percent: None,
            temperature_celsius: None,
            processes: vec![],
        }
    }

    #[test]
    fn one_instance_per_gpu_pinned_by_uuid() {
        let plans = plan_instances(&Config::default(), &[gpu(0), gpu(1)]);
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[1].id, InstanceId::new("gpu1"));
        assert_eq!(plans[1].gpu(), Some(&GpuId("GPU-1".into())));
    }

    #[test]
    fn several_per_gpu_get_distinct_ids_and_consecutive_ports() {
        let mut c = Config::default();
        c.instances.per_gpu = 2;
        c.instances.base_port = 8200;
        let plans = plan_instances(&c, &[gpu(0), gpu(3)]);
        let ids: Vec<_> = plans.iter().map(|p| p.id.to_string()).collect();
        assert_eq!(ids, ["gpu0-0", "gpu0-1", "gpu3-0", "gpu3-1"]);
        assert_eq!(
            plans[3].kind,
            PlanKind::Managed {
                gpu: Some(GpuId("GPU-3".into())),
                port: 8203
            }
        );
    }

    #[test]
    fn no_gpu_means_cpu_instances_and_remotes_are_attached() {
        let mut c = Config::default();
        c.gpus.cpu_instances = 2;
        c.remote.push(RemoteConfig {
            name: "box".into(),
            url: "http://127.0.0.1:8188/".into(),
            base_directory: None,
        });
        let plans = plan_instances(&c, &[]);
        assert_eq!(plans.len(), 3);
        assert_eq!(plans[0].kind, PlanKind::Managed { gpu: None, port: 0 });
        assert_eq!(
            plans[2].kind,
            PlanKind::Attached {
                url: "http://127.0.0.1:8188".into()
            }
        );
    }
}
