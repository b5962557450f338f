//! The registry of connected websockets, keyed by client id (`sid`) like ComfyUI's
//! `PromptServer.sockets`: per-client sends, broadcasts, and the binary frame formats
//! (PREVIEW_IMAGE = 1, TEXT = 3, PREVIEW_IMAGE_WITH_METADATA = 4).

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

/// A frame queued for one socket.
#[derive(Debug, Clone)]
pub enum Frame {
    Text(String),
    Binary(Bytes),
}

struct Socket {
    conn: u64,
    tx: UnboundedSender<Frame>,
    preview_metadata: bool,
}

/// Binary event types.
pub const PREVIEW_IMAGE: u32 = 1;
pub const TEXT: u32 = 3;
pub const PREVIEW_IMAGE_WITH_METADATA: u32 = 4;

/// Connected sockets.
#[derive(Default)]
pub struct Hub {
    sockets: Mutex<HashMap<String, Socket>>,
    next_conn: Mutex<u64>,
}

impl Hub {
    fn sockets(&self) -> std::sync::MutexGuard<'_, HashMap<String, Socket>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a socket under `sid`, replacing (not closing) an older one with the same id.
    pub fn register(&self, sid: &str, tx: UnboundedSender<Frame>) -> u64 {
        let conn = {
            let mut n = self.next_conn.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        self.sockets().insert(
            sid.to_string(),
            Socket {
                conn,
                tx,
                preview_metadata: false,
            },
        );
        conn
    }

    /// Removes the socket if it is still the one registered under `sid`.
    pub fn unregister(&self, sid: &str, conn: u64) {
        let mut sockets = self.sockets();
        if sockets.get(sid).is_some_and(|s| s.conn == conn) {
            sockets.remove(sid);
        }
    }

    /// Stores the client's feature flags (only `supports_preview_metadata` matters here).
    pub fn set_client_flags(&self, sid: &str, conn: u64, flags: &Value) {
        if let Some(s) = self.sockets().get_mut(sid).filter(|s| s.conn == conn) {
            s.preview_metadata = flags
                .get("supports_preview_metadata")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        }
    }

    fn deliver(&self, frame: impl Fn(&Socket) -> Frame, sid: Option<&str>) {
        let sockets = self.sockets();
        match sid {
            Some(sid) => {
                if let Some(s) = sockets.get(sid) {
                    let _ = s.tx.send(frame(s));
                }
            }
            None => {
                for s in sockets.values() {
                    let _ = s.tx.send(frame(s));
                }
            }
        }
    }

    /// Sends `{"type": kind, "data": data}` to `sid`, or to everyone when `sid` is `None`.
    pub fn send_json(&self, kind: &str, data: Value, sid: Option<&str>) {
        let text = json!({"type": kind, "data": data}).to_string();
        self.deliver(|_| Frame::Text(text.clone()), sid);
    }

    /// A TEXT binary frame (type 3): node id length, node id, text.
    pub fn send_text(&self, node_id: &str, text: &str, sid: Option<&str>) {
        let mut buf = Vec::with_capacity(8 + node_id.len() + text.len());
        buf.extend_from_slice(&TEXT.to_be_bytes());
        buf.extend_from_slice(&(node_id.len() as u32).to_be_bytes());
        buf.extend_from_slice(node_id.as_bytes());
        buf.extend_from_slice(text.as_bytes());
        let bytes = Bytes::from(buf);
        self.deliver(|_| Frame::Binary(bytes.clone()), sid);
    }

    /// A preview image: type 4 with metadata for sockets that announced
    /// `supports_preview_metadata`, otherwise type 1 with format 1 (JPEG).
    pub fn send_preview(&self, jpeg: &[u8], metadata: &Value, sid: Option<&str>) {
        let mut plain = Vec::with_capacity(8 + jpeg.len());
        plain.extend_from_slice(&PREVIEW_IMAGE.to_be_bytes());
        plain.extend_from_slice(&1u32.to_be_bytes());
        plain.extend_from_slice(jpeg);
        let plain = Bytes::from(plain);
        let meta = metadata.to_string();
        let mut rich = Vec::with_capacity(8 + meta.len() + jpeg.len());
        rich.extend_from_slice(&PREVIEW_IMAGE_WITH_METADATA.to_be_bytes());
        rich.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        rich.extend_from_slice(meta.as_bytes());
        rich.extend_from_slice(jpeg);
        let rich = Bytes::from(rich);
        self.deliver(
            |s| {
                if s.preview_metadata {
                    Frame::Binary(rich.clone())
                } else {
                    Frame::Binary(plain.clone())
                }
            },
            sid,
        );
    }
}
