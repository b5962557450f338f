//! ComfyUI's HTTP bodies (as observed on 0.33.0): the routes comfy-fleet calls, typed with serde.
//!
//! Every type tolerates extra fields (ComfyUI adds some in most releases) and keeps the ones
//! comfy-fleet does not interpret as raw JSON, so nothing is lost when a body is passed on.
//! The websocket messages live in [`super::events`]; `/object_info` in [`crate::workflow::ObjectInfo`].

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------
// GET /system_stats
// ---------------------------------------------------------------------------------------------

/// `GET /system_stats`: the server's versions and the devices it sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemStats {
    pub system: SystemInfo,
    #[serde(default)]
    pub devices: Vec<DeviceInfo>,
}

/// The `system` part of `/system_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub comfyui_version: String,
    #[serde(default)]
    pub python_version: String,
    #[serde(default)]
    pub pytorch_version: String,
    #[serde(default)]
    pub ram_total: u64,
    #[serde(default)]
    pub ram_free: u64,
    /// The server's command line (`main.py` and its flags).
    #[serde(default)]
    pub argv: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One device of `/system_stats` (`cpu`, `cuda:0`…). With `--cuda-device N` the one GPU the
/// process sees is reported as index 0: map instances to GPUs with the fleet's own config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub index: Option<i64>,
    #[serde(default)]
    pub vram_total: u64,
    #[serde(default)]
    pub vram_free: u64,
    #[serde(default)]
    pub torch_vram_total: u64,
    #[serde(default)]
    pub torch_vram_free: u64,
}

// ---------------------------------------------------------------------------------------------
// POST /upload/image and /upload/mask
// ---------------------------------------------------------------------------------------------

/// The folder types of ComfyUI (`type` in uploads, `/view` and outputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FolderType {
    #[default]
    Input,
    Output,
    Temp,
}

impl FolderType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
            Self::Temp => "temp",
        }
    }
}

/// What `/upload/image` answers: where the file was stored. `name` may differ from the name
/// sent (` (1)` suffix) when a different file of that name exists and `overwrite` was false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadResponse {
    pub name: String,
    #[serde(default)]
    pub subfolder: String,
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl UploadResponse {
    /// The value a `LoadImage` node's `image` input takes: `subfolder/name` or `name`.
    pub fn load_image_name(&self) -> String {
        if self.subfolder.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.subfolder, self.name)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// POST /prompt
// ---------------------------------------------------------------------------------------------

/// The body of `POST /prompt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptRequest {
    /// The API-format graph: `{node_id: {class_type, inputs, _meta?}}`.
    pub prompt: Value,
    /// The websocket client that receives this prompt's events.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_id: Option<String>,
    /// Our own id: a canonical lower-case hyphenated UUID (anything else is refused).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prompt_id: Option<String>,
    /// Kept verbatim in the queue item and history (`prompt[3]`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extra_data: Option<Value>,
    /// Queue at the front (ComfyUI then gives a negative `number`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub front: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub number: Option<f64>,
}

/// `POST /prompt` answered 200. `node_errors` is NOT necessarily empty: a graph with some
/// valid outputs is queued and only its valid part runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptResponse {
    pub prompt_id: String,
    /// Queue position number (a float when the client gave one; negative with `front`).
    pub number: f64,
    #[serde(default, deserialize_with = "node_errors_map")]
    pub node_errors: Vec<NodeErrors>,
}

/// `POST /prompt` answered 400: nothing was queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptErrorBody {
    pub error: ApiError,
    #[serde(default, deserialize_with = "node_errors_map")]
    pub node_errors: Vec<NodeErrors>,
}

/// ComfyUI's `{type, message, details, extra_info}` error record (top level or per input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ApiError {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, deserialize_with = "string_or_any")]
    pub details: String,
    #[serde(default)]
    pub extra_info: Map<String, Value>,
}

impl ApiError {
    /// The input the error is about (`extra_info.input_name`), when ComfyUI names one.
    pub fn input_name(&self) -> Option<&str> {
        self.extra_info.get("input_name").and_then(Value::as_str)
    }

    /// The node the error is about (`extra_info.node_id`, top-level errors such as
    /// `missing_node_type`).
    pub fn node_id(&self) -> Option<&str> {
        self.extra_info.get("node_id").and_then(Value::as_str)
    }

    /// The class named by a top-level error (`extra_info.class_type`).
    pub fn class_type(&self) -> Option<&str> {
        self.extra_info.get("class_type").and_then(Value::as_str)
    }
}

/// All errors of one node, from a `node_errors` map (the key becomes `node_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeErrors {
    pub node_id: String,
    #[serde(default)]
    pub class_type: String,
    #[serde(default)]
    pub errors: Vec<ApiError>,
    /// The output nodes that cannot run because of this node.
    #[serde(default)]
    pub dependent_outputs: Vec<String>,
}

