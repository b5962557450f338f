//! The library's record of the files comfy-fleet added: each file's SHA-256, size and when it
//! was added, in `<library>/.comfy-fleet-library.json`. Changes are made under an exclusive lock
//! (`.comfy-fleet-library.lock`), so a `comfy-fleet models` command and a running fleet can
//! change the library at the same time.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// The record file's name inside the library.
pub const RECORDS_FILE: &str = ".comfy-fleet-library.json";
const LOCK_FILE: &str = ".comfy-fleet-library.lock";

/// What is known of one added file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Lower-case hex.
    pub sha256: String,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub added: u64,
}

/// The records of one library, keyed by `<kind>/<name>`.
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn in_library(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(RECORDS_FILE)
    }

    /// Every record (none when the file does not exist; an unreadable file counts as empty,
    /// since the records only add checksums to what the folder holds).
    pub fn read(&self) -> BTreeMap<String, FileRecord> {
        std::fs::read(self.path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Changes the records under the lock; the file is replaced atomically.
    pub fn update(&self, change: impl FnOnce(&mut BTreeMap<String, FileRecord>)) -> io::Result<()> {
        let _lock = self.lock()?;
        let mut records = self.read();
        change(&mut records);
        let text = serde_json::to_vec_pretty(&records).map_err(io::Error::other)?;
        let temporary = self
            .dir
            .join(format!("{RECORDS_FILE}.{}", std::process::id()));
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, self.path())
    }

    fn lock(&self) -> io::Result<Flock<File>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK_FILE))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| errno.into())
    }
}

/// The key of a file in the records.
pub fn key(kind: &str, name: &str) -> String {
    format!("{kind}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_kept_and_a_missing_file_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::in_library(dir.path());
        assert!(records.read().is_empty());
        let record = FileRecord {
            sha256: "ab".repeat(32),
            size: 3,
            added: 1,
        };
        records
            .update(|r| {
                r.insert(key("loras", "a.safetensors"), record.clone());
            })
            .unwrap();
        assert_eq!(
            Records::in_library(dir.path()).read()[&key("loras", "a.safetensors")],
            record
        );
        records
            .update(|r| {
                r.remove(&key("loras", "a.safetensors"));
            })
            .unwrap();
        assert!(records.read().is_empty());
    }
}
