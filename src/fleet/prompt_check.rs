//! The checks a job's prompt passes before it takes a queue slot, so that whatever ComfyUI would
//! refuse is answered at once (HTTP 400) instead of failing later: `extra_data` is a JSON object,
//! its file inputs name only the job's own uploads or the operator's files
//! ([`crate::fleet::job_files`]), and ComfyUI's own rules accept the prompt
//! ([`comfy_fleet_actors::prompt_rules`]) against the catalog's `/object_info`.

use comfy_fleet_actors::prompt_rules::{
    NodeClasses, Problem, ServerFiles, check_extra_data, check_prompt, describe,
};
use serde_json::{Map, Value};

use crate::fleet::job_files::{OwnFiles, check_file_inputs};
use crate::workflow::ObjectInfo;

/// Why a prompt may not be queued.
#[derive(Debug, thiserror::Error)]
pub enum PromptCheckError {
    #[error("{0}")]
    ExtraData(String),
    /// What is wrong, node by node: files the job may not read, and what ComfyUI would refuse.
    #[error("the workflow cannot run: {}", describe(.0))]
    Invalid(Vec<Problem>),
}

impl PromptCheckError {
    /// Whether the only fault is a value missing from a list the server offers: a model or
    /// file installed since the catalog's `/object_info` was read, or a typo.
    pub fn only_missing_choices(&self) -> bool {
        matches!(self, Self::Invalid(problems) if problems.iter().all(|p| p.kind == "value_not_in_list"))
    }
}

/// The job's files are uploaded only when it runs, and [`check_file_inputs`] has already held
/// every file input to the job's own files and the server's lists.
struct UploadedWhenItRuns;

impl ServerFiles for UploadedWhenItRuns {
    fn live_choices(&self, _class: &str, _input: &str) -> Option<Vec<Value>> {
        None
    }

    fn image_exists(&self, _name: &str) -> bool {
        true
    }
}

/// Checks a job's prompt (an API prompt object) and `extra_data` before queueing.
pub fn check_job_prompt(
    prompt: &Map<String, Value>,
    extra_data: &Value,
    object_info: &ObjectInfo,
    own: &OwnFiles,
) -> Result<(), PromptCheckError> {
    check_extra_data(extra_data).map_err(PromptCheckError::ExtraData)?;
    let classes = NodeClasses::new(object_info);
    let mut problems = check_file_inputs(prompt, classes, own);
    if let Err(refusal) = check_prompt(prompt, classes, &UploadedWhenItRuns) {
        problems.extend(refusal.problems);
    }
    if problems.is_empty() {
        return Ok(());
    }
    // In the prompt's order, whichever check found them.
    let position = |p: &Problem| {
        p.node
            .as_ref()
            .and_then(|n| prompt.keys().position(|k| k == n))
            .unwrap_or(usize::MAX)
    };
    problems.sort_by_key(position);
    Err(PromptCheckError::Invalid(problems))
}
