//! The model library on the wire: `GET /v1/models` (names per kind, the source of the Discord
//! bot's autocomplete) and the file an operator's `PUT /v1/models/{kind}/{name}` added.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /v1/models`: every kind (or the one asked for with `?kind=`), each with its file names
/// as ComfyUI lists them (`styles/ink.safetensors`), sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    pub models: BTreeMap<String, Vec<String>>,
}

/// One file of the library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFileView {
    pub kind: String,
    pub name: String,
    pub size_bytes: u64,
    /// Lower-case hex; `null` for files comfy-fleet did not add itself.
    pub sha256: Option<String>,
    /// Deleted when the fleet stops.
    pub ephemeral: bool,
}
