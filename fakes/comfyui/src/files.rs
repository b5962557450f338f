//! The server's folders (input, output, temp, user, models) and ComfyUI's file naming rules:
//! annotated names (`x.png [output]`), safe joins, SaveImage's `{prefix}_{counter:05}_.png`
//! counter, PreviewImage's random temp prefix and the upload rename rule.

use std::path::{Component, Path, PathBuf};

use rand::Rng;

use crate::model_paths::ModelPaths;

/// The folders of one server.
#[derive(Debug, Clone)]
pub struct Folders {
    pub input: PathBuf,
    pub output: PathBuf,
    pub temp: PathBuf,
    pub user: PathBuf,
    pub models: ModelPaths,
}

impl Folders {
    /// Every folder is `dir` (for unit tests).
    #[cfg(test)]
    pub fn all_in(dir: &Path) -> Folders {
        Folders {
            input: dir.to_path_buf(),
            output: dir.to_path_buf(),
            temp: dir.to_path_buf(),
            user: dir.to_path_buf(),
            models: ModelPaths::new(dir.to_path_buf()),
        }
    }

    /// The folder of a `type` (`input`, `output`, `temp`).
    pub fn by_type(&self, kind: &str) -> Option<&Path> {
        match kind {
            "input" => Some(&self.input),
            "output" => Some(&self.output),
            "temp" => Some(&self.temp),
            _ => None,
        }
    }
}

/// Splits `name [type]` into the name and the annotated folder type.
pub fn annotated(name: &str) -> (&str, Option<&'static str>) {
    for (suffix, kind) in [
        (" [output]", "output"),
        (" [input]", "input"),
        (" [temp]", "temp"),
    ] {
        if let Some(stripped) = name.strip_suffix(suffix) {
            return (stripped, Some(kind));
        }
    }
    (name, None)
}

/// Joins a relative user-supplied path below `root`, refusing absolute paths and `..` escapes.
pub fn safe_join(root: &Path, relative: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    let mut depth = 0usize;
    for comp in Path::new(relative).components() {
        match comp {
            Component::Normal(c) => {
                out.push(c);
                depth += 1;
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return None;
                }
                out.pop();
                depth -= 1;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The file an annotated image name refers to (input folder unless annotated).
pub fn resolve_annotated(folders: &Folders, name: &str) -> Option<PathBuf> {
    let (plain, kind) = annotated(name);
    let root = match kind {
        None => &folders.input,
        Some(k) => folders.by_type(k)?,
    };
    safe_join(root, plain)
}

/// LoadImage's VALIDATE_INPUTS: does the annotated file exist?
pub fn annotated_path_exists(folders: &Folders, name: &str) -> bool {
    resolve_annotated(folders, name).is_some_and(|p| p.is_file())
}

/// Where SaveImage writes: the folder, the subfolder text and the first free counter.
pub struct SaveTarget {
    pub folder: PathBuf,
    pub subfolder: String,
    pub file_stem: String,
    pub counter: u64,
}

/// Error of an output path outside the output folder.
#[derive(Debug, thiserror::Error)]
#[error(
    "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: {folder}\n         output_dir: {root}\n         commonpath: {root}"
)]
pub struct OutsideOutput {
    folder: String,
    root: String,
}

/// ComfyUI's `get_save_image_path`: the subfolder is the prefix's directory part, the counter is
/// one more than the highest `{stem}_NNNNN_` already in that folder.
pub fn save_target(root: &Path, prefix: &str) -> Result<SaveTarget, OutsideOutput> {
    let normalized = prefix.replace('\\', "/");
    let (sub, stem) = match normalized.rsplit_once('/') {
        Some((s, f)) => (s.trim_matches('/').to_string(), f.to_string()),
        None => (String::new(), normalized.clone()),
    };
    let folder = safe_join(root, &sub).ok_or_else(|| OutsideOutput {
        folder: root.join(&sub).display().to_string(),
        root: root.display().to_string(),
    })?;
    let mut counter = 0;
    if let Ok(entries) = std::fs::read_dir(&folder) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(&stem) else {
                continue;
            };
            let Some(rest) = rest.strip_prefix('_') else {
                continue;
            };
            let digits: String = rest.split('_').next().unwrap_or_default().to_string();
            if let Ok(n) = digits.parse::<u64>() {
                counter = counter.max(n);
            }
        }
    }
    Ok(SaveTarget {
        folder,
        subfolder: sub,
        file_stem: stem,
        counter: counter + 1,
    })
}

/// PreviewImage's prefix: `ComfyUI_temp_` and five random letters.
pub fn temp_prefix() -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstupvxyz";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| LETTERS[rng.random_range(0..LETTERS.len())] as char)
        .collect();
    format!("ComfyUI_temp_{suffix}")
}

/// The upload rule: keep `name` when overwriting, when the file is new or when it holds the same
/// bytes; otherwise try `stem (1).ext`, `stem (2).ext`, …. Returns the name and whether to write.
pub fn upload_name(folder: &Path, name: &str, bytes: &[u8], overwrite: bool) -> (String, bool) {
    if overwrite {
        return (name.to_string(), true);
    }
    let path = Path::new(name);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut candidate = name.to_string();
    let mut i = 1;
    loop {
        let full = folder.join(&candidate);
        if !full.exists() {
            return (candidate, true);
        }
        if std::fs::read(&full).is_ok_and(|existing| existing == bytes) {
            return (candidate, false);
        }
        candidate = format!("{stem} ({i}){ext}");
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_join_refuses_escapes() {
        let root = Path::new("/r");
        assert_eq!(safe_join(root, "a/b.png").unwrap(), Path::new("/r/a/b.png"));
        assert!(safe_join(root, "../x").is_none());
        assert!(safe_join(root, "/etc/passwd").is_none());
    }

    #[test]
    fn save_counter_continues_after_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cat_00003_.png"), b"x").unwrap();
        std::fs::write(dir.path().join("dog_00009_.png"), b"x").unwrap();
        let t = save_target(dir.path(), "cat").unwrap();
        assert_eq!(t.counter, 4);
        let t = save_target(dir.path(), "sub/cat").unwrap();
        assert_eq!((t.subfolder.as_str(), t.counter), ("sub", 1));
    }

    #[test]
    fn upload_renames_on_different_bytes_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), b"one").unwrap();
        assert_eq!(
            upload_name(dir.path(), "a.png", b"one", false),
            ("a.png".to_string(), false)
        );
        assert_eq!(
            upload_name(dir.path(), "a.png", b"two", false),
            ("a (1).png".to_string(), true)
        );
    }
}
