//! Fuzz target: any websocket frame from a ComfyUI server, text or binary, must decode into a
//! known message, an `Unknown` one, or an error: never a panic.
#![no_main]

use comfy_fleet::comfy::events::{BinaryFrame, WsMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = BinaryFrame::parse(bytes::Bytes::copy_from_slice(data));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = WsMessage::parse(text);
    }
});