#[derive(Deserialize)]
struct NodeErrorsValue {
    #[serde(default)]
    class_type: String,
    #[serde(default)]
    errors: Vec<ApiError>,
    #[serde(default, deserialize_with = "string_list")]
    dependent_outputs: Vec<String>,
}

/// `{node_id: {errors, dependent_outputs, class_type}}` → a list in the server's order.
fn node_errors_map<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NodeErrors>, D::Error> {
    let map = Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default();
    map.into_iter()
        .map(|(node_id, value)| {
            let v: NodeErrorsValue = serde_json::from_value(value).map_err(D::Error::custom)?;
            Ok(NodeErrors {
                node_id,
                class_type: v.class_type,
                errors: v.errors,
                dependent_outputs: v.dependent_outputs,
            })
        })
        .collect()
}

/// A string, or any JSON value rendered as text (`details` is a string in every capture, but
/// custom nodes put other things there).
fn string_or_any<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// A list of node ids, which ComfyUI writes as strings (numbers accepted too).
fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let values = Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default();
    Ok(values.into_iter().map(value_to_id).collect())
}

fn value_to_id(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// GET /queue, POST /queue, POST /interrupt, POST /free
// ---------------------------------------------------------------------------------------------

/// `GET /queue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct QueueSnapshot {
    #[serde(default)]
    pub queue_running: Vec<QueueItem>,
    /// Heap-ordered by the server: use [`QueueSnapshot::pending_in_order`] for execution order.
    #[serde(default)]
    pub queue_pending: Vec<QueueItem>,
}

impl QueueSnapshot {
    /// Whether `prompt_id` is the one running.
    pub fn is_running(&self, prompt_id: &str) -> bool {
        self.queue_running.iter().any(|i| i.prompt_id == prompt_id)
    }

    /// Whether `prompt_id` waits in the queue.
    pub fn is_pending(&self, prompt_id: &str) -> bool {
        self.queue_pending.iter().any(|i| i.prompt_id == prompt_id)
    }

    /// The pending items in the order ComfyUI will run them (by `number`).
    pub fn pending_in_order(&self) -> Vec<&QueueItem> {
        let mut items: Vec<&QueueItem> = self.queue_pending.iter().collect();
        items.sort_by(|a, b| a.number.total_cmp(&b.number));
        items
    }
}

/// One queue item, `[number, prompt_id, prompt, extra_data, outputs_to_execute, …]`; the same
/// shape is history's `prompt` field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueItem {
    pub number: f64,
    pub prompt_id: String,
    pub prompt: Value,
    pub extra_data: Value,
    pub outputs_to_execute: Vec<String>,
}

impl<'de> Deserialize<'de> for QueueItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut items = Vec::<Value>::deserialize(d)?.into_iter();
        let number = items
            .next()
            .and_then(|v| v.as_f64())
            .ok_or_else(|| D::Error::custom("queue item: element 0 (number) is not a number"))?;
        let prompt_id = match items.next() {
            Some(Value::String(s)) => s,
            _ => {
                return Err(D::Error::custom(
                    "queue item: element 1 (prompt_id) is not a string",
                ));
            }
        };
        let prompt = items.next().unwrap_or(Value::Null);
        let extra_data = items.next().unwrap_or(Value::Null);
        let outputs_to_execute = match items.next() {
            Some(Value::Array(ids)) => ids.into_iter().map(value_to_id).collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            number,
            prompt_id,
            prompt,
            extra_data,
            outputs_to_execute,
        })
    }
}

/// `POST /queue`: removes pending items (the running one is not affected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct QueueEdit {
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub delete: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub clear: bool,
}

/// `POST /interrupt`: with a `prompt_id`, only that prompt is interrupted (if it is running).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct InterruptRequest {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prompt_id: Option<String>,
}

/// `POST /free`: applied by the worker after the current prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FreeRequest {
    pub unload_models: bool,
    pub free_memory: bool,
}

// ---------------------------------------------------------------------------------------------
// GET /history
// ---------------------------------------------------------------------------------------------

/// One finished prompt in `/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The queue item it ran as.
    pub prompt: QueueItem,
    /// `{node_id: {images: […]} | {text: […]} | …}`, in node order.
    #[serde(default, deserialize_with = "outputs_map")]
    pub outputs: Vec<(String, NodeOutput)>,
    #[serde(default)]
    pub status: Option<HistoryStatus>,
    #[serde(default)]
    pub meta: Map<String, Value>,
}

fn outputs_map<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, NodeOutput)>, D::Error> {
    let map = Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default();
    map.into_iter()
        .map(|(node, value)| {
            let out: NodeOutput = serde_json::from_value(value).map_err(D::Error::custom)?;
            Ok((node, out))
        })
        .collect()
}

