//! Where the server looks for model files: the models directory, plus the folders that
//! `--extra-model-paths-config` files (ComfyUI's `extra_model_paths.yaml`) register, and which
//! files of those folders each model folder lists.
//!
//! As in ComfyUI 0.33.0: each top-level section of a file may set `base_path` (`~` and `$VAR`
//! expanded; relative to the file's folder) and `is_default` (its folders are searched first),
//! and maps folder names to one path or a `|` block of paths (relative to `base_path`, else to
//! the file's folder). The legacy names `unet` and `clip` mean `diffusion_models` and
//! `text_encoders`. A folder's listing is the sorted union of the files of all its folders.
//!
//! Only the YAML this format uses is read: block mappings, plain, single- and double-quoted
//! scalars, `|` blocks and comments. Anything else is refused with the line it is on (the real
//! server's YAML parser reads more, and fails to start on what it cannot read).

use std::path::{Path, PathBuf};

use crate::config::ListedModel;

/// Model file extensions ComfyUI lists in most folders.
pub const MODEL_EXTENSIONS: &[&str] = &[
    "ckpt",
    "pt",
    "pt2",
    "bin",
    "pth",
    "safetensors",
    "pkl",
    "sft",
];

/// Whether ComfyUI would list a file of this name in a model folder.
pub fn has_model_extension(name: &str) -> bool {
    Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| MODEL_EXTENSIONS.contains(&e.as_str()))
}

/// Which files a folder lists (seen on the real server with one file of each kind per folder).
fn listed(folder: &str, extension: &str) -> bool {
    match folder {
        "configs" => extension == "yaml",
        // Registered without an extension filter: every file.
        "custom_nodes" | "datasets" => true,
        // These hold folders (diffusers) or nothing ComfyUI lists.
        "diffusers" | "classifiers" => false,
        _ => MODEL_EXTENSIONS.contains(&extension),
    }
}

/// The current name of a folder given under a legacy one.
fn current_name(folder: &str) -> &str {
    match folder {
        "unet" => "diffusion_models",
        "clip" => "text_encoders",
        other => other,
    }
}

/// Why an extra model paths file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelPathsError {
    #[error("cannot read the extra model paths file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// One registered folder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registered {
    folder: String,
    dir: PathBuf,
}

/// The model folders of one server.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    models_dir: PathBuf,
    /// Extra folders in search order; `is_default` ones are inserted at the front.
    extra: Vec<Registered>,
    /// `is_default` folders, searched before the models directory.
    first: Vec<Registered>,
    /// Files listed as if they were in the models directory (`--fake-model`).
    listed: Vec<ListedModel>,
}

impl ModelPaths {
    /// Only the models directory (`<dir>/<folder>` for every folder).
    pub fn new(models_dir: PathBuf) -> Self {
        Self {
            models_dir,
            extra: Vec::new(),
            first: Vec::new(),
            listed: Vec::new(),
        }
    }

    /// Also lists `listed` (`--fake-model FOLDER/FILE`) as if the files were in the models
    /// directory.
    pub fn listing(mut self, listed: Vec<ListedModel>) -> Self {
        self.listed = listed;
        self
    }

