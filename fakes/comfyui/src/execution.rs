//! Runs one queued prompt the way ComfyUI's `PromptExecutor` does, sending the same websocket
//! messages in the same order: execution_start, execution_cached, then per node progress_state
//! (running) → executing → [progress…] → [executed] → progress_state (finished), and finally
//! execution_success / execution_error / execution_interrupted. Also the output cache (keyed by
//! class + inputs + ancestry, like ComfyUI's input signature) and the fault injection.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::Ordering;

use serde_json::{Map, Value, json};

use crate::catalog::catalog;
use crate::console;
use crate::files;
use crate::imaging::{self, ImageSpec};
use crate::nodes::{self, NodeCall, NodeFailure, NodeValue};
use crate::schedule::{ExecutionList, links_of};
use crate::state::{HistoryRecord, Outcome, QueueItem, Shared, now_ms};

/// A cached node result.
#[derive(Debug, Clone)]
struct CacheEntry {
    outputs: Vec<NodeValue>,
    ui: Option<Value>,
}

/// The node output cache (ComfyUI's classic cache: only the last prompt's nodes survive).
#[derive(Debug, Default)]
pub struct OutputCache {
    entries: HashMap<u64, CacheEntry>,
}

impl OutputCache {
    /// Drops everything (POST /free with free_memory).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// How the prompt's run ended, for the worker.
pub enum RunEnd {
    Finished(Box<HistoryRecord>),
    /// The hang fault fired: never finish.
    Hang,
}

/// Computes the cache signature of every node of the prompt.
fn signatures(prompt: &Map<String, Value>, folders: &files::Folders) -> HashMap<String, u64> {
    fn sig(
        id: &str,
        prompt: &Map<String, Value>,
        folders: &files::Folders,
        memo: &mut HashMap<String, u64>,
        visiting: &mut HashSet<String>,
    ) -> u64 {
        if let Some(s) = memo.get(id) {
            return *s;
        }
        if !visiting.insert(id.to_string()) {
            return 0;
        }
        let mut h = DefaultHasher::new();
        let node = prompt.get(id).cloned().unwrap_or(Value::Null);
        let class = node
            .get("class_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        class.hash(&mut h);
        if let Some(inputs) = node.get("inputs").and_then(Value::as_object) {
            let mut keys: Vec<&String> = inputs.keys().collect();
            keys.sort();
            for k in keys {
                k.hash(&mut h);
                let v = &inputs[k];
                match crate::schedule::link_source(v) {
                    Some(src) if prompt.contains_key(src) => {
                        sig(src, prompt, folders, memo, visiting).hash(&mut h);
                        v.get(1).map(Value::to_string).hash(&mut h);
                    }
                    _ => v.to_string().hash(&mut h),
                }
            }
            // LoadImage's IS_CHANGED: the file's content.
            if (class == "LoadImage" || class == "LoadImageMask")
                && let Some(name) = inputs.get("image").and_then(Value::as_str)
                && let Some(path) = files::resolve_annotated(folders, name)
            {
                std::fs::read(path).ok().hash(&mut h);
            }
        }
        let s = h.finish();
        visiting.remove(id);
        memo.insert(id.to_string(), s);
        s
    }
    let mut memo = HashMap::new();
    for id in prompt.keys() {
        sig(id, prompt, folders, &mut memo, &mut HashSet::new());
    }
    memo
}

/// One progress_state entry.
struct Progress {
    node: String,
    value: Value,
    max: Value,
    running: bool,
}

/// The state of one prompt run.
struct Run<'a> {
    shared: &'a Shared,
    prompt_id: String,
    client: Option<String>,
    messages: Vec<(String, Value)>,
    progress: Vec<Progress>,
}

impl Run<'_> {
    fn sid(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// ComfyUI's `add_message`: recorded in history, sent to the client (or everyone if
    /// `broadcast` and there is no client).
    fn add_message(&mut self, kind: &str, mut data: Map<String, Value>, broadcast: bool) {
        data.insert("timestamp".into(), json!(now_ms()));
        let data = Value::Object(data);
        self.messages.push((kind.to_string(), data.clone()));
        if self.client.is_some() || broadcast {
            self.shared.hub.send_json(kind, data, self.sid());
        }
    }

    /// Sends to the client only.
    fn to_client(&self, kind: &str, data: Value) {
        if let Some(sid) = self.sid() {
            self.shared.hub.send_json(kind, data, Some(sid));
        }
    }

    fn send_progress_state(&self) {
        let mut nodes = Map::new();
        for p in &self.progress {
            nodes.insert(
                p.node.clone(),
                json!({
                    "value": p.value,
                    "max": p.max,
                    "state": if p.running { "running" } else { "finished" },
                    "node_id": p.node,
                    "prompt_id": self.prompt_id,
                    "display_node_id": p.node,
                    "parent_node_id": null,
                    "real_node_id": p.node,
                }),
            );
        }
        self.shared.hub.send_json(
            "progress_state",
            json!({"prompt_id": self.prompt_id, "nodes": nodes}),
            self.sid(),
        );
    }

    fn entry(&mut self, node: &str) -> &mut Progress {
        if let Some(i) = self.progress.iter().position(|p| p.node == node) {
            return &mut self.progress[i];
        }
        self.progress.push(Progress {
            node: node.to_string(),
            value: json!(0),
            max: json!(1),
            running: true,
        });
        let last = self.progress.len() - 1;
        &mut self.progress[last]
    }

    fn start_progress(&mut self, node: &str) {
        let e = self.entry(node);
        e.value = json!(0.0);
        e.max = json!(1.0);
        e.running = true;
        self.send_progress_state();
    }

    fn update_progress(&mut self, node: &str, value: u64, max: u64) {
        let e = self.entry(node);
        e.value = json!(value);
        e.max = json!(max);
        self.send_progress_state();
    }

    fn finish_progress(&mut self, node: &str) {
        let e = self.entry(node);
        e.value = e.max.clone();
        e.running = false;
        self.send_progress_state();
    }
}

fn class_of(prompt: &Map<String, Value>, id: &str) -> String {
    prompt
        .get(id)
        .and_then(|n| n.get("class_type"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn oom_failure() -> NodeFailure {
    let mut traceback = nodes::runtime_traceback();
    traceback.push("  File \"/opt/comfyui/ComfyUI/comfy/model_management.py\", line 1153, in cast_to\n    r = torch.empty_like(weight, dtype=dtype, device=device)\n".into());
    NodeFailure {
        exception_type: "torch.OutOfMemoryError".into(),
        message: "Allocation on device 0 would exceed allowed memory. (out of memory)\nCurrently allocated     : 22.95 GiB\nRequested               : 2.50 GiB\nDevice limit            : 23.55 GiB\nFree (according to CUDA): 11.62 MiB\nPyTorch limit (set by user-supplied memory fraction)\n                        : 17179869184.00 GiB\nThis error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number.".into(),
        traceback,
    }
}

fn injected_failure(node: &str, class: &str) -> NodeFailure {
    NodeFailure {
        exception_type: "RuntimeError".into(),
        message: format!("fake-comfyui: injected failure at node {node} ({class})"),
        traceback: nodes::runtime_traceback(),
    }
}

/// Sleeps in small slices (so a long node time stays responsive to nothing but time itself:
/// like the real server, interrupts are only noticed between nodes and steps).
/// Runs `item` to the end (or forever, for the hang fault; or aborts, for the crash fault).
pub fn run_prompt(shared: &Shared, cache: &mut OutputCache, item: &QueueItem) -> RunEnd {
    let config = &shared.config;
    let folders = &shared.folders;
    let prompt: Map<String, Value> = item.prompt.as_object().cloned().unwrap_or_default();
    let mut run = Run {
        shared,
        prompt_id: item.prompt_id.clone(),
        client: item.client_id(),
        messages: Vec::new(),
        progress: Vec::new(),
    };
    shared.interrupt.store(false, Ordering::SeqCst);
    let pid = item.prompt_id.clone();
    run.add_message("execution_start", obj(json!({"prompt_id": pid})), false);

    let sigs = signatures(&prompt, folders);
    let use_cache = !config.cache_none;
    let is_cached =
        |id: &str| use_cache && sigs.get(id).is_some_and(|s| cache.entries.contains_key(s));
    let cached_nodes: Vec<String> = prompt.keys().filter(|id| is_cached(id)).cloned().collect();
    run.add_message(
        "execution_cached",
        obj(json!({"nodes": cached_nodes, "prompt_id": pid})),
        false,
    );

    let mut list = ExecutionList::default();
    for o in &item.outputs {
        list.add_node(o, &prompt, &is_cached);
    }
    let cached_set: HashSet<String> = cached_nodes.into_iter().collect();
    let is_output = |id: &str| catalog().is_output(&class_of(&prompt, id));
    let has_sampler = prompt
        .keys()
        .any(|id| nodes::is_sampler(&class_of(&prompt, id)));
    let png_text: Vec<(&str, String)> = if config.disable_metadata {
        Vec::new()
    } else {
        let mut t = vec![("prompt", item.prompt.to_string())];
        if let Some(Value::Object(extra)) = item.extra_data.get("extra_pnginfo") {
            for (k, v) in extra {
                t.push((k.as_str(), v.to_string()));
            }
        }
        t
    };

    let mut values: HashMap<String, Vec<NodeValue>> = HashMap::new();
    let mut executed: Vec<String> = Vec::new();
    let mut ui_outputs = Map::new();
    let mut meta = Map::new();
    let mut executed_count: u64 = 0;
    let mut oom_pending = config.faults.oom;
    let mut outcome = Outcome::Success;

    'nodes: while let Some(node) = list.next(&is_output) {
        let class = class_of(&prompt, &node);
        let sig = sigs.get(&node).copied().unwrap_or(0);
        let node_meta = json!({"node_id": node, "display_node": node, "parent_node": null, "real_node_id": node});

        if cached_set.contains(&node) {
            let entry = cache.entries.get(&sig).cloned();
            let ui = entry.as_ref().and_then(|e| e.ui.clone());
            run.to_client(
                "executed",
                json!({"node": node, "display_node": node, "output": ui, "prompt_id": pid}),
            );
            if let Some(ui) = ui {
                ui_outputs.insert(node.clone(), ui);
                meta.insert(node.clone(), node_meta);
            }
            run.finish_progress(&node);
            if let Some(e) = entry {
                values.insert(node.clone(), e.outputs);
            }
            executed.push(node.clone());
            list.complete(&node);
            continue;
        }

        run.start_progress(&node);
        if run.client.is_some() {
            if let Some(r) = shared.lock().running.as_mut() {
                r.last_node = Some(node.clone());
            }
            run.to_client(
                "executing",
                json!({"node": node, "display_node": node, "prompt_id": pid}),
            );
        }

        // resolve inputs
        let node_json = prompt.get(&node).cloned().unwrap_or(Value::Null);
        let mut constants = node_json
            .get("inputs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut linked = HashMap::new();
        for (name, src, idx) in links_of(&node_json) {
            constants.remove(&name);
            let value = values
                .get(&src)
                .or_else(|| {
                    sigs.get(&src)
                        .and_then(|s| cache.entries.get(s))
                        .map(|e| &e.outputs)
                })
                .and_then(|outs| outs.get(idx))
                .cloned();
            if let Some(v) = value {
                linked.insert(name, v);
            }
        }
        let call = NodeCall {
            class: &class,
            constants: &constants,
            linked: &linked,
            signature: sig,
            folders,
            png_text: &png_text,
        };

        let failure: Option<NodeFailure> = 'work: {
            if shared.interrupt.load(Ordering::SeqCst) {
                outcome = Outcome::Cancelled;
                break 'work None;
            }
            if config
                .faults
                .fail_node
                .as_deref()
                .is_some_and(|f| f == node || f == class)
            {
                break 'work Some(injected_failure(&node, &class));
            }
            if oom_pending && (nodes::is_sampler(&class) || !has_sampler) {
                oom_pending = false;
                console::error("Got an OOM, unloading all loaded models.");
                break 'work Some(oom_failure());
            }
            shared.stop.sleep(config.node_time);
            if let Some(steps) = nodes::progress_steps(&call) {
                let sampler = nodes::is_sampler(&class);
                let spec = linked
                    .values()
                    .find_map(NodeValue::spec)
                    .cloned()
                    .unwrap_or(ImageSpec::default());
                for step in 1..=steps {
                    shared.stop.sleep(config.step_time);
                    if shared.interrupt.load(Ordering::SeqCst) {
                        outcome = Outcome::Cancelled;
                        break 'work None;
                    }
                    // batch-style progress (ColorTransfer…) was captured reporting only the
                    // first and the last item
                    if !sampler && step != 1 && step != steps {
                        continue;
                    }
                    run.update_progress(&node, step, steps);
                    shared.hub.send_json(
                        "progress",
                        json!({"value": step, "max": steps, "prompt_id": pid, "node": node}),
                        run.sid(),
                    );
                    if sampler
                        && config.previews
                        && let Ok(jpeg) = imaging::preview_jpeg(
                            &ImageSpec {
                                seed: sig,
                                ..spec.clone()
                            },
                            step,
                        )
                    {
                        let metadata = json!({
                            "node_id": node, "prompt_id": pid, "display_node_id": node,
                            "parent_node_id": node, "real_node_id": node, "image_type": "image/jpeg",
                        });
                        shared.hub.send_preview(&jpeg, &metadata, run.sid());
                    }
                }
            }
            match nodes::run_node(&call) {
                Err(f) => Some(f),
                Ok(result) => {
                    for text in &result.texts {
                        shared.hub.send_text(&node, text, run.sid());
                    }
                    if let Some(ui) = &result.ui {
                        run.to_client(
                            "executed",
                            json!({"node": node, "display_node": node, "output": ui, "prompt_id": pid}),
                        );
                        ui_outputs.insert(node.clone(), ui.clone());
                        meta.insert(node.clone(), node_meta.clone());
                    }
                    run.finish_progress(&node);
                    if use_cache {
                        cache.entries.insert(
                            sig,
                            CacheEntry {
                                outputs: result.outputs.clone(),
                                ui: result.ui.clone(),
                            },
                        );
                    }
                    values.insert(node.clone(), result.outputs);
                    None
                }
            }
        };

        if outcome == Outcome::Cancelled {
            console::info("Processing interrupted");
            run.add_message(
                "execution_interrupted",
                obj(json!({"prompt_id": pid, "node_id": node, "node_type": class, "executed": executed})),
                true,
            );
            break 'nodes;
        }
        if let Some(f) = failure {
            outcome = Outcome::Failed;
            console::error(&format!(
                "!!! Exception during processing !!! {}",
                f.message.lines().next().unwrap_or_default()
            ));
            let current_inputs: Map<String, Value> = node_json
                .get("inputs")
                .and_then(Value::as_object)
                .map(|inputs| {
                    inputs
                        .iter()
                        .map(|(k, v)| {
                            let shown = match linked.get(k) {
                                Some(val) => Value::String(val.text()),
                                None => v.clone(),
                            };
                            (k.clone(), json!([shown]))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let current_outputs: Vec<&String> = prompt.keys().collect();
            run.add_message(
                "execution_error",
                obj(json!({
                    "prompt_id": pid,
                    "node_id": node,
                    "node_type": class,
                    "executed": executed,
                    "exception_message": f.message,
                    "exception_type": f.exception_type,
                    "traceback": f.traceback,
                    "current_inputs": current_inputs,
                    "current_outputs": current_outputs,
                })),
                false,
            );
            break 'nodes;
        }

        executed.push(node.clone());
        executed_count += 1;
        list.complete(&node);
        if config.faults.crash_after_nodes == Some(executed_count) {
            console::error(&format!(
                "fake-comfyui: crashing after {executed_count} executed node(s) (--fake-crash-after-nodes)"
            ));
            std::process::abort();
        }
        if config.faults.hang_after_nodes == Some(executed_count) {
            console::error(&format!(
                "fake-comfyui: hanging after {executed_count} executed node(s) (--fake-hang-after-nodes)"
            ));
            return RunEnd::Hang;
        }
    }

    if outcome == Outcome::Success {
        run.add_message("execution_success", obj(json!({"prompt_id": pid})), false);
    }
    // classic cache: keep only this prompt's signatures
    if use_cache {
        let keep: HashSet<u64> = sigs.values().copied().collect();
        cache.entries.retain(|k, _| keep.contains(k));
    }
    RunEnd::Finished(Box::new(HistoryRecord {
        item: item.clone(),
        outputs: ui_outputs,
        messages: run.messages,
        meta,
        outcome,
    }))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
