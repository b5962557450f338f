//! The kinds of model file: the folders ComfyUI 0.33.0 keeps models in (`checkpoints`, `loras`,
//! `vae`, …). A kind names the library's sub-folder and the ComfyUI folder it is registered as.

use std::fmt;

/// ComfyUI 0.33.0's model folders that hold model files, in its own order (its other folders,
/// `configs`, `custom_nodes`, `datasets`, `diffusers` and `classifiers`, hold no model files).
pub const MODEL_KINDS: [&str; 22] = [
    "checkpoints",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "latent_upscale_models",
    "hypernetworks",
    "photomaker",
    "model_patches",
    "audio_encoders",
    "background_removal",
    "frame_interpolation",
    "geometry_estimation",
    "optical_flow",
    "detection",
];

/// Older folder names ComfyUI still reads, and the kind each means.
pub const LEGACY_FOLDERS: [(&str, &str); 3] = [
    ("unet", "diffusion_models"),
    ("clip", "text_encoders"),
    ("t2i_adapter", "controlnet"),
];

/// The file extensions ComfyUI lists as models.
pub const MODEL_EXTENSIONS: [&str; 8] = [
    "safetensors",
    "ckpt",
    "pt",
    "pt2",
    "pth",
    "bin",
    "pkl",
    "sft",
];

/// One kind of model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelKind(&'static str);

/// A kind name that is not one of ComfyUI's model folders.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a model kind; use one of ComfyUI's model folders: {}", MODEL_KINDS.join(", "))]
pub struct UnknownKind {
    pub given: String,
}

impl ModelKind {
    /// The kind named `name` (a legacy folder name, `unet` or `clip`, means its current kind).
    pub fn parse(name: &str) -> Result<Self, UnknownKind> {
        let name = LEGACY_FOLDERS
            .iter()
            .find(|(old, _)| *old == name)
            .map_or(name, |(_, new)| *new);
        MODEL_KINDS
            .iter()
            .find(|k| **k == name)
            .map(|k| Self(k))
            .ok_or_else(|| UnknownKind {
                given: name.to_string(),
            })
    }

    /// Every kind, in ComfyUI's order.
    pub fn all() -> impl Iterator<Item = ModelKind> {
        MODEL_KINDS.iter().map(|k| Self(k))
    }

    /// The folder name.
    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// The folders of a library that hold this kind: its own, then its legacy names.
    pub fn folders(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.0).chain(
            LEGACY_FOLDERS
                .iter()
                .filter(|(_, new)| *new == self.0)
                .map(|(old, _)| *old),
        )
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Whether ComfyUI lists a file of this name as a model.
pub fn is_model_file(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && MODEL_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_comfyuis_folders_and_legacy_names_map_to_them() {
        assert_eq!(ModelKind::parse("loras").unwrap().as_str(), "loras");
        assert_eq!(
            ModelKind::parse("unet").unwrap().as_str(),
            "diffusion_models"
        );
        let err = ModelKind::parse("lora").unwrap_err().to_string();
        assert!(err.contains("`lora`") && err.contains("loras"), "{err}");
        assert!(ModelKind::parse("../loras").is_err());
        assert!(ModelKind::parse("configs").is_err());
        let text_encoders = ModelKind::parse("text_encoders").unwrap();
        assert_eq!(
            text_encoders.folders().collect::<Vec<_>>(),
            ["text_encoders", "clip"]
        );
    }

    #[test]
    fn model_files_are_told_by_their_extension() {
        assert!(is_model_file("ink.safetensors"));
        assert!(is_model_file("old.CKPT"));
        assert!(!is_model_file("notes.txt"));
        assert!(!is_model_file(".safetensors"));
        assert!(!is_model_file("safetensors"));
    }
}
