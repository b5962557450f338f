//! The node catalog: ComfyUI 0.33.0's captured `/object_info` (887 classes), embedded in the
//! binary and parsed once, plus the live parts the real server computes per request (LoadImage's
//! choice list = the input folder, model loader choice lists = the model folders, with the files
//! listed by `--fake-model` added).

use std::path::Path;
use std::sync::OnceLock;

use comfy_fleet_actors::prompt_rules::NodeClasses;
use serde_json::{Map, Value};

use crate::files::Folders;

const OBJECT_INFO: &str = include_str!("../data/object_info.json");

/// Loader inputs whose choices are the files of a model folder: `[class, input, folder]`,
/// captured from a real ComfyUI 0.33.0 with one marker file in every model folder.
const MODEL_COMBOS_JSON: &str = include_str!("../data/model_combos.json");

/// The parsed [`MODEL_COMBOS_JSON`].
fn model_combos() -> &'static [(String, String, String)] {
    static COMBOS: OnceLock<Vec<(String, String, String)>> = OnceLock::new();
    COMBOS.get_or_init(|| {
        // Embedded at build time and checked by the unit tests; empty as the fallback.
        serde_json::from_str(MODEL_COMBOS_JSON).unwrap_or_default()
    })
}

/// The model folder that feeds `class.input`'s choices, if one does.
fn model_folder(class: &str, input: &str) -> Option<&'static str> {
    model_combos()
        .iter()
        .find(|(c, i, _)| c == class && i == input)
        .map(|(_, _, folder)| folder.as_str())
}

/// Inputs whose choices are the image files at the top of the input folder.
const INPUT_IMAGE_COMBOS: &[(&str, &str)] = &[("LoadImage", "image"), ("LoadImageMask", "image")];

/// Folder names of GET /models, in the captured order.
pub const MODEL_FOLDERS: &[&str] = &[
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "latent_upscale_models",
    "custom_nodes",
    "datasets",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
    "background_removal",
    "frame_interpolation",
    "geometry_estimation",
    "optical_flow",
    "detection",
];

/// One declared input of a class, as the shared prompt rules read it.
pub use comfy_fleet_actors::prompt_rules::InputRule as InputSpec;

/// The parsed catalog.
pub struct Catalog {
    classes: Map<String, Value>,
    /// Each class serialized once, in catalog order.
    serialized: Vec<(String, String, bool)>,
}

static CATALOG: OnceLock<Catalog> = OnceLock::new();

/// The process-wide catalog.
pub fn catalog() -> &'static Catalog {
    CATALOG.get_or_init(|| {
        // The embedded file is produced by the build of this repository; a parse failure is a
        // programming error caught by every test, so an empty catalog is the fallback.
        let classes: Map<String, Value> = serde_json::from_str(OBJECT_INFO).unwrap_or_default();
        let serialized = classes
            .iter()
            .map(|(name, v)| {
                let api = v.get("api_node").and_then(Value::as_bool).unwrap_or(false);
                (name.clone(), v.to_string(), api)
            })
            .collect();
        Catalog {
            classes,
            serialized,
        }
    })
}

/// Sorted names of the regular files directly in `dir` with one of `extensions` (lower case);
/// `None` accepts every image type.
fn list_files(dir: &Path, extensions: Option<&[&str]>, recursive: bool) -> Vec<String> {
    let mut out = Vec::new();
    collect_files(dir, "", extensions, recursive, &mut out);
    out.sort();
    out
}

fn collect_files(
    dir: &Path,
    prefix: &str,
    extensions: Option<&[&str]>,
    recursive: bool,
    out: &mut Vec<String>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            if recursive && !name.starts_with('.') {
                collect_files(&path, &format!("{prefix}{name}/"), extensions, true, out);
            }
            continue;
        }
        let ext = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let keep = match extensions {
            Some(list) => list.contains(&ext.as_str()),
            None => mime_guess::from_ext(&ext)
                .first()
                .is_some_and(|m| m.type_() == mime_guess::mime::IMAGE),
        };
        if keep {
            out.push(format!("{prefix}{name}"));
        }
    }
}

/// Image files at the top of the input folder (LoadImage's choices).
pub fn input_images(input_dir: &Path) -> Vec<String> {
    list_files(input_dir, None, false)
}

impl Catalog {
    /// Number of classes.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Every class's object_info entry, as captured (class name → definition).
    pub fn classes(&self) -> &Map<String, Value> {
        &self.classes
    }

