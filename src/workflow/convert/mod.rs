//! Native UI→API conversion: produces the prompt ComfyUI's own frontend would queue for a UI
//! workflow, using only the workflow and the target server's `/object_info`.
//!
//! The pieces: [`graph`] parses the workflow; [`widgets`] rebuilds each node's widgets (with
//! [`widget_types`], [`definition_patches`] and [`custom_combo`]) and maps its saved values onto
//! input names; [`resolve`] follows links through virtual, bypassed and subgraph nodes; and
//! [`dynamic_prompt`] applies the text-widget pass.

mod custom_combo;
mod definition_patches;
mod dynamic_prompt;
mod graph;
mod resolve;
mod widget_types;
mod widgets;

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::WorkflowError;
use super::format::ApiPrompt;
use super::object_info::ObjectInfo;
use graph::{UiDocument, UiGraph, UiNode};
use resolve::{Frame, Resolved, Resolver};

pub(crate) use widget_types::widget_kind as widget_spec_kind;

/// How deep subgraph instances may nest before the workflow is treated as circular.
pub(crate) const MAX_NESTING: usize = 32;

/// Most nodes one conversion may emit: definitions that nest several instances of each other
/// multiply, and a hostile file must not exhaust memory.
pub(crate) const MAX_NODES: usize = 100_000;

/// Frontend-only node types that never reach the prompt.
pub(crate) fn is_virtual(class: &str) -> bool {
    matches!(class, "Reroute" | "PrimitiveNode" | "Note" | "MarkdownNote")
}

/// Node modes the frontend leaves out of the prompt.
pub(crate) const MODE_MUTED: i64 = 2;
pub(crate) const MODE_BYPASS: i64 = 4;

/// Converts a UI workflow into the API prompt the frontend would produce.
pub fn ui_to_api(doc: &Value, object_info: &ObjectInfo) -> Result<ApiPrompt, WorkflowError> {
    let document = UiDocument::parse(doc)?;
    check_node_types(&document, object_info)?;
    let primitives = primitive_values(&document);
    let mut converter = Converter {
        document: &document,
        object_info,
        primitives,
        out: Map::new(),
        rng: rand::rng(),
    };
    let root = Frame::root(&document.root);
    converter.emit_graph(&[root], &mut Vec::new())?;
    Ok(ApiPrompt(converter.out))
}

/// Rejects legacy group nodes and node types the server does not have, naming the node.
fn check_node_types(document: &UiDocument, object_info: &ObjectInfo) -> Result<(), WorkflowError> {
    let graphs = std::iter::once((None, &document.root)).chain(
        document
            .subgraphs
            .iter()
            .map(|(id, d)| (Some(id), &d.graph)),
    );
    for (def_id, graph) in graphs {
        for node in &graph.nodes {
            let id = match def_id {
                Some(def) => format!("{} (inside subgraph {def})", node.id),
                None => node.id.clone(),
            };
            if node.class.starts_with("workflow>") || node.class.starts_with("workflow/") {
                return Err(WorkflowError::GroupNode {
                    id,
                    class: node.class.clone(),
                });
            }
            if is_virtual(&node.class)
                || document.subgraphs.contains_key(&node.class)
                || object_info.contains(&node.class)
            {
                continue;
            }
            // Muted and bypassed nodes never reach the server, but the frontend still refuses
            // unknown types; so do we.
            return Err(WorkflowError::UnknownNodeType {
                id,
                class: node.class.clone(),
            });
        }
    }
    Ok(())
}

/// Values that PrimitiveNodes push into their targets' widgets:
/// (graph key, target node id) → [(widget name, value)].
type PrimitiveValues = HashMap<(Option<String>, String), Vec<(String, Value)>>;

fn primitive_values(document: &UiDocument) -> PrimitiveValues {
    let mut map = PrimitiveValues::new();
    let graphs = std::iter::once((None, &document.root)).chain(
        document
            .subgraphs
            .iter()
            .map(|(id, d)| (Some(id.clone()), &d.graph)),
    );
    for (key, graph) in graphs {
        for node in graph.nodes.iter().filter(|n| n.class == "PrimitiveNode") {
            let Some(value) = node.widgets_values.get(0).cloned() else {
                continue;
            };
            for link in graph.links.values().filter(|l| l.origin == node.id) {
                let Some(target) = graph.node(&link.target) else {
                    continue;
                };
                let Some(input) = target.inputs.get(link.target_slot) else {
                    continue;
                };
                let name = input.widget.clone().unwrap_or_else(|| input.name.clone());
                map.entry((key.clone(), target.id.clone()))
                    .or_default()
                    .push((name, value.clone()));
            }
        }
    }
    map
}

struct Converter<'a> {
    document: &'a UiDocument,
    object_info: &'a ObjectInfo,
    primitives: PrimitiveValues,
    out: Map<String, Value>,
    rng: rand::rngs::ThreadRng,
}

