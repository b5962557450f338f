//! The server's `/object_info` document: node definitions with their inputs in declaration order.
//!
//! A real server's document lists hundreds of classes (1.5 MB of JSON, ~16 MB parsed); a
//! fleet's jobs use a few dozen. Each class's definition is kept as the server's JSON text and
//! parsed the first time it is looked up.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::WorkflowError;

/// One class's definition: its JSON text, parsed on first use.
#[derive(Debug, Clone)]
struct Definition {
    text: Option<Box<RawValue>>,
    parsed: OnceLock<Value>,
}

impl Definition {
    fn value(&self) -> &Value {
        self.parsed.get_or_init(|| {
            self.text
                .as_ref()
                .and_then(|text| serde_json::from_str(text.get()).ok())
                .unwrap_or(Value::Null)
        })
    }
}

/// The `/object_info` JSON of one ComfyUI server; each definition keeps its original key order
/// (the order of `required`/`optional` inputs decides how UI widget values map onto input
/// names).
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    nodes: HashMap<String, Definition>,
}

/// Whether an input came from the `required` or the `optional` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Required,
    Optional,
}

/// One input of a node definition: its name and its raw spec `[type, {options}]`.
#[derive(Debug, Clone, Copy)]
pub struct InputSpec<'a> {
    pub name: &'a str,
    pub section: Section,
    spec: &'a Value,
}

/// One node class of the server.
#[derive(Debug, Clone, Copy)]
pub struct NodeDef<'a> {
    pub class: &'a str,
    raw: &'a Value,
}

static EMPTY_MAP: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

fn not_an_object(class: &str) -> WorkflowError {
    WorkflowError::ObjectInfo(format!("the definition of `{class}` is not a JSON object"))
}

impl ObjectInfo {
    /// Reads the JSON served by `GET /object_info` (each definition is checked to be a JSON
    /// object, and parsed when first looked up).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WorkflowError> {
        let json = |source| WorkflowError::Json {
            what: "object_info",
            source,
        };
        let top: Value = match serde_json::from_slice::<HashMap<String, Box<RawValue>>>(bytes) {
            Ok(classes) => {
                if let Some((name, _)) = classes
                    .iter()
                    .find(|(_, text)| !text.get().trim_start().starts_with('{'))
                {
                    return Err(not_an_object(name));
                }
                let nodes = classes
                    .into_iter()
                    .map(|(name, text)| {
                        let definition = Definition {
                            text: Some(text),
                            parsed: OnceLock::new(),
                        };
                        (name, definition)
                    })
                    .collect();
                return Ok(Self { nodes });
            }
            // Not an object of objects: say what it is instead.
            Err(_) => serde_json::from_slice(bytes).map_err(json)?,
        };
        Self::from_value(top)
    }

    /// Wraps an already parsed `/object_info` value.
    pub fn from_value(value: Value) -> Result<Self, WorkflowError> {
        let Value::Object(nodes) = value else {
            return Err(WorkflowError::ObjectInfo(
                "expected a JSON object mapping node class names to definitions".into(),
            ));
        };
        if let Some((name, _)) = nodes.iter().find(|(_, def)| !def.is_object()) {
            return Err(not_an_object(name));
        }
        let nodes = nodes
            .into_iter()
            .map(|(name, value)| {
                let definition = Definition {
                    text: None,
                    parsed: OnceLock::from(value),
                };
                (name, definition)
            })
            .collect();
        Ok(Self { nodes })
    }

    /// Reads `/object_info` JSON saved in a file.
    pub fn load(path: &Path) -> Result<Self, WorkflowError> {
        let bytes = std::fs::read(path).map_err(|source| WorkflowError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// The definition of a node class, if the server has it.
    pub fn node(&self, class: &str) -> Option<NodeDef<'_>> {
        self.nodes
            .get_key_value(class)
            .map(|(class, definition)| NodeDef {
                class,
                raw: definition.value(),
            })
    }

    /// Whether the server knows this node class.
    pub fn contains(&self, class: &str) -> bool {
        self.nodes.contains_key(class)
    }

    /// Number of node classes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the server lists no node class at all.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// ComfyUI's prompt rules read the definitions from here.
impl comfy_fleet_actors::prompt_rules::ClassDefinitions for ObjectInfo {
    fn definition(&self, class: &str) -> Option<&Value> {
        self.nodes.get(class).map(Definition::value)
    }
}

impl<'a> NodeDef<'a> {
    /// Visible inputs: `required` in order, then `optional` (never `hidden`).
    pub fn inputs(&self) -> Vec<InputSpec<'a>> {
        inputs_of(self.raw.get("input"))
    }

    /// The named visible input.
    pub fn input(&self, name: &str) -> Option<InputSpec<'a>> {
        self.inputs().into_iter().find(|i| i.name == name)
    }

    /// The human name the UI shows for this class.
    pub fn display_name(&self) -> Option<&'a str> {
        self.raw
            .get("display_name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Whether the class is an output node (SaveImage, PreviewImage, PreviewAny…).
    pub fn is_output_node(&self) -> bool {
        self.raw
            .get("output_node")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Output types, by slot.
    pub fn output_types(&self) -> Vec<&'a str> {
        self.raw
            .get("output")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| v.as_str().unwrap_or("*")).collect())
            .unwrap_or_default()
    }
}