    /// The `--fake-model` files of `folder`.
    fn listed_in<'a>(&'a self, folder: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.listed
            .iter()
            .filter(move |m| current_name(&m.folder) == folder)
            .map(|m| m.file.as_str())
    }

    /// The models directory and the folders `files` register, read in order.
    pub fn with_extra_files(
        models_dir: PathBuf,
        files: &[PathBuf],
    ) -> Result<Self, ModelPathsError> {
        let mut paths = Self::new(models_dir);
        for file in files {
            let text = std::fs::read_to_string(file).map_err(|source| ModelPathsError::Read {
                path: file.clone(),
                source,
            })?;
            paths.register(file, &text)?;
        }
        Ok(paths)
    }

    /// The folders searched for `folder`, in order.
    pub fn dirs(&self, folder: &str) -> Vec<PathBuf> {
        let folder = current_name(folder);
        let mut out: Vec<PathBuf> = Vec::new();
        // A few folders have two default directories (their old names included).
        let defaults: &[&str] = match folder {
            "text_encoders" => &["text_encoders", "clip"],
            "diffusion_models" => &["unet", "diffusion_models"],
            "controlnet" => &["controlnet", "t2i_adapter"],
            _ => &[],
        };
        let defaults: Vec<PathBuf> = if defaults.is_empty() {
            vec![self.models_dir.join(folder)]
        } else {
            defaults.iter().map(|d| self.models_dir.join(d)).collect()
        };
        let registered = |r: &&Registered| r.folder == folder;
        for dir in self
            .first
            .iter()
            .filter(registered)
            .map(|r| r.dir.clone())
            .chain(defaults)
            .chain(self.extra.iter().filter(registered).map(|r| r.dir.clone()))
        {
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
        out
    }

    /// The files `folder` lists: relative names (`sub/name.safetensors`), sorted, each once.
    pub fn files(&self, folder: &str) -> Vec<String> {
        let folder = current_name(folder);
        let mut out = std::collections::BTreeSet::new();
        for dir in self.dirs(folder) {
            collect(&dir, "", folder, &mut out);
        }
        out.extend(self.listed_in(folder).map(str::to_string));
        out.into_iter().collect()
    }

    /// The files of each of `folder`'s folders, with the folder's index (a name found in two
    /// folders is listed twice).
    pub fn files_by_dir(&self, folder: &str) -> Vec<(String, usize)> {
        let folder = current_name(folder);
        let mut out = Vec::new();
        let dirs = self.dirs(folder);
        for (index, dir) in dirs.iter().enumerate() {
            let mut files = std::collections::BTreeSet::new();
            collect(dir, "", folder, &mut files);
            if *dir == self.models_dir.join(folder) {
                files.extend(self.listed_in(folder).map(str::to_string));
            }
            out.extend(files.into_iter().map(|f| (f, index)));
        }
        out
    }

    /// The extra folders registered, in search order, as `(folder, dir)`.
    pub fn registered(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.first
            .iter()
            .chain(&self.extra)
            .map(|r| (r.folder.as_str(), r.dir.as_path()))
    }

    /// Registers the folders of one extra model paths file's text.
    fn register(&mut self, file: &Path, text: &str) -> Result<(), ModelPathsError> {
        let file_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        for section in parse_sections(file, text)? {
            let base = section.base_path.map(|b| {
                let b = PathBuf::from(expand(&b, &|k| std::env::var(k).ok()));
                if b.is_absolute() { b } else { file_dir.join(b) }
            });
            for (folder, value) in &section.entries {
                for line in value.split('\n').filter(|l| !l.is_empty()) {
                    let dir = match &base {
                        Some(base) => base.join(line),
                        None if Path::new(line).is_absolute() => PathBuf::from(line),
                        None => file_dir.join(line),
                    };
                    let registered = Registered {
                        folder: current_name(folder).to_string(),
                        dir: normalize(&dir),
                    };
                    if section.is_default {
                        self.extra.retain(|r| *r != registered);
                        self.first.retain(|r| *r != registered);
                        self.first.insert(0, registered);
                    } else if !self.first.contains(&registered) && !self.extra.contains(&registered)
                    {
                        self.extra.push(registered);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Adds the listed files under `dir` (recursively, hidden folders skipped) to `out`.
fn collect(dir: &Path, prefix: &str, folder: &str, out: &mut std::collections::BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            if !name.starts_with('.') {
                collect(&path, &format!("{prefix}{name}/"), folder, out);
            }
            continue;
        }
        let extension = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if listed(folder, &extension) {
            out.insert(format!("{prefix}{name}"));
        }
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system (as Python's `normpath`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `~` and `$VAR` / `${VAR}` expanded through `env` as Python's `expanduser` and `expandvars`
/// do (an unknown variable is left as written).
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let text = match text.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match env("HOME") {
            Some(home) => format!("{home}{rest}"),
            None => text.to_string(),
        },
        _ => text.to_string(),
    };
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => ("", after),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match env(name) {
            Some(value) if !name.is_empty() => out.push_str(&value),
            _ => out.push_str(&rest[at..rest.len() - tail.len()]),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// One top-level section of the file.
#[derive(Debug, Default)]
struct Section {
    base_path: Option<String>,
    is_default: bool,
    /// Folder name → one path or several, one per line.
    entries: Vec<(String, String)>,
}

/// Reads the sections of an extra model paths file.
fn parse_sections(file: &Path, text: &str) -> Result<Vec<Section>, ModelPathsError> {
    let syntax = |line: usize, message: String| ModelPathsError::Syntax {
        path: file.to_path_buf(),
        line,
        message,
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut sections: Vec<Section> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let raw = lines[i];
        i += 1;
        if is_blank(raw) {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        let (key, value) = key_value(raw.trim_start()).ok_or_else(|| {
            syntax(
                number,
                format!("expected `key: value`, found {:?}", raw.trim()),
            )
        })?;
        if indent == 0 {
            if !value.is_empty() {
                // `section: null` and similar: ComfyUI skips empty sections.
                if value == "null" || value == "~" {
                    continue;
                }
                return Err(syntax(
                    number,
                    format!("section `{key}` must hold `folder: path` lines"),
                ));
            }
            sections.push(Section::default());
            continue;
        }
        let section = sections
            .last_mut()
            .ok_or_else(|| syntax(number, "an indented line before any section".into()))?;
        let value = if value == "|" || value == "|-" || value == "|+" {
            // A literal block: the following more-indented lines, one path each.
            let mut block = Vec::new();
            while i < lines.len() {
                let next = lines[i];
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push(next.trim().to_string());
                i += 1;
            }
            while block.last().is_some_and(String::is_empty) {
                block.pop();
            }
            block.join("\n")
        } else {
            scalar(&value).map_err(|m| syntax(number, m))?
        };
        match key.as_str() {
            "base_path" => section.base_path = Some(value),
            "is_default" => section.is_default = matches!(value.as_str(), "true" | "True" | "yes"),
            _ => section.entries.push((key, value)),
        }
    }
    Ok(sections)
}

fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// `key: value` (the value with a trailing comment removed), or `None`.
fn key_value(line: &str) -> Option<(String, String)> {
    let (key, value) = line.split_once(':')?;
    let key = scalar(key.trim()).ok()?;
    let value = value.trim();
    let value = if value.starts_with('"') || value.starts_with('\'') {
        value.to_string()
    } else {
        match value.find(" #") {
            Some(at) => value[..at].trim_end().to_string(),
            None if value.starts_with('#') => String::new(),
            None => value.to_string(),
        }
    };
    Some((key, value))
}

/// A plain, single- or double-quoted scalar's text.
fn scalar(text: &str) -> Result<String, String> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('\'') {
        let end = inner
            .rfind('\'')
            .ok_or_else(|| "an unterminated 'quoted' value".to_string())?;
        return Ok(inner[..end].replace("''", "'"));
    }
    if text.starts_with('"') {
        let end = text
            .rfind('"')
            .filter(|e| *e > 0)
            .ok_or_else(|| "an unterminated \"quoted\" value".to_string())?;
        // YAML's double-quoted escapes are JSON's for the paths this file holds.
        return serde_json::from_str::<String>(&text[..=end])
            .map_err(|e| format!("a \"quoted\" value YAML cannot read: {e}"));
    }
    if text.starts_with(['{', '[', '&', '*', '!', '>']) {
        return Err(format!(
            "{text:?}: only plain or quoted values and `|` blocks are read"
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, relative: &str) {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn the_yaml_comfy_fleet_writes_adds_its_library_to_every_folder() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        let library = dir.path().join("library");
        write(&models, "loras/own.safetensors");
        write(&library, "loras/shared.safetensors");
        write(&library, "loras/styles/ink.safetensors");
        write(&library, "loras/readme.txt");
        write(&library, "unet/flux.safetensors");
        let yaml = dir.path().join("extra_model_paths.yaml");
        std::fs::write(
            &yaml,
            format!(
                "# comment\ncomfy_fleet:\n  base_path: {}\n  loras: loras  # trailing\n  unet: unet\n",
                serde_json::Value::from(library.display().to_string())
            ),
        )
        .unwrap();
        let paths = ModelPaths::with_extra_files(models.clone(), &[yaml]).unwrap();
        assert_eq!(
            paths.files("loras"),
            [
                "own.safetensors",
                "shared.safetensors",
                "styles/ink.safetensors"
            ]
        );
        assert_eq!(paths.files("diffusion_models"), ["flux.safetensors"]);
        assert_eq!(
            paths.dirs("loras"),
            [models.join("loras"), library.join("loras")]
        );
    }

    #[test]
    fn blocks_relative_paths_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("paths.yaml");
        std::fs::write(
            &yaml,
            "a:\n  base_path: /srv/m\n  vae: |\n    vae\n    more/vae\n\nb:\n  is_default: true\n  vae: local/../vae2\nempty:\n",
        )
        .unwrap();
        let paths = ModelPaths::with_extra_files(PathBuf::from("/base/models"), &[yaml]).unwrap();
        assert_eq!(
            paths.dirs("vae"),
            [
                dir.path().join("vae2"),
                PathBuf::from("/base/models/vae"),
                PathBuf::from("/srv/m/vae"),
                PathBuf::from("/srv/m/more/vae"),
            ]
        );
    }

    #[test]
    fn home_and_variables_are_expanded_and_unknown_ones_kept() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/op".to_string()),
            "MODELS" => Some("/srv/models".to_string()),
            _ => None,
        };
        assert_eq!(expand("~/m", &env), "/home/op/m");
        assert_eq!(expand("$MODELS/sd", &env), "/srv/models/sd");
        assert_eq!(expand("${MODELS}x", &env), "/srv/modelsx");
        assert_eq!(expand("$NOPE/a", &env), "$NOPE/a");
        assert_eq!(expand("~user/a", &env), "~user/a");
    }

    #[test]
    fn what_it_cannot_read_is_refused_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("bad.yaml");
        std::fs::write(&yaml, "a:\n  loras: [x, y]\n").unwrap();
        let err = ModelPaths::with_extra_files(PathBuf::from("/m"), std::slice::from_ref(&yaml))
            .unwrap_err();
        assert!(err.to_string().contains("bad.yaml:2:"), "{err}");
        let missing = dir.path().join("missing.yaml");
        let err = ModelPaths::with_extra_files(PathBuf::from("/m"), &[missing]).unwrap_err();
        assert!(err.to_string().contains("missing.yaml"), "{err}");
    }

    #[test]
    fn folders_list_what_the_real_server_lists() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "configs/a.yaml",
            "configs/b.safetensors",
            "datasets/any.txt",
            "loras/a.yaml",
            "loras/b.pt",
        ] {
            write(dir.path(), f);
        }
        let paths = ModelPaths::new(dir.path().to_path_buf());
        assert_eq!(paths.files("configs"), ["a.yaml"]);
        assert_eq!(paths.files("datasets"), ["any.txt"]);
        assert_eq!(paths.files("loras"), ["b.pt"]);
    }
}
