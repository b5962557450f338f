//! A read-only view of a server's `/object_info` document as the prompt rules need it: which
//! classes exist, which are output nodes, what each returns, and each input's declared type,
//! options and section, in declaration order.

use serde_json::{Map, Value};

/// Which section of a class's `input` an input is declared in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSection {
    Required,
    Optional,
}

/// One declared input of a class.
#[derive(Debug, Clone)]
pub struct InputRule {
    pub name: String,
    pub section: InputSection,
    /// `"INT"`, `"IMAGE"`, `"COMBO"`, … or a JSON array of choices (the older combo form).
    pub kind: Value,
    /// The options object (`{}` when the spec has none).
    pub options: Map<String, Value>,
}

/// Option keys that mark an input naming a file the user picks or uploads.
const FILE_FLAGS: &[&str] = &[
    "image_upload",
    "video_upload",
    "animated_image_upload",
    "audio_upload",
    "file_upload",
    "image_folder",
];

impl InputRule {
    /// The type name, or `None` for the older combo form (a list of choices).
    pub fn type_name(&self) -> Option<&str> {
        self.kind.as_str()
    }

    /// The choices of a combo input (either form).
    pub fn combo_options(&self) -> Option<Vec<Value>> {
        match &self.kind {
            Value::Array(list) => Some(list.clone()),
            Value::String(s) if s == "COMBO" => Some(
                self.options
                    .get("options")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            ),
            _ => None,
        }
    }

    /// `[type, options]`, as ComfyUI's errors show it (`input_config`).
    pub fn input_config(&self) -> Value {
        Value::Array(vec![self.kind.clone(), Value::Object(self.options.clone())])
    }

    /// Whether the input names a file (ComfyUI's frontend gives it an upload button or a file
    /// picker: `image_upload`, `video_upload`, `audio_upload`, `file_upload`, `image_folder`).
    pub fn names_a_file(&self) -> bool {
        FILE_FLAGS
            .iter()
            .any(|flag| self.options.get(*flag).is_some_and(|v| !is_falsy(v)))
    }

    /// The declared default value.
    pub fn default_value(&self) -> Option<&Value> {
        self.options.get("default")
    }
}

fn is_falsy(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(false))
        || v.as_str().is_some_and(str::is_empty)
        || v.as_f64().is_some_and(|f| f == 0.0)
}

/// Where class definitions come from: an `/object_info` document, however its holder keeps it.
pub trait ClassDefinitions {
    /// A class's definition (`{input, input_order, output, output_node, …}`), if the server
    /// has the class.
    fn definition(&self, class: &str) -> Option<&Value>;
}

/// The parsed JSON of `GET /object_info` (class name → definition).
impl ClassDefinitions for Map<String, Value> {
    fn definition(&self, class: &str) -> Option<&Value> {
        self.get(class)
    }
}

/// The node classes of one `/object_info` document.
#[derive(Clone, Copy)]
pub struct NodeClasses<'a> {
    classes: &'a dyn ClassDefinitions,
}

impl std::fmt::Debug for NodeClasses<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeClasses")
    }
}

impl<'a> NodeClasses<'a> {
    /// A view of an `/object_info` document.
    pub fn new(classes: &'a dyn ClassDefinitions) -> Self {
        Self { classes }
    }

    /// A class's definition, if the server has it.
    pub fn class(&self, name: &str) -> Option<&'a Value> {
        self.classes.definition(name)
    }

    /// Whether the class is an output node.
    pub fn is_output(&self, name: &str) -> bool {
        self.class(name)
            .and_then(|c| c.get("output_node"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The class's output types (`RETURN_TYPES`); a combo output (a list) reads `COMBO`.
    pub fn return_types(&self, name: &str) -> Vec<String> {
        self.class(name)
            .and_then(|c| c.get("output"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|t| match t {
                        Value::String(s) => s.clone(),
                        _ => "COMBO".to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Required then optional inputs, each in `input_order` (declaration order without it).
    pub fn inputs(&self, class: &str) -> Vec<InputRule> {
        let Some(c) = self.class(class) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, section) in [
            ("required", InputSection::Required),
            ("optional", InputSection::Optional),
        ] {
            let Some(specs) = c
                .get("input")
                .and_then(|i| i.get(key))
                .and_then(Value::as_object)
            else {
                continue;
            };
            let order: Vec<String> = c
                .get("input_order")
                .and_then(|o| o.get(key))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_else(|| specs.keys().cloned().collect());
            for name in order {
                let Some(spec) = specs.get(&name) else {
                    continue;
                };
                out.push(InputRule {
                    name,
                    section,
                    kind: spec.get(0).cloned().unwrap_or(Value::Null),
                    options: spec
                        .get(1)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_follow_input_order_and_file_inputs_are_flagged() {
        let doc = json!({
            "Load": {
                "input": {
                    "required": {"image": [["a.png"], {"image_upload": true}], "n": ["INT", {"min": 1}]},
                    "optional": {"mask": ["STRING", {"image_upload": false}]}
                },
                "input_order": {"required": ["n", "image"], "optional": ["mask"]},
                "output": ["IMAGE", ["x", "y"]],
                "output_node": false
            },
            "Save": {"input": {"required": {}}, "output_node": true}
        });
        let classes = NodeClasses::new(doc.as_object().unwrap());
        let inputs = classes.inputs("Load");
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["n", "image", "mask"]);
        assert!(inputs[1].names_a_file());
        assert!(!inputs[0].names_a_file());
        assert!(!inputs[2].names_a_file(), "a false flag is no flag");
        assert_eq!(inputs[2].section, InputSection::Optional);
        assert_eq!(classes.return_types("Load"), ["IMAGE", "COMBO"]);
        assert!(classes.is_output("Save"));
        assert!(!classes.is_output("Load"));
        assert!(classes.inputs("Missing").is_empty());
    }
}
