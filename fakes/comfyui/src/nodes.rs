//! What fake nodes compute. Images are not computed pixel by pixel through the graph: each value
//! carries its size, batch and a seed, and output nodes render deterministic pictures from them.
//! Sizes follow the graph (EmptyImage/EmptyLatentImage/LoadImage/ImageScale… width and height,
//! batch_size; FluxKontextImageScale's and upscale models' own rules, see `sizing.rs`),
//! SaveImage/PreviewImage write real PNG files, PreviewAny/GetImageSize give text.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::catalog::catalog;
use crate::files::{self, Folders};
use crate::imaging::{self, ImageSpec};
use crate::pyfmt;
use crate::sizing;

/// A value flowing along a link.
#[derive(Debug, Clone)]
pub enum NodeValue {
    Image(ImageSpec),
    Mask(ImageSpec),
    Latent(ImageSpec),
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    /// An upscale model: only its scale factor matters to the fake.
    UpscaleModel {
        scale: u32,
    },
    /// Anything the fake does not model (MODEL, CLIP, CONDITIONING…), by type name.
    Opaque(String),
}

impl NodeValue {
    /// The picture geometry carried by image-like values.
    pub fn spec(&self) -> Option<&ImageSpec> {
        match self {
            NodeValue::Image(s) | NodeValue::Mask(s) | NodeValue::Latent(s) => Some(s),
            _ => None,
        }
    }

    /// Python `str()` of the value, as PreviewAny shows it.
    pub fn text(&self) -> String {
        match self {
            NodeValue::Image(s) => format!("<IMAGE {}x{}x{}x3>", s.batch, s.height, s.width),
            NodeValue::Mask(s) => format!("<MASK {}x{}x{}>", s.batch, s.height, s.width),
            NodeValue::Latent(s) => format!(
                "{{'samples': <LATENT {}x4x{}x{}>}}",
                s.batch,
                s.height / 8,
                s.width / 8
            ),
            NodeValue::Int(i) => i.to_string(),
            NodeValue::Float(f) => pyfmt::float_str(*f),
            NodeValue::Text(t) => t.clone(),
            NodeValue::Bool(true) => "True".into(),
            NodeValue::Bool(false) => "False".into(),
            NodeValue::UpscaleModel { .. } => "<UPSCALE_MODEL>".into(),
            NodeValue::Opaque(t) => format!("<{t}>"),
        }
    }
}

/// A Python exception raised by a node at run time.
#[derive(Debug, Clone)]
pub struct NodeFailure {
    pub exception_type: String,
    pub message: String,
    pub traceback: Vec<String>,
}

/// The frames of ComfyUI's `execute` → `get_output_data` → `_async_map_node_over_list` chain.
pub fn runtime_traceback() -> Vec<String> {
    vec![
        "  File \"/opt/comfyui/ComfyUI/execution.py\", line 545, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data=v3_data)\n".into(),
        "  File \"/opt/comfyui/ComfyUI/execution.py\", line 344, in get_output_data\n    return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data=v3_data)\n".into(),
        "  File \"/opt/comfyui/ComfyUI/execution.py\", line 318, in _async_map_node_over_list\n    await process_inputs(input_dict, i)\n".into(),
        "  File \"/opt/comfyui/ComfyUI/execution.py\", line 306, in process_inputs\n    result = f(**inputs)\n             ^^^^^^^^^^^\n".into(),
    ]
}

fn pil_failure(path: &Path) -> NodeFailure {
    let mut traceback = runtime_traceback();
    traceback.extend([
        "  File \"/opt/comfyui/ComfyUI/nodes.py\", line 1765, in load_image\n    img = node_helpers.pillow(Image.open, image_path)\n          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n".to_string(),
        "  File \"/opt/comfyui/ComfyUI/node_helpers.py\", line 62, in pillow\n    x = fn(arg)\n        ^^^^^^^\n".to_string(),
        "  File \"/opt/comfyui/venv/lib/python3.11/site-packages/PIL/Image.py\", line 3730, in open\n    raise UnidentifiedImageError(msg)\n".to_string(),
    ]);
    NodeFailure {
        exception_type: "PIL.UnidentifiedImageError".into(),
        message: format!("cannot identify image file '{}'\n", path.display()),
        traceback,
    }
}

