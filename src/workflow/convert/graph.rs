//! The UI workflow parsed into typed nodes, links and subgraph definitions (tolerant of the
//! variations between frontend versions), including the frontend's subgraph id deduplication.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::workflow::error::WorkflowError;

/// Id of the input IO node inside a subgraph definition.
pub(crate) const SUBGRAPH_INPUT: &str = "-10";
/// Id of the output IO node inside a subgraph definition.
pub(crate) const SUBGRAPH_OUTPUT: &str = "-20";

#[derive(Debug, Clone)]
pub(crate) struct UiInput {
    pub name: String,
    pub kind: String,
    pub link: Option<i64>,
    pub widget: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct UiNode {
    pub id: String,
    pub class: String,
    pub mode: i64,
    pub title: Option<String>,
    pub inputs: Vec<UiInput>,
    pub output_kinds: Vec<String>,
    pub widgets_values: Value,
    /// `properties.proxyWidgets` of a subgraph instance: (inner node id, widget name).
    pub proxy_widgets: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub(crate) struct UiLink {
    pub origin: String,
    pub origin_slot: usize,
    pub target: String,
    pub target_slot: usize,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct UiGraph {
    pub nodes: Vec<UiNode>,
    pub links: HashMap<i64, UiLink>,
    index: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct SubgraphDef {
    pub graph: UiGraph,
    pub input_names: Vec<String>,
    pub input_kinds: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct UiDocument {
    pub root: UiGraph,
    pub subgraphs: HashMap<String, SubgraphDef>,
}

impl UiGraph {
    pub fn node(&self, id: &str) -> Option<&UiNode> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }

    fn reindex(&mut self) {
        self.index = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
    }
}

/// A node id as the frontend stringifies it (`5`, `"5"`, `5.0` → `"5"`).
pub(crate) fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i.to_string())
            } else {
                n.as_f64().map(|f| {
                    if f.fract() == 0.0 && f.abs() < 9.0e15 {
                        format!("{}", f as i64)
                    } else {
                        f.to_string()
                    }
                })
            }
        }
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn as_index(v: Option<&Value>) -> Option<usize> {
    let v = v?;
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        })
        .and_then(|u| usize::try_from(u).ok())
}

