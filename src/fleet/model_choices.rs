//! The model files the instances offer, by kind (checkpoints, LoRAs, VAEs…), for the bot's
//! autocomplete and `/loras`: the choices of the core loader nodes in the catalog's
//! `/object_info` (ComfyUI fills them from its model folders).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::Value;

use crate::fleet::FleetHandle;
use crate::fleet::submit::SubmitFailure;
use crate::workflow::ObjectInfo;

/// A kind of model file: one of ComfyUI's model folders that core loader nodes choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelKind {
    Checkpoints,
    Loras,
    Vae,
    DiffusionModels,
    TextEncoders,
    UpscaleModels,
    ControlNet,
    ClipVision,
    StyleModels,
}

impl ModelKind {
    /// Every kind, in this order.
    pub const ALL: [ModelKind; 9] = [
        Self::Checkpoints,
        Self::Loras,
        Self::Vae,
        Self::DiffusionModels,
        Self::TextEncoders,
        Self::UpscaleModels,
        Self::ControlNet,
        Self::ClipVision,
        Self::StyleModels,
    ];

    /// The ComfyUI models folder of this kind (`checkpoints`, `loras`, `vae`…).
    pub fn folder(self) -> &'static str {
        match self {
            Self::Checkpoints => "checkpoints",
            Self::Loras => "loras",
            Self::Vae => "vae",
            Self::DiffusionModels => "diffusion_models",
            Self::TextEncoders => "text_encoders",
            Self::UpscaleModels => "upscale_models",
            Self::ControlNet => "controlnet",
            Self::ClipVision => "clip_vision",
            Self::StyleModels => "style_models",
        }
    }

    /// The loader inputs (class, input) whose choices are the files of this kind.
    fn loader_inputs(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Checkpoints => &[
                ("CheckpointLoaderSimple", "ckpt_name"),
                ("CheckpointLoader", "ckpt_name"),
            ],
            Self::Loras => &[
                ("LoraLoader", "lora_name"),
                ("LoraLoaderModelOnly", "lora_name"),
            ],
            Self::Vae => &[("VAELoader", "vae_name")],
            Self::DiffusionModels => &[("UNETLoader", "unet_name")],
            Self::TextEncoders => &[
                ("CLIPLoader", "clip_name"),
                ("DualCLIPLoader", "clip_name1"),
                ("DualCLIPLoader", "clip_name2"),
            ],
            Self::UpscaleModels => &[("UpscaleModelLoader", "model_name")],
            Self::ControlNet => &[("ControlNetLoader", "control_net_name")],
            Self::ClipVision => &[("CLIPVisionLoader", "clip_name")],
            Self::StyleModels => &[("StyleModelLoader", "style_model_name")],
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.folder())
    }
}

/// A model kind that is not one of [`ModelKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no model kind `{given}`; use one of {}", ModelKind::ALL.map(ModelKind::folder).join(", "))]
pub struct UnknownModelKind {
    pub given: String,
}

impl FromStr for ModelKind {
    type Err = UnknownModelKind;

    /// The folder name (`checkpoints`, `loras`, `upscale_models`…), any case; also the older
    /// folder names `unet` and `clip`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        let alias = match name.as_str() {
            "unet" => Some(Self::DiffusionModels),
            "clip" => Some(Self::TextEncoders),
            _ => None,
        };
        alias
            .or_else(|| Self::ALL.into_iter().find(|k| k.folder() == name))
            .ok_or_else(|| UnknownModelKind {
                given: s.to_string(),
            })
    }
}

/// Why the model files could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ModelListError {
    #[error("no ComfyUI instance is ready yet to list its models ({0}); try again shortly")]
    NotReady(String),
    #[error("the fleet is not answering: {0}")]
    Unavailable(String),
}

/// Extensions of the files ComfyUI lists in its model folders; a loader's other choices (such
/// as VAELoader's `pixel_space`) are not files.
const MODEL_EXTENSIONS: &[&str] = &[
    "ckpt",
    "pt",
    "pt2",
    "bin",
    "pth",
    "safetensors",
    "pkl",
    "sft",
];

