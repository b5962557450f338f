//! [`EventSocket`]: one open `/ws?clientId=…` connection, yielding decoded [`ServerEvent`]s.
//!
//! It answers pings, reassembles fragmented frames, and reports the end of the connection
//! (close frame, reset, EOF) as an error with a reason, so callers can resynchronise.

use std::time::Duration;

use actix_ws::Item; // awc does not re-export it; same actix-http type
use awc::error::WsProtocolError;
use awc::ws::{Frame, Message};
use bytes::{Bytes, BytesMut};
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};

use super::error::ComfyError;
use super::events::{BinaryFrame, ServerEvent, StatusData, WsMessage};

/// The framed websocket awc returns, type-erased (its `actix_codec` type is not re-exported).
pub(crate) trait FrameIo:
    Stream<Item = Result<Frame, WsProtocolError>> + Sink<Message, Error = WsProtocolError> + Unpin
{
}

impl<T> FrameIo for T where
    T: Stream<Item = Result<Frame, WsProtocolError>>
        + Sink<Message, Error = WsProtocolError>
        + Unpin
{
}

type Framed = Box<dyn FrameIo>;

/// An open event connection to one ComfyUI server.
pub struct EventSocket {
    framed: Framed,
    url: String,
    max_message: usize,
    /// A fragmented message being reassembled: (is_text, bytes so far).
    fragments: Option<(bool, BytesMut)>,
    /// An event received while waiting for the first `status`, delivered first.
    pending: Option<ServerEvent>,
    initial_status: Option<StatusData>,
    closed: Option<String>,
}

impl EventSocket {
    /// Wraps a connected socket and waits (up to `wait`) for the server's first frame, which
    /// proves the server registered the socket under its client id.
    pub(crate) async fn open(
        framed: impl FrameIo + 'static,
        url: &str,
        wait: Duration,
        max_message: usize,
    ) -> Result<Self, ComfyError> {
        let mut socket = Self {
            framed: Box::new(framed),
            url: url.to_owned(),
            max_message,
            fragments: None,
            pending: None,
            initial_status: None,
            closed: None,
        };
        let first = actix_rt::time::timeout(wait, socket.next_event())
            .await
            .map_err(|_| ComfyError::Protocol {
                route: "/ws".into(),
                reason: format!(
                    "the server sent no status frame within {}",
                    humantime::format_duration(wait)
                ),
            })?;
        match first {
            Ok(ServerEvent::Message(WsMessage::Status(status))) => {
                socket.initial_status = Some(status)
            }
            Ok(other) => socket.pending = Some(other),
            Err(reason) => {
                return Err(ComfyError::Disconnected {
                    url: socket.url,
                    reason: format!("the websocket closed before its first frame: {reason}"),
                });
            }
        }
        Ok(socket)
    }

    /// The `status` frame the server sent on connect (with `sid`, the client id it registered).
    pub fn initial_status(&self) -> Option<&StatusData> {
        self.initial_status.as_ref()
    }

    /// Sends ComfyUI's optional first client message `{"type":"feature_flags","data":flags}`;
    /// the server answers with its own flags.
    pub async fn send_feature_flags(&mut self, flags: serde_json::Value) -> Result<(), ComfyError> {
        let text = serde_json::json!({"type": "feature_flags", "data": flags}).to_string();
        self.framed
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| ComfyError::Disconnected {
                url: self.url.clone(),
                reason: e.to_string(),
            })
    }

    /// The next event. `Err` means the connection is over, with the reason; every later call
    /// returns the same reason.
    pub async fn next_event(&mut self) -> Result<ServerEvent, String> {
        if let Some(event) = self.pending.take() {
            return Ok(event);
        }
        if let Some(reason) = &self.closed {
            return Err(reason.clone());
        }
        match self.read().await {
            Ok(event) => Ok(event),
            Err(reason) => {
                self.closed = Some(reason.clone());
                Err(reason)
            }
        }
    }

    async fn read(&mut self) -> Result<ServerEvent, String> {
        loop {
            let frame = match self.framed.next().await {
                None => return Err("the server closed the connection".into()),
                Some(Err(e)) => return Err(format!("websocket error: {e}")),
                Some(Ok(frame)) => frame,
            };
            match frame {
                Frame::Text(bytes) => return Ok(text_event(&bytes)),
                Frame::Binary(bytes) => return Ok(ServerEvent::Binary(BinaryFrame::parse(bytes))),
                Frame::Ping(payload) => {
                    // A failed pong shows up as an error on the next read.
                    let _ = self.framed.send(Message::Pong(payload)).await;
                }
                Frame::Pong(_) => {}
                Frame::Close(reason) => {
                    let _ = self.framed.send(Message::Close(None)).await;
                    return Err(match reason {
                        Some(r) => format!(
                            "the server closed the websocket ({:?}{})",
                            r.code,
                            r.description.map(|d| format!(": {d}")).unwrap_or_default()
                        ),
                        None => "the server closed the websocket".into(),
                    });
                }
                Frame::Continuation(item) => {
                    if let Some(event) = self.continuation(item)? {
                        return Ok(event);
                    }
                }
            }
        }
    }

    fn continuation(&mut self, item: Item) -> Result<Option<ServerEvent>, String> {
        match item {
            Item::FirstText(b) => self.fragments = Some((true, BytesMut::from(&b[..]))),
            Item::FirstBinary(b) => self.fragments = Some((false, BytesMut::from(&b[..]))),
            Item::Continue(b) => return self.append_fragment(b, false),
            Item::Last(b) => return self.append_fragment(b, true),
        }
        Ok(None)
    }

    fn append_fragment(&mut self, b: Bytes, last: bool) -> Result<Option<ServerEvent>, String> {
        let Some((_, buf)) = self.fragments.as_mut() else {
            return Err("websocket continuation without a first fragment".into());
        };
        if buf.len() + b.len() > self.max_message {
            return Err(format!(
                "a fragmented websocket message exceeds {} bytes",
                self.max_message
            ));
        }
        buf.extend_from_slice(&b);
        if !last {
            return Ok(None);
        }
        let Some((is_text, buf)) = self.fragments.take() else {
            return Ok(None);
        };
        let bytes: Bytes = buf.freeze();
        Ok(Some(if is_text {
            text_event(&bytes)
        } else {
            ServerEvent::Binary(BinaryFrame::parse(bytes))
        }))
    }
}

/// A text frame as an event; text that is not a `{type, data}` object becomes an unknown message.
fn text_event(bytes: &[u8]) -> ServerEvent {
    let text = String::from_utf8_lossy(bytes);
    ServerEvent::Message(
        WsMessage::parse(&text).unwrap_or_else(|_| WsMessage::Unknown {
            kind: String::new(),
            data: serde_json::Value::String(text.into_owned()),
        }),
    )
}
