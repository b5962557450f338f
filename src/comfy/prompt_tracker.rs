//! [`PromptTracker`]: follows one prompt through the websocket's messages and says which events
//! concern it and when it is over. Pure state, no I/O (the client drives it).
//!
//! The prompt is over at `executing` with `node: null` and our `prompt_id` (history is written
//! by then; `execution_success` comes earlier and history may still be empty at that point), or
//! at `execution_error` / `execution_interrupted` (the outcome is known; history may lag).

use super::events::{ExecutionErrorData, ExecutionInterruptedData, ServerEvent, WsMessage};

/// Whether an event concerns the tracked prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relevance {
    /// About our prompt (or a binary frame / prompt-less `executing` on our own socket).
    Ours,
    /// Not about any prompt: queue status, feature flags, unknown types, connection notices.
    General,
    /// About another prompt (broadcast `progress_state` of prompts without a client id…).
    Other,
}

/// The state of one prompt as its messages tell it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptTracker {
    prompt_id: String,
    started: bool,
    succeeded: bool,
    finished: bool,
    current_node: Option<String>,
    cached_nodes: Vec<String>,
    error: Option<ExecutionErrorData>,
    interrupted: Option<ExecutionInterruptedData>,
}

impl PromptTracker {
    pub fn new(prompt_id: impl Into<String>) -> Self {
        Self {
            prompt_id: prompt_id.into(),
            ..Self::default()
        }
    }

    pub fn prompt_id(&self) -> &str {
        &self.prompt_id
    }

    /// Takes one event into account and says whether it concerns the prompt. The tracker
    /// assumes the socket's client id is used by this prompt only, so binary frames and
    /// `executing` without `prompt_id` (sent after a reconnect) are ours.
    pub fn observe(&mut self, event: &ServerEvent) -> Relevance {
        let msg = match event {
            ServerEvent::Binary(_) => return Relevance::Ours,
            ServerEvent::ConnectionLost { .. } | ServerEvent::Reconnected => {
                return Relevance::General;
            }
            ServerEvent::Message(msg) => msg,
        };
        match msg.prompt_id() {
            Some(id) if id != self.prompt_id => return Relevance::Other,
            None if !matches!(msg, WsMessage::Executing(_)) => return Relevance::General,
            _ => {}
        }
        match msg {
            WsMessage::ExecutionStart(_) => self.started = true,
            WsMessage::ExecutionCached(d) => {
                self.started = true;
                for node in &d.nodes {
                    if !self.cached_nodes.contains(node) {
                        self.cached_nodes.push(node.clone());
                    }
                }
            }
            WsMessage::Executing(d) => {
                self.started = true;
                match &d.node {
                    Some(node) => self.current_node = Some(node.clone()),
                    // `node: null` without a prompt id is not a finish signal we can trust.
                    None if d.prompt_id.is_some() => {
                        self.current_node = None;
                        self.finished = true;
                    }
                    None => {}
                }
            }
            WsMessage::ExecutionSuccess(_) => {
                self.started = true;
                self.succeeded = true;
            }
            // Errors and interrupts are followed by `executing` with `node: null` once the
            // history entry is written: that, not the error, ends the prompt.
            WsMessage::ExecutionError(d) => {
                self.started = true;
                self.error = Some(d.clone());
            }
            WsMessage::ExecutionInterrupted(d) => {
                self.started = true;
                self.interrupted = Some(d.clone());
            }
            WsMessage::Progress(_) | WsMessage::ProgressState(_) | WsMessage::Executed(_) => {
                self.started = true
            }
            WsMessage::Status(_) | WsMessage::FeatureFlags(_) | WsMessage::Unknown { .. } => {}
        }
        Relevance::Ours
    }

    /// Whether the server has begun executing the prompt (any message about it arrived).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Whether the prompt is over (succeeded, failed or interrupted) and its history written:
    /// `executing` with `node: null` for it arrived.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Whether `execution_success` was seen.
    pub fn succeeded(&self) -> bool {
        self.succeeded
    }

    /// The node executing now.
    pub fn current_node(&self) -> Option<&str> {
        self.current_node.as_deref()
    }

    /// Nodes served from ComfyUI's cache.
    pub fn cached_nodes(&self) -> &[String] {
        &self.cached_nodes
    }

