//! Execution order as ComfyUI's `ExecutionList` computes it: nodes are collected depth-first
//! (stack order) from each output, cached nodes are not descended into, and among the ready
//! nodes the "UX friendly" pick prefers output nodes, then nodes one or two links before an
//! output, then the first collected.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// `[node_id, output_index]` → the node id.
pub fn link_source(value: &Value) -> Option<&str> {
    match value.as_array().map(Vec::as_slice) {
        Some([Value::String(id), Value::Number(_)]) => Some(id),
        _ => None,
    }
}

/// The linked inputs of a node, in input order: `(input name, source id, output index)`.
pub fn links_of(node: &Value) -> Vec<(String, String, usize)> {
    node.get("inputs")
        .and_then(Value::as_object)
        .map(|inputs| {
            inputs
                .iter()
                .filter_map(|(name, v)| {
                    let src = link_source(v)?;
                    let idx = v.get(1).and_then(Value::as_u64).unwrap_or(0) as usize;
                    Some((name.clone(), src.to_string(), idx))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Nodes still to run and who blocks whom.
#[derive(Debug, Default)]
pub struct ExecutionList {
    pending: Vec<String>,
    block_count: HashMap<String, usize>,
    blocking: HashMap<String, Vec<String>>,
}

impl ExecutionList {
    /// Adds `id` and its uncached ancestors.
    pub fn add_node(
        &mut self,
        id: &str,
        prompt: &Map<String, Value>,
        cached: &dyn Fn(&str) -> bool,
    ) {
        let mut stack = vec![id.to_string()];
        let mut links = Vec::new();
        while let Some(u) = stack.pop() {
            if self.pending.contains(&u) {
                continue;
            }
            self.pending.push(u.clone());
            self.block_count.insert(u.clone(), 0);
            self.blocking.insert(u.clone(), Vec::new());
            let Some(node) = prompt.get(&u) else {
                continue;
            };
            for (_, from, _) in links_of(node) {
                if !prompt.contains_key(&from) {
                    continue;
                }
                if !cached(&from) {
                    stack.push(from.clone());
                }
                links.push((from, u.clone()));
            }
        }
        for (from, to) in links {
            if cached(&from) {
                continue;
            }
            let blocked = self.blocking.entry(from).or_default();
            if !blocked.contains(&to) {
                blocked.push(to.clone());
                *self.block_count.entry(to).or_default() += 1;
            }
        }
    }

    /// Whether nothing is left.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The next node to run (`None` when nothing is ready).
    pub fn next(&self, is_output: &dyn Fn(&str) -> bool) -> Option<String> {
        let available: Vec<&String> = self
            .pending
            .iter()
            .filter(|n| self.block_count.get(*n).copied().unwrap_or(0) == 0)
            .collect();
        let blocked = |n: &str| self.blocking.get(n).cloned().unwrap_or_default();
        if let Some(n) = available.iter().find(|n| is_output(n)) {
            return Some((*n).clone());
        }
        if let Some(n) = available
            .iter()
            .find(|n| blocked(n).iter().any(|b| is_output(b)))
        {
            return Some((*n).clone());
        }
        if let Some(n) = available.iter().find(|n| {
            blocked(n)
                .iter()
                .any(|b| blocked(b).iter().any(|b2| is_output(b2)))
        }) {
            return Some((*n).clone());
        }
        available.first().map(|n| (*n).clone())
    }

    /// Marks `id` done, unblocking its dependents.
    pub fn complete(&mut self, id: &str) {
        self.pending.retain(|n| n != id);
        if let Some(blocked) = self.blocking.remove(id) {
            for b in blocked {
                if let Some(c) = self.block_count.get_mut(&b) {
                    *c = c.saturating_sub(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_the_captured_progress_and_text_order() {
        // prompt_progress_and_text.json ran as 2, 1, 3, 6, 4, 5
        let prompt = json!({
            "1": {"class_type": "EmptyImage", "inputs": {}},
            "2": {"class_type": "EmptyImage", "inputs": {}},
            "3": {"class_type": "ColorTransfer", "inputs": {"image_target": ["1", 0], "image_ref": ["2", 0]}},
            "4": {"class_type": "GetImageSize", "inputs": {"image": ["3", 0]}},
            "5": {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}},
            "6": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}}
        });
        let prompt = prompt.as_object().unwrap();
        let mut list = ExecutionList::default();
        for o in ["5", "6"] {
            list.add_node(o, prompt, &|_| false);
        }
        let is_output = |n: &str| n == "5" || n == "6";
        let mut order = Vec::new();
        while let Some(n) = list.next(&is_output) {
            list.complete(&n);
            order.push(n);
        }
        assert_eq!(order, vec!["2", "1", "3", "6", "4", "5"]);
        assert!(list.is_empty());
    }

    #[test]
    fn cached_ancestors_are_not_scheduled() {
        let prompt = json!({
            "1": {"class_type": "EmptyImage", "inputs": {}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}
        });
        let mut list = ExecutionList::default();
        list.add_node("3", prompt.as_object().unwrap(), &|n| n == "1");
        assert_eq!(list.next(&|n| n == "3").as_deref(), Some("3"));
    }
}
