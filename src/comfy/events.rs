//! ComfyUI's websocket messages (`/ws?clientId=…`), text and binary, decoded.
//!
//! Text frames are `{"type": T, "data": {…}}`. Known types become typed variants; any other
//! type (ComfyUI and custom nodes add new ones) becomes [`WsMessage::Unknown`] and is ignored
//! by the client. Binary frames start with a big-endian `u32` event type (see [`BinaryFrame`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::protocol::NodeOutput;

/// One decoded text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum WsMessage {
    /// Queue size, broadcast to every socket; carries `sid` on connect.
    Status(StatusData),
    ExecutionStart(PromptStamp),
    ExecutionCached(ExecutionCachedData),
    /// A node starts (`node: Some`), or the prompt is finished and in history (`node: None`).
    Executing(ExecutingData),
    Progress(ProgressData),
    ProgressState(ProgressStateData),
    Executed(ExecutedData),
    ExecutionSuccess(PromptStamp),
    ExecutionError(ExecutionErrorData),
    ExecutionInterrupted(ExecutionInterruptedData),
    /// The server's feature flags (answer to the client's).
    FeatureFlags(Map<String, Value>),
    /// A type comfy-fleet does not know, or a known type whose data did not parse.
    Unknown {
        kind: String,
        data: Value,
    },
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

impl WsMessage {
    /// Decodes one text frame. Fails only when the frame is not a `{type, data}` object.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let raw: RawMessage = serde_json::from_str(text)?;
        Ok(Self::from_parts(raw.kind, raw.data))
    }

    /// Builds a message from its type and data (history keeps messages as `[type, data]`).
    pub fn from_parts(kind: String, data: Value) -> Self {
        fn typed<T: serde::de::DeserializeOwned>(data: &Value) -> Option<T> {
            serde_json::from_value(data.clone()).ok()
        }
        let parsed = match kind.as_str() {
            "status" => typed(&data).map(Self::Status),
            "execution_start" => typed(&data).map(Self::ExecutionStart),
            "execution_cached" => typed(&data).map(Self::ExecutionCached),
            "executing" => typed(&data).map(Self::Executing),
            "progress" => typed(&data).map(Self::Progress),
            "progress_state" => typed(&data).map(Self::ProgressState),
            "executed" => typed(&data).map(Self::Executed),
            "execution_success" => typed(&data).map(Self::ExecutionSuccess),
            "execution_error" => typed(&data).map(Self::ExecutionError),
            "execution_interrupted" => typed(&data).map(Self::ExecutionInterrupted),
            "feature_flags" => typed(&data).map(Self::FeatureFlags),
            _ => None,
        };
        parsed.unwrap_or(Self::Unknown { kind, data })
    }

    /// The prompt this message is about, when it says.
    pub fn prompt_id(&self) -> Option<&str> {
        match self {
            Self::ExecutionStart(d) | Self::ExecutionSuccess(d) => Some(&d.prompt_id),
            Self::ExecutionCached(d) => Some(&d.prompt_id),
            Self::Executing(d) => d.prompt_id.as_deref(),
            Self::Progress(d) => d.prompt_id.as_deref(),
            Self::ProgressState(d) => Some(&d.prompt_id),
            Self::Executed(d) => Some(&d.prompt_id),
            Self::ExecutionError(d) => Some(&d.prompt_id),
            Self::ExecutionInterrupted(d) => Some(&d.prompt_id),
            Self::Status(_) | Self::FeatureFlags(_) | Self::Unknown { .. } => None,
        }
    }

    /// The message type as ComfyUI spells it.
    pub fn kind(&self) -> &str {
        match self {
            Self::Status(_) => "status",
            Self::ExecutionStart(_) => "execution_start",
            Self::ExecutionCached(_) => "execution_cached",
            Self::Executing(_) => "executing",
            Self::Progress(_) => "progress",
            Self::ProgressState(_) => "progress_state",
            Self::Executed(_) => "executed",
            Self::ExecutionSuccess(_) => "execution_success",
            Self::ExecutionError(_) => "execution_error",
            Self::ExecutionInterrupted(_) => "execution_interrupted",
            Self::FeatureFlags(_) => "feature_flags",
            Self::Unknown { kind, .. } => kind,
        }
    }
}

/// `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusData {
    pub status: QueueStatus,
    /// The socket's client id (sent on connect).
    #[serde(default)]
    pub sid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStatus {
    pub exec_info: ExecInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecInfo {
    /// Running + pending prompts.
    pub queue_remaining: u64,
}

/// `execution_start` and `execution_success`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptStamp {
    pub prompt_id: String,
    #[serde(default)]
    pub timestamp: Option<u64>,
}

