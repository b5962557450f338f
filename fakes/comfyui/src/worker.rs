//! The single worker thread that executes queued prompts one at a time (ComfyUI's
//! `prompt_worker`): takes the lowest-numbered pending prompt, announces it with `status`, runs
//! it, writes history *before* sending `status` and `executing{node:null}`, and applies POST /free
//! requests between prompts. It ends when the server's stop signal is raised.

use std::sync::Arc;

use serde_json::json;

use crate::console;
use crate::execution::{OutputCache, RunEnd, run_prompt};
use crate::state::{Running, Shared};

/// Starts the worker thread.
pub fn spawn(shared: Arc<Shared>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("prompt-worker".into())
        .spawn(move || worker_loop(&shared))
}

fn worker_loop(shared: &Shared) {
    let mut cache = OutputCache::default();
    loop {
        let item = {
            let mut state = shared.lock();
            loop {
                if let Some(free) = state.free.take() {
                    if free.free_memory {
                        cache.clear();
                    }
                    if free.unload_models || free.free_memory {
                        console::info("Unloading models and freeing memory (POST /free)");
                    }
                }
                if shared.stop.is_raised() {
                    return;
                }
                if let Some(item) = state.take_next() {
                    state.running = Some(Running {
                        item: item.clone(),
                        last_node: None,
                    });
                    shared.broadcast_status(&state);
                    break item;
                }
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
        };
        let started = std::time::Instant::now();
        match run_prompt(shared, &mut cache, &item) {
            RunEnd::Hang => {
                shared.lock().worker_stuck = true;
                shared.stop.wait();
                return;
            }
            RunEnd::Finished(record) => {
                let client = item.client_id();
                {
                    let mut state = shared.lock();
                    state.push_history(*record);
                    state.running = None;
                    shared.broadcast_status(&state);
                }
                if let Some(sid) = client.as_deref() {
                    shared.hub.send_json(
                        "executing",
                        json!({"node": null, "prompt_id": item.prompt_id}),
                        Some(sid),
                    );
                }
                console::info(&format!(
                    "Prompt executed in {:.2} seconds",
                    started.elapsed().as_secs_f64()
                ));
            }
        }
    }
}
