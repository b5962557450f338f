//! Helpers shared by the fake's integration tests: small real PNGs, a raw gateway client (awc
//! websocket) that speaks the protocol by hand, and a plain HTTP client for the REST routes.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::time::Duration;

use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

/// A valid 2×3 RGB PNG.
pub const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x08, 0x02, 0x00, 0x00, 0x00, 0x36, 0x88, 0x49,
    0xd6, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x44, 0x0c, 0x28, 0x14, 0x00, 0x44, 0xd0, 0x05, 0xfb, 0xa4, 0xcf, 0xde, 0x80, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A valid grey `width`×`height` PNG.
pub fn fake_png(width: u32, height: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    for _ in 0..height {
        raw.push(0);
        raw.extend(std::iter::repeat_n(0x80u8, width as usize * 3));
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&raw).expect("compress");
    let idat = encoder.finish().expect("compress");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// What the gateway sent.
#[derive(Debug, PartialEq)]
pub enum Received {
    /// A text frame, parsed.
    Json(Value),
    /// A binary frame: zlib-compressed JSON, decompressed and parsed.
    Compressed(Value),
    /// A close frame and its code.
    Close(Option<u16>),
    /// The socket ended without a close frame.
    Ended,
}

type Sink =
    std::pin::Pin<Box<dyn futures_util::Sink<ws::Message, Error = awc::error::WsProtocolError>>>;
type Stream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<ws::Frame, awc::error::WsProtocolError>>>,
>;

/// A gateway client speaking the protocol by hand.
pub struct Gateway {
    sink: Sink,
    stream: Stream,
}

/// How long a test waits for one gateway frame before failing.
const FRAME_WAIT: Duration = Duration::from_secs(20);

impl Gateway {
    /// Connects to `url` (e.g. `ws://127.0.0.1:P/gateway?v=10&encoding=json`); returns the
    /// client and HELLO.
    pub async fn connect(url: &str) -> (Gateway, Value) {
        let (_response, framed) = awc::Client::new()
            .ws(url)
            .max_frame_size(16 << 20)
            .connect()
            .await
            .expect("the gateway accepts the websocket");
        let (sink, stream) = framed.split();
        let mut gateway = Gateway {
            sink: Box::pin(sink),
            stream: Box::pin(stream),
        };
        let hello = match gateway.next().await {
            Received::Json(v) => v,
            other => panic!("expected HELLO, got {other:?}"),
        };
        (gateway, hello)
    }

    pub async fn send(&mut self, payload: Value) {
        self.sink
            .send(ws::Message::Text(payload.to_string().into()))
            .await
            .expect("send a payload");
    }

    pub async fn next(&mut self) -> Received {
        loop {
            let frame = tokio::time::timeout(FRAME_WAIT, self.stream.next())
                .await
                .expect("a gateway frame within the wait");
            match frame {
                Some(Ok(ws::Frame::Text(text))) => {
                    return Received::Json(serde_json::from_slice(&text).expect("JSON text frame"));
                }
                Some(Ok(ws::Frame::Binary(data))) => {
                    let mut text = String::new();
                    flate2::read::ZlibDecoder::new(&data[..])
                        .read_to_string(&mut text)
                        .expect("zlib payload");
                    return Received::Compressed(
                        serde_json::from_str(&text).expect("JSON payload"),
                    );
                }
                Some(Ok(ws::Frame::Close(reason))) => {
                    return Received::Close(reason.map(|r| u16::from(r.code)));
                }
                Some(Ok(ws::Frame::Ping(p))) => {
                    let _ = self.sink.send(ws::Message::Pong(p)).await;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Received::Ended,
            }
        }
    }

    /// The next frame's JSON, compressed or not.
    pub async fn next_json(&mut self) -> Value {
        match self.next().await {
            Received::Json(v) | Received::Compressed(v) => v,
            other => panic!("expected a payload, got {other:?}"),
        }
    }

    /// IDENTIFY; returns READY's frame.
    pub async fn identify(&mut self, token: &str, intents: u64) -> Value {
        self.send(json!({"op": 2, "d": {"token": token, "intents": intents,
            "properties": {"os": "linux", "browser": "test", "device": "test"}}}))
            .await;
        self.next_json().await
    }

    /// Sends a close frame with `code`.
    pub async fn close(&mut self, code: u16) {
        let _ = self
            .sink
            .send(ws::Message::Close(Some(ws::CloseReason {
                code: ws::CloseCode::Other(code),
                description: None,
            })))
            .await;
    }
}

/// A plain HTTP client for REST calls in tests.
pub fn http() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(20))
        .finish()
}

/// Sends `request` with an optional JSON body; returns status, headers and JSON body (or Null).
pub async fn call(
    request: awc::ClientRequest,
    body: Option<Value>,
) -> (u16, awc::http::header::HeaderMap, Value) {
    let sent = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    };
    let mut response = sent.expect("the fake answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.body().limit(64 << 20).await.expect("body");
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, headers, json)
}

/// A multipart body with `payload_json` and files; returns (content type, body).
pub fn multipart(payload: &Value, files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "fakediscordtestboundary";
    let mut body = Vec::new();
    for (field, filename, data) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{payload}\r\n--{boundary}--\r\n")
            .as_bytes(),
    );
    (format!("multipart/form-data; boundary={boundary}"), body)
}
