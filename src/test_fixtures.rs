//! Where the unit tests inside `src/` find the captured ComfyUI 0.33.0 fixtures vendored in
//! `tests/fixtures/comfyui/` (see `tests/fixtures/README.md`). Test builds only.

use std::path::{Path, PathBuf};

/// The folder of the captures.
pub fn captured_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/comfyui")
}

/// One capture file, by name (e.g. `object_info.json`).
pub fn captured(name: &str) -> PathBuf {
    captured_dir().join(name)
}