fn missing_file_failure(path: &Path) -> NodeFailure {
    NodeFailure {
        exception_type: "FileNotFoundError".into(),
        message: format!("[Errno 2] No such file or directory: '{}'", path.display()),
        traceback: runtime_traceback(),
    }
}

/// Everything a node sees when it runs.
pub struct NodeCall<'a> {
    pub class: &'a str,
    /// Constant inputs (links removed).
    pub constants: &'a Map<String, Value>,
    /// Linked inputs, resolved.
    pub linked: &'a HashMap<String, NodeValue>,
    /// The node's cache signature: seeds the pictures.
    pub signature: u64,
    pub folders: &'a Folders,
    /// PNG text chunks to embed in saved images (`prompt`, `workflow`…), empty to disable.
    pub png_text: &'a [(&'a str, String)],
}

/// What a node produced.
#[derive(Debug, Default)]
pub struct NodeResult {
    pub outputs: Vec<NodeValue>,
    /// The `output` of `executed` (output nodes only).
    pub ui: Option<Value>,
    /// TEXT binary frames to send while running.
    pub texts: Vec<String>,
}

impl NodeCall<'_> {
    fn int(&self, name: &str) -> Option<i64> {
        match self.linked.get(name) {
            Some(NodeValue::Int(i)) => Some(*i),
            Some(NodeValue::Float(f)) => Some(*f as i64),
            Some(_) => None,
            None => self.constants.get(name).and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_u64().map(|u| u as i64))
                    .or_else(|| v.as_f64().map(|f| f as i64))
            }),
        }
    }

    fn float(&self, name: &str) -> Option<f64> {
        match self.linked.get(name) {
            Some(NodeValue::Int(i)) => Some(*i as f64),
            Some(NodeValue::Float(f)) => Some(*f),
            Some(_) => None,
            None => self.constants.get(name).and_then(Value::as_f64),
        }
    }

    fn string(&self, name: &str) -> Option<String> {
        match self.linked.get(name) {
            Some(v) => Some(v.text()),
            None => self.constants.get(name).map(pyfmt::str_of),
        }
    }

    /// The geometry of the first image-like input (inputs in declaration order).
    fn upstream_spec(&self) -> Option<ImageSpec> {
        for spec in catalog().inputs(self.class) {
            if let Some(s) = self.linked.get(&spec.name).and_then(NodeValue::spec) {
                return Some(s.clone());
            }
        }
        self.linked.values().find_map(NodeValue::spec).cloned()
    }

    fn dims(&self, base: Option<&ImageSpec>) -> Option<(u32, u32)> {
        let w = self.int("width")?;
        let h = self.int("height")?;
        let (bw, bh) = base.map(|b| (b.width, b.height)).unwrap_or((64, 64));
        let (w, h) = match (w, h) {
            (0, 0) => (bw as i64, bh as i64),
            (0, h) => ((bw as f64 * h as f64 / bh.max(1) as f64).round() as i64, h),
            (w, 0) => (w, (bh as f64 * w as f64 / bw.max(1) as f64).round() as i64),
            (w, h) => (w, h),
        };
        Some((w.clamp(1, 1 << 20) as u32, h.clamp(1, 1 << 20) as u32))
    }

    /// Geometry of this node's picture outputs.
    fn derived_spec(&self) -> ImageSpec {
        let base = self.upstream_spec();
        let mut spec = base.clone().unwrap_or_default();
        if let Some((w, h)) = self.dims(base.as_ref()) {
            spec.width = w;
            spec.height = h;
        }
        if let Some(scale) = self.float("scale_by") {
            spec.width = ((spec.width as f64 * scale).round() as u32).max(1);
            spec.height = ((spec.height as f64 * scale).round() as u32).max(1);
        }
        if let Some(b) = self.int("batch_size").filter(|b| *b > 0)
            && (base.is_none() || self.class.starts_with("Empty"))
        {
            spec.batch = b.min(4096) as u32;
        }
        spec.seed = self.signature;
        spec
    }
}