    /// A class's object_info entry, as captured.
    pub fn class(&self, name: &str) -> Option<&Value> {
        self.classes.get(name)
    }

    /// Whether the class is an output node.
    pub fn is_output(&self, name: &str) -> bool {
        NodeClasses::new(&self.classes).is_output(name)
    }

    /// The class's output types (`RETURN_TYPES`).
    pub fn return_types(&self, name: &str) -> Vec<String> {
        NodeClasses::new(&self.classes).return_types(name)
    }

    /// Required then optional inputs, in `input_order`.
    pub fn inputs(&self, class: &str) -> Vec<InputSpec> {
        NodeClasses::new(&self.classes).inputs(class)
    }

    /// One input's spec with the live choices filled in.
    pub fn live_input(&self, class: &str, input: &str, dirs: &LiveDirs<'_>) -> Option<InputSpec> {
        let mut spec = self.inputs(class).into_iter().find(|s| s.name == input)?;
        if let Some(patched) = dirs.patched_spec(class, input, &spec.input_config()) {
            spec.kind = patched.get(0).cloned().unwrap_or(Value::Null);
            spec.options = patched
                .get(1)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
        }
        Some(spec)
    }

    /// The class entry with live choices, for GET /object_info/{class}.
    pub fn live_class(&self, class: &str, dirs: &LiveDirs<'_>) -> Option<Value> {
        let mut entry = self.class(class)?.clone();
        dirs.patch_class(class, &mut entry);
        Some(entry)
    }

    /// The whole GET /object_info body.
    pub fn live_json(&self, dirs: &LiveDirs<'_>, disable_api_nodes: bool) -> String {
        let mut out = String::with_capacity(OBJECT_INFO.len() + 4096);
        out.push('{');
        let mut first = true;
        for (name, json, api) in &self.serialized {
            if disable_api_nodes && *api {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&Value::String(name.clone()).to_string());
            out.push(':');
            if dirs.is_live(name) {
                match self.live_class(name, dirs) {
                    Some(v) => out.push_str(&v.to_string()),
                    None => out.push_str(json),
                }
            } else {
                out.push_str(json);
            }
        }
        out.push('}');
        out
    }
}

/// The folders that feed live choice lists (and locate annotated input files).
pub struct LiveDirs<'a> {
    pub folders: &'a Folders,
}

