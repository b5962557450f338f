//! The walk ComfyUI 0.33.0 makes at `POST /prompt`: every node must name a known class; then
//! each output node is validated with its ancestors (links and their types, required inputs,
//! value conversion, min/max, combo choices, `LoadImage`'s file check). Outputs that fail are
//! dropped; the prompt is refused only when no output is left. The error objects and their
//! wording are ComfyUI's own (held to captures of the real server by the fake's contract tests).

use serde_json::{Map, Value, json};

use super::node_classes::{InputSection, NodeClasses};
use super::pyfmt;
use super::values;

/// What validation decided.
#[derive(Debug)]
pub enum Verdict {
    /// Queue the prompt; run only `outputs` (node errors of dropped outputs are reported too).
    Accepted {
        outputs: Vec<String>,
        node_errors: Map<String, Value>,
    },
    /// HTTP 400 with `{"error", "node_errors"}`.
    Rejected {
        error: Value,
        node_errors: Map<String, Value>,
    },
    /// The prompt is so malformed that the real server's handler crashes (HTTP 500): a node
    /// that is not a JSON object.
    Crash,
}

/// What only the server itself can answer: its live choice lists and its files.
pub trait ServerFiles {
    /// The choices the server lists for `class.input` right now (its input or model folders),
    /// replacing the declared list; `None` keeps the declared list.
    fn live_choices(&self, class: &str, input: &str) -> Option<Vec<Value>>;
    /// `LoadImage`'s own check: whether the (maybe annotated, `x.png [output]`) image exists.
    fn image_exists(&self, name: &str) -> bool;
}

/// A Python exception raised while validating a link.
struct PyException {
    type_name: &'static str,
    message: String,
    traceback: Vec<String>,
}

const TB_RECURSE: &str = "  File \"/opt/comfyui/ComfyUI/execution.py\", line 955, in validate_inputs\n    r = await validate_inputs(prompt_id, prompt, o_id, validated, visiting)\n        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n";
const TB_TOP: &str = "  File \"/opt/comfyui/ComfyUI/execution.py\", line 1047, in validate_prompt\n    m = await validate_inputs(prompt_id, prompt, o, validated)\n        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n";
const TB_KEY: &str = "  File \"/opt/comfyui/ComfyUI/execution.py\", line 933, in validate_inputs\n    o_class_type = prompt[o_id]['class_type']\n                   ~~~~~~^^^^^^\n";
const TB_INDEX: &str = "  File \"/opt/comfyui/ComfyUI/execution.py\", line 935, in validate_inputs\n    received_type = r[val[1]]\n                    ~^^^^^^^^\n";

fn err(kind: &str, message: &str, details: String, extra: Value) -> Value {
    json!({"type": kind, "message": message, "details": details, "extra_info": extra})
}

struct Validator<'a> {
    prompt: &'a mut Map<String, Value>,
    classes: NodeClasses<'a>,
    server: &'a dyn ServerFiles,
    /// node id → (valid, reasons), in insertion order.
    validated: Vec<(String, bool, Vec<Value>)>,
}

