//! The queue routes: GET/POST /prompt, GET/POST /queue, POST /interrupt, POST /free.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::catalog::LiveDirs;
use crate::console;
use crate::http_support::{ClearDelete, crash, empty_ok, json_ok, json_with, parse_json};
use crate::state::{FreeRequest, QueueItem, Shared, now_ms};
use crate::validation::{Verdict, validate_prompt};

/// Keys ComfyUI removes from `extra_data` before queueing.
const SENSITIVE_EXTRA_DATA_KEYS: &[&str] = &["auth_token_comfy_org", "api_key_comfy_org"];

fn error_body(kind: &str, message: &str, details: &str) -> Value {
    json!({
        "error": {"type": kind, "message": message, "details": details, "extra_info": {}},
        "node_errors": {}
    })
}

/// A canonical lower-case hyphenated UUID.
pub fn is_canonical_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

/// GET /prompt.
pub async fn get_prompt(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    let info = shared.lock().queue_info();
    json_ok(&info)
}

/// POST /prompt.
pub async fn post_prompt(shared: web::Data<Arc<Shared>>, body: web::Bytes) -> HttpResponse {
    let Some(Value::Object(data)) = parse_json(&body) else {
        console::error("Error handling request: invalid JSON body for POST /prompt");
        return crash();
    };
    let number = match data.get("number") {
        Some(n) => match n
            .as_f64()
            .or_else(|| n.as_str().and_then(|s| s.trim().parse::<f64>().ok()))
        {
            Some(f) => json!(f),
            None => return crash(),
        },
        None => {
            let mut state = shared.lock();
            let n = state.next_number;
            state.next_number += 1;
            let front = data
                .get("front")
                .is_some_and(|f| f.as_bool().unwrap_or(false));
            json!(if front { -n } else { n })
        }
    };
    let Some(prompt) = data.get("prompt") else {
        return json_with(
            StatusCode::BAD_REQUEST,
            &error_body("no_prompt", "No prompt provided", "No prompt provided"),
        );
    };
    let prompt_id = match data.get("prompt_id") {
        None => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s)) if is_canonical_uuid(s) => s.clone(),
        Some(_) => {
            return json_with(
                StatusCode::BAD_REQUEST,
                &error_body(
                    "invalid_prompt_id",
                    "prompt_id must be a valid UUID",
                    "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to let the server generate one",
                ),
            );
        }
    };
    let Value::Object(prompt) = prompt else {
        console::error("Error handling request: prompt is not an object");
        return crash();
    };
    let mut prompt = prompt.clone();
    let targets: Option<Vec<String>> = data
        .get("partial_execution_targets")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(crate::pyfmt::str_of).collect());
    let dirs = LiveDirs {
        folders: &shared.folders,
    };
    let verdict = validate_prompt(&mut prompt, targets.as_deref(), &dirs);
    let mut extra_data = match data.get("extra_data") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return crash(),
    };
    if let Some(client_id) = data.get("client_id") {
        extra_data.insert("client_id".into(), client_id.clone());
    }
    match verdict {
        Verdict::Crash => crash(),
        Verdict::Rejected { error, node_errors } => {
            console::error(&format!(
                "invalid prompt: {}",
                error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ));
            json_with(
                StatusCode::BAD_REQUEST,
                &json!({"error": error, "node_errors": node_errors}),
            )
        }
        Verdict::Accepted {
            outputs,
            node_errors,
        } => {
            for key in SENSITIVE_EXTRA_DATA_KEYS {
                extra_data.remove(*key);
            }
            console::info("got prompt");
            let create_time = now_ms();
            extra_data.insert("create_time".into(), json!(create_time));
            {
                let mut state = shared.lock();
                let seq = state.next_seq;
                state.next_seq += 1;
                state.pending.push(QueueItem {
                    number: number.clone(),
                    prompt_id: prompt_id.clone(),
                    prompt: Value::Object(prompt),
                    extra_data,
                    outputs,
                    create_time,
                    seq,
                });
                shared.broadcast_status(&state);
                shared.wake.notify_all();
            }
            json_ok(&json!({"prompt_id": prompt_id, "number": number, "node_errors": node_errors}))
        }
    }
}

/// GET /queue.
pub async fn get_queue(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    let state = shared.lock();
    let running: Vec<Value> = state.running.iter().map(|r| r.item.to_json()).collect();
    let pending: Vec<Value> = state.pending.iter().map(QueueItem::to_json).collect();
    json_ok(&json!({"queue_running": running, "queue_pending": pending}))
}

/// POST /queue: `{"clear": true}` and/or `{"delete": [ids]}` (pending items only).
pub async fn post_queue(shared: web::Data<Arc<Shared>>, body: web::Bytes) -> HttpResponse {
    let Some(request) = ClearDelete::parse(&body) else {
        return crash();
    };
    let mut state = shared.lock();
    if request.clear {
        state.pending.clear();
        shared.broadcast_status(&state);
    }
    for id in &request.delete {
        let before = state.pending.len();
        state.pending.retain(|i| &i.prompt_id != id);
        if state.pending.len() != before {
            shared.broadcast_status(&state);
        }
    }
    empty_ok()
}

/// Interrupts the running prompt if `prompt_id` is absent or names it.
pub fn interrupt(shared: &Shared, prompt_id: Option<&str>) -> bool {
    let state = shared.lock();
    match prompt_id {
        None => {
            shared.interrupt.store(true, Ordering::SeqCst);
            state.running.is_some()
        }
        Some(id) => {
            if state
                .running
                .as_ref()
                .is_some_and(|r| r.item.prompt_id == id)
            {
                shared.interrupt.store(true, Ordering::SeqCst);
                true
            } else {
                console::info(&format!(
                    "Prompt {id} is not currently running, skipping interrupt"
                ));
                false
            }
        }
    }
}

/// POST /interrupt.
pub async fn post_interrupt(shared: web::Data<Arc<Shared>>, body: web::Bytes) -> HttpResponse {
    let data = parse_json(&body).unwrap_or(json!({}));
    let prompt_id = data
        .get("prompt_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    interrupt(&shared, prompt_id);
    empty_ok()
}

/// POST /free.
pub async fn post_free(shared: web::Data<Arc<Shared>>, body: web::Bytes) -> HttpResponse {
    let Some(Value::Object(data)) = parse_json(&body) else {
        return crash();
    };
    let flag = |k: &str| data.get(k).and_then(Value::as_bool).unwrap_or(false);
    let request = FreeRequest {
        unload_models: flag("unload_models"),
        free_memory: flag("free_memory"),
    };
    if request.unload_models || request.free_memory {
        let mut state = shared.lock();
        let merged = state.free.unwrap_or_default();
        state.free = Some(FreeRequest {
            unload_models: merged.unload_models || request.unload_models,
            free_memory: merged.free_memory || request.free_memory,
        });
        shared.wake.notify_all();
    }
    empty_ok()
}
