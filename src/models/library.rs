//! The fleet's one model library: a models folder (`comfyui.models_dir`, default
//! `<state_dir>/models`) that every instance's `extra_model_paths.yaml` registers, so each file
//! exists once however many GPUs use it.
//!
//! Files are added atomically (written under a temporary name in the same folder, then renamed
//! into place, never over an existing file), their names are checked (a kind from ComfyUI's
//! folder list, a model extension, no path that escapes the kind's folder) and their SHA-256 is
//! recorded. Ephemeral files are recorded in the library's ephemeral manifest before they are
//! written; the fleet deletes them when it stops, and its start-up sweep after a crash.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::kind::{ModelKind, UnknownKind, is_model_file};
use super::records::{FileRecord, Records, key};
use crate::launch::{CleanReport, EphemeralManifest, UnsafeName, checked_relative_path};

/// The ephemeral manifest's file name in the state folder.
pub const EPHEMERAL_MANIFEST: &str = "model-library-ephemeral.jsonl";

/// What [`ModelLibrary::fingerprint`] compares: every file's kind, name, size and recorded
/// checksum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    files: Vec<(ModelKind, String, u64, Option<String>)>,
}

impl Fingerprint {
    /// The names of the files of `self` that `newer` lacks or holds with other content.
    pub fn gone_or_changed_in(&self, newer: &Fingerprint) -> Vec<String> {
        self.files
            .iter()
            .filter(|file| !newer.files.contains(file))
            .map(|(_, name, _, _)| name.clone())
            .collect()
    }
}

/// One file of the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    pub kind: ModelKind,
    /// Relative to the kind's folder, `/` between sub-folders (as ComfyUI lists it).
    pub name: String,
    pub size: u64,
    /// Recorded when comfy-fleet added the file.
    pub sha256: Option<String>,
    /// Deleted when the fleet stops.
    pub ephemeral: bool,
}

/// Why the library refused or failed a change.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error(transparent)]
    Kind(#[from] UnknownKind),
    #[error(transparent)]
    Name(#[from] UnsafeName),
    #[error(
        "{name:?} is not a model file name: ComfyUI lists only .safetensors, .ckpt, .pt, .pt2, .pth, .bin, .pkl and .sft files"
    )]
    NotAModel { name: String },
    #[error(
        "the model library {} is read-only (comfyui.models_read_only = true); add or remove files there yourself, or turn the setting off",
        dir.display()
    )]
    ReadOnly { dir: PathBuf },
    #[error("{kind}/{name} is already in the model library; remove it first to replace it")]
    Exists { kind: ModelKind, name: String },
    #[error("{kind}/{name} is not in the model library")]
    NotFound { kind: ModelKind, name: String },
    #[error("{name:?} would land outside the library's {kind} folder (through a symbolic link)")]
    Escapes { kind: ModelKind, name: String },
    #[error(
        "{kind}/{name}: the SHA-256 is {actual}, not the expected {expected}; the file was not added"
    )]
    Checksum {
        kind: ModelKind,
        name: String,
        expected: String,
        actual: String,
    },
    #[error("cannot {action} {}: {reason}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        reason: String,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LibraryError {
    let path = path.to_path_buf();
    move |e| LibraryError::Io {
        action,
        path,
        reason: e.to_string(),
    }
}

/// The model library of one fleet.
#[derive(Debug, Clone)]
pub struct ModelLibrary {
    dir: PathBuf,
    read_only: bool,
    ephemeral: EphemeralManifest,
}

