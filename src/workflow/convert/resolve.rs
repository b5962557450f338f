//! Link resolution: from an input's link to the real node output (or literal) that feeds it,
//! through Reroutes, bypassed nodes, muted nodes and subgraph boundaries.

use serde_json::Value;

use super::graph::{SUBGRAPH_INPUT, SUBGRAPH_OUTPUT, SubgraphDef, UiDocument, UiGraph, UiNode};
use super::widget_types::is_widget_type_name;
use super::widgets;
use super::{MAX_NESTING, MODE_BYPASS, MODE_MUTED};
use crate::workflow::error::WorkflowError;
use crate::workflow::object_info::ObjectInfo;

/// Steps one resolution may take before the graph is declared circular.
const MAX_STEPS: usize = 256;

/// One level of graph being walked: the root, or a subgraph definition entered through an
/// instance node.
#[derive(Debug, Clone)]
pub(crate) struct Frame<'a> {
    pub graph: &'a UiGraph,
    pub def_id: Option<&'a str>,
    pub def: Option<&'a SubgraphDef>,
    pub instance: Option<&'a UiNode>,
    /// Flattened-id prefix of nodes in this graph (`""` at root, `"12:"`, `"12:7:"`, …).
    pub prefix: String,
}

impl<'a> Frame<'a> {
    pub fn root(graph: &'a UiGraph) -> Self {
        Self {
            graph,
            def_id: None,
            def: None,
            instance: None,
            prefix: String::new(),
        }
    }

    /// The frame inside `instance` (a node of this frame's graph).
    pub fn enter(&self, instance: &'a UiNode, def_id: &'a str, def: &'a SubgraphDef) -> Self {
        Self {
            graph: &def.graph,
            def_id: Some(def_id),
            def: Some(def),
            instance: Some(instance),
            prefix: format!("{}{}:", self.prefix, instance.id),
        }
    }
}

/// Where a link ends up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resolved {
    /// A real node's output: flattened id and slot.
    Link(String, usize),
    /// A literal (a promoted subgraph widget value).
    Literal(Value),
    /// Nothing: the input keeps its widget value, or is absent.
    Nothing,
}

pub(crate) struct Resolver<'a> {
    pub document: &'a UiDocument,
    pub object_info: &'a ObjectInfo,
}