/// Whether the class is a sampler (progress per step, previews).
pub fn is_sampler(class: &str) -> bool {
    catalog()
        .inputs(class)
        .iter()
        .any(|s| s.name == "steps" && s.type_name() == Some("INT"))
        && catalog().return_types(class).iter().any(|t| t == "LATENT")
}

/// How many progress steps the node reports (`None`: it reports none).
pub fn progress_steps(call: &NodeCall<'_>) -> Option<u64> {
    if is_sampler(call.class) {
        return call.int("steps").map(|s| s.max(1) as u64);
    }
    if call.class == "ColorTransfer" {
        return call
            .linked
            .get("image_target")
            .and_then(NodeValue::spec)
            .map(|s| u64::from(s.batch.max(1)));
    }
    None
}

/// Writes `spec`'s images with SaveImage's naming below `root`; returns the `images` entries.
fn save_images(
    call: &NodeCall<'_>,
    spec: &ImageSpec,
    root: &Path,
    prefix: &str,
    kind: &str,
) -> Result<Vec<Value>, NodeFailure> {
    let target = files::save_target(root, prefix).map_err(|e| NodeFailure {
        exception_type: "Exception".into(),
        message: e.to_string(),
        traceback: runtime_traceback(),
    })?;
    let io_failure = |e: std::io::Error, path: &Path| NodeFailure {
        exception_type: "OSError".into(),
        message: format!("{e}: '{}'", path.display()),
        traceback: runtime_traceback(),
    };
    std::fs::create_dir_all(&target.folder).map_err(|e| io_failure(e, &target.folder))?;
    let mut images = Vec::new();
    for index in 0..spec.batch {
        let counter = target.counter + u64::from(index);
        let stem = target.file_stem.replace("%batch_num%", &index.to_string());
        let filename = format!("{stem}_{counter:05}_.png");
        let path = target.folder.join(&filename);
        let (w, h, rgb) = imaging::render_rgb(spec, index);
        let png = imaging::encode_png(w, h, &rgb, call.png_text).map_err(|e| NodeFailure {
            exception_type: "OSError".into(),
            message: e.to_string(),
            traceback: runtime_traceback(),
        })?;
        std::fs::write(&path, png).map_err(|e| io_failure(e, &path))?;
        images.push(json!({"filename": filename, "subfolder": target.subfolder, "type": kind}));
    }
    Ok(images)
}

