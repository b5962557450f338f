//! Launching managed ComfyUI processes: process groups, ports, folders, ephemeral files.
