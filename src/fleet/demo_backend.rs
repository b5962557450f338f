//! What the demo backend (`fake-comfyui`) is told beyond ComfyUI's own flags: the model files
//! the templates' maps name (`[[model]]`), listed as installed (`--fake-model FOLDER/FILE`), so
//! that every template runs on it end to end. A real ComfyUI gets nothing of this: its model
//! folders say what is installed.

use crate::workflow::TemplateSet;

/// `--fake-model FOLDER/FILE` for every model file a template names, each once, in template
/// order.
pub fn model_args(templates: &TemplateSet) -> Vec<String> {
    let mut listed: Vec<String> = Vec::new();
    for template in templates.iter() {
        for model in &template.models {
            let entry = format!("{}/{}", model.folder, model.file);
            if !listed.contains(&entry) {
                listed.push(entry);
            }
        }
    }
    listed
        .into_iter()
        .flat_map(|entry| ["--fake-model".to_string(), entry])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_the_templates_name_is_listed_once() {
        let dir = tempfile::tempdir().unwrap();
        let api = r#"{"1": {"class_type": "EmptyImage", "inputs": {}}}"#;
        for (name, models) in [
            (
                "a",
                &["checkpoints/x.safetensors", "loras/y.safetensors"][..],
            ),
            ("b", &["checkpoints/x.safetensors"][..]),
            ("c", &[][..]),
        ] {
            std::fs::write(dir.path().join(format!("{name}.json")), api).unwrap();
            let mut map = String::new();
            for model in models {
                let (folder, file) = model.split_once('/').unwrap();
                map.push_str(&format!(
                    "[[model]]\nfile = \"{file}\"\nfolder = \"{folder}\"\n\n"
                ));
            }
            std::fs::write(dir.path().join(format!("{name}.toml")), map).unwrap();
        }
        let templates = TemplateSet::load(dir.path()).unwrap();
        assert_eq!(
            model_args(&templates),
            [
                "--fake-model",
                "checkpoints/x.safetensors",
                "--fake-model",
                "loras/y.safetensors"
            ]
        );
    }
}
