//! Logging: tracing subscriber set-up (text or JSON, `RUST_LOG` respected).
