//! Which model files a prompt loads (checkpoints, diffusion models, LoRAs, VAEs, text
//! encoders, …), for model-affinity scheduling.

use serde_json::Value;

/// Input names that name a model file in core loader nodes.
const MODEL_INPUTS: &[&str] = &[
    "ckpt_name",
    "unet_name",
    "lora_name",
    "vae_name",
    "clip_name",
    "clip_name1",
    "clip_name2",
    "clip_name3",
    "clip_name4",
    "control_net_name",
    "style_model_name",
    "model_name",
    "gligen_name",
    "audio_encoder_name",
];

/// The model file names a prompt loads, in prompt order, each once. Only literal string
/// values count (a name fed by a link is not known until run time).
pub fn models_in(prompt: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Some(nodes) = prompt.as_object() else {
        return out;
    };
    for node in nodes.values() {
        let Some(inputs) = node.get("inputs").and_then(Value::as_object) else {
            continue;
        };
        for (name, value) in inputs {
            if !MODEL_INPUTS.contains(&name.as_str()) {
                continue;
            }
            if let Some(file) = value.as_str()
                && !file.is_empty()
                && file != "None"
                && !out.iter().any(|m| m == file)
            {
                {
                    out.push(file.to_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_literal_model_names_once() {
        let prompt = json!({
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
            "2": {"class_type": "LoraLoader", "inputs": {"lora_name": "style.safetensors", "model": ["1", 0]}},
            "3": {"class_type": "LoraLoader", "inputs": {"lora_name": "style.safetensors", "model": ["2", 0]}},
            "4": {"class_type": "VAELoader", "inputs": {"vae_name": ["9", 0]}},
            "5": {"class_type": "KSampler", "inputs": {"seed": 1}}
        });
        assert_eq!(
            models_in(&prompt),
            vec!["sdxl.safetensors", "style.safetensors"]
        );
    }
}
