//! The workflow layer's error type: every way parsing, conversion, templates and injection fail.

use std::path::PathBuf;

/// What went wrong with a workflow, an `/object_info` document, a template or a parameter.
/// Every message names the offending thing and, where possible, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not JSON at all.
    #[error("{what} is not valid JSON: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// JSON that is neither a UI workflow nor an API prompt.
    #[error("not a ComfyUI workflow: {0}")]
    UnknownFormat(String),
    /// The `/object_info` document is not shaped as ComfyUI serves it.
    #[error("invalid /object_info: {0}")]
    ObjectInfo(String),
    /// A structural problem in a UI workflow (a node without an id, a malformed link, …).
    #[error("malformed workflow: {0}")]
    Malformed(String),
    /// A legacy group node, which this converter does not flatten.
    #[error(
        "node {id} is a legacy group node (`{class}`); open the workflow in ComfyUI, convert the \
         group node to a subgraph (or export it with Export (API)) and save it again"
    )]
    GroupNode { id: String, class: String },
    /// A node type that the server's `/object_info` does not list.
    #[error(
        "node {id} has type `{class}`, which this ComfyUI server does not know; a custom node is \
         probably not installed (or the server is older than the workflow)"
    )]
    UnknownNodeType { id: String, class: String },
    /// Links or subgraph definitions that refer to each other without end.
    #[error("workflow is circular: {0}")]
    Cycle(String),
    /// A template directory entry that cannot be used.
    #[error("template `{name}`: {reason}")]
    Template { name: String, reason: String },
    /// No template with that name exists.
    #[error("no template named `{name}`; available: {}", available.join(", "))]
    NoSuchTemplate {
        name: String,
        available: Vec<String>,
    },
    /// A parameter that the template does not define.
    #[error("unknown parameter `{name}`; valid parameters: {}", valid.join(", "))]
    UnknownParameter { name: String, valid: Vec<String> },
    /// A parameter value that does not fit its type or bounds.
    #[error("parameter `{name}`: {reason}")]
    InvalidValue { name: String, reason: String },
    /// A value for a list input (a model, an image, a sampler…) that the server does not offer:
    /// mistyped, or a file installed after the server's list was read.
    #[error("parameter `{name}`: {reason}")]
    NotAChoice { name: String, reason: String },
}