impl ModelLibrary {
    /// The library in `dir` (made absolute), whose ephemeral files are listed in `state_dir`.
    pub fn new(dir: &Path, read_only: bool, state_dir: &Path) -> std::io::Result<Self> {
        let state_dir = std::path::absolute(state_dir)?;
        Ok(Self {
            dir: std::path::absolute(dir)?,
            read_only,
            ephemeral: EphemeralManifest::at(state_dir.join(EPHEMERAL_MANIFEST)),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Creates the library's kind folders (not for a read-only library, which must exist).
    pub fn prepare(&self) -> Result<(), LibraryError> {
        if self.read_only {
            return Ok(());
        }
        for kind in ModelKind::all() {
            let dir = self.dir.join(kind.as_str());
            std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        }
        Ok(())
    }

    /// Every model file of `kind` (every kind when `None`), sorted by kind then name.
    pub fn list(&self, kind: Option<ModelKind>) -> Vec<ModelFile> {
        let records = Records::in_library(&self.dir).read();
        let ephemeral = self.ephemeral.entries().unwrap_or_default();
        let mut out = Vec::new();
        let kinds: Vec<ModelKind> = match kind {
            Some(k) => vec![k],
            None => ModelKind::all().collect(),
        };
        for kind in kinds {
            let mut names = std::collections::BTreeMap::new();
            for folder in kind.folders() {
                collect(&self.dir.join(folder), "", &mut names);
            }
            for (name, (path, size)) in names {
                out.push(ModelFile {
                    kind,
                    sha256: records
                        .get(&key(kind.as_str(), &name))
                        .map(|r| r.sha256.clone()),
                    ephemeral: ephemeral.contains(&path),
                    name,
                    size,
                });
            }
        }
        out
    }

    /// A summary of the library's content that changes whenever a file is added, removed or
    /// replaced, through comfy-fleet or by hand.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            files: self
                .list(None)
                .into_iter()
                .map(|f| (f.kind, f.name, f.size, f.sha256))
                .collect(),
        }
    }

    /// Starts adding `kind/name`: checks the name, refuses an existing file, records an
    /// ephemeral file before anything is written, and opens the temporary file.
    pub async fn begin_add(
        &self,
        kind: ModelKind,
        name: &str,
        ephemeral: bool,
    ) -> Result<ModelWriter, LibraryError> {
        let target = self.target(kind, name)?;
        if std::fs::symlink_metadata(&target).is_ok() {
            return Err(LibraryError::Exists {
                kind,
                name: name.to_string(),
            });
        }
        let partial = sibling(
            &target,
            &format!("partial-{}", uuid::Uuid::new_v4().simple()),
        );
        if ephemeral {
            for path in [&partial, &target] {
                self.ephemeral.record(path).map_err(io_error(
                    "record an ephemeral file in",
                    self.ephemeral.path(),
                ))?;
            }
        }
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .await
            .map_err(io_error("create", &partial))?;
        Ok(ModelWriter {
            library: self.clone(),
            kind,
            name: name.to_string(),
            ephemeral,
            partial: Some(partial),
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Copies the file at `source` into the library as `kind/name`, telling `copied` how many
    /// bytes each step copied.
    pub async fn add_file(
        &self,
        kind: ModelKind,
        name: &str,
        source: &Path,
        ephemeral: bool,
        mut copied: impl FnMut(u64),
    ) -> Result<ModelFile, LibraryError> {
        let mut input = tokio::fs::File::open(source)
            .await
            .map_err(io_error("open", source))?;
        let mut writer = self.begin_add(kind, name, ephemeral).await?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = input
                .read(&mut buffer)
                .await
                .map_err(io_error("read", source))?;
            if n == 0 {
                break;
            }
            writer.write(&buffer[..n]).await?;
            copied(n as u64);
        }
        writer.finish(None).await
    }

    /// Moves a complete file (`partial`, in the kind's folder, e.g. a finished download) into
    /// place as `kind/name` and records its checksum.
    pub async fn commit(
        &self,
        kind: ModelKind,
        name: &str,
        partial: &Path,
        sha256: String,
        size: u64,
        ephemeral: bool,
    ) -> Result<ModelFile, LibraryError> {
        let target = self.target(kind, name)?;
        rename_no_replace(partial, &target).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                LibraryError::Exists {
                    kind,
                    name: name.to_string(),
                }
            } else {
                io_error("rename into place", partial)(e)
            }
        })?;
        let record = FileRecord {
            sha256: sha256.clone(),
            size,
            added: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let records = Records::in_library(&self.dir);
        let mut forgotten = Ok(());
        records
            .update(|r| {
                r.insert(key(kind.as_str(), name), record);
                // A kept file may reuse the name of an ephemeral one that never got written.
                if !ephemeral {
                    forgotten = self.ephemeral.forget(&target);
                }
            })
            .map_err(io_error("record the checksum in", &records.path()))?;
        forgotten.map_err(io_error("update", self.ephemeral.path()))?;
        Ok(ModelFile {
            kind,
            name: name.to_string(),
            size,
            sha256: Some(sha256),
            ephemeral,
        })
    }

    /// Removes `kind/name` and its record.
    pub fn remove(&self, kind: ModelKind, name: &str) -> Result<ModelFile, LibraryError> {
        if self.read_only {
            return Err(LibraryError::ReadOnly {
                dir: self.dir.clone(),
            });
        }
        checked_relative_path(name, true)?;
        let existing = self
            .list(Some(kind))
            .into_iter()
            .find(|f| f.name == name)
            .ok_or_else(|| LibraryError::NotFound {
                kind,
                name: name.to_string(),
            })?;
        let path = kind
            .folders()
            .map(|folder| self.dir.join(folder).join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| LibraryError::NotFound {
                kind,
                name: name.to_string(),
            })?;
        std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
        let records = Records::in_library(&self.dir);
        records
            .update(|r| {
                r.remove(&key(kind.as_str(), name));
            })
            .map_err(io_error("update", &records.path()))?;
        Ok(existing)
    }

    /// Deletes every ephemeral file (at shutdown, and in the start-up sweep after a crash).
    pub fn clean_ephemeral(&self) -> std::io::Result<CleanReport> {
        let report = self.ephemeral.clean()?;
        if !report.removed.is_empty() {
            let names: Vec<String> = report
                .removed
                .iter()
                .filter_map(|p| p.strip_prefix(&self.dir).ok())
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            Records::in_library(&self.dir).update(|r| {
                for name in &names {
                    r.remove(name);
                }
            })?;
        }
        Ok(report)
    }

    /// Where `kind/name` goes: the name checked, its folders created and checked to stay
    /// inside the kind's folder.
    pub fn target(&self, kind: ModelKind, name: &str) -> Result<PathBuf, LibraryError> {
        if self.read_only {
            return Err(LibraryError::ReadOnly {
                dir: self.dir.clone(),
            });
        }
        let relative = checked_relative_path(name, true)?;
        let file_name = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !is_model_file(&file_name) || file_name.starts_with('.') {
            return Err(LibraryError::NotAModel {
                name: name.to_string(),
            });
        }
        let folder = self.dir.join(kind.as_str());
        let target = folder.join(&relative);
        let parent = target.parent().unwrap_or(&folder).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(io_error("create", &parent))?;
        let real_folder = std::fs::canonicalize(&folder).map_err(io_error("resolve", &folder))?;
        let real_parent = std::fs::canonicalize(&parent).map_err(io_error("resolve", &parent))?;
        if !real_parent.starts_with(&real_folder) {
            return Err(LibraryError::Escapes {
                kind,
                name: name.to_string(),
            });
        }
        Ok(target)
    }
}

/// A hidden file next to `target` (`.<name>.<suffix>`): ComfyUI does not list it, since its
/// extension is not a model's.
pub fn sibling(target: &Path, suffix: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{suffix}"))
}

/// A file being added: bytes go to a temporary file and its checksum as they come; nothing is
/// visible under the final name until [`ModelWriter::finish`]. Dropped unfinished, the temporary
/// file is deleted.
pub struct ModelWriter {
    library: ModelLibrary,
    kind: ModelKind,
    name: String,
    ephemeral: bool,
    partial: Option<PathBuf>,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    size: u64,
}

impl ModelWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), LibraryError> {
        let (Some(file), Some(partial)) = (self.file.as_mut(), self.partial.as_ref()) else {
            return Ok(());
        };
        file.write_all(bytes)
            .await
            .map_err(io_error("write", partial))?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Syncs the file, checks it against `expected_sha256` when given, and moves it into place.
    pub async fn finish(
        mut self,
        expected_sha256: Option<&str>,
    ) -> Result<ModelFile, LibraryError> {
        let partial = self.partial.clone().unwrap_or_default();
        if let Some(mut file) = self.file.take() {
            file.flush().await.map_err(io_error("write", &partial))?;
            file.sync_all().await.map_err(io_error("sync", &partial))?;
        }
        let actual = hex(&std::mem::take(&mut self.hasher).finalize());
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&actual)
        {
            return Err(LibraryError::Checksum {
                kind: self.kind,
                name: self.name.clone(),
                expected: expected.to_ascii_lowercase(),
                actual,
            });
        }
        let committed = self
            .library
            .commit(
                self.kind,
                &self.name,
                &partial,
                actual,
                self.size,
                self.ephemeral,
            )
            .await?;
        self.partial = None;
        Ok(committed)
    }
}