    pub fn error(&self) -> Option<&ExecutionErrorData> {
        self.error.as_ref()
    }

    pub fn interrupted(&self) -> Option<&ExecutionInterruptedData> {
        self.interrupted.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comfy::events::BinaryFrame;

    /// Feeds a captured trace's text frames; returns the tracker and the relevance of each.
    fn replay(trace: &str, prompt_id: &str) -> (PromptTracker, Vec<Relevance>) {
        let path = crate::test_fixtures::captured(trace);
        let mut t = PromptTracker::new(prompt_id);
        let mut rel = Vec::new();
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let frame: serde_json::Value = serde_json::from_str(line).unwrap();
            if frame["frame"] != "text" {
                continue;
            }
            let msg = WsMessage::parse(&frame["data"].to_string()).unwrap();
            assert!(!t.finished(), "event after the finish: {line}");
            rel.push(t.observe(&ServerEvent::Message(msg)));
        }
        (t, rel)
    }

    /// Feeds a captured trace's frames until the tracker says the prompt is over.
    fn replay_until_finished(trace: &str, prompt_id: &str) -> PromptTracker {
        let path = crate::test_fixtures::captured(trace);
        let mut t = PromptTracker::new(prompt_id);
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let frame: serde_json::Value = serde_json::from_str(line).unwrap();
            t.observe(&ServerEvent::Message(
                WsMessage::parse(&frame["data"].to_string()).unwrap(),
            ));
            if t.finished() {
                break;
            }
        }
        t
    }

    #[test]
    fn success_trace_finishes_on_executing_null() {
        let (t, rel) = replay("trivial_ws.jsonl", "ef61dbab-0b81-4e04-9293-62de0435fac2");
        assert!(t.finished() && t.succeeded());
        assert!(t.error().is_none());
        assert!(rel.contains(&Relevance::General)); // status frames
        assert!(!rel.contains(&Relevance::Other));
    }

    #[test]
    fn cached_trace_lists_cached_nodes() {
        let (t, _) = replay(
            "trivial_cached_ws.jsonl",
            "df9b6e33-4450-4017-86de-c06b8f9de764",
        );
        assert!(t.finished());
        assert_eq!(t.cached_nodes().len(), 3, "{:?}", t.cached_nodes());
    }

    #[test]
    fn runtime_error_trace_stops_at_the_error() {
        let t = replay_until_finished(
            "runtime_error_corrupt_image_ws.jsonl",
            "0168b5fb-4fbd-45f8-bc3c-6cce19153afe",
        );
        let e = t.error().unwrap();
        assert_eq!(e.node_type, "LoadImage");
        assert!(!t.succeeded());
    }

    #[test]
    fn interrupt_trace_reports_the_interrupted_node() {
        let t = replay_until_finished("interrupt_ws.jsonl", "978d50f8-8fd9-4699-83e0-befdfdbfa48a");
        assert_eq!(t.interrupted().unwrap().node_id.as_deref(), Some("102"));
    }

    #[test]
    fn other_prompts_are_not_ours_and_do_not_finish_us() {
        let (t, rel) = replay("trivial_ws.jsonl", "00000000-0000-0000-0000-000000000000");
        assert!(!t.finished() && !t.started());
        assert!(rel.contains(&Relevance::Other));
        assert!(!rel.contains(&Relevance::Ours));
    }

    #[test]
    fn reconnect_executing_without_prompt_id_is_ours_but_not_final() {
        let mut t = PromptTracker::new("p");
        let msg = WsMessage::parse(r#"{"type":"executing","data":{"node":"102"}}"#).unwrap();
        assert_eq!(t.observe(&ServerEvent::Message(msg)), Relevance::Ours);
        assert_eq!(t.current_node(), Some("102"));
        let msg = WsMessage::parse(r#"{"type":"executing","data":{"node":null}}"#).unwrap();
        t.observe(&ServerEvent::Message(msg));
        assert!(!t.finished());
        let bin = ServerEvent::Binary(BinaryFrame::Text {
            node_id: "1".into(),
            text: "x".into(),
        });
        assert_eq!(t.observe(&bin), Relevance::Ours);
    }
}
