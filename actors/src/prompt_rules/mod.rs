//! ComfyUI 0.33.0's rules for a prompt at `POST /prompt`, as pure functions over the prompt and
//! the server's `/object_info`: links and cycles, required inputs, link type compatibility,
//! value conversion, min/max, combo choices, `LoadImage`'s file check, which outputs run, and
//! ComfyUI's own error objects (`error` and `node_errors`) with their wording.
//!
//! One implementation serves both sides: comfy-fleet checks every job with [`check_prompt`]
//! before it takes a queue slot, and the fake ComfyUI answers `POST /prompt` with
//! [`validate_prompt`]; the fake's contract tests hold these rules to captures of the real
//! server. What only a server can answer (its live folder listings, whether a file exists)
//! comes through [`ServerFiles`].

mod file_inputs;
mod node_classes;
mod problems;
pub mod pyfmt;
mod validate;
mod values;

pub use file_inputs::{FileInput, annotated_folder, file_inputs};
pub use node_classes::{ClassDefinitions, InputRule, InputSection, NodeClasses};
pub use problems::{Problem, problems};
pub use validate::{ServerFiles, Verdict, validate_prompt};

use serde_json::{Map, Value};

/// A prompt ComfyUI would refuse: its own answer, and the problems in words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", describe(problems))]
pub struct Refusal {
    /// ComfyUI's answer, `{"error", "node_errors"}` (`error` is null when only some outputs
    /// failed: ComfyUI would have run the others).
    pub answer: Box<Value>,
    /// Each problem, naming the node, its class, the input and the reason.
    pub problems: Vec<Problem>,
}

/// The problems in one line, `; ` between them (each names its node, input and reason).
pub fn describe(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Refusal {
    /// Whether every problem is a value missing from a list the server offers (a model or file
    /// installed after the list was read, or a typo).
    pub fn only_missing_choices(&self) -> bool {
        self.problems.iter().all(|p| p.kind == "value_not_in_list")
    }
}

/// Checks `prompt` as ComfyUI would at `POST /prompt`, without changing it. Stricter in one
/// way: an output that fails is refused even when others pass (ComfyUI would run the rest, and
/// the job would end without the outputs it was sent for).
pub fn check_prompt(
    prompt: &Map<String, Value>,
    classes: NodeClasses<'_>,
    server: &dyn ServerFiles,
) -> Result<(), Refusal> {
    // ComfyUI converts values in place; the caller's prompt is sent as written.
    let mut copy = prompt.clone();
    let (error, node_errors) = match validate_prompt(&mut copy, None, classes, server) {
        Verdict::Accepted { node_errors, .. } if node_errors.is_empty() => return Ok(()),
        Verdict::Accepted { node_errors, .. } => (Value::Null, node_errors),
        Verdict::Rejected { error, node_errors } => (error, node_errors),
        Verdict::Crash => {
            let node = prompt
                .iter()
                .find(|(_, n)| !n.is_object())
                .map(|(id, _)| id.clone());
            let problem = Problem {
                node,
                class: None,
                input: None,
                kind: "malformed_node".into(),
                reason: "a node must be a JSON object with `class_type` and `inputs`".into(),
            };
            return Err(Refusal {
                answer: Box::new(Value::Null),
                problems: vec![problem],
            });
        }
    };
    Err(Refusal {
        problems: problems(&error, &node_errors, prompt, classes),
        answer: Box::new(serde_json::json!({"error": error, "node_errors": node_errors})),
    })
}

/// ComfyUI keeps `extra_data` with the prompt and adds its own keys to it: anything but a JSON
/// object makes its handler fail (HTTP 500). `null` stands for none (it is not sent). Returns
/// what to tell the sender.
pub fn check_extra_data(extra_data: &Value) -> Result<(), String> {
    let kind = match extra_data {
        Value::Object(_) | Value::Null => return Ok(()),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
    };
    Err(format!(
        "`extra_data` must be a JSON object (it is {kind}); send {{}} or leave it out"
    ))
}

#[cfg(test)]
mod tests;
