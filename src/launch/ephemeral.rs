//! Ephemeral files: uploads and model copies that live only as long as their instance.
//!
//! Each is recorded in a manifest in the instance's state folder *before* it is written, so
//! that a crash at any point leaves a list of everything to delete. The files are deleted when
//! the instance stops, and by the start-up sweep after comfy-fleet itself died.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The manifest's file name inside an instance's state folder.
pub const MANIFEST_FILE: &str = "ephemeral-files.jsonl";

/// What a clean-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// Files deleted.
    pub removed: Vec<PathBuf>,
    /// Files that could not be deleted (kept in the manifest for the next try), with why.
    pub failed: Vec<(PathBuf, String)>,
}

/// The manifest of one instance's ephemeral files: one JSON string (an absolute path) a line.
#[derive(Debug, Clone)]
pub struct EphemeralManifest {
    path: PathBuf,
}

impl EphemeralManifest {
    /// The manifest of the instance whose state folder is `state_dir`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(MANIFEST_FILE),
        }
    }

    /// A manifest at `path` (e.g. the model library's, in the state folder).
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `file` (an absolute path) as ephemeral; call before writing the file. The line
    /// is on disk (synced) when this returns.
    pub fn record(&self, file: &Path) -> io::Result<()> {
        let text = file.to_str().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not valid UTF-8", file.display()),
            )
        })?;
        if !file.is_absolute() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{text} is not an absolute path"),
            ));
        }
        let mut line = serde_json::to_string(text).map_err(io::Error::other)?;
        line.push('\n');
        let mut manifest = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        manifest.write_all(line.as_bytes())?;
        manifest.sync_data()
    }

    /// The files recorded so far (lines that do not parse are skipped).
    pub fn entries(&self) -> io::Result<Vec<PathBuf>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str::<String>(line).ok())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .collect())
    }

    /// Takes `file` off the list (it is to be kept after all); the manifest is rewritten.
    pub fn forget(&self, file: &Path) -> io::Result<()> {
        let entries = self.entries()?;
        if !entries.iter().any(|e| e == file) {
            return Ok(());
        }
        let mut text = String::new();
        for entry in entries.iter().filter(|e| *e != file) {
            if let Some(path) = entry.to_str() {
                text.push_str(&serde_json::to_string(path).map_err(io::Error::other)?);
                text.push('\n');
            }
        }
        let temporary = self.path.with_extension("jsonl.rewrite");
        fs::write(&temporary, text)?;
        fs::rename(&temporary, &self.path)
    }

    /// Deletes every recorded file (already missing ones count as done), then the manifest;
    /// files that could not be deleted stay listed.
    pub fn clean(&self) -> io::Result<CleanReport> {
        let mut report = CleanReport::default();
        for file in self.entries()? {
            match fs::remove_file(&file) {
                Ok(()) => report.removed.push(file),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => report.failed.push((file, e.to_string())),
            }
        }
        if report.failed.is_empty() {
            match fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        } else {
            let _ = fs::remove_file(&self.path);
            for (file, _) in &report.failed {
                self.record(file)?;
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_files_are_deleted_and_the_manifest_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = EphemeralManifest::in_state_dir(dir.path());
        let a = dir.path().join("a.png");
        let odd = dir.path().join("line\nbreak \"q\".png");
        let never_written = dir.path().join("never.png");
        for f in [&a, &odd, &never_written] {
            manifest.record(f).unwrap();
        }
        fs::write(&a, b"x").unwrap();
        fs::write(&odd, b"y").unwrap();
        let kept = dir.path().join("kept.png");
        fs::write(&kept, b"z").unwrap();

        assert_eq!(manifest.entries().unwrap().len(), 3);
        let report = manifest.clean().unwrap();
        assert_eq!(report.removed, vec![a.clone(), odd.clone()]);
        assert!(report.failed.is_empty());
        assert!(!a.exists() && !odd.exists());
        assert!(kept.exists(), "unrecorded files are left alone");
        assert!(!manifest.path().exists());
        // Cleaning again is harmless.
        assert_eq!(manifest.clean().unwrap(), CleanReport::default());
    }

    #[test]
    fn a_forgotten_file_is_kept_by_the_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = EphemeralManifest::in_state_dir(dir.path());
        let (a, b) = (dir.path().join("a.bin"), dir.path().join("b.bin"));
        for f in [&a, &b] {
            manifest.record(f).unwrap();
            fs::write(f, b"x").unwrap();
        }
        manifest.forget(&a).unwrap();
        assert_eq!(manifest.entries().unwrap(), vec![b.clone()]);
        manifest.clean().unwrap();
        assert!(a.exists() && !b.exists());
    }

    #[test]
    fn relative_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = EphemeralManifest::in_state_dir(dir.path());
        let err = manifest.record(Path::new("input/a.png")).unwrap_err();
        assert!(err.to_string().contains("input/a.png"), "{err}");
    }
}
