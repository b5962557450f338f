//! The connector's error: what went wrong talking to one ComfyUI server, in ComfyUI's own words
//! where it gave any, and its mapping to the actors' [`BackendError`].

use std::fmt;
use std::time::Duration;

use comfy_fleet_actors::ports::{BackendError, NodeError, describe_node_errors};

use super::protocol::{ApiError, NodeErrors};

/// Why a ComfyUI call or prompt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ComfyError {
    /// Nothing answers at `url` (connection refused, connect timeout, no response in time).
    #[error("ComfyUI at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server answered with an error status.
    #[error("ComfyUI answered HTTP {status} to {route}: {body}")]
    Http {
        route: String,
        status: u16,
        body: String,
    },
    /// `POST /prompt` refused the graph, wholly (400) or partly (200 with `node_errors`).
    #[error("{0}")]
    Rejected(Box<PromptRejection>),
    /// A node raised while the prompt ran.
    #[error("{0}")]
    Execution(Box<ExecutionFailure>),
    /// The prompt was interrupted (by us, an operator, or another client).
    #[error("the prompt was interrupted{}", .node.as_ref().map(|n| format!(" at node {n}")).unwrap_or_default())]
    Interrupted { node: Option<String> },
    /// The prompt was removed from ComfyUI's queue before it started (`POST /queue` delete or
    /// clear, by us or someone else).
    #[error("prompt {prompt_id} was removed from ComfyUI's queue before it started")]
    Dequeued { prompt_id: String },
    /// The server sent nothing on the websocket for longer than the configured silence limit
    /// (a node hangs, or the process is frozen).
    #[error("ComfyUI at {url} sent nothing for {}", comfy_fleet_actors::duration_text::rounded(*.silent_for))]
    Silent { url: String, silent_for: Duration },
    /// The connection broke while a prompt ran and the server could not be reached again.
    #[error("the connection to ComfyUI at {url} broke: {reason}")]
    Disconnected { url: String, reason: String },
    /// The prompt is neither queued nor in history: the server lost it (restarted, queue
    /// cleared by someone else).
    #[error("ComfyUI at {url} no longer knows prompt {prompt_id} (restarted or queue cleared)")]
    Lost { url: String, prompt_id: String },
    /// The server answered something comfy-fleet does not understand.
    #[error("unexpected answer from ComfyUI to {route}: {reason}")]
    Protocol { route: String, reason: String },
}

impl ComfyError {
    /// Whether another server might succeed where this one failed.
    pub fn is_retriable(&self) -> bool {
        BackendError::from(self.clone()).is_retriable()
    }
}

/// ComfyUI's refusal of a prompt: its top-level error and every node error.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptRejection {
    /// HTTP status of `POST /prompt` (400, or 200 when only some outputs were invalid).
    pub status: u16,
    pub error: ApiError,
    pub node_errors: Vec<NodeErrors>,
}

impl PromptRejection {
    /// The node errors flattened to one record per node input, as the actors use them; a
    /// top-level error that names a node (`missing_node_type`) becomes one too.
    pub fn flat_errors(&self) -> Vec<NodeError> {
        let mut out = self.node_input_errors();
        if out.is_empty()
            && let Some(node_id) = self.error.node_id()
        {
            out.push(NodeError {
                node_id: node_id.to_owned(),
                class_type: self.error.class_type().unwrap_or_default().to_owned(),
                kind: self.error.kind.clone(),
                message: self.error.message.clone(),
                details: self.error.details.clone(),
                input: None,
            });
        }
        out
    }

    /// One record per refused node input, from `node_errors` only.
    fn node_input_errors(&self) -> Vec<NodeError> {
        self.node_errors
            .iter()
            .flat_map(|node| {
                node.errors.iter().map(|e| NodeError {
                    node_id: node.node_id.clone(),
                    class_type: node.class_type.clone(),
                    kind: e.kind.clone(),
                    message: e.message.clone(),
                    details: e.details.clone(),
                    input: e.input_name().map(str::to_owned),
                })
            })
            .collect()
    }
}

impl fmt::Display for PromptRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = if self.error.message.is_empty() {
            "Prompt outputs failed validation"
        } else {
            &self.error.message
        };
        write!(f, "ComfyUI rejected the workflow: {message}")?;
        if self.node_errors.is_empty() && !self.error.details.is_empty() {
            write!(f, " ({})", self.error.details)?;
        }
        if self.status == 200 {
            f.write_str(" (the valid outputs were queued and have been cancelled)")?;
        }
        f.write_str(&describe_node_errors(&self.node_input_errors()))
    }
}