impl HistoryEntry {
    /// Every file the prompt produced, in node order.
    pub fn files(&self) -> Vec<(String, FileRef)> {
        self.outputs
            .iter()
            .flat_map(|(node, out)| out.files().into_iter().map(move |f| (node.clone(), f)))
            .collect()
    }

    /// Text outputs (`{"text": [...]}`) by node.
    pub fn texts(&self) -> Vec<(String, Vec<String>)> {
        self.outputs
            .iter()
            .filter_map(|(node, out)| {
                let texts = out.texts();
                (!texts.is_empty()).then(|| (node.clone(), texts))
            })
            .collect()
    }

    /// How the prompt ended according to its recorded status messages.
    pub fn ending(&self) -> HistoryEnding {
        let Some(status) = &self.status else {
            return HistoryEnding::Unknown;
        };
        for (kind, data) in status.messages.iter().rev() {
            match kind.as_str() {
                "execution_error" => {
                    return match serde_json::from_value(data.clone()) {
                        Ok(e) => HistoryEnding::Error(e),
                        Err(_) => HistoryEnding::Unknown,
                    };
                }
                "execution_interrupted" => return HistoryEnding::Interrupted,
                "execution_success" => return HistoryEnding::Success,
                _ => {}
            }
        }
        match status.status_str.as_str() {
            "success" => HistoryEnding::Success,
            _ => HistoryEnding::Unknown,
        }
    }
}

/// How a prompt in history ended.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryEnding {
    Success,
    Error(super::events::ExecutionErrorData),
    Interrupted,
    /// No status or no recognised message (should not happen with 0.33.0).
    Unknown,
}

/// The `status` of a history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryStatus {
    /// `success` or `error` (an interrupted prompt is an `error` too).
    #[serde(default)]
    pub status_str: String,
    #[serde(default)]
    pub completed: bool,
    /// `[[type, data], …]`: the websocket messages of the run, minus the per-node ones.
    #[serde(default)]
    pub messages: Vec<(String, Value)>,
}

/// The outputs of one node: `images` (file references), `text`, and whatever else a node
/// reports (`gifs`, `audio`, `animated`…), kept as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NodeOutput(pub Map<String, Value>);

impl NodeOutput {
    /// Every file reference in this output: any list of `{filename, subfolder, type}` objects.
    pub fn files(&self) -> Vec<FileRef> {
        self.0
            .values()
            .filter_map(Value::as_array)
            .flatten()
            .filter(|v| v.get("filename").is_some())
            .filter_map(|v| serde_json::from_value::<FileRef>(v.clone()).ok())
            .collect()
    }

    /// The `text` list (non-string items are rendered as JSON).
    pub fn texts(&self) -> Vec<String> {
        match self.0.get("text") {
            Some(Value::Array(items)) => items.iter().cloned().map(value_to_id).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }
}

/// A file in one of ComfyUI's folders, as outputs and `/view` name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileRef {
    pub filename: String,
    #[serde(default)]
    pub subfolder: String,
    /// `output`, `temp` or `input`.
    #[serde(rename = "type", default = "default_output_type")]
    pub kind: String,
}

fn default_output_type() -> String {
    FolderType::Output.as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_name_joins_subfolder() {
        let r = UploadResponse {
            name: "a.png".into(),
            subfolder: "discord".into(),
            kind: "input".into(),
        };
        assert_eq!(r.load_image_name(), "discord/a.png");
        let r = UploadResponse {
            subfolder: String::new(),
            ..r
        };
        assert_eq!(r.load_image_name(), "a.png");
    }

    #[test]
    fn queue_item_accepts_extra_elements_and_float_numbers() {
        let item: QueueItem =
            serde_json::from_str(r#"[5.0, "id", {}, {"a": 1}, ["9"], "future"]"#).unwrap();
        assert_eq!(item.number, 5.0);
        assert_eq!(item.outputs_to_execute, vec!["9"]);
        assert!(serde_json::from_str::<QueueItem>(r#"["x"]"#).is_err());
    }

    #[test]
    fn queue_edit_serialises_only_what_is_set() {
        let delete = QueueEdit {
            delete: vec!["a".into()],
            clear: false,
        };
        assert_eq!(
            serde_json::to_string(&delete).unwrap(),
            r#"{"delete":["a"]}"#
        );
        let clear = QueueEdit {
            delete: vec![],
            clear: true,
        };
        assert_eq!(serde_json::to_string(&clear).unwrap(), r#"{"clear":true}"#);
    }

    #[test]
    fn node_output_finds_files_in_any_list_and_ignores_flags() {
        let out: NodeOutput = serde_json::from_str(
            r#"{"gifs":[{"filename":"a.webp","subfolder":"s","type":"output"}],"animated":[true],"text":["hi"]}"#,
        )
        .unwrap();
        assert_eq!(out.files().len(), 1);
        assert_eq!(out.files()[0].subfolder, "s");
        assert_eq!(out.texts(), vec!["hi"]);
    }
}
