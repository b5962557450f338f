//! One instance's folders (`input/`, `output/`, `temp/`, `user/`, `comfyui.db`), the
//! `extra_model_paths.yaml` that registers the fleet's model library with it, and putting input
//! images into them.
//!
//! Every name that comes from outside goes through [`checked_relative_path`], and the final
//! folder is checked to be inside the intended one (no escape through a symbolic link).
//! Ephemeral files are recorded in the instance's [`EphemeralManifest`] before being written.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::ephemeral::EphemeralManifest;
use super::safe_name::{UnsafeName, checked_relative_path};
use crate::models::ModelKind;

/// Whether a file is deleted with its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Deleted when the instance stops (or by the next start after a crash).
    Ephemeral,
    /// Left in place.
    Kept,
}

/// Why a file could not be put in an instance's folders.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error(transparent)]
    Name(#[from] UnsafeName),
    #[error("the file name {name:?} would land outside {folder} (through a symbolic link)")]
    Escapes { name: String, folder: PathBuf },
    #[error("cannot {action} {path}: {reason}")]
    Io {
        action: &'static str,
        path: PathBuf,
        reason: String,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FolderError {
    let path = path.to_path_buf();
    move |e| FolderError::Io {
        action,
        path,
        reason: e.to_string(),
    }
}

/// The folder layout of one instance, rooted at its (absolute) state folder.
#[derive(Debug, Clone)]
pub struct InstanceFolders {
    state_dir: PathBuf,
    models_dir: Option<PathBuf>,
}

impl InstanceFolders {
    /// The layout under `state_dir` (made absolute against the current directory).
    pub fn new(state_dir: &Path) -> io::Result<Self> {
        Ok(Self {
            state_dir: std::path::absolute(state_dir)?,
            models_dir: None,
        })
    }

    /// Registers the model library `models_dir` instead of `<state>/models`.
    pub fn with_models_dir(mut self, models_dir: PathBuf) -> Self {
        self.models_dir = Some(models_dir);
        self
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
    pub fn input(&self) -> PathBuf {
        self.state_dir.join("input")
    }
    pub fn output(&self) -> PathBuf {
        self.state_dir.join("output")
    }
    /// ComfyUI appends `temp/` to `--temp-directory` and wipes it at every start.
    pub fn temp(&self) -> PathBuf {
        self.state_dir.join("temp")
    }
    pub fn user(&self) -> PathBuf {
        self.state_dir.join("user")
    }
    pub fn database(&self) -> PathBuf {
        self.state_dir.join("comfyui.db")
    }
    /// The `--database-url` of the instance's own SQLite file.
    pub fn database_url(&self) -> String {
        // Three slashes, then the absolute path's own leading one.
        format!("sqlite:///{}", self.database().display())
    }
    pub fn models(&self) -> PathBuf {
        self.models_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("models"))
    }
    /// The `--extra-model-paths-config` file that registers [`Self::models`] with ComfyUI.
    pub fn extra_model_paths(&self) -> PathBuf {
        self.state_dir.join("extra_model_paths.yaml")
    }
    pub fn ephemeral(&self) -> EphemeralManifest {
        EphemeralManifest::in_state_dir(&self.state_dir)
    }

    /// Creates the folders ComfyUI writes to, and the file that registers the model library's
    /// folders (each kind's own and its legacy names) with ComfyUI.
    pub fn prepare(&self) -> Result<(), FolderError> {
        for dir in [self.input(), self.output(), self.temp(), self.user()] {
            fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        }
        let models = self.models();
        let mut yaml = format!(
            "# Written by comfy-fleet at every launch: the fleet's model library, shared by every instance.\n\
             comfy_fleet_library:\n  base_path: {}\n",
            serde_json::Value::from(models.to_string_lossy().into_owned())
        );
        for kind in ModelKind::all() {
            let folders: Vec<&str> = kind.folders().collect();
            if folders.len() == 1 {
                yaml.push_str(&format!("  {kind}: {kind}\n"));
            } else {
                yaml.push_str(&format!("  {kind}: |\n"));
                for folder in folders {
                    yaml.push_str(&format!("    {folder}\n"));
                }
            }
        }
        let file = self.extra_model_paths();
        fs::write(&file, yaml).map_err(io_error("write", &file))
    }

    /// Saves an input image as `input/<subfolder>/<name>` (replacing a file of that name) and
    /// returns its path.
    pub fn save_input(
        &self,
        subfolder: &str,
        name: &str,
        bytes: &[u8],
        lifetime: Lifetime,
    ) -> Result<PathBuf, FolderError> {
        let mut relative = PathBuf::new();
        if !subfolder.is_empty() {
            relative.push(checked_relative_path(subfolder, true)?);
        }
        relative.push(checked_relative_path(name, false)?);
        let target = self.place(&self.input(), &relative, name)?;
        self.note(&target, lifetime)?;
        fs::write(&target, bytes).map_err(io_error("write", &target))?;
        Ok(target)
    }

    /// `folder/relative`, with its parent folders created and checked to be inside `folder`.
    fn place(&self, folder: &Path, relative: &Path, name: &str) -> Result<PathBuf, FolderError> {
        let target = folder.join(relative);
        let parent = target.parent().unwrap_or(folder);
        fs::create_dir_all(parent).map_err(io_error("create", parent))?;
        let real_folder = fs::canonicalize(folder).map_err(io_error("resolve", folder))?;
        let real_parent = fs::canonicalize(parent).map_err(io_error("resolve", parent))?;
        if !real_parent.starts_with(&real_folder) {
            return Err(FolderError::Escapes {
                name: name.to_string(),
                folder: folder.to_path_buf(),
            });
        }
        Ok(target)
    }

    fn note(&self, file: &Path, lifetime: Lifetime) -> Result<(), FolderError> {
        match lifetime {
            Lifetime::Kept => Ok(()),
            Lifetime::Ephemeral => {
                let manifest = self.ephemeral();
                manifest
                    .record(file)
                    .map_err(io_error("record an ephemeral file in", manifest.path()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders() -> (tempfile::TempDir, InstanceFolders) {
        let dir = tempfile::tempdir().unwrap();
        let folders = InstanceFolders::new(&dir.path().join("gpu0")).unwrap();
        folders.prepare().unwrap();
        (dir, folders)
    }

    #[test]
    fn prepare_creates_the_layout_and_registers_the_models_folder() {
        let (_dir, f) = folders();
        for d in [f.input(), f.output(), f.temp(), f.user()] {
            assert!(d.is_dir(), "{} missing", d.display());
        }
        let yaml = fs::read_to_string(f.extra_model_paths()).unwrap();
        assert!(yaml.contains(&format!("base_path: \"{}\"", f.models().display())));
        assert!(yaml.contains("  loras: loras\n"));
        // A kind ComfyUI also reads under older folder names gets them all.
        assert!(
            yaml.contains("  text_encoders: |\n    text_encoders\n    clip\n"),
            "{yaml}"
        );
        assert!(
            f.database_url().starts_with("sqlite:////"),
            "{}",
            f.database_url()
        );
    }

    #[test]
    fn inputs_land_in_input_and_ephemeral_ones_are_cleaned() {
        let (_dir, f) = folders();
        let kept = f.save_input("", "kept.png", b"k", Lifetime::Kept).unwrap();
        let gone = f
            .save_input("jobs/42", "in.png", b"e", Lifetime::Ephemeral)
            .unwrap();
        assert_eq!(gone, f.input().join("jobs/42/in.png"));
        assert_eq!(fs::read(&gone).unwrap(), b"e");
        let report = f.ephemeral().clean().unwrap();
        assert_eq!(report.removed, vec![gone.clone()]);
        assert!(!gone.exists() && kept.exists());
    }

    #[test]
    fn bad_names_are_refused_naming_the_file() {
        let (dir, f) = folders();
        let err = f
            .save_input("", "../escape.png", b"x", Lifetime::Kept)
            .unwrap_err();
        assert!(err.to_string().contains("\"../escape.png\""), "{err}");
        assert!(
            f.save_input("../..", "a.png", b"x", Lifetime::Kept)
                .is_err()
        );
        assert!(f.save_input("", "a/b.png", b"x", Lifetime::Kept).is_err());
        // A symbolic link inside input/ that points outside is caught too.
        std::os::unix::fs::symlink(dir.path(), f.input().join("out")).unwrap();
        let err = f
            .save_input("out", "a.png", b"x", Lifetime::Kept)
            .unwrap_err();
        assert!(matches!(err, FolderError::Escapes { .. }), "{err}");
        assert!(!dir.path().join("a.png").exists());
    }
}
