//! GPUs declared in the configuration, for machines where NVML is absent or sees nothing.
//!
//! A declared GPU has no live figures: its memory total is what the operator wrote, use and
//! temperature are unknown. [`DeclaredProbe`] answers the same list every time.

use comfy_fleet_actors::GpuId;
use comfy_fleet_actors::ports::{GpuInfo, GpuProbe, GpuProbeError};
use serde::{Deserialize, Serialize};

/// One GPU named by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredGpu {
    /// What `CUDA_VISIBLE_DEVICES` gets: a UUID (`GPU-…`) or an index.
    pub id: String,
    /// A display name, e.g. `RTX 4090`.
    #[serde(default)]
    pub name: String,
    /// Total memory, for placement by VRAM headroom; unknown when absent.
    #[serde(default)]
    pub memory_total_bytes: Option<u64>,
}

impl DeclaredGpu {
    /// The [`GpuInfo`] this declaration stands for, as GPU number `index`.
    pub fn to_info(&self, index: u32) -> GpuInfo {
        let total = self.memory_total_bytes.unwrap_or(0);
        GpuInfo {
            index,
            id: GpuId(self.id.clone()),
            name: if self.name.is_empty() {
                format!("declared GPU {}", self.id)
            } else {
                self.name.clone()
            },
            pci_bus_id: String::new(),
            memory_total_bytes: total,
            memory_used_bytes: 0,
            memory_free_bytes: total,
            utilization_percent: None,
            temperature_celsius: None,
            processes: Vec::new(),
        }
    }
}

/// A probe that always answers the same, fixed list (declared GPUs, or none for CPU-only).
#[derive(Debug, Clone, Default)]
pub struct DeclaredProbe {
    gpus: Vec<GpuInfo>,
}

impl DeclaredProbe {
    /// A probe over the declared GPUs, numbered in the order given.
    pub fn new(declared: &[DeclaredGpu]) -> Self {
        Self::from_infos(
            declared
                .iter()
                .zip(0u32..)
                .map(|(gpu, index)| gpu.to_info(index))
                .collect(),
        )
    }

    /// A probe over a ready list (tests use this as their static probe).
    pub fn from_infos(gpus: Vec<GpuInfo>) -> Self {
        Self { gpus }
    }
}

impl GpuProbe for DeclaredProbe {
    fn gpus(&self) -> Result<Vec<GpuInfo>, GpuProbeError> {
        Ok(self.gpus.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_gpus_are_numbered_in_order_and_keep_their_ids() {
        let probe = DeclaredProbe::new(&[
            DeclaredGpu {
                id: "GPU-aaaa".into(),
                name: "RTX 4090".into(),
                memory_total_bytes: Some(24 << 30),
            },
            DeclaredGpu {
                id: "1".into(),
                name: String::new(),
                memory_total_bytes: None,
            },
        ]);
        let gpus = probe.gpus().unwrap();
        assert_eq!(gpus.len(), 2);
        assert_eq!((gpus[0].index, gpus[0].id.0.as_str()), (0, "GPU-aaaa"));
        assert_eq!(gpus[0].memory_free_bytes, 24 << 30);
        assert_eq!(
            (gpus[1].index, gpus[1].name.as_str()),
            (1, "declared GPU 1")
        );
        assert_eq!(gpus[1].memory_total_bytes, 0);
    }
}