impl LiveDirs<'_> {
    fn is_live(&self, class: &str) -> bool {
        INPUT_IMAGE_COMBOS.iter().any(|(c, _)| *c == class)
            || model_combos().iter().any(|(c, _, _)| c == class)
    }

    /// The live choices of `class.input`, if it has any.
    fn live_choices(&self, class: &str, input: &str, captured: &[Value]) -> Option<Vec<Value>> {
        if INPUT_IMAGE_COMBOS
            .iter()
            .any(|(c, i)| *c == class && *i == input)
        {
            return Some(
                input_images(&self.folders.input)
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            );
        }
        let folder = model_folder(class, input)?;
        let files = self.folders.models.files(folder);
        // The captured list holds what the real server adds to the files (`pixel_space`,
        // `[None]`), or files of its own checkout's folder (the `configs` YAML files), which
        // sort in with the others.
        let checkout_files = !captured.is_empty()
            && captured
                .iter()
                .all(|v| v.as_str().is_some_and(|s| s.ends_with(".yaml")));
        let mut list: Vec<Value> = Vec::new();
        if checkout_files {
            let mut all: Vec<String> = files;
            all.extend(
                captured
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string)),
            );
            all.sort();
            all.dedup();
            list.extend(all.into_iter().map(Value::String));
        } else {
            list.extend(files.into_iter().map(Value::String));
            for v in captured {
                if !list.contains(v) {
                    list.push(v.clone());
                }
            }
        }
        Some(list)
    }

    /// `[kind, extra]` with live choices, or `None` when the input has none.
    fn patched_spec(&self, class: &str, input: &str, spec: &Value) -> Option<Value> {
        let mut spec = spec.clone();
        match spec.get(0) {
            Some(Value::Array(captured)) => {
                let list = self.live_choices(class, input, captured)?;
                spec[0] = Value::Array(list);
            }
            Some(Value::String(s)) if s == "COMBO" => {
                let captured = spec
                    .get(1)
                    .and_then(|e| e.get("options"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let list = self.live_choices(class, input, &captured)?;
                if let Some(extra) = spec.get_mut(1).and_then(Value::as_object_mut) {
                    extra.insert("options".into(), Value::Array(list));
                }
            }
            _ => return None,
        }
        Some(spec)
    }

    fn patch_class(&self, class: &str, entry: &mut Value) {
        let Some(required) = entry
            .get_mut("input")
            .and_then(|i| i.get_mut("required"))
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        let names: Vec<String> = required.keys().cloned().collect();
        for name in names {
            let Some(spec) = required.get(&name) else {
                continue;
            };
            if let Some(patched) = self.patched_spec(class, &name, spec) {
                required.insert(name, patched);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListedModel;
    use crate::model_paths::ModelPaths;

    #[test]
    fn catalog_has_the_captured_classes() {
        let c = catalog();
        assert_eq!(c.len(), 887);
        assert!(c.is_output("SaveImage"));
        assert!(!c.is_output("EmptyImage"));
        assert_eq!(c.return_types("LoadImage"), vec!["IMAGE", "MASK"]);
        let names: Vec<String> = c.inputs("EmptyImage").into_iter().map(|s| s.name).collect();
        assert_eq!(names, vec!["width", "height", "batch_size", "color"]);
    }

    #[test]
    fn load_image_choices_are_the_input_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.png"), b"x").unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let folders = Folders::all_in(dir.path());
        let dirs = LiveDirs { folders: &folders };
        let spec = catalog().live_input("LoadImage", "image", &dirs).unwrap();
        assert_eq!(
            spec.combo_options().unwrap(),
            vec![Value::from("a.jpg"), Value::from("b.png")]
        );
    }

    #[test]
    fn loader_choices_are_the_model_folder_and_the_listed_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("checkpoints/sdxl")).unwrap();
        std::fs::write(dir.path().join("checkpoints/sdxl/b.safetensors"), b"x").unwrap();
        std::fs::write(dir.path().join("checkpoints/readme.txt"), b"x").unwrap();
        let mut folders = Folders::all_in(dir.path());
        folders.models = ModelPaths::new(dir.path().to_path_buf()).listing(vec![
            ListedModel {
                folder: "checkpoints".into(),
                file: "a.ckpt".into(),
            },
            ListedModel {
                folder: "loras".into(),
                file: "style.safetensors".into(),
            },
            ListedModel {
                folder: "upscale_models".into(),
                file: "4x-Sharp.pth".into(),
            },
        ]);
        let dirs = LiveDirs { folders: &folders };
        let spec = catalog()
            .live_input("CheckpointLoaderSimple", "ckpt_name", &dirs)
            .unwrap();
        assert_eq!(
            spec.combo_options().unwrap(),
            vec![Value::from("a.ckpt"), Value::from("sdxl/b.safetensors")]
        );
        // A COMBO-typed loader gets them in its options.
        let spec = catalog()
            .live_input("UpscaleModelLoader", "model_name", &dirs)
            .unwrap();
        assert_eq!(
            spec.combo_options().unwrap(),
            vec![Value::from("4x-Sharp.pth")]
        );
        assert_eq!(folders.models.files("loras"), ["style.safetensors"]);
    }

    #[test]
    fn every_model_loader_lists_its_folder_and_keeps_the_extra_choices() {
        // Every captured row names a class and input of the catalog.
        assert_eq!(model_combos().len(), 46);
        for (class, input, _) in model_combos() {
            assert!(
                catalog().inputs(class).iter().any(|s| &s.name == input),
                "{class}.{input}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        for f in ["vae/v.safetensors", "loras/l.safetensors", "configs/m.yaml"] {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        let folders = Folders::all_in(dir.path());
        let dirs = LiveDirs { folders: &folders };
        let choices = |class: &str, input: &str| -> Vec<Value> {
            catalog()
                .live_input(class, input, &dirs)
                .unwrap()
                .combo_options()
                .unwrap()
        };
        assert_eq!(
            choices("VAELoader", "vae_name"),
            ["v.safetensors", "pixel_space"]
        );
        assert_eq!(
            choices("TrainLoraNode", "existing_lora"),
            ["l.safetensors", "[None]"]
        );
        assert_eq!(choices("LoraLoaderBypass", "lora_name"), ["l.safetensors"]);
        let configs = choices("CheckpointLoader", "config_name");
        let sorted = {
            let mut c = configs.clone();
            c.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            c
        };
        assert!(
            configs.contains(&Value::from("m.yaml")) && configs == sorted,
            "{configs:?}"
        );
    }
}