/// Runs one node.
pub fn run_node(call: &NodeCall<'_>) -> Result<NodeResult, NodeFailure> {
    let mut result = NodeResult::default();
    match call.class {
        "LoadImage" | "LoadImageMask" => {
            let name = call.string("image").unwrap_or_default();
            let path = files::resolve_annotated(call.folders, &name)
                .unwrap_or_else(|| call.folders.input.join(&name));
            let bytes = std::fs::read(&path).map_err(|_| missing_file_failure(&path))?;
            let (w, h) = imaging::probe(&bytes).ok_or_else(|| pil_failure(&path))?;
            let spec = ImageSpec {
                width: w,
                height: h,
                batch: 1,
                seed: call.signature,
            };
            if call.class == "LoadImage" {
                result.outputs = vec![NodeValue::Image(spec.clone()), NodeValue::Mask(spec)];
            } else {
                result.outputs = vec![NodeValue::Mask(spec)];
            }
        }
        "SaveImage" | "PreviewImage" => {
            let spec = call
                .linked
                .get("images")
                .and_then(NodeValue::spec)
                .cloned()
                .unwrap_or_default();
            let images = if call.class == "SaveImage" {
                let prefix = call.string("filename_prefix").unwrap_or("ComfyUI".into());
                save_images(call, &spec, &call.folders.output, &prefix, "output")?
            } else {
                save_images(
                    call,
                    &spec,
                    &call.folders.temp,
                    &files::temp_prefix(),
                    "temp",
                )?
            };
            result.ui = Some(json!({"images": images}));
            result.outputs = vec![NodeValue::Image(spec)];
        }
        "PreviewAny" => {
            let text = call
                .linked
                .get("source")
                .map(NodeValue::text)
                .or_else(|| call.constants.get("source").map(pyfmt::str_of))
                .unwrap_or_else(|| "None".into());
            result.ui = Some(json!({"text": [text.clone()]}));
            result.outputs = vec![NodeValue::Text(text)];
        }
        "GetImageSize" => {
            let spec = call.upstream_spec().unwrap_or_default();
            result.texts.push(format!(
                "width: {}, height: {}\n batch size: {}",
                spec.width, spec.height, spec.batch
            ));
            result.outputs = vec![
                NodeValue::Int(i64::from(spec.width)),
                NodeValue::Int(i64::from(spec.height)),
                NodeValue::Int(i64::from(spec.batch)),
            ];
        }
        "UpscaleModelLoader" => {
            let name = call.string("model_name").unwrap_or_default();
            result.outputs = vec![NodeValue::UpscaleModel {
                scale: sizing::upscale_factor(&name),
            }];
        }
        "ImageUpscaleWithModel" => {
            let scale = match call.linked.get("upscale_model") {
                Some(NodeValue::UpscaleModel { scale }) => *scale,
                _ => sizing::DEFAULT_UPSCALE_FACTOR,
            };
            let mut spec = call.upstream_spec().unwrap_or_default();
            spec.width = spec.width.saturating_mul(scale);
            spec.height = spec.height.saturating_mul(scale);
            spec.seed = call.signature;
            result.outputs = vec![NodeValue::Image(spec)];
        }
        "FluxKontextImageScale" => {
            let mut spec = call.upstream_spec().unwrap_or_default();
            (spec.width, spec.height) = sizing::kontext_size(spec.width, spec.height);
            spec.seed = call.signature;
            result.outputs = vec![NodeValue::Image(spec)];
        }
        "RegexMatch" => {
            let text = call.string("string").unwrap_or_default();
            let pattern = call.string("regex_pattern").unwrap_or_default();
            result.outputs = vec![NodeValue::Bool(loose_match(&text, &pattern))];
        }
        _ => {
            result.outputs = generic_outputs(call);
        }
    }
    Ok(result)
}

/// A tiny stand-in for `re.search`: literal characters must appear in order (`.`, `+`, `*`, `?`
/// and other metacharacters are skipped).
fn loose_match(text: &str, pattern: &str) -> bool {
    let mut chars = text.chars();
    pattern
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '_')
        .all(|p| chars.any(|c| c.eq_ignore_ascii_case(&p)))
}