impl<'a> Converter<'a> {
    fn emit_graph(
        &mut self,
        frames: &[Frame<'a>],
        stack: &mut Vec<&'a str>,
    ) -> Result<(), WorkflowError> {
        let Some(frame) = frames.last() else {
            return Ok(());
        };
        let graph: &'a UiGraph = frame.graph;
        for node in &graph.nodes {
            if is_virtual(&node.class) || node.mode == MODE_MUTED {
                continue;
            }
            // A bypassed instance at the root contributes nothing; one nested inside another
            // subgraph still contributes its inner nodes (the frontend flattens nested
            // instances without looking at their mode).
            if node.mode == MODE_BYPASS && frames.len() == 1 {
                continue;
            }
            if let Some((def_id, def)) = self.document.subgraphs.get_key_value(&node.class) {
                if stack.contains(&def_id.as_str()) || stack.len() >= MAX_NESTING {
                    return Err(WorkflowError::Cycle(format!(
                        "subgraph `{def_id}` contains itself (instance {})",
                        node.id
                    )));
                }
                let mut inner = frames.to_vec();
                inner.push(frame.enter(node, def_id, def));
                stack.push(def_id);
                self.emit_graph(&inner, stack)?;
                stack.pop();
                continue;
            }
            if node.mode == MODE_BYPASS {
                continue;
            }
            self.emit_node(frames, node)?;
        }
        Ok(())
    }

    fn emit_node(&mut self, frames: &[Frame<'a>], node: &'a UiNode) -> Result<(), WorkflowError> {
        let Some(frame) = frames.last() else {
            return Ok(());
        };
        if self.out.len() >= MAX_NODES {
            return Err(WorkflowError::Malformed(format!(
                "the flattened workflow has more than {MAX_NODES} nodes"
            )));
        }
        let full_id = format!("{}{}", frame.prefix, node.id);
        let def =
            self.object_info
                .node(&node.class)
                .ok_or_else(|| WorkflowError::UnknownNodeType {
                    id: full_id.clone(),
                    class: node.class.clone(),
                })?;
        let mut widget_values = widgets::map_widget_values(&def, &node.widgets_values);
        if let Some(pushed) = self
            .primitives
            .get(&(frame.def_id.map(str::to_owned), node.id.clone()))
        {
            for (name, value) in pushed {
                if let Some(w) = widget_values.iter_mut().find(|w| &w.name == name) {
                    w.value = value.clone();
                }
            }
        }
        if let Some(instance) = frame.instance {
            for w in &mut widget_values {
                if let Some(v) = resolve::proxied_value(instance, &node.id, &w.name) {
                    w.value = v;
                }
            }
        }
        // Legacy load fix-up of the frontend: `sample_euler` → `euler`.
        if matches!(node.class.as_str(), "KSampler" | "KSamplerAdvanced") {
            for w in &mut widget_values {
                if w.name == "sampler_name"
                    && let Some(stripped) = w.value.as_str().and_then(|s| s.strip_prefix("sample_"))
                {
                    w.value = Value::String(stripped.to_owned());
                }
            }
        }
        let mut inputs = Map::new();
        for w in widget_values {
            let value = match (&w.value, w.dynamic_prompts) {
                (Value::String(s), true) => {
                    Value::String(dynamic_prompt::process(s, &mut self.rng))
                }
                _ => w.value,
            };
            inputs.insert(w.name, wrap_literal(value));
        }
        let resolver = Resolver {
            document: self.document,
            object_info: self.object_info,
        };
        for input in &node.inputs {
            let Some(link) = input.link else { continue };
            if input.name.is_empty() {
                continue;
            }
            match resolver.resolve_link(frames, link, &input.kind, 0)? {
                Resolved::Link(id, slot) => {
                    inputs.insert(
                        input.name.clone(),
                        Value::Array(vec![id.into(), slot.into()]),
                    );
                }
                Resolved::Literal(v) => {
                    inputs.insert(input.name.clone(), wrap_literal(v));
                }
                Resolved::Nothing => {}
            }
        }
        let title = node
            .title
            .clone()
            .or_else(|| def.display_name().map(str::to_owned))
            .unwrap_or_else(|| node.class.clone());
        let mut entry = Map::new();
        entry.insert("inputs".into(), Value::Object(inputs));
        entry.insert("class_type".into(), Value::String(node.class.clone()));
        let mut meta = Map::new();
        meta.insert("title".into(), Value::String(title));
        entry.insert("_meta".into(), Value::Object(meta));
        self.out.insert(full_id, Value::Object(entry));
        Ok(())
    }
}

/// Array literals are wrapped so the backend does not take them for links.
fn wrap_literal(v: Value) -> Value {
    match v {
        Value::Array(_) => {
            let mut m = Map::new();
            m.insert("__value__".into(), v);
            Value::Object(m)
        }
        other => other,
    }
}