impl<'a> Resolver<'a> {
    pub fn resolve_link(
        &self,
        frames: &[Frame<'a>],
        link_id: i64,
        target_kind: &str,
        steps: usize,
    ) -> Result<Resolved, WorkflowError> {
        if steps > MAX_STEPS || frames.len() > MAX_NESTING + 1 {
            return Err(WorkflowError::Cycle(format!(
                "link {link_id} never reaches a real node (a loop through reroutes, bypassed \
                 nodes or subgraphs)"
            )));
        }
        let Some(frame) = frames.last() else {
            return Ok(Resolved::Nothing);
        };
        let Some(link) = frame.graph.links.get(&link_id) else {
            return Ok(Resolved::Nothing);
        };
        self.resolve_output(
            frames,
            &link.origin,
            link.origin_slot,
            target_kind,
            steps + 1,
        )
    }

    fn resolve_output(
        &self,
        frames: &[Frame<'a>],
        node_id: &str,
        slot: usize,
        target_kind: &str,
        steps: usize,
    ) -> Result<Resolved, WorkflowError> {
        let Some(frame) = frames.last() else {
            return Ok(Resolved::Nothing);
        };
        if node_id == SUBGRAPH_INPUT {
            return self.leave_subgraph(frames, slot, target_kind, steps);
        }
        let Some(node) = frame.graph.node(node_id) else {
            return Ok(Resolved::Nothing);
        };
        if node.mode == MODE_MUTED {
            return Ok(Resolved::Nothing);
        }
        if node.mode == MODE_BYPASS {
            return match bypass_input(node, slot, target_kind) {
                Some(link) => self.resolve_link(frames, link, target_kind, steps + 1),
                None => Ok(Resolved::Nothing),
            };
        }
        match node.class.as_str() {
            "Reroute" => {
                return match node.inputs.get(slot).and_then(|i| i.link) {
                    Some(link) => self.resolve_link(frames, link, target_kind, steps + 1),
                    None => Ok(Resolved::Nothing),
                };
            }
            "PrimitiveNode" | "Note" | "MarkdownNote" => return Ok(Resolved::Nothing),
            _ => {}
        }
        if let Some((def_id, def)) = self.document.subgraphs.get_key_value(&node.class) {
            let Some(link) = def
                .graph
                .links
                .values()
                .find(|l| l.target == SUBGRAPH_OUTPUT && l.target_slot == slot)
            else {
                return Ok(Resolved::Nothing);
            };
            let mut inner = frames.to_vec();
            inner.push(frame.enter(node, def_id, def));
            return self.resolve_output(
                &inner,
                &link.origin,
                link.origin_slot,
                target_kind,
                steps + 1,
            );
        }
        Ok(Resolved::Link(format!("{}{}", frame.prefix, node.id), slot))
    }

    /// A link from the subgraph input node: continue from the instance's input of that name.
    fn leave_subgraph(
        &self,
        frames: &[Frame<'a>],
        slot: usize,
        target_kind: &str,
        steps: usize,
    ) -> Result<Resolved, WorkflowError> {
        let Some(frame) = frames.last() else {
            return Ok(Resolved::Nothing);
        };
        let (Some(instance), Some(def)) = (frame.instance, frame.def) else {
            return Ok(Resolved::Nothing);
        };
        let Some(name) = def.input_names.get(slot) else {
            return Ok(Resolved::Nothing);
        };
        let parent = &frames[..frames.len() - 1];
        let input = instance.inputs.iter().find(|i| &i.name == name);
        if let Some(link) = input.and_then(|i| i.link) {
            return self.resolve_link(parent, link, target_kind, steps + 1);
        }
        Ok(self
            .promoted_value(def, instance, name, slot)
            .map(Resolved::Literal)
            .unwrap_or(Resolved::Nothing))
    }

    /// The instance's own value for a promoted widget input `name`.
    ///
    /// With `proxyWidgets`, the instance's `widgets_values` follow that list; the input's widget is
    /// the first entry with its widget name (`["-1", name]` for the subgraph input itself, or an
    /// inner node's widget). A stored value wins (even `null`); otherwise an inner widget's own
    /// value is used. Without `proxyWidgets`, the values follow the definition inputs that carry
    /// widget types.
    fn promoted_value(
        &self,
        def: &'a SubgraphDef,
        instance: &UiNode,
        name: &str,
        slot: usize,
    ) -> Option<Value> {
        let widget_name = instance
            .inputs
            .iter()
            .find(|i| i.name == name)
            .and_then(|i| i.widget.as_deref())
            .unwrap_or(name);
        let values = instance.widgets_values.as_array();
        if instance.proxy_widgets.is_empty() {
            let index = def
                .input_names
                .iter()
                .zip(&def.input_kinds)
                .filter(|(_, kind)| is_widget_type_name(kind))
                .position(|(n, _)| n == name)?;
            return values?.get(index).filter(|v| !v.is_null()).cloned();
        }
        let fed_by_input = |inner: &str, widget: &str| {
            def.graph.node(inner).is_some_and(|n| {
                n.inputs.iter().any(|i| {
                    (i.widget.as_deref() == Some(widget) || i.name == widget)
                        && i.link
                            .and_then(|l| def.graph.links.get(&l))
                            .is_some_and(|l| l.origin == SUBGRAPH_INPUT && l.origin_slot == slot)
                })
            })
        };
        let proxies = &instance.proxy_widgets;
        let index = proxies
            .iter()
            .position(|(node, widget)| node == "-1" && widget == widget_name)
            .or_else(|| {
                proxies
                    .iter()
                    .position(|(node, widget)| fed_by_input(node, widget))
            })
            .or_else(|| proxies.iter().position(|(_, widget)| widget == widget_name))?;
        if let Some(v) = values.and_then(|v| v.get(index)) {
            return Some(v.clone());
        }
        let (inner, widget) = &instance.proxy_widgets[index];
        let node = def.graph.node(inner)?;
        if node.class == "PrimitiveNode" {
            return node.widgets_values.get(0).cloned();
        }
        let class = self.object_info.node(&node.class)?;
        widgets::map_widget_values(&class, &node.widgets_values)
            .into_iter()
            .find(|w| &w.name == widget)
            .map(|w| w.value)
    }
}

/// A direct promotion of an inner node's widget (`proxyWidgets` entry naming the inner node)
/// with a value stored on the instance.
pub(crate) fn proxied_value(instance: &UiNode, inner_id: &str, widget: &str) -> Option<Value> {
    let values = instance.widgets_values.as_array()?;
    let index = instance
        .proxy_widgets
        .iter()
        .position(|(node, w)| node == inner_id && w == widget)?;
    values.get(index).filter(|v| !v.is_null()).cloned()
}

/// litegraph's type compatibility: `*`/empty match anything, comma lists match on any member,
/// comparison ignores case.
fn compatible(a: &str, b: &str) -> bool {
    if a.is_empty() || b.is_empty() || a == "*" || b == "*" {
        return true;
    }
    let a = a.to_ascii_lowercase();
    let b = b.to_ascii_lowercase();
    a.split(',')
        .any(|x| b.split(',').any(|y| x.trim() == y.trim()))
}

/// Which input of a bypassed node stands in for its output `slot`.
fn bypass_input(node: &UiNode, slot: usize, target_kind: &str) -> Option<i64> {
    let out_kind = node
        .output_kinds
        .get(slot)
        .map(String::as_str)
        .unwrap_or("*");
    let chosen = if target_kind.is_empty() || target_kind == "*" {
        node.inputs.get(slot).or_else(|| node.inputs.first())
    } else if let Some(same) = node
        .inputs
        .get(slot)
        .filter(|i| compatible(&i.kind, out_kind) && compatible(&i.kind, target_kind))
    {
        Some(same)
    } else if let Some(exact) = node.inputs.iter().find(|i| i.kind == target_kind) {
        Some(exact)
    } else {
        node.inputs
            .iter()
            .find(|i| compatible(&i.kind, out_kind) && compatible(&i.kind, target_kind))
    };
    chosen.and_then(|i| i.link)
}