fn is_model_file(name: &str) -> bool {
    std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MODEL_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The files of `kind` that the loaders of `info` offer, sorted, each once.
pub fn model_choices(info: &ObjectInfo, kind: ModelKind) -> Vec<String> {
    let mut files: Vec<String> = kind
        .loader_inputs()
        .iter()
        .filter_map(|(class, input)| info.node(class)?.input(input)?.choices())
        .flatten()
        .filter_map(Value::as_str)
        .filter(|name| is_model_file(name))
        .map(str::to_string)
        .collect();
    files.sort();
    files.dedup();
    files
}

impl FleetHandle {
    /// The model files of `kind` the instances offer (the loaders' choices in the catalog's
    /// `/object_info`, fetched from a ready instance once and kept, as for job checks).
    pub async fn models(&self, kind: ModelKind) -> Result<Vec<String>, ModelListError> {
        let info: Arc<ObjectInfo> =
            self.catalog
                .object_info(self)
                .await
                .map_err(|failure| match failure {
                    SubmitFailure::NotReady(why) => ModelListError::NotReady(why),
                    other => ModelListError::Unavailable(other.to_string()),
                })?;
        Ok(model_choices(&info, kind))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn info() -> ObjectInfo {
        ObjectInfo::from_value(json!({
            "CheckpointLoaderSimple": {"input": {"required": {
                "ckpt_name": [["b.safetensors", "a.ckpt"], {"tooltip": "…"}]
            }}},
            "CheckpointLoader": {"input": {"required": {
                "config_name": [["v1.yaml"]],
                "ckpt_name": [["a.ckpt", "old.ckpt"]]
            }}},
            "VAELoader": {"input": {"required": {
                "vae_name": [["ae.safetensors", "pixel_space", "taesd"]]
            }}},
            "UpscaleModelLoader": {"input": {"required": {
                "model_name": ["COMBO", {"multiselect": false, "options": ["4x.pth"]}]
            }}},
            "DualCLIPLoader": {"input": {"required": {
                "clip_name1": [["clip_l.safetensors", "t5.safetensors"]],
                "clip_name2": [["clip_l.safetensors", "t5.safetensors"]],
                "type": [["flux"]]
            }}},
            "LoraLoader": {"input": {"required": {"lora_name": [[]]}}}
        }))
        .unwrap()
    }

    #[test]
    fn lists_the_files_every_loader_of_a_kind_offers() {
        let info = info();
        assert_eq!(
            model_choices(&info, ModelKind::Checkpoints),
            ["a.ckpt", "b.safetensors", "old.ckpt"]
        );
        // Not files: VAELoader's built-in choices.
        assert_eq!(model_choices(&info, ModelKind::Vae), ["ae.safetensors"]);
        // New-style COMBO inputs list their options.
        assert_eq!(model_choices(&info, ModelKind::UpscaleModels), ["4x.pth"]);
        assert_eq!(
            model_choices(&info, ModelKind::TextEncoders),
            ["clip_l.safetensors", "t5.safetensors"]
        );
        assert!(model_choices(&info, ModelKind::Loras).is_empty());
        // A server without the loader offers nothing of its kind.
        assert!(model_choices(&info, ModelKind::StyleModels).is_empty());
    }

    #[test]
    fn kinds_are_named_by_their_folder() {
        for kind in ModelKind::ALL {
            assert_eq!(kind.folder().parse::<ModelKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.folder());
        }
        assert_eq!("LoRAs".parse::<ModelKind>(), Ok(ModelKind::Loras));
        assert_eq!("unet".parse::<ModelKind>(), Ok(ModelKind::DiffusionModels));
        let err = "weights".parse::<ModelKind>().unwrap_err().to_string();
        assert!(
            err.contains("`weights`") && err.contains("checkpoints") && err.contains("loras"),
            "{err}"
        );
    }
}