/// `execution_cached`: nodes served from the cache (often none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionCachedData {
    #[serde(default)]
    pub nodes: Vec<String>,
    pub prompt_id: String,
    #[serde(default)]
    pub timestamp: Option<u64>,
}

/// `executing`. After a reconnect the server re-sends the running node without `prompt_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutingData {
    /// Required, but `null` when the prompt is over.
    #[serde(deserialize_with = "Option::deserialize")]
    pub node: Option<String>,
    #[serde(default)]
    pub display_node: Option<String>,
    #[serde(default)]
    pub prompt_id: Option<String>,
}

/// `progress`: step `value` of `max` in `node`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressData {
    pub value: f64,
    pub max: f64,
    #[serde(default)]
    pub prompt_id: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
}

/// `progress_state`: a snapshot of every started node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressStateData {
    pub prompt_id: String,
    /// By node id, in the server's order.
    #[serde(default)]
    pub nodes: Map<String, Value>,
}

impl ProgressStateData {
    /// The snapshot's nodes, typed (nodes whose record does not parse are skipped).
    pub fn node_states(&self) -> Vec<NodeProgress> {
        self.nodes
            .values()
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect()
    }
}

/// One node of a `progress_state` snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeProgress {
    pub node_id: String,
    pub value: f64,
    pub max: f64,
    /// `running` or `finished`.
    pub state: String,
    #[serde(default)]
    pub display_node_id: Option<String>,
    #[serde(default)]
    pub parent_node_id: Option<String>,
    #[serde(default)]
    pub real_node_id: Option<String>,
}

/// `executed`: an output node's `ui` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutedData {
    pub node: String,
    #[serde(default)]
    pub display_node: Option<String>,
    #[serde(default)]
    pub output: NodeOutput,
    pub prompt_id: String,
}

/// `execution_error` (also found in history `status.messages`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionErrorData {
    pub prompt_id: String,
    pub node_id: String,
    #[serde(default)]
    pub node_type: String,
    #[serde(default)]
    pub executed: Vec<String>,
    #[serde(default)]
    pub exception_message: String,
    #[serde(default)]
    pub exception_type: String,
    #[serde(default)]
    pub traceback: Vec<String>,
    #[serde(default)]
    pub timestamp: Option<u64>,
}

/// `execution_interrupted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionInterruptedData {
    pub prompt_id: String,
    #[serde(default)]
    pub node_id: Option<String>,
    #[serde(default)]
    pub node_type: Option<String>,
    #[serde(default)]
    pub executed: Vec<String>,
    #[serde(default)]
    pub timestamp: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Binary frames
// ---------------------------------------------------------------------------------------------

/// Image format of a type-1 preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewFormat {
    Jpeg,
    Png,
}

impl PreviewFormat {
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }
}

/// The metadata of a type-4 preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewMetadata {
    #[serde(default)]
    pub node_id: Option<String>,
    #[serde(default)]
    pub prompt_id: Option<String>,
    #[serde(default)]
    pub display_node_id: Option<String>,
    #[serde(default)]
    pub parent_node_id: Option<String>,
    #[serde(default)]
    pub real_node_id: Option<String>,
    /// A MIME type such as `image/png`.
    #[serde(default)]
    pub image_type: Option<String>,
}

/// One decoded binary frame.
#[derive(Debug, Clone, PartialEq)]
pub enum BinaryFrame {
    /// Type 1: a sampler preview.
    Preview {
        format: PreviewFormat,
        bytes: bytes::Bytes,
    },
    /// Type 3: text a node sends while it runs.
    Text { node_id: String, text: String },
    /// Type 4: a preview with its node and prompt (clients that announced
    /// `supports_preview_metadata`).
    PreviewWithMetadata {
        metadata: PreviewMetadata,
        bytes: bytes::Bytes,
    },
    /// Any other event type, or a frame too short for its type.
    Unknown {
        event_type: u32,
        payload: bytes::Bytes,
    },
}

