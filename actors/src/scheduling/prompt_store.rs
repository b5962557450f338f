//! What the scheduler keeps of each waiting job's prompt: as little as tells it apart.
//!
//! Jobs from one template (or one script's workflow) share almost all of their prompt: the
//! same nodes, classes and titles, and the same values but for a seed or a prompt text. Kept
//! whole, a 60-node SDXL prompt costs ~130 KB as a JSON value, so 10 000 queued jobs would
//! cost over a gigabyte. The store keeps one *base* prompt per shape (the node ids, each
//! node's class, title and other fields, and its input names, in order) and, for each job, only
//! the inputs whose values differ from its base's. A base lives as long as a job refers to
//! it; the first prompt of a new shape becomes one. The whole prompt is rebuilt, exactly as
//! submitted, when the job is dispatched.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Weak};

use serde_json::{Map, Value};

/// Prune dead shapes after this many new ones.
const PRUNE_EVERY: usize = 256;

/// One input value that differs from the base: by node and input position.
#[derive(Debug, Clone)]
struct Change {
    node: u32,
    input: u32,
    value: Value,
}

/// A job's prompt as kept: its base and what differs from it.
#[derive(Debug, Clone)]
pub struct StoredPrompt {
    base: Arc<Map<String, Value>>,
    changes: Box<[Change]>,
}

/// A prompt that is not a JSON object (the scheduler never gets one; kept whole regardless).
const NOT_AN_OBJECT: &str = "";

/// The shared bases, by shape.
#[derive(Debug, Default)]
pub struct PromptStore {
    bases: HashMap<u64, Weak<Map<String, Value>>>,
    since_prune: usize,
}

fn hash_value(value: &Value, h: &mut impl Hasher) {
    match value {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, b).hash(h),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => (2u8, u).hash(h),
            (None, Some(i)) => (6u8, i).hash(h),
            _ => (7u8, n.as_f64().unwrap_or_default().to_bits()).hash(h),
        },
        Value::String(s) => (3u8, s).hash(h),
        Value::Array(items) => {
            (4u8, items.len()).hash(h);
            items.iter().for_each(|v| hash_value(v, h));
        }
        Value::Object(map) => {
            (5u8, map.len()).hash(h);
            for (k, v) in map {
                k.hash(h);
                hash_value(v, h);
            }
        }
    }
}

/// The inputs of a node, when it has an `inputs` object.
fn inputs(node: &Value) -> Option<&Map<String, Value>> {
    node.get("inputs").and_then(Value::as_object)
}

/// The shape of a prompt: node ids, every field but the input values, input names; in order.
fn shape(prompt: &Map<String, Value>) -> u64 {
    let mut h = DefaultHasher::new();
    prompt.len().hash(&mut h);
    for (id, node) in prompt {
        id.hash(&mut h);
        match node {
            Value::Object(fields) => {
                for (key, field) in fields {
                    key.hash(&mut h);
                    match (key.as_str(), field) {
                        ("inputs", Value::Object(inputs)) => {
                            inputs.len().hash(&mut h);
                            inputs.keys().for_each(|name| name.hash(&mut h));
                        }
                        _ => hash_value(field, &mut h),
                    }
                }
            }
            other => hash_value(other, &mut h),
        }
    }
    h.finish()
}

/// Whether two nodes agree on everything but their input values.
fn same_frame(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| {
                    ka == kb
                        && match (ka.as_str(), va, vb) {
                            ("inputs", Value::Object(ia), Value::Object(ib)) => {
                                ia.len() == ib.len() && ia.keys().eq(ib.keys())
                            }
                            _ => va == vb,
                        }
                })
        }
        _ => a == b,
    }
}

/// The input values of `prompt` that differ from `base`'s, or `None` when the shapes differ.
fn differences(base: &Map<String, Value>, prompt: &Map<String, Value>) -> Option<Vec<Change>> {
    if base.len() != prompt.len() {
        return None;
    }
    let mut changes = Vec::new();
    for (node, ((base_id, base_node), (id, job_node))) in base.iter().zip(prompt.iter()).enumerate()
    {
        if base_id != id || !same_frame(base_node, job_node) {
            return None;
        }
        let (Some(base_inputs), Some(job_inputs)) = (inputs(base_node), inputs(job_node)) else {
            continue;
        };
        for (input, (was, is)) in base_inputs.values().zip(job_inputs.values()).enumerate() {
            if was != is {
                changes.push(Change {
                    node: u32::try_from(node).ok()?,
                    input: u32::try_from(input).ok()?,
                    value: is.clone(),
                });
            }
        }
    }
    Some(changes)
}

