//! Fuzz target: any bytes through format detection and UI→API conversion must give a result
//! or an error, never a panic, a hang or a stack overflow.
#![no_main]

use std::sync::LazyLock;

use comfy_fleet::workflow::{ObjectInfo, Workflow};
use libfuzzer_sys::fuzz_target;

/// The captured ComfyUI 0.33.0 `/object_info` vendored in `tests/fixtures/comfyui/` (the
/// corpus's own differs only in the choice lists of six input-folder loaders).
static OBJECT_INFO: LazyLock<ObjectInfo> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/comfyui/object_info.json");
    ObjectInfo::load(std::path::Path::new(path)).expect("the captured object_info is readable")
});

fuzz_target!(|data: &[u8]| {
    if let Ok(workflow) = Workflow::parse(data) {
        let _ = workflow.to_api(&OBJECT_INFO);
    }
});
