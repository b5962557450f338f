//! `fake-comfyui`: a real HTTP + websocket server that speaks ComfyUI 0.33.0's protocol.

fn main() {}
