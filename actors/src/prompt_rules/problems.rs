//! ComfyUI's verdict on a prompt in words for the person who sent it: each refused node with its
//! class, the input at fault and the reason, built from ComfyUI's own error objects.

use std::fmt;

use serde_json::{Map, Value};

use super::node_classes::NodeClasses;

/// One thing wrong with a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The node at fault; `None` for the prompt as a whole (no outputs, say).
    pub node: Option<String>,
    /// Its class, when known.
    pub class: Option<String>,
    /// The input at fault, when one is.
    pub input: Option<String>,
    /// ComfyUI's error type (`value_smaller_than_min`, `dependency_cycle`…).
    pub kind: String,
    /// What is wrong, in ComfyUI's words.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.node, &self.class) {
            (Some(node), Some(class)) if !class.is_empty() => write!(f, "node {node} ({class})")?,
            (Some(node), _) => write!(f, "node {node}")?,
            (None, _) => f.write_str("the workflow")?,
        }
        if let Some(input) = &self.input {
            write!(f, ", input `{input}`")?;
        }
        write!(f, ": {}", self.reason)
    }
}

fn text<'a>(error: &'a Value, key: &str) -> &'a str {
    error.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The reason of one ComfyUI error object, said plainly.
fn reason(error: &Value, input: Option<&str>) -> String {
    let message = text(error, "message");
    let details = text(error, "details");
    let extra = error.get("extra_info").unwrap_or(&Value::Null);
    let exception = extra
        .get("exception_message")
        .and_then(Value::as_str)
        .unwrap_or(details);
    match text(error, "type") {
        "invalid_input_type" => format!("{message}: {exception}"),
        "return_type_mismatch" => {
            let received = extra
                .get("received_type")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let wanted = extra
                .get("input_config")
                .and_then(|c| c.get(0))
                .map(|t| {
                    t.as_str()
                        .map_or_else(|| "COMBO".to_string(), str::to_string)
                })
                .unwrap_or_default();
            format!("{message}: it receives {received} where {wanted} is expected")
        }
        "value_not_in_list" | "custom_validation_failed" => {
            // Details start with the input's name ("sampler: 'x' not in […]", "image - …").
            let shown = input
                .and_then(|i| {
                    details
                        .strip_prefix(i)
                        .map(|rest| rest.trim_start_matches([':', '-', ' ']))
                })
                .unwrap_or(details);
            format!("{message}: {shown}")
        }
        "missing_node_type" => message.to_string(),
        "prompt_no_outputs" => format!(
            "{message}: add an output node (SaveImage, PreviewImage…) for the workflow to produce anything"
        ),
        _ if details.is_empty() || Some(details) == input => message.to_string(),
        _ if message.is_empty() => details.to_string(),
        _ => format!("{message}: {details}"),
    }
}

/// A link of `node` that ComfyUI could not follow: the input, and what is wrong with it.
fn broken_link(
    node: &str,
    prompt: &Map<String, Value>,
    classes: NodeClasses<'_>,
) -> Option<(String, String)> {
    let inputs = prompt.get(node)?.get("inputs")?.as_object()?;
    for (input, value) in inputs {
        let Some([source, slot]) = value.as_array().map(Vec::as_slice) else {
            continue;
        };
        let Some(source_node) = source.as_str().and_then(|s| prompt.get(s).map(|n| (s, n))) else {
            return Some((
                input.clone(),
                format!(
                    "it is linked to node {}, which is not in the workflow",
                    super::pyfmt::str_of(source)
                ),
            ));
        };
        let (source_id, source_node) = source_node;
        let class = source_node
            .get("class_type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let outputs = classes.return_types(class).len();
        let fits = match slot {
            Value::Number(n) => n.as_i64().is_some_and(|i| {
                (i >= 0 && (i as usize) < outputs)
                    || (i < 0 && i.unsigned_abs() as usize <= outputs)
            }),
            Value::Bool(b) => usize::from(*b) < outputs,
            _ => false,
        };
        if !fits {
            return Some((
                input.clone(),
                format!(
                    "it is linked to output {} of node {source_id} ({class}), which has {outputs} output{}",
                    super::pyfmt::str_of(slot),
                    if outputs == 1 { "" } else { "s" }
                ),
            ));
        }
    }
    None
}

/// The problems in ComfyUI's answer about `prompt`: every node error, or the top-level error
/// when no node has one. Nodes come in the prompt's order.
pub fn problems(
    error: &Value,
    node_errors: &Map<String, Value>,
    prompt: &Map<String, Value>,
    classes: NodeClasses<'_>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    for (node, entry) in node_errors {
        let class = entry
            .get("class_type")
            .and_then(Value::as_str)
            .map(str::to_string);
        for e in entry
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = text(e, "type").to_string();
            // ComfyUI files a broken link under the node that has it, but with the input name
            // of the node downstream that led there: name the link itself.
            if matches!(
                kind.as_str(),
                "exception_during_inner_validation" | "exception_during_validation"
            ) && let Some((input, reason)) = broken_link(node, prompt, classes)
            {
                out.push(Problem {
                    node: Some(node.clone()),
                    class: class.clone(),
                    input: Some(input),
                    kind,
                    reason,
                });
                continue;
            }
            let input = e
                .get("extra_info")
                .and_then(|x| x.get("input_name"))
                .and_then(Value::as_str)
                .map(str::to_string);
            out.push(Problem {
                node: Some(node.clone()),
                class: class.clone(),
                reason: reason(e, input.as_deref()),
                input,
                kind,
            });
        }
    }
    if out.is_empty() {
        // A prompt-level error; a missing class names its node in `extra_info`.
        let node = error
            .get("extra_info")
            .and_then(|x| x.get("node_id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        out.push(Problem {
            node,
            class: None,
            input: None,
            kind: text(error, "type").to_string(),
            reason: reason(error, None),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_node_error_names_node_class_input_and_reason() {
        let classes_doc =
            json!({"EmptyImage": {"output": ["IMAGE"]}, "ImageInvert": {"output": ["IMAGE"]}});
        let classes = NodeClasses::new(classes_doc.as_object().unwrap());
        let prompt = json!({
            "1": {"class_type": "EmptyImage", "inputs": {"width": 0}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["99", 0]}}
        });
        let node_errors = json!({
            "1": {"class_type": "EmptyImage", "dependent_outputs": ["3"], "errors": [
                {"type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1",
                 "details": "width", "extra_info": {"input_name": "width"}}
            ]},
            "2": {"class_type": "ImageInvert", "dependent_outputs": ["3"], "errors": [
                {"type": "exception_during_inner_validation", "message": "Exception when validating inner node",
                 "details": "'99'", "extra_info": {"input_name": "images", "exception_type": "KeyError",
                 "exception_message": "'99'", "linked_node": ["2", 0]}}
            ]}
        });
        let found = problems(
            &json!({}),
            node_errors.as_object().unwrap(),
            prompt.as_object().unwrap(),
            classes,
        );
        let said: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            said,
            [
                "node 1 (EmptyImage), input `width`: Value 0 smaller than min of 1",
                "node 2 (ImageInvert), input `image`: it is linked to node 99, which is not in the workflow",
            ]
        );
    }

    #[test]
    fn a_prompt_level_error_stands_alone() {
        let error = json!({"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                           "details": "", "extra_info": {}});
        let found = problems(
            &error,
            &Map::new(),
            &Map::new(),
            NodeClasses::new(&Map::new()),
        );
        assert_eq!(
            found[0].to_string(),
            "the workflow: Prompt has no outputs: add an output node (SaveImage, PreviewImage…) for the workflow to produce anything"
        );
    }
}
