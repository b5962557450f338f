//! The NVML adapter of the `GpuProbe` port: lists the machine's NVIDIA GPUs and samples them.
//!
//! [`NvmlProbe`] owns the [`Nvml`] handle (devices borrow it, so they are fetched again on every
//! sample) and shuts NVML down when dropped. Figures a GPU does not support (utilisation,
//! temperature, per-process memory on some boards) come back as unknown rather than as errors.

use std::ffi::OsStr;
use std::path::Path;

use comfy_fleet_actors::GpuId;
use comfy_fleet_actors::ports::{GpuInfo, GpuProbe, GpuProbeError, GpuProcess};
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

/// The machine's GPUs as NVML sees them.
pub struct NvmlProbe {
    nvml: Nvml,
}

impl std::fmt::Debug for NvmlProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlProbe").finish_non_exhaustive()
    }
}

impl NvmlProbe {
    /// Loads NVML (`libnvidia-ml.so.1`, or `library` when given) and initialises it.
    pub fn open(library: Option<&Path>) -> Result<Self, GpuProbeError> {
        let result = match library {
            Some(path) => Nvml::builder().lib_path(OsStr::new(path)).init(),
            None => Nvml::init(),
        };
        result.map(|nvml| Self { nvml }).map_err(init_error)
    }

    fn device_info(device: &Device<'_>, index: u32) -> Result<GpuInfo, GpuProbeError> {
        let failed = |what: &str, e: NvmlError| {
            GpuProbeError::Failed(format!("GPU {index}: cannot read its {what}: {e}"))
        };
        let uuid = device.uuid().map_err(|e| failed("UUID", e))?;
        let memory = device.memory_info().map_err(|e| failed("memory", e))?;
        let name = device
            .name()
            .unwrap_or_else(|_| "unknown NVIDIA GPU".into());
        let pci_bus_id = device.pci_info().map(|p| p.bus_id).unwrap_or_default();
        let processes = device
            .running_compute_processes()
            .map(|list| {
                list.into_iter()
                    .map(|p| GpuProcess {
                        pid: p.pid,
                        used_memory_bytes: match p.used_gpu_memory {
                            UsedGpuMemory::Used(bytes) => Some(bytes),
                            UsedGpuMemory::Unavailable => None,
                        },
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(GpuInfo {
            index,
            id: GpuId(uuid),
            name,
            pci_bus_id,
            memory_total_bytes: memory.total,
            memory_used_bytes: memory.used,
            memory_free_bytes: memory.free,
            utilization_percent: device.utilization_rates().ok().map(|u| u.gpu),
            temperature_celsius: device.temperature(TemperatureSensor::Gpu).ok(),
            processes,
        })
    }
}

impl GpuProbe for NvmlProbe {
    fn gpus(&self) -> Result<Vec<GpuInfo>, GpuProbeError> {
        let count = self
            .nvml
            .device_count()
            .map_err(|e| GpuProbeError::Failed(format!("cannot count GPUs: {e}")))?;
        (0..count)
            .map(|index| {
                let device = self
                    .nvml
                    .device_by_index(index)
                    .map_err(|e| GpuProbeError::Failed(format!("cannot open GPU {index}: {e}")))?;
                Self::device_info(&device, index)
            })
            .collect()
    }
}

/// Sorts NVML's start-up failures: "there is no usable NVML here" against "NVML broke".
fn init_error(e: NvmlError) -> GpuProbeError {
    match e {
        NvmlError::LibloadingError(_)
        | NvmlError::DriverNotLoaded
        | NvmlError::NoPermission
        | NvmlError::LibraryNotFound
        | NvmlError::FailedToLoadSymbol(_)
        | NvmlError::Unknown => GpuProbeError::Unavailable(e.to_string()),
        other => GpuProbeError::Failed(other.to_string()),
    }
}