impl Drop for ModelWriter {
    fn drop(&mut self) {
        if let Some(partial) = self.partial.take() {
            let _ = std::fs::remove_file(partial);
        }
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Renames `from` to `to` unless `to` exists (atomically where the file system can).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EEXIST) => Err(std::io::ErrorKind::AlreadyExists.into()),
        // The file system cannot refuse to replace: check, then rename.
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => check_then_rename(from, to),
        Err(errno) => Err(errno.into()),
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    check_then_rename(from, to)
}

fn check_then_rename(from: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    std::fs::rename(from, to)
}

/// Adds the model files under `dir` to `out` as `name → (path, size)`.
fn collect(dir: &Path, prefix: &str, out: &mut std::collections::BTreeMap<String, (PathBuf, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if !name.starts_with('.') {
                collect(&path, &format!("{prefix}{name}/"), out);
            }
        } else if is_model_file(&name) && !name.starts_with('.') {
            out.entry(format!("{prefix}{name}"))
                .or_insert((path, meta.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library(dir: &Path) -> ModelLibrary {
        let library = ModelLibrary::new(&dir.join("models"), false, &dir.join("state")).unwrap();
        std::fs::create_dir_all(dir.join("state")).unwrap();
        library.prepare().unwrap();
        library
    }

    fn loras() -> ModelKind {
        ModelKind::parse("loras").unwrap()
    }

    #[actix_rt::test]
    async fn an_unfinished_add_leaves_nothing_and_a_finished_one_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let library = library(dir.path());
        let mut writer = library
            .begin_add(loras(), "a.safetensors", false)
            .await
            .unwrap();
        writer.write(b"half").await.unwrap();
        drop(writer);
        let folder = library.dir().join("loras");
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
        assert!(library.list(None).is_empty());

        let mut writer = library
            .begin_add(loras(), "a.safetensors", false)
            .await
            .unwrap();
        writer.write(b"whole").await.unwrap();
        let file = writer.finish(None).await.unwrap();
        assert_eq!(file.size, 5);
        assert_eq!(
            file.sha256.as_deref(),
            Some(hex(&Sha256::digest(b"whole")).as_str())
        );
        assert_eq!(library.list(Some(loras())), vec![file]);
    }

    #[actix_rt::test]
    async fn ephemeral_files_go_with_the_clean_up_and_a_kept_file_may_reuse_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let library = library(dir.path());
        let mut writer = library
            .begin_add(loras(), "t.safetensors", true)
            .await
            .unwrap();
        writer.write(b"x").await.unwrap();
        assert!(writer.finish(Some(&"0".repeat(64))).await.is_err());
        // The failed ephemeral add's name, now kept.
        let mut writer = library
            .begin_add(loras(), "t.safetensors", false)
            .await
            .unwrap();
        writer.write(b"x").await.unwrap();
        let kept = writer.finish(None).await.unwrap();
        assert!(!kept.ephemeral);
        let mut writer = library
            .begin_add(loras(), "e.safetensors", true)
            .await
            .unwrap();
        writer.write(b"y").await.unwrap();
        writer.finish(None).await.unwrap();
        assert!(
            library
                .list(None)
                .iter()
                .any(|f| f.name == "e.safetensors" && f.ephemeral)
        );

        let report = library.clean_ephemeral().unwrap();
        assert_eq!(
            report.removed,
            vec![library.dir().join("loras/e.safetensors")]
        );
        let names: Vec<String> = library.list(None).into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["t.safetensors"]);
        assert!(
            !Records::in_library(library.dir())
                .read()
                .contains_key("loras/e.safetensors")
        );
    }

    #[actix_rt::test]
    async fn names_out_of_the_kind_folder_and_read_only_libraries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let library = library(dir.path());
        std::os::unix::fs::symlink(dir.path(), library.dir().join("loras/out")).unwrap();
        let err = library
            .begin_add(loras(), "out/x.safetensors", false)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, LibraryError::Escapes { .. }), "{err}");
        assert!(
            library
                .begin_add(loras(), "../x.safetensors", false)
                .await
                .is_err()
        );
        assert!(matches!(
            library
                .begin_add(loras(), ".hidden.safetensors", false)
                .await
                .err()
                .unwrap(),
            LibraryError::NotAModel { .. }
        ));

        let read_only = ModelLibrary::new(library.dir(), true, &dir.path().join("state")).unwrap();
        let err = read_only
            .begin_add(loras(), "x.safetensors", false)
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("comfyui.models_read_only"),
            "{err}"
        );
        assert!(matches!(
            read_only.remove(loras(), "x.safetensors"),
            Err(LibraryError::ReadOnly { .. })
        ));
    }

    #[test]
    fn legacy_folders_are_listed_under_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        let library = library(dir.path());
        std::fs::create_dir_all(library.dir().join("unet")).unwrap();
        std::fs::write(library.dir().join("unet/flux.safetensors"), b"x").unwrap();
        let files = library.list(Some(ModelKind::parse("diffusion_models").unwrap()));
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, "flux.safetensors");
    }
}