impl Validator<'_> {
    fn lookup(&self, id: &str) -> Option<(bool, Vec<Value>)> {
        self.validated
            .iter()
            .find(|(n, _, _)| n == id)
            .map(|(_, ok, r)| (*ok, r.clone()))
    }

    fn record(&mut self, id: &str, ok: bool, reasons: Vec<Value>) {
        if let Some(slot) = self.validated.iter_mut().find(|(n, _, _)| n == id) {
            slot.1 = ok;
            slot.2 = reasons;
        } else {
            self.validated.push((id.to_string(), ok, reasons));
        }
    }

    fn class_of(&self, id: &str) -> String {
        self.prompt
            .get(id)
            .and_then(|n| n.get("class_type"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// Resolves a link's source type, raising the Python exceptions the real code raises.
    fn linked_type(&self, link: &[Value]) -> Result<String, PyException> {
        let key_error = |repr: String| PyException {
            type_name: "KeyError",
            message: repr,
            traceback: vec![TB_KEY.to_string()],
        };
        let o_id = match &link[0] {
            Value::String(s) => s.clone(),
            other => return Err(key_error(pyfmt::repr(other))),
        };
        if !self.prompt.contains_key(&o_id) {
            return Err(key_error(pyfmt::repr_str(&o_id)));
        }
        let types = self.classes.return_types(&self.class_of(&o_id));
        let index = match &link[1] {
            Value::Number(n) if n.is_i64() || n.is_u64() => n.as_i64().unwrap_or(i64::MAX),
            Value::Bool(b) => i64::from(*b),
            other => {
                return Err(PyException {
                    type_name: "TypeError",
                    message: format!(
                        "tuple indices must be integers or slices, not {}",
                        pyfmt::type_name(other)
                    ),
                    traceback: vec![TB_INDEX.to_string()],
                });
            }
        };
        let len = types.len() as i64;
        let idx = if index < 0 { index + len } else { index };
        if idx < 0 || idx >= len {
            return Err(PyException {
                type_name: "IndexError",
                message: "tuple index out of range".into(),
                traceback: vec![TB_INDEX.to_string()],
            });
        }
        Ok(types[idx as usize].clone())
    }

    fn validate_inputs(
        &mut self,
        id: &str,
        visiting: &mut Vec<String>,
    ) -> Result<(bool, Vec<Value>), PyException> {
        if let Some(done) = self.lookup(id) {
            return Ok(done);
        }
        if let Some(start) = visiting.iter().position(|v| v == id) {
            // Every node on the cycle is refused, each naming the whole path.
            let mut path_nodes: Vec<String> = visiting[start..].to_vec();
            path_nodes.push(id.to_string());
            let mut cycle_nodes: Vec<String> = Vec::new();
            for n in &path_nodes {
                if !cycle_nodes.contains(n) {
                    cycle_nodes.push(n.clone());
                }
            }
            let path = path_nodes
                .iter()
                .map(|n| format!("{n} ({})", self.class_of(n)))
                .collect::<Vec<_>>()
                .join(" -> ");
            for node in &cycle_nodes {
                let reasons = vec![err(
                    "dependency_cycle",
                    "Dependency cycle detected",
                    path.clone(),
                    json!({"node_id": node, "cycle_nodes": cycle_nodes}),
                )];
                self.record(node, false, reasons);
            }
            return Ok(self.lookup(id).unwrap_or((false, Vec::new())));
        }
        let class = self.class_of(id);
        let inputs: Map<String, Value> = self
            .prompt
            .get(id)
            .and_then(|n| n.get("inputs"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut errors = Vec::new();
        let mut valid = true;
        let mut converted: Vec<(String, Value)> = Vec::new();
        let mut custom_checked: Vec<(String, Value)> = Vec::new();
        for spec in self.classes.inputs(&class) {
            let x = spec.name.clone();
            let Some(val) = inputs.get(&x) else {
                if spec.section == InputSection::Required {
                    errors.push(err(
                        "required_input_missing",
                        "Required input is missing",
                        x.clone(),
                        json!({"input_name": x}),
                    ));
                }
                continue;
            };
            let info = spec.input_config();
            if let Value::Array(link) = val {
                if link.len() != 2 {
                    errors.push(err(
                        "bad_linked_input",
                        "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                        x.clone(),
                        json!({"input_name": x, "input_config": info, "received_value": val}),
                    ));
                    continue;
                }
                let received = self.linked_type(link)?;
                if !values::types_compatible(&received, &spec) {
                    let input_type = match &spec.kind {
                        Value::String(s) => s.clone(),
                        other => pyfmt::repr(other),
                    };
                    errors.push(err(
                        "return_type_mismatch",
                        "Return type mismatch between linked nodes",
                        format!("{x}, received_type({received}) mismatch input_type({input_type})"),
                        json!({"input_name": x, "input_config": info, "received_type": received, "linked_node": val}),
                    ));
                    continue;
                }
                let o_id = link[0].as_str().unwrap_or_default().to_string();
                visiting.push(id.to_string());
                let inner = self.validate_inputs(&o_id, visiting);
                visiting.pop();
                match inner {
                    Ok((true, _)) => {}
                    Ok((false, _)) => valid = false,
                    Err(ex) => {
                        valid = false;
                        let mut traceback = vec![TB_RECURSE.to_string()];
                        traceback.extend(ex.traceback);
                        let reasons = vec![err(
                            "exception_during_inner_validation",
                            "Exception when validating inner node",
                            ex.message.clone(),
                            json!({
                                "input_name": x,
                                "input_config": info,
                                "exception_message": ex.message,
                                "exception_type": ex.type_name,
                                "traceback": traceback,
                                "linked_node": val,
                            }),
                        )];
                        self.record(&o_id, false, reasons);
                    }
                }
                continue;
            }
            // A list value travels wrapped as `{"__value__": [...]}` (a bare list is a link).
            let val = match val {
                Value::Object(o) if o.contains_key("__value__") => {
                    let inner = &o["__value__"];
                    converted.push((x.clone(), inner.clone()));
                    inner
                }
                other => other,
            };
            if is_custom_validated(&class, &x) {
                custom_checked.push((x.clone(), val.clone()));
                continue;
            }
            let val = match values::convert(&spec, val) {
                Ok(v) => v,
                Err(message) => {
                    let type_name = spec.type_name().unwrap_or("COMBO");
                    errors.push(err(
                        "invalid_input_type",
                        &format!("Failed to convert an input value to a {type_name} value"),
                        format!("{x}, {}, {message}", pyfmt::str_of(val)),
                        json!({"input_name": x, "input_config": info, "received_value": val, "exception_message": message}),
                    ));
                    continue;
                }
            };
            converted.push((x.clone(), val.clone()));
            if let (Some(min), Some(v)) = (spec.options.get("min"), val.as_f64())
                && min.as_f64().is_some_and(|m| v < m)
            {
                errors.push(err(
                    "value_smaller_than_min",
                    &format!(
                        "Value {} smaller than min of {}",
                        pyfmt::str_of(&val),
                        pyfmt::str_of(min)
                    ),
                    x.clone(),
                    json!({"input_name": x, "input_config": info, "received_value": val}),
                ));
                continue;
            }
            if let (Some(max), Some(v)) = (spec.options.get("max"), val.as_f64())
                && max.as_f64().is_some_and(|m| v > m)
            {
                errors.push(err(
                    "value_bigger_than_max",
                    &format!(
                        "Value {} bigger than max of {}",
                        pyfmt::str_of(&val),
                        pyfmt::str_of(max)
                    ),
                    x.clone(),
                    json!({"input_name": x, "input_config": info, "received_value": val}),
                ));
                continue;
            }
            if let Some(options) = self
                .server
                .live_choices(&class, &x)
                .or_else(|| spec.combo_options())
            {
                let multiselect = spec.options.get("multiselect").is_some_and(values::truthy);
                let invalid: Vec<&Value> = match &val {
                    Value::Array(list) if multiselect => {
                        list.iter().filter(|v| !options.contains(v)).collect()
                    }
                    one if !options.contains(one) => vec![one],
                    _ => Vec::new(),
                };
                if invalid.is_empty() {
                    continue;
                }
                // ComfyUI does not send back long lists (scanned model paths).
                let (list_info, input_config) = if options.len() > 20 {
                    (format!("(list of length {})", options.len()), Value::Null)
                } else {
                    (pyfmt::repr(&Value::Array(options.clone())), info.clone())
                };
                let shown = invalid
                    .iter()
                    .map(|v| pyfmt::repr(v))
                    .collect::<Vec<_>>()
                    .join(", ");
                errors.push(err(
                    "value_not_in_list",
                    "Value not in list",
                    format!("{x}: {shown} not in {list_info}"),
                    json!({"input_name": x, "input_config": input_config, "received_value": val}),
                ));
                continue;
            }
        }
        // ComfyUI stores converted values back into the prompt.
        if let Some(node_inputs) = self
            .prompt
            .get_mut(id)
            .and_then(|n| n.get_mut("inputs"))
            .and_then(Value::as_object_mut)
        {
            for (k, v) in converted {
                node_inputs.insert(k, v);
            }
        }
        for (x, val) in custom_checked {
            let name = pyfmt::str_of(&val);
            if !self.server.image_exists(&name) {
                errors.push(err(
                    "custom_validation_failed",
                    "Custom validation failed for node",
                    format!("{x} - Invalid image file: {name}"),
                    json!({"input_name": x}),
                ));
            }
        }
        // A cycle found deeper down may already have refused this node: join its reasons.
        let (before_ok, mut reasons) = self.lookup(id).unwrap_or((true, Vec::new()));
        let ok = before_ok && valid && errors.is_empty();
        for e in errors {
            if !reasons.contains(&e) {
                reasons.push(e);
            }
        }
        self.record(id, ok, reasons.clone());
        Ok((ok, reasons))
    }
}

/// Inputs checked by the class's own `VALIDATE_INPUTS` (a file check) instead of the combo list.
fn is_custom_validated(class: &str, input: &str) -> bool {
    matches!(
        (class, input),
        ("LoadImage", "image") | ("LoadImageMask", "image")
    )
}

/// Validates `prompt` (converting constant inputs in place, as ComfyUI does).
pub fn validate_prompt(
    prompt: &mut Map<String, Value>,
    partial_targets: Option<&[String]>,
    classes: NodeClasses<'_>,
    server: &dyn ServerFiles,
) -> Verdict {
    let mut outputs = Vec::new();
    for (id, node) in prompt.iter() {
        let Some(node) = node.as_object() else {
            return Verdict::Crash;
        };
        let title = node
            .get("_meta")
            .and_then(|m| m.get("title"))
            .and_then(Value::as_str);
        let Some(class_value) = node.get("class_type") else {
            let shown = title.map(str::to_string).unwrap_or(format!("ID #{id}"));
            return Verdict::Rejected {
                error: err(
                    "missing_node_type",
                    &format!(
                        "Node '{shown}' has no class_type. The workflow may be corrupted or a custom node is missing."
                    ),
                    format!("Node ID '#{id}'"),
                    json!({"node_id": id, "class_type": null, "node_title": title}),
                ),
                node_errors: Map::new(),
            };
        };
        let class = class_value.as_str().unwrap_or_default();
        if classes.class(class).is_none() {
            let class_text = pyfmt::str_of(class_value);
            return Verdict::Rejected {
                error: err(
                    "missing_node_type",
                    &format!(
                        "Node '{class_text}' not found. The custom node may not be installed."
                    ),
                    format!("Node ID '#{id}'"),
                    json!({"node_id": id, "class_type": class_value, "node_title": title.map(Value::from).unwrap_or(class_value.clone())}),
                ),
                node_errors: Map::new(),
            };
        }
        if classes.is_output(class) && partial_targets.is_none_or(|t| t.iter().any(|x| x == id)) {
            outputs.push(id.clone());
        }
    }
    if outputs.is_empty() {
        return Verdict::Rejected {
            error: err(
                "prompt_no_outputs",
                "Prompt has no outputs",
                String::new(),
                json!({}),
            ),
            node_errors: Map::new(),
        };
    }
    let mut v = Validator {
        prompt,
        classes,
        server,
        validated: Vec::new(),
    };
    let mut good = Vec::new();
    let mut failed: Vec<(String, Vec<Value>)> = Vec::new();
    let mut node_errors: Map<String, Value> = Map::new();
    for o in &outputs {
        let (ok, reasons) = match v.validate_inputs(o, &mut Vec::new()) {
            Ok(r) => r,
            Err(ex) => {
                let mut traceback = vec![TB_TOP.to_string()];
                traceback.extend(ex.traceback);
                let reasons = vec![err(
                    "exception_during_validation",
                    "Exception when validating node",
                    ex.message.clone(),
                    json!({"exception_type": ex.type_name, "traceback": traceback}),
                )];
                v.record(o, false, reasons.clone());
                (false, reasons)
            }
        };
        if ok {
            good.push(o.clone());
            continue;
        }
        failed.push((o.clone(), reasons));
        for (node_id, node_ok, node_reasons) in &v.validated {
            if *node_ok || node_reasons.is_empty() {
                continue;
            }
            let class = v.class_of(node_id);
            let entry = node_errors.entry(node_id.clone()).or_insert_with(
                || json!({"errors": node_reasons, "dependent_outputs": [], "class_type": class}),
            );
            if let Some(deps) = entry
                .get_mut("dependent_outputs")
                .and_then(Value::as_array_mut)
            {
                deps.push(Value::String(o.clone()));
            }
        }
    }
    if good.is_empty() {
        let details: Vec<String> = failed
            .iter()
            .flat_map(|(_, reasons)| {
                reasons.iter().map(|r| {
                    format!(
                        "{}: {}",
                        r.get("message").and_then(Value::as_str).unwrap_or_default(),
                        r.get("details").and_then(Value::as_str).unwrap_or_default()
                    )
                })
            })
            .collect();
        return Verdict::Rejected {
            error: err(
                "prompt_outputs_failed_validation",
                "Prompt outputs failed validation",
                details.join("\n"),
                json!({}),
            ),
            node_errors,
        };
    }
    Verdict::Accepted {
        outputs: good,
        node_errors,
    }
}