fn as_link_id(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

fn parse_node(v: &Value, where_: &str) -> Result<UiNode, WorkflowError> {
    let id = v.get("id").and_then(id_string).ok_or_else(|| {
        WorkflowError::Malformed(format!("a node in {where_} has no usable `id`"))
    })?;
    let class = v.get("type").and_then(Value::as_str).ok_or_else(|| {
        WorkflowError::Malformed(format!("node {id} in {where_} has no `type` string"))
    })?;
    let inputs = v
        .get("inputs")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|i| UiInput {
                    name: i
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    kind: type_string(i.get("type")),
                    link: as_link_id(i.get("link")),
                    widget: i
                        .get("widget")
                        .and_then(|w| w.get("name"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    let output_kinds = v
        .get("outputs")
        .and_then(Value::as_array)
        .map(|list| list.iter().map(|o| type_string(o.get("type"))).collect())
        .unwrap_or_default();
    let proxy_widgets = v
        .get("properties")
        .and_then(|p| p.get("proxyWidgets"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|pair| {
                    let node = pair.get(0).and_then(id_string)?;
                    let widget = pair.get(1)?.as_str()?.to_owned();
                    Some((node, widget))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(UiNode {
        id,
        class: class.to_owned(),
        mode: v.get("mode").and_then(Value::as_i64).unwrap_or(0),
        title: v.get("title").and_then(Value::as_str).map(str::to_owned),
        inputs,
        output_kinds,
        widgets_values: v.get("widgets_values").cloned().unwrap_or(Value::Null),
        proxy_widgets,
    })
}

fn type_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "*".to_owned(),
    }
}

fn parse_link(v: &Value) -> Option<(i64, UiLink)> {
    match v {
        Value::Array(a) => Some((
            as_link_id(a.first())?,
            UiLink {
                origin: id_string(a.get(1)?)?,
                origin_slot: as_index(a.get(2))?,
                target: id_string(a.get(3)?)?,
                target_slot: as_index(a.get(4))?,
            },
        )),
        Value::Object(o) => Some((
            as_link_id(o.get("id"))?,
            UiLink {
                origin: id_string(o.get("origin_id")?)?,
                origin_slot: as_index(o.get("origin_slot"))?,
                target: id_string(o.get("target_id")?)?,
                target_slot: as_index(o.get("target_slot"))?,
            },
        )),
        _ => None,
    }
}

fn parse_graph(v: &Value, where_: &str) -> Result<UiGraph, WorkflowError> {
    let nodes = v
        .get("nodes")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|n| parse_node(n, where_))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let links = v
        .get("links")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(parse_link).collect())
        .unwrap_or_default();
    let mut graph = UiGraph {
        nodes,
        links,
        index: HashMap::new(),
    };
    graph.reindex();
    Ok(graph)
}

impl UiDocument {
    /// Parses a UI workflow and renumbers clashing subgraph node ids as the frontend does.
    pub fn parse(doc: &Value) -> Result<Self, WorkflowError> {
        let root = parse_graph(doc, "the workflow")?;
        let mut defs: Vec<(String, SubgraphDef)> = Vec::new();
        if let Some(list) = doc
            .get("definitions")
            .and_then(|d| d.get("subgraphs"))
            .and_then(Value::as_array)
        {
            for def in list {
                let Some(id) = def.get("id").and_then(Value::as_str) else {
                    return Err(WorkflowError::Malformed(
                        "a subgraph definition has no `id`".into(),
                    ));
                };
                let graph = parse_graph(def, &format!("subgraph {id}"))?;
                let input_names = def
                    .get("inputs")
                    .and_then(Value::as_array)
                    .map(|l| {
                        l.iter()
                            .map(|i| {
                                i.get("name")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_owned()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let input_kinds = def
                    .get("inputs")
                    .and_then(Value::as_array)
                    .map(|l| l.iter().map(|i| type_string(i.get("type"))).collect())
                    .unwrap_or_default();
                defs.push((
                    id.to_owned(),
                    SubgraphDef {
                        graph,
                        input_names,
                        input_kinds,
                    },
                ));
            }
        }
        let last_node_id = doc
            .get("last_node_id")
            .and_then(Value::as_i64)
            .or_else(|| {
                doc.get("state")
                    .and_then(|s| s.get("lastNodeId"))
                    .and_then(Value::as_i64)
            })
            .unwrap_or(0);
        let mut document = UiDocument {
            root,
            subgraphs: HashMap::new(),
        };
        deduplicate_ids(&mut document.root, &mut defs, last_node_id);
        document.subgraphs = defs.into_iter().collect();
        Ok(document)
    }
}

/// The frontend's `DeduplicateSubgraphNodeIds`: root ids first, then each definition's nodes in
/// file order; an id already seen gets the next free number after `last_node_id`.
fn deduplicate_ids(root: &mut UiGraph, defs: &mut [(String, SubgraphDef)], last_node_id: i64) {
    let mut seen: HashSet<String> = root.nodes.iter().map(|n| n.id.clone()).collect();
    let max_id = root
        .nodes
        .iter()
        .chain(defs.iter().flat_map(|(_, d)| d.graph.nodes.iter()))
        .filter_map(|n| n.id.parse::<i64>().ok())
        .max()
        .unwrap_or(0);
    let mut next = last_node_id.max(max_id);
    // (definition id, old inner id) → new inner id, for fixing proxyWidgets of instances.
    let mut renamed: HashMap<(String, String), String> = HashMap::new();
    for (def_id, def) in defs.iter_mut() {
        let mut local: HashMap<String, String> = HashMap::new();
        for node in &mut def.graph.nodes {
            if seen.contains(&node.id) {
                next += 1;
                let new_id = next.to_string();
                local.insert(node.id.clone(), new_id.clone());
                renamed.insert((def_id.clone(), node.id.clone()), new_id.clone());
                node.id = new_id;
            }
            seen.insert(node.id.clone());
        }
        if !local.is_empty() {
            for link in def.graph.links.values_mut() {
                if let Some(n) = local.get(&link.origin) {
                    link.origin = n.clone();
                }
                if let Some(n) = local.get(&link.target) {
                    link.target = n.clone();
                }
            }
            def.graph.reindex();
        }
    }
    if renamed.is_empty() {
        return;
    }
    let fix = |graph: &mut UiGraph| {
        for node in &mut graph.nodes {
            for (inner, _) in &mut node.proxy_widgets {
                if let Some(n) = renamed.get(&(node.class.clone(), inner.clone())) {
                    *inner = n.clone();
                }
            }
        }
    };
    fix(root);
    for (_, def) in defs.iter_mut() {
        fix(&mut def.graph);
    }
}
