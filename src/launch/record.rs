//! The on-disk record of a running instance (`<state_root>/instances/<id>.json`), written at
//! launch and removed by a clean stop, so that the next start can find and kill what a crashed
//! comfy-fleet left behind.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The folder of records under the state root.
pub const RECORDS_DIR: &str = "instances";

/// What is known about one launched process group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub instance: String,
    pub pid: i32,
    pub pgid: i32,
    /// Field 22 of `/proc/<pid>/stat`: tells this process from a later one with the same pid.
    pub start_time: u64,
    pub command: Vec<String>,
    /// The instance's state folder (holds its ephemeral-file manifest).
    pub state_dir: PathBuf,
    /// The comfy-fleet process that launched it.
    pub launched_by: u32,
}

impl InstanceRecord {
    /// Where the record of `instance` lives.
    pub fn path(state_root: &Path, instance: &str) -> PathBuf {
        state_root
            .join(RECORDS_DIR)
            .join(format!("{instance}.json"))
    }

    /// Writes the record atomically (temporary file, then rename).
    pub fn write(&self, state_root: &Path) -> io::Result<PathBuf> {
        let path = Self::path(state_root, &self.instance);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let partial = path.with_extension("json.partial");
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        fs::write(&partial, text)?;
        fs::rename(&partial, &path)?;
        Ok(path)
    }

    /// Every record under `state_root`, each with its path; unreadable ones come with why.
    pub fn read_all(state_root: &Path) -> io::Result<Vec<(PathBuf, Result<Self, String>)>> {
        let dir = state_root.join(RECORDS_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let record = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()));
            records.push((path, record));
        }
        records.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(records)
    }
}

/// Removes a record file; a missing one is fine.
pub fn remove_record(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