impl PromptStore {
    /// Keeps `prompt` (an API prompt): as changes to a base of its shape, or as a new base.
    /// A prompt that is not a JSON object is kept whole.
    pub fn keep(&mut self, prompt: Value) -> StoredPrompt {
        let Value::Object(prompt) = prompt else {
            let mut whole = Map::new();
            whole.insert(NOT_AN_OBJECT.to_string(), prompt);
            return StoredPrompt {
                base: Arc::new(whole),
                changes: Box::new([]),
            };
        };
        let key = shape(&prompt);
        if let Some(base) = self.bases.get(&key).and_then(Weak::upgrade)
            && let Some(changes) = differences(&base, &prompt)
        {
            return StoredPrompt {
                base,
                changes: changes.into_boxed_slice(),
            };
        }
        let base = Arc::new(prompt);
        self.bases.insert(key, Arc::downgrade(&base));
        self.since_prune += 1;
        if self.since_prune >= PRUNE_EVERY {
            self.since_prune = 0;
            self.bases.retain(|_, base| base.strong_count() > 0);
        }
        StoredPrompt {
            base,
            changes: Box::new([]),
        }
    }

    /// Shapes with a live base (for tests and metrics).
    pub fn shapes(&self) -> usize {
        self.bases.values().filter(|b| b.strong_count() > 0).count()
    }
}

impl StoredPrompt {
    /// The prompt exactly as it was kept.
    pub fn expand(&self) -> Value {
        if self.base.len() == 1
            && let Some(whole) = self.base.get(NOT_AN_OBJECT)
            && !whole.is_object()
        {
            return whole.clone();
        }
        let mut prompt = (*self.base).clone();
        for change in self.changes.iter() {
            let input = prompt
                .values_mut()
                .nth(change.node as usize)
                .and_then(|node| node.get_mut("inputs"))
                .and_then(Value::as_object_mut)
                .and_then(|inputs| inputs.values_mut().nth(change.input as usize));
            if let Some(input) = input {
                *input = change.value.clone();
            }
        }
        Value::Object(prompt)
    }

    /// A node's fields other than its inputs (its class, its `_meta`), which the base shares.
    pub fn node(&self, id: &str) -> Option<&Value> {
        self.base.get(id)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn prompt(seed: u64, text: &str) -> Value {
        json!({
            "4": {"inputs": {"ckpt_name": "sdxl.safetensors"}, "class_type": "CheckpointLoaderSimple", "_meta": {"title": "Load"}},
            "6": {"inputs": {"text": text, "clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "Positive"}},
            "3": {"inputs": {"seed": seed, "steps": 20, "model": ["4", 0], "positive": ["6", 0]}, "class_type": "KSampler", "_meta": {"title": "Sampler"}}
        })
    }

    #[test]
    fn a_prompt_comes_back_exactly_as_kept() {
        let mut store = PromptStore::default();
        for p in [
            prompt(1, "a cat"),
            prompt(2, "a dog"),
            prompt(2, "a cat"),
            json!([1, 2]),
        ] {
            let kept = store.keep(p.clone());
            assert_eq!(kept.expand(), p);
            assert_eq!(
                serde_json::to_string(&kept.expand()).unwrap(),
                serde_json::to_string(&p).unwrap(),
                "the key order is kept"
            );
        }
    }

    #[test]
    fn prompts_of_one_shape_share_a_base_and_keep_only_their_changes() {
        let mut store = PromptStore::default();
        let first = store.keep(prompt(1, "a cat"));
        let second = store.keep(prompt(7, "a dog"));
        assert!(Arc::ptr_eq(&first.base, &second.base));
        assert_eq!(second.changes.len(), 2, "{:?}", second.changes);
        assert_eq!(store.shapes(), 1);
        assert_eq!(
            second.node("3").and_then(|n| n["_meta"]["title"].as_str()),
            Some("Sampler")
        );
        // Another title is another shape: the title shown for a node must be its own.
        let mut retitled = prompt(1, "a cat");
        retitled["3"]["_meta"]["title"] = json!("Hires");
        let third = store.keep(retitled.clone());
        assert!(!Arc::ptr_eq(&first.base, &third.base));
        assert_eq!(third.expand(), retitled);
        assert_eq!(store.shapes(), 2);
        // A base lives while a job refers to it.
        drop((first, second));
        let fourth = store.keep(prompt(3, "a bird"));
        assert!(
            fourth.changes.is_empty(),
            "a new base: {:?}",
            fourth.changes
        );
    }
}
