//! The ComfyUI connector: typed protocol, HTTP + websocket client, and its errors.
//!
//! Built from captures of ComfyUI 0.33.0 (`tests/fixtures/comfyui/`). [`ComfyClient`] talks to
//! one server; [`ComfyBackend`] adapts it to the actors' `Backend` port.
//!
//! Threading: `awc::Client` is `!Send` (it holds `Rc`s) and needs a tokio `LocalSet`, so every
//! client, future and backend of this module must be created and polled on one actix arbiter
//! (inside `actix_rt::System::new().block_on(…)`, an actor's context, or `#[actix_rt::test]`).
//! Never move a [`ComfyClient`] across threads; create one per arbiter instead.

pub mod backend;
pub mod client;
pub mod error;
pub mod events;
pub mod multipart;
pub mod prompt_run;
pub mod prompt_tracker;
pub mod protocol;
pub mod websocket;

#[cfg(test)]
mod captured_fixtures;

pub use backend::ComfyBackend;
pub use client::{ClientConfig, ComfyClient};
pub use error::{ComfyError, ExecutionFailure, PromptRejection};
pub use events::{BinaryFrame, ServerEvent, WsMessage};
pub use prompt_run::{PromptOutcome, RunOptions};
pub use websocket::EventSocket;
