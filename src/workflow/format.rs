//! Format detection: a UI workflow (`nodes` + `links`) or an API prompt (`{id: {class_type, inputs}}`).

use serde_json::{Map, Value};

use super::error::WorkflowError;
use super::object_info::ObjectInfo;

/// A workflow in either format ComfyUI saves.
#[derive(Debug, Clone)]
pub enum Workflow {
    /// What ComfyUI's Save writes: `nodes`, `links`, maybe `definitions.subgraphs`.
    Ui(Value),
    /// What Export (API) writes, and what `POST /prompt` takes.
    Api(ApiPrompt),
}

/// An API-format prompt: node id → `{class_type, inputs, _meta?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiPrompt(pub Map<String, Value>);

/// Which format a document is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ui,
    Api,
}

impl Workflow {
    /// Parses JSON bytes (an object naming a key twice is refused) and detects the format.
    pub fn parse(bytes: &[u8]) -> Result<Self, WorkflowError> {
        let value =
            super::strict_json::from_slice(bytes).map_err(|source| WorkflowError::Json {
                what: "workflow",
                source,
            })?;
        Self::from_value(value)
    }

    /// Detects the format of an already parsed document.
    pub fn from_value(value: Value) -> Result<Self, WorkflowError> {
        match detect(&value)? {
            Format::Ui => Ok(Self::Ui(value)),
            Format::Api => match value {
                Value::Object(map) => Ok(Self::Api(ApiPrompt(map))),
                _ => Err(WorkflowError::UnknownFormat(
                    "expected a JSON object".into(),
                )),
            },
        }
    }

    /// The detected format.
    pub fn format(&self) -> Format {
        match self {
            Self::Ui(_) => Format::Ui,
            Self::Api(_) => Format::Api,
        }
    }

    /// The API prompt for this workflow: converted natively for UI workflows, checked against
    /// the server's node classes for API prompts.
    pub fn to_api(&self, object_info: &ObjectInfo) -> Result<ApiPrompt, WorkflowError> {
        match self {
            Self::Ui(doc) => super::convert::ui_to_api(doc, object_info),
            Self::Api(prompt) => {
                for (id, node) in &prompt.0 {
                    let class = node.get("class_type").and_then(Value::as_str).unwrap_or("");
                    if !object_info.contains(class) {
                        return Err(WorkflowError::UnknownNodeType {
                            id: id.clone(),
                            class: class.to_owned(),
                        });
                    }
                }
                Ok(prompt.clone())
            }
        }
    }
}

impl ApiPrompt {
    /// The prompt as a JSON value (what `POST /prompt` takes under `prompt`).
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// The prompt as a JSON value, consuming it.
    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// Decides which format a JSON document is, or explains what it looks like and what is missing.
pub fn detect(value: &Value) -> Result<Format, WorkflowError> {
    let obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => {
            return Err(WorkflowError::UnknownFormat(
                "the document is a JSON array; expected an object (a UI workflow with `nodes` and \
                 `links`, or an API prompt mapping node ids to `{class_type, inputs}`)"
                    .into(),
            ));
        }
        other => {
            return Err(WorkflowError::UnknownFormat(format!(
                "the document is a JSON {}; expected an object",
                json_kind(other)
            )));
        }
    };
    let has_nodes = obj.contains_key("nodes");
    let has_links = obj.contains_key("links");
    if has_nodes || has_links {
        let nodes_ok = obj.get("nodes").is_some_and(Value::is_array);
        let links_ok = obj.get("links").is_some_and(Value::is_array);
        if nodes_ok && links_ok {
            return Ok(Format::Ui);
        }
        let missing: Vec<&str> = [("nodes", nodes_ok), ("links", links_ok)]
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(k, _)| *k)
            .collect();
        return Err(WorkflowError::UnknownFormat(format!(
            "looks like a UI workflow, but `{}` is missing or not an array",
            missing.join("` and `")
        )));
    }
    if obj.is_empty() {
        return Err(WorkflowError::UnknownFormat(
            "the document is an empty object (no nodes)".into(),
        ));
    }
    // An API prompt wrapped as the body of POST /prompt.
    if let Some(inner) = obj.get("prompt").filter(|p| p.is_object())
        && detect(inner).is_ok_and(|f| f == Format::Api)
    {
        {
            return Err(WorkflowError::UnknownFormat(
                "looks like a POST /prompt request body; pass the object under `prompt` instead"
                    .into(),
            ));
        }
    }
    let api_like = obj
        .values()
        .filter(|v| v.get("class_type").is_some() || v.get("inputs").is_some())
        .count();
    if api_like == 0 {
        let keys: Vec<&str> = obj.keys().take(5).map(String::as_str).collect();
        return Err(WorkflowError::UnknownFormat(format!(
            "neither a UI workflow (no `nodes`/`links`) nor an API prompt (no entry has \
             `class_type`/`inputs`); top-level keys: {}",
            keys.join(", ")
        )));
    }
    for (id, node) in obj {
        let class_ok = node.get("class_type").is_some_and(Value::is_string);
        let inputs_ok = node.get("inputs").is_some_and(Value::is_object);
        if !class_ok || !inputs_ok {
            let what = match (class_ok, inputs_ok) {
                (false, false) => "`class_type` (a string) and `inputs` (an object)",
                (false, true) => "`class_type` (a string)",
                _ => "`inputs` (an object)",
            };
            return Err(WorkflowError::UnknownFormat(format!(
                "looks like an API prompt, but node `{id}` lacks {what}"
            )));
        }
    }
    Ok(Format::Api)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