impl BinaryFrame {
    /// Decodes a binary frame (never fails: malformed frames become `Unknown`).
    pub fn parse(frame: bytes::Bytes) -> Self {
        let Some(event_type) = read_u32(&frame, 0) else {
            return Self::Unknown {
                event_type: 0,
                payload: frame,
            };
        };
        let payload = frame.slice(4..);
        let unknown = |payload: bytes::Bytes| Self::Unknown {
            event_type,
            payload,
        };
        match event_type {
            1 => {
                let format = match read_u32(&payload, 0) {
                    Some(1) => PreviewFormat::Jpeg,
                    Some(2) => PreviewFormat::Png,
                    _ => return unknown(payload),
                };
                Self::Preview {
                    format,
                    bytes: payload.slice(4..),
                }
            }
            3 => match split_length_prefixed(&payload) {
                Some((id, text)) => Self::Text {
                    node_id: String::from_utf8_lossy(&id).into_owned(),
                    text: String::from_utf8_lossy(&text).into_owned(),
                },
                None => unknown(payload),
            },
            4 => match split_length_prefixed(&payload).and_then(|(meta, bytes)| {
                let metadata = serde_json::from_slice::<PreviewMetadata>(&meta).ok()?;
                Some(Self::PreviewWithMetadata { metadata, bytes })
            }) {
                Some(frame) => frame,
                None => unknown(payload),
            },
            _ => unknown(payload),
        }
    }

    /// The image bytes and their MIME type, for preview frames.
    pub fn preview(&self) -> Option<(&str, &[u8])> {
        match self {
            Self::Preview { format, bytes } => Some((format.mime(), bytes)),
            Self::PreviewWithMetadata { metadata, bytes } => {
                Some((metadata.image_type.as_deref().unwrap_or("image/png"), bytes))
            }
            _ => None,
        }
    }
}

/// Splits `[u32 length][header of that length][rest]` into header and rest.
fn split_length_prefixed(payload: &bytes::Bytes) -> Option<(bytes::Bytes, bytes::Bytes)> {
    let len = read_u32(payload, 0)? as usize;
    let end = 4usize
        .checked_add(len)
        .filter(|&end| end <= payload.len())?;
    Some((payload.slice(4..end), payload.slice(end..)))
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// What the connection delivers to a caller following a prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    Message(WsMessage),
    Binary(BinaryFrame),
    /// The websocket broke; the client is resynchronising from `/queue` and `/history`.
    ConnectionLost {
        reason: String,
    },
    /// The websocket is back (same client id).
    Reconnected,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_and_malformed_known_types_are_kept_as_unknown() {
        let m = WsMessage::parse(r#"{"type":"crystools.monitor","data":{"cpu":3}}"#).unwrap();
        assert_eq!(m.kind(), "crystools.monitor");
        assert!(matches!(m, WsMessage::Unknown { .. }));
        let m = WsMessage::parse(r#"{"type":"executing","data":{"nope":1}}"#).unwrap();
        assert!(matches!(m, WsMessage::Unknown { .. }));
        assert!(WsMessage::parse("[1,2]").is_err());
    }

    #[test]
    fn extra_fields_are_tolerated() {
        let m = WsMessage::parse(
            r#"{"type":"execution_start","data":{"prompt_id":"p","timestamp":1,"new":true},"x":1}"#,
        )
        .unwrap();
        assert_eq!(m.prompt_id(), Some("p"));
    }

    #[test]
    fn binary_preview_frames_decode() {
        let mut f = vec![0, 0, 0, 1, 0, 0, 0, 2];
        f.extend_from_slice(b"\x89PNG");
        match BinaryFrame::parse(f.into()) {
            BinaryFrame::Preview { format, bytes } => {
                assert_eq!(format, PreviewFormat::Png);
                assert_eq!(&bytes[..], b"\x89PNG");
            }
            other => panic!("{other:?}"),
        }
        let meta = br#"{"node_id":"9","prompt_id":"p","image_type":"image/jpeg"}"#;
        let mut f = vec![0, 0, 0, 4];
        f.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        f.extend_from_slice(meta);
        f.extend_from_slice(b"JPEGDATA");
        let frame = BinaryFrame::parse(f.into());
        assert_eq!(frame.preview(), Some(("image/jpeg", &b"JPEGDATA"[..])));
        match frame {
            BinaryFrame::PreviewWithMetadata { metadata, .. } => {
                assert_eq!(metadata.node_id.as_deref(), Some("9"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_binary_frames_are_unknown() {
        assert!(matches!(
            BinaryFrame::parse(vec![0, 0].into()),
            BinaryFrame::Unknown { .. }
        ));
        assert!(matches!(
            BinaryFrame::parse(vec![0, 0, 0, 3, 0, 0, 0, 9, b'a'].into()),
            BinaryFrame::Unknown { event_type: 3, .. }
        ));
        assert!(matches!(
            BinaryFrame::parse(vec![0, 0, 0, 1, 0, 0, 0, 7].into()),
            BinaryFrame::Unknown { event_type: 1, .. }
        ));
    }
}