/// Outputs of classes without special handling, from their declared output types.
fn generic_outputs(call: &NodeCall<'_>) -> Vec<NodeValue> {
    let spec = call.derived_spec();
    catalog()
        .return_types(call.class)
        .iter()
        .map(|t| match t.as_str() {
            "IMAGE" => NodeValue::Image(spec.clone()),
            "MASK" => NodeValue::Mask(spec.clone()),
            "LATENT" => NodeValue::Latent(spec.clone()),
            "INT" => NodeValue::Int(call.int("value").unwrap_or(0)),
            "FLOAT" => NodeValue::Float(call.float("value").unwrap_or(0.0)),
            "STRING" => NodeValue::Text(
                call.string("value")
                    .or_else(|| call.string("text"))
                    .or_else(|| call.string("string"))
                    .unwrap_or_default(),
            ),
            "BOOLEAN" => NodeValue::Bool(
                call.constants
                    .get("value")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            ),
            other => NodeValue::Opaque(other.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders(dir: &Path) -> Folders {
        Folders {
            input: dir.join("input"),
            output: dir.join("output"),
            temp: dir.join("temp"),
            user: dir.join("user"),
            models: crate::model_paths::ModelPaths::new(dir.join("models")),
        }
    }

    /// Runs `class` with these constants and linked values.
    fn run(
        f: &Folders,
        class: &str,
        constants: Value,
        linked: &[(&str, NodeValue)],
    ) -> Vec<NodeValue> {
        let constants = constants.as_object().cloned().unwrap();
        let linked: HashMap<String, NodeValue> = linked
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        let call = NodeCall {
            class,
            constants: &constants,
            linked: &linked,
            signature: 3,
            folders: f,
            png_text: &[],
        };
        run_node(&call).unwrap().outputs
    }

    fn size(value: &NodeValue) -> (u32, u32) {
        let spec = value.spec().expect("an image");
        (spec.width, spec.height)
    }

    #[test]
    fn an_upscale_model_multiplies_the_size_by_its_factor() {
        let dir = tempfile::tempdir().unwrap();
        let f = folders(dir.path());
        let model = run(
            &f,
            "UpscaleModelLoader",
            json!({"model_name": "RealESRGAN_x2plus.safetensors"}),
            &[],
        );
        let image = NodeValue::Image(ImageSpec {
            width: 40,
            height: 30,
            batch: 1,
            seed: 1,
        });
        let out = run(
            &f,
            "ImageUpscaleWithModel",
            json!({}),
            &[("upscale_model", model[0].clone()), ("image", image)],
        );
        assert_eq!(size(&out[0]), (80, 60));
    }

    #[test]
    fn kontext_scaling_picks_a_kontext_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let f = folders(dir.path());
        let image = NodeValue::Image(ImageSpec {
            width: 64,
            height: 48,
            batch: 1,
            seed: 1,
        });
        let out = run(&f, "FluxKontextImageScale", json!({}), &[("image", image)]);
        assert_eq!(size(&out[0]), (1184, 880));
        // A latent made of it, sampled and decoded, keeps that size.
        let latent = run(&f, "VAEEncode", json!({}), &[("pixels", out[0].clone())]);
        let sampled = run(
            &f,
            "KSampler",
            json!({"seed": 1, "steps": 4}),
            &[("latent_image", latent[0].clone())],
        );
        let decoded = run(
            &f,
            "VAEDecode",
            json!({}),
            &[("samples", sampled[0].clone())],
        );
        assert!(matches!(decoded[0], NodeValue::Image(_)));
        assert_eq!(size(&decoded[0]), (1184, 880));
    }

    #[test]
    fn empty_image_size_flows_into_saved_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = folders(dir.path());
        let constants = json!({"width": 40, "height": 30, "batch_size": 2, "color": 1})
            .as_object()
            .cloned()
            .unwrap();
        let linked = HashMap::new();
        let call = NodeCall {
            class: "EmptyImage",
            constants: &constants,
            linked: &linked,
            signature: 7,
            folders: &f,
            png_text: &[],
        };
        let out = run_node(&call).unwrap();
        let NodeValue::Image(spec) = &out.outputs[0] else {
            panic!()
        };
        assert_eq!((spec.width, spec.height, spec.batch), (40, 30, 2));

        let mut linked = HashMap::new();
        linked.insert("images".to_string(), out.outputs[0].clone());
        let constants = json!({"filename_prefix": "t"})
            .as_object()
            .cloned()
            .unwrap();
        let call = NodeCall {
            class: "SaveImage",
            constants: &constants,
            linked: &linked,
            signature: 8,
            folders: &f,
            png_text: &[],
        };
        let out = run_node(&call).unwrap();
        assert_eq!(out.ui.unwrap()["images"][1]["filename"], "t_00002_.png");
        let bytes = std::fs::read(f.output.join("t_00001_.png")).unwrap();
        assert_eq!(imaging::probe(&bytes), Some((40, 30)));
    }

    #[test]
    fn corrupt_image_raises_pil_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = folders(dir.path());
        std::fs::create_dir_all(&f.input).unwrap();
        std::fs::write(f.input.join("bad.png"), b"this is not an image").unwrap();
        let constants = json!({"image": "bad.png"}).as_object().cloned().unwrap();
        let linked = HashMap::new();
        let call = NodeCall {
            class: "LoadImage",
            constants: &constants,
            linked: &linked,
            signature: 1,
            folders: &f,
            png_text: &[],
        };
        let err = run_node(&call).unwrap_err();
        assert_eq!(err.exception_type, "PIL.UnidentifiedImageError");
        assert!(err.message.starts_with("cannot identify image file '"));
    }
}
