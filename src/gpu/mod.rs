//! GPU discovery over the `GpuProbe` port: NVML, and the config-declared fallback.
