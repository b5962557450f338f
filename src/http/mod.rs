//! The HTTP API (actix-web): jobs, their events and outputs, status, metrics and health.

pub mod auth;
pub mod error;
