//! `GET /object_info`: every node class the server knows, kept as order-preserving JSON.
//!
//! The document is large (1.6 MB, ~900 classes on a stock 0.33.0) and changes shape between
//! releases, so it is not fully typed: [`ObjectInfo`] wraps the JSON and offers the lookups the
//! fleet needs (class exists, input spec, input order, choice lists, output node).

use std::sync::Arc;

use serde_json::{Map, Value};

/// The parsed `/object_info` document (`{class_type: {input, input_order, output, …}}`),
/// shared: clones are cheap.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo(Arc<Value>);

/// Where an input is declared in a class's `input` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSection {
    Required,
    Optional,
    Hidden,
}

impl InputSection {
    fn key(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
            Self::Hidden => "hidden",
        }
    }
}

/// One input's declaration: `[TYPE, {options}]` or `[[choice…], {options}]`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec<'a> {
    pub name: &'a str,
    pub section: InputSection,
    /// The raw `[type_or_choices, options?]` value.
    pub raw: &'a Value,
}

impl<'a> InputSpec<'a> {
    /// The type name (`INT`, `IMAGE`, `COMBO` for both choice-list forms…).
    pub fn type_name(&self) -> &'a str {
        match self.raw.get(0) {
            Some(Value::String(t)) => t,
            Some(Value::Array(_)) => "COMBO",
            _ => "",
        }
    }

    /// The options object (`{default, min, max, tooltip…}`), if any.
    pub fn options(&self) -> Option<&'a Map<String, Value>> {
        self.raw.get(1).and_then(Value::as_object)
    }

    /// The allowed values of a choice input, in either of ComfyUI's two forms:
    /// legacy `[[a, b], {…}]` and newer `["COMBO", {"options": [a, b]}]`.
    pub fn choices(&self) -> Option<&'a [Value]> {
        match self.raw.get(0) {
            Some(Value::Array(choices)) => Some(choices),
            Some(Value::String(t)) if t == "COMBO" => self
                .options()
                .and_then(|o| o.get("options"))
                .and_then(Value::as_array)
                .map(Vec::as_slice),
            _ => None,
        }
    }

    /// The declared default value.
    pub fn default_value(&self) -> Option<&'a Value> {
        self.options().and_then(|o| o.get("default"))
    }
}

impl ObjectInfo {
    /// Wraps a parsed document. Fails when it is not a JSON object.
    pub fn new(value: Value) -> Result<Self, String> {
        if value.is_object() {
            Ok(Self(Arc::new(value)))
        } else {
            Err(format!(
                "/object_info is not a JSON object (got {})",
                type_name(&value)
            ))
        }
    }

    /// The raw document.
    pub fn as_value(&self) -> &Value {
        &self.0
    }

    /// The raw document, shared (cloning an [`ObjectInfo`] is cheap too).
    pub fn shared(&self) -> Arc<Value> {
        Arc::clone(&self.0)
    }

    /// How many node classes the server knows.
    pub fn len(&self) -> usize {
        self.0.as_object().map_or(0, Map::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class names, in the server's order.
    pub fn class_names(&self) -> impl Iterator<Item = &str> {
        self.0
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys().map(String::as_str))
    }

    /// One class's record.
    pub fn class(&self, class_type: &str) -> Option<&Map<String, Value>> {
        self.0.get(class_type).and_then(Value::as_object)
    }

    pub fn has_class(&self, class_type: &str) -> bool {
        self.class(class_type).is_some()
    }

    /// Whether the class is an output node (SaveImage, PreviewImage, PreviewAny…).
    pub fn is_output_node(&self, class_type: &str) -> bool {
        self.class(class_type)
            .and_then(|c| c.get("output_node"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The declaration of one input of a class (required, then optional, then hidden).
    pub fn input(&self, class_type: &str, input: &str) -> Option<InputSpec<'_>> {
        let inputs = self.class(class_type)?.get("input")?;
        [
            InputSection::Required,
            InputSection::Optional,
            InputSection::Hidden,
        ]
        .into_iter()
        .find_map(|section| {
            let (name, raw) = inputs
                .get(section.key())?
                .as_object()?
                .get_key_value(input)?;
            Some(InputSpec { name, section, raw })
        })
    }

    /// The inputs of a class in widget order: `input_order` when the server sends it
    /// (required first, then optional), otherwise the declaration order.
    pub fn inputs(&self, class_type: &str) -> Vec<InputSpec<'_>> {
        let Some(class) = self.class(class_type) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for section in [InputSection::Required, InputSection::Optional] {
            let Some(decls) = class
                .get("input")
                .and_then(|i| i.get(section.key()))
                .and_then(Value::as_object)
            else {
                continue;
            };
            let ordered: Vec<&str> = match class
                .get("input_order")
                .and_then(|o| o.get(section.key()))
                .and_then(Value::as_array)
            {
                Some(order) => order.iter().filter_map(Value::as_str).collect(),
                None => decls.keys().map(String::as_str).collect(),
            };
            for name in ordered {
                if let Some((name, raw)) = decls.get_key_value(name) {
                    out.push(InputSpec { name, section, raw });
                }
            }
        }
        out
    }

    /// The output types of a class (`["IMAGE", "MASK"]`).
    pub fn outputs(&self, class_type: &str) -> Vec<&str> {
        self.class(class_type)
            .and_then(|c| c.get("output"))
            .and_then(Value::as_array)
            .map(|o| o.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> ObjectInfo {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/comfyui/object_info.json"
        ))
        .unwrap();
        ObjectInfo::new(serde_json::from_str(&text).unwrap()).unwrap()
    }

    #[test]
    fn captured_object_info_answers_lookups() {
        let info = fixture();
        assert_eq!(info.len(), 887);
        assert!(info.has_class("KSampler"));
        assert!(!info.has_class("NoSuchNodeClass"));
        assert!(info.is_output_node("SaveImage"));
        assert!(!info.is_output_node("EmptyImage"));
        let names: Vec<&str> = info.inputs("EmptyImage").iter().map(|i| i.name).collect();
        assert_eq!(names, ["width", "height", "batch_size", "color"]);
        let width = info.input("EmptyImage", "width").unwrap();
        assert_eq!(width.type_name(), "INT");
        assert_eq!(width.default_value(), Some(&Value::from(512)));
        let sampler = info.input("KSampler", "sampler_name").unwrap();
        assert_eq!(sampler.type_name(), "COMBO");
        assert!(
            sampler
                .choices()
                .unwrap()
                .contains(&Value::from("euler_ancestral"))
        );
        assert_eq!(info.outputs("LoadImage"), ["IMAGE", "MASK"]);
    }

    #[test]
    fn newer_combo_form_gives_its_options() {
        let info = ObjectInfo::new(serde_json::json!({
            "N": {"input": {"optional": {"mode": ["COMBO", {"options": ["a", "b"]}]}}}
        }))
        .unwrap();
        let spec = info.input("N", "mode").unwrap();
        assert_eq!(spec.section, InputSection::Optional);
        assert_eq!(spec.choices().unwrap().len(), 2);
        assert!(ObjectInfo::new(serde_json::json!([1])).is_err());
    }
}