/// A node that raised at run time (`execution_error`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionFailure {
    pub prompt_id: String,
    pub node_id: String,
    pub node_type: String,
    /// Python's exception class, e.g. `PIL.UnidentifiedImageError`.
    pub exception_type: String,
    pub exception_message: String,
    pub traceback: Vec<String>,
}

impl fmt::Display for ExecutionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} ({}) failed: {}: {}",
            self.node_id,
            self.node_type,
            self.exception_type,
            self.exception_message.trim_end()
        )
    }
}

impl From<ComfyError> for BackendError {
    fn from(e: ComfyError) -> Self {
        match e {
            ComfyError::Unreachable { url, reason } => BackendError::Unreachable { url, reason },
            ComfyError::Http {
                route,
                status,
                body,
            } => BackendError::Http {
                route,
                status,
                body,
            },
            ComfyError::Rejected(r) => BackendError::Rejected {
                kind: r.error.kind.clone(),
                message: r.error.message.clone(),
                node_errors: r.flat_errors(),
            },
            ComfyError::Execution(x) => BackendError::Execution {
                message: x.exception_message.trim_end().to_owned(),
                node_id: x.node_id,
                node_type: x.node_type,
                exception_type: x.exception_type,
            },
            ComfyError::Interrupted { .. } | ComfyError::Dequeued { .. } => {
                BackendError::Interrupted
            }
            ComfyError::Silent { silent_for, .. } => BackendError::Silent { silent_for },
            ComfyError::Disconnected { url, reason } => {
                BackendError::Disconnected(format!("{url}: {reason}"))
            }
            e @ ComfyError::Lost { .. } => BackendError::Disconnected(e.to_string()),
            e @ ComfyError::Protocol { .. } => BackendError::Protocol(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comfy::protocol::PromptErrorBody;

    fn rejection(fixture: &str) -> PromptRejection {
        let path = crate::test_fixtures::captured(fixture);
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let body: PromptErrorBody =
            serde_json::from_value(record["response"]["body"].clone()).unwrap();
        PromptRejection {
            status: 400,
            error: body.error,
            node_errors: body.node_errors,
        }
    }

    #[test]
    fn rejection_reads_one_line_per_node_input() {
        let r = rejection("error_multiple_errors.json");
        let text = r.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ComfyUI rejected the workflow: Prompt outputs failed validation"
        );
        assert_eq!(lines.len(), 4, "{text}");
        assert!(text.contains(
            "node 4 (LoadImage), input `image`: Custom validation failed for node: image - Invalid image file: nope.png"
        ));
        assert!(
            text.contains("node 1 (EmptyImage), input `height`: Value -5 smaller than min of 1")
        );
        let flat = r.flat_errors();
        assert_eq!(flat.len(), 3);
        assert_eq!(flat[1].input.as_deref(), Some("width"));
        // The actors' error words each node input the same way.
        let backend = BackendError::from(ComfyError::Rejected(Box::new(r))).to_string();
        let node_lines: Vec<&str> = backend.lines().skip(1).collect();
        assert_eq!(node_lines, lines[1..]);
    }

    #[test]
    fn missing_node_type_names_the_node() {
        let r = rejection("error_unknown_class_type.json");
        assert!(r.to_string().contains("Node 'NoSuchNodeClass' not found"));
        let flat = r.flat_errors();
        assert_eq!(flat[0].node_id, "2");
        assert_eq!(flat[0].class_type, "NoSuchNodeClass");
        let b = BackendError::from(ComfyError::Rejected(Box::new(r)));
        assert!(!b.is_retriable());
        assert!(
            matches!(b, BackendError::Rejected { ref kind, .. } if kind == "missing_node_type")
        );
    }

    #[test]
    fn server_faults_are_retriable_and_job_faults_are_not() {
        let unreachable = ComfyError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        assert!(unreachable.is_retriable());
        let exec = ComfyError::Execution(Box::new(ExecutionFailure {
            prompt_id: "p".into(),
            node_id: "1".into(),
            node_type: "LoadImage".into(),
            exception_type: "PIL.UnidentifiedImageError".into(),
            exception_message: "cannot identify image file\n".into(),
            traceback: vec![],
        }));
        assert!(!exec.is_retriable());
        assert_eq!(
            exec.to_string(),
            "node 1 (LoadImage) failed: PIL.UnidentifiedImageError: cannot identify image file"
        );
    }
}
