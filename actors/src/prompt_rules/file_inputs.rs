//! The inputs of a prompt that name files (ComfyUI's upload-flagged inputs), and ComfyUI's
//! annotated file names (`x.png [output]` reads another folder than `input/`).

use serde_json::{Map, Value};

use super::node_classes::NodeClasses;

/// One file-valued input of a prompt, set to a constant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInput {
    pub node: String,
    pub class: String,
    pub input: String,
    /// The value as sent: a file name, or something else the caller must refuse.
    pub value: Value,
    /// The input's declared choices (the server's own files), when it is a combo.
    pub choices: Vec<Value>,
    /// The declared default, which the server itself offers.
    pub default: Option<Value>,
}

/// Every constant (not linked) value of a file-valued input in `prompt`, in prompt order.
pub fn file_inputs(prompt: &Map<String, Value>, classes: NodeClasses<'_>) -> Vec<FileInput> {
    let mut out = Vec::new();
    for (node, entry) in prompt {
        let Some(class) = entry.get("class_type").and_then(Value::as_str) else {
            continue;
        };
        let Some(inputs) = entry.get("inputs").and_then(Value::as_object) else {
            continue;
        };
        for rule in classes.inputs(class) {
            if !rule.names_a_file() {
                continue;
            }
            let Some(value) = inputs.get(&rule.name) else {
                continue;
            };
            if is_link(value) {
                continue;
            }
            out.push(FileInput {
                node: node.clone(),
                class: class.to_string(),
                input: rule.name.clone(),
                value: value.clone(),
                choices: rule.combo_options().unwrap_or_default(),
                default: rule.default_value().cloned(),
            });
        }
    }
    out
}

/// A `[node_id, slot]` link, as ComfyUI recognises one (any list counts as a link).
fn is_link(value: &Value) -> bool {
    value.is_array()
}

/// The folder an annotated name reads (`input`, `output`, `temp`), as ComfyUI's
/// `annotated_filepath` decides: a name ending in `[output]`, `[input]` or `[temp]`.
pub fn annotated_folder(name: &str) -> Option<&'static str> {
    [
        ("[output]", "output"),
        ("[input]", "input"),
        ("[temp]", "temp"),
    ]
    .into_iter()
    .find(|(suffix, _)| name.ends_with(suffix))
    .map(|(_, folder)| folder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_constant_values_of_flagged_inputs_are_listed() {
        let doc = json!({
            "LoadImage": {"input": {"required": {"image": [["own.png"], {"image_upload": true}]}}},
            "Text": {"input": {"required": {"text": ["STRING", {}]}}}
        });
        let classes = NodeClasses::new(doc.as_object().unwrap());
        let prompt = json!({
            "1": {"class_type": "LoadImage", "inputs": {"image": "a.png [output]"}},
            "2": {"class_type": "LoadImage", "inputs": {"image": ["4", 0]}},
            "3": {"class_type": "Text", "inputs": {"text": "b.png"}}
        });
        let found = file_inputs(prompt.as_object().unwrap(), classes);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].node.as_str(), found[0].input.as_str()),
            ("1", "image")
        );
        assert_eq!(found[0].choices, [json!("own.png")]);
        assert_eq!(annotated_folder("a.png [output]"), Some("output"));
        assert_eq!(annotated_folder("a.png[temp]"), Some("temp"));
        assert_eq!(annotated_folder("a [x].png"), None);
    }
}
