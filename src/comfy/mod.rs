//! The ComfyUI connector: typed protocol, HTTP + websocket client, and its errors.
