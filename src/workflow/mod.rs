//! Workflows: format detection, native UI→API conversion, templates and parameter injection.

pub mod convert;
pub mod error;
pub mod format;
pub mod object_info;

pub use error::WorkflowError;
pub use format::{ApiPrompt, Format, Workflow};
pub use object_info::ObjectInfo;
