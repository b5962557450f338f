//! Workflows: format detection, native UI→API conversion, templates and parameter injection.
//!
//! Entry points: [`Workflow::parse`] (detects the format), [`Workflow::to_api`] (converts with a
//! server's [`ObjectInfo`]), [`TemplateSet::load`] and [`Template::prepare`] (parameters →
//! [`PreparedPrompt`]), and [`models_in`] (model files a prompt loads).

pub mod convert;
pub mod discover;
pub mod error;
pub mod format;
pub mod models;
pub mod object_info;
pub mod param;
pub mod strict_json;
pub mod template;

pub use error::WorkflowError;
pub use format::{ApiPrompt, Format, Workflow};
pub use models::models_in;
pub use object_info::ObjectInfo;
pub use param::{NodeRef, Param, ParamKind, Rules};
pub use template::{
    ModelNote, PreparedPrompt, Template, TemplateSet, parse_assignment, parse_assignments,
};