/// The visible inputs of an `input` object (`{required, optional, hidden}`), in order.
pub(crate) fn inputs_of(input: Option<&Value>) -> Vec<InputSpec<'_>> {
    let mut out = Vec::new();
    for (key, section) in [
        ("required", Section::Required),
        ("optional", Section::Optional),
    ] {
        if let Some(map) = input.and_then(|i| i.get(key)).and_then(Value::as_object) {
            out.extend(map.iter().map(|(name, spec)| InputSpec {
                name,
                section,
                spec,
            }));
        }
    }
    out
}

impl<'a> InputSpec<'a> {
    /// An input that is not read from a server's definition: one the frontend adds to a
    /// definition itself (upload buttons, previews), or a template input of a dynamic input.
    pub(crate) fn new(name: &'a str, section: Section, spec: &'a Value) -> Self {
        Self {
            name,
            section,
            spec,
        }
    }

    /// The input type: `INT`, `FLOAT`, `STRING`, `BOOLEAN`, `COMBO` (also for a list of choices),
    /// or a link type such as `MODEL`.
    pub fn kind(&self) -> &'a str {
        match self.spec.get(0) {
            Some(Value::Array(_)) => "COMBO",
            Some(Value::String(s)) => s,
            _ => "*",
        }
    }

    /// The options object (second element of the spec), empty when absent.
    pub fn options(&self) -> &'a Map<String, Value> {
        self.spec
            .get(1)
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY_MAP)
    }

    /// One option by key.
    pub fn option(&self, key: &str) -> Option<&'a Value> {
        self.options().get(key)
    }

    /// An option's truthiness as JavaScript would judge it.
    pub fn flag(&self, key: &str) -> bool {
        self.option(key).is_some_and(truthy)
    }

    /// The allowed values of a COMBO input (old style list or `options` list).
    pub fn choices(&self) -> Option<&'a Vec<Value>> {
        match self.spec.get(0) {
            Some(Value::Array(list)) => Some(list),
            Some(Value::String(s)) if s == "COMBO" => {
                self.option("options").and_then(Value::as_array)
            }
            _ => None,
        }
    }

    /// The declared default value, if any.
    pub fn default_value(&self) -> Option<&'a Value> {
        self.option("default")
    }

    /// A numeric option (`min`, `max`, `step`).
    pub fn number(&self, key: &str) -> Option<f64> {
        self.option(key).and_then(Value::as_f64)
    }

    /// The raw spec.
    pub fn raw(&self) -> &'a Value {
        self.spec
    }
}

/// JavaScript truthiness of a JSON value.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> ObjectInfo {
        ObjectInfo::load(&crate::test_fixtures::captured("object_info.json")).unwrap()
    }

    #[test]
    fn captured_object_info_answers_lookups() {
        let info = fixture();
        assert_eq!(info.len(), 887);
        assert!(info.contains("KSampler"));
        assert!(!info.contains("NoSuchNodeClass"));
        assert!(info.node("SaveImage").unwrap().is_output_node());
        assert!(!info.node("EmptyImage").unwrap().is_output_node());
        let empty_image = info.node("EmptyImage").unwrap();
        let names: Vec<&str> = empty_image.inputs().iter().map(|i| i.name).collect();
        assert_eq!(names, ["width", "height", "batch_size", "color"]);
        let width = empty_image.input("width").unwrap();
        assert_eq!(width.kind(), "INT");
        assert_eq!(width.default_value(), Some(&Value::from(512)));
        let sampler = info
            .node("KSampler")
            .unwrap()
            .input("sampler_name")
            .unwrap();
        assert_eq!(sampler.kind(), "COMBO");
        assert!(
            sampler
                .choices()
                .unwrap()
                .contains(&Value::from("euler_ancestral"))
        );
        assert_eq!(
            info.node("LoadImage").unwrap().output_types(),
            ["IMAGE", "MASK"]
        );
    }

    #[test]
    fn newer_combo_form_gives_its_options() {
        let info = ObjectInfo::from_value(serde_json::json!({
            "N": {"input": {"optional": {"mode": ["COMBO", {"options": ["a", "b"]}]}}}
        }))
        .unwrap();
        let spec = info.node("N").unwrap().input("mode").unwrap();
        assert_eq!(spec.section, Section::Optional);
        assert_eq!(spec.choices().unwrap().len(), 2);
        assert!(ObjectInfo::from_value(serde_json::json!([1])).is_err());
    }

    #[test]
    fn definitions_read_from_json_are_checked_then_parsed_when_looked_up() {
        let info = ObjectInfo::from_bytes(
            br#"{"B": {"input": {"required": {"z": ["INT", {}], "a": ["FLOAT", {}]}}}, "A": {}}"#,
        )
        .unwrap();
        assert_eq!(info.len(), 2);
        let names: Vec<&str> = info
            .node("B")
            .unwrap()
            .inputs()
            .iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["z", "a"], "the server's input order is kept");
        let err = ObjectInfo::from_bytes(br#"{"A": {}, "B": [1]}"#).unwrap_err();
        assert!(err.to_string().contains("`B`"), "{err}");
        let err = ObjectInfo::from_bytes(b"[1]").unwrap_err();
        assert!(err.to_string().contains("expected a JSON object"), "{err}");
        assert!(ObjectInfo::from_bytes(b"{").is_err());
    }
}
