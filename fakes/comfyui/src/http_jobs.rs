//! The `/api/jobs` routes (ComfyUI 0.33's unified job view over queue and history): listing with
//! status/workflow filters, sorting and pagination, one job, and cancellation.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::http_prompt::{interrupt, is_canonical_uuid};
use crate::http_support::{json_ok, json_with, parse_json, query_get, query_pairs};
use crate::state::{HistoryRecord, Outcome, QueueItem, Shared};

const STATUSES: &[&str] = &["pending", "in_progress", "completed", "failed", "cancelled"];

/// Media keys whose entries count as outputs.
const MEDIA_KEYS: &[&str] = &[
    "images", "gifs", "video", "videos", "audio", "3d", "animated",
];

/// A job before rendering.
struct JobRow {
    summary: Map<String, Value>,
    status: &'static str,
    create_time: u64,
    duration: Option<u64>,
    workflow_id: Option<String>,
}

fn workflow_id(extra: &Map<String, Value>) -> Option<String> {
    extra
        .get("extra_pnginfo")
        .and_then(|p| p.get("workflow"))
        .and_then(|w| w.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn base(item: &QueueItem, status: &'static str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(item.prompt_id));
    m.insert("status".into(), json!(status));
    m.insert("priority".into(), item.number.clone());
    m.insert("create_time".into(), json!(item.create_time));
    m
}

fn finish(mut m: Map<String, Value>, item: &QueueItem) -> Map<String, Value> {
    if let Some(id) = workflow_id(&item.extra_data) {
        m.insert("workflow_id".into(), json!(id));
    }
    m
}

fn queued_row(item: &QueueItem, status: &'static str) -> JobRow {
    let mut m = base(item, status);
    m.insert("outputs_count".into(), json!(0));
    m.insert("previewable_outputs_count".into(), json!(0));
    JobRow {
        summary: finish(m, item),
        status,
        create_time: item.create_time,
        duration: None,
        workflow_id: workflow_id(&item.extra_data),
    }
}

fn history_row(record: &HistoryRecord) -> JobRow {
    let status = match record.outcome {
        Outcome::Success => "completed",
        Outcome::Failed => "failed",
        Outcome::Cancelled => "cancelled",
    };
    let mut m = base(&record.item, status);
    let start = record.start_time();
    let end = record.end_time();
    if let Some(s) = start {
        m.insert("execution_start_time".into(), json!(s));
    }
    if let Some(e) = end {
        m.insert("execution_end_time".into(), json!(e));
    }
    if let Some(err) = record.execution_error() {
        m.insert("execution_error".into(), err.clone());
    }
    let mut count = 0;
    let mut preview: Option<Value> = None;
    let mut text_preview: Option<Value> = None;
    for (node, out) in &record.outputs {
        let Some(out) = out.as_object() else { continue };
        for (key, entries) in out {
            let Some(entries) = entries.as_array() else {
                continue;
            };
            if MEDIA_KEYS.contains(&key.as_str()) {
                for e in entries.iter().filter(|e| e.get("filename").is_some()) {
                    count += 1;
                    if preview.is_none() {
                        let mut p = e.as_object().cloned().unwrap_or_default();
                        p.insert("nodeId".into(), json!(node));
                        p.insert("mediaType".into(), json!(key));
                        preview = Some(Value::Object(p));
                    }
                }
            } else if key == "text"
                && text_preview.is_none()
                && let Some(t) = entries.first()
            {
                text_preview = Some(json!({"content": t, "nodeId": node, "mediaType": "text"}));
            }
        }
    }
    m.insert("outputs_count".into(), json!(count));
    m.insert("previewable_outputs_count".into(), json!(count));
    if let Some(p) = preview.or(text_preview) {
        m.insert("preview_output".into(), p);
    }
    JobRow {
        summary: finish(m, &record.item),
        status,
        create_time: record.item.create_time,
        duration: start.zip(end).map(|(s, e)| e.saturating_sub(s)),
        workflow_id: workflow_id(&record.item.extra_data),
    }
}

fn all_rows(shared: &Shared) -> Vec<JobRow> {
    let state = shared.lock();
    let mut rows: Vec<JobRow> = state
        .pending
        .iter()
        .map(|i| queued_row(i, "pending"))
        .collect();
    if let Some(r) = &state.running {
        rows.push(queued_row(&r.item, "in_progress"));
    }
    rows.extend(state.history.iter().map(history_row));
    rows
}

fn bad_request(message: String) -> HttpResponse {
    json_with(StatusCode::BAD_REQUEST, &json!({"error": message}))
}

/// GET /api/jobs.
pub async fn list_jobs(shared: web::Data<Arc<Shared>>, req: HttpRequest) -> HttpResponse {
    let q = query_pairs(req.query_string());
    let statuses: Option<Vec<String>> = query_get(&q, "status").map(|s| {
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    });
    if let Some(list) = &statuses {
        let invalid: Vec<&str> = list
            .iter()
            .map(String::as_str)
            .filter(|s| !STATUSES.contains(s))
            .collect();
        if !invalid.is_empty() {
            return bad_request(format!(
                "Invalid status value(s): {}. Valid values: {}",
                invalid.join(", "),
                STATUSES.join(", ")
            ));
        }
    }
    let sort_by = query_get(&q, "sort_by").unwrap_or_else(|| "created_at".into());
    if sort_by != "created_at" && sort_by != "execution_duration" {
        return bad_request(format!(
            "Invalid sort_by value: {sort_by}. Valid values: created_at, execution_duration"
        ));
    }
    let sort_order = query_get(&q, "sort_order").unwrap_or_else(|| "desc".into());
    if sort_order != "asc" && sort_order != "desc" {
        return bad_request(format!(
            "Invalid sort_order value: {sort_order}. Valid values: asc, desc"
        ));
    }
    let parse_non_negative = |name: &str| -> Result<Option<usize>, String> {
        match query_get(&q, name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| format!("{name} must be a non-negative integer")),
        }
    };
    let limit = match parse_non_negative("limit") {
        Ok(l) => l,
        Err(message) => return bad_request(message),
    };
    let offset = match parse_non_negative("offset") {
        Ok(o) => o.unwrap_or(0),
        Err(message) => return bad_request(message),
    };
    let workflow = query_get(&q, "workflow_id");

    let mut rows: Vec<JobRow> = all_rows(&shared)
        .into_iter()
        .filter(|r| {
            statuses
                .as_ref()
                .is_none_or(|s| s.iter().any(|x| x == r.status))
        })
        .filter(|r| {
            workflow
                .as_ref()
                .is_none_or(|w| r.workflow_id.as_ref() == Some(w))
        })
        .collect();
    if sort_by == "execution_duration" {
        rows.sort_by_key(|r| r.duration.unwrap_or(0));
    } else {
        rows.sort_by_key(|r| r.create_time);
    }
    if sort_order == "desc" {
        rows.reverse();
    }
    let total = rows.len();
    let page: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|r| Value::Object(r.summary))
        .collect();
    let has_more = offset + page.len() < total;
    json_ok(&json!({
        "jobs": page,
        "pagination": {"offset": offset, "limit": limit, "total": total, "has_more": has_more}
    }))
}

/// GET /api/jobs/{id}.
pub async fn get_job(shared: web::Data<Arc<Shared>>, path: web::Path<String>) -> HttpResponse {
    let id = path.into_inner();
    let state = shared.lock();
    if let Some(item) = state.pending.iter().find(|i| i.prompt_id == id) {
        return json_ok(&Value::Object(queued_row(item, "pending").summary));
    }
    if let Some(r) = state.running.as_ref().filter(|r| r.item.prompt_id == id) {
        return json_ok(&Value::Object(queued_row(&r.item, "in_progress").summary));
    }
    if let Some(record) = state.history_entry(&id) {
        let mut m = history_row(record).summary;
        m.insert("outputs".into(), Value::Object(record.outputs.clone()));
        m.insert("execution_status".into(), record.status_json());
        m.insert(
            "workflow".into(),
            json!({"prompt": record.item.prompt, "extra_data": record.item.extra_data}),
        );
        return json_ok(&Value::Object(m));
    }
    json_with(StatusCode::NOT_FOUND, &json!({"error": "Job not found"}))
}

/// Cancels one job: pending → dequeued, running → interrupted.
fn cancel(shared: &Shared, id: &str) -> bool {
    {
        let mut state = shared.lock();
        let before = state.pending.len();
        state.pending.retain(|i| i.prompt_id != id);
        if state.pending.len() != before {
            shared.broadcast_status(&state);
            return true;
        }
        if state
            .running
            .as_ref()
            .is_none_or(|r| r.item.prompt_id != id)
        {
            return false;
        }
    }
    interrupt(shared, Some(id))
}

/// POST /api/jobs/{id}/cancel.
pub async fn cancel_job(shared: web::Data<Arc<Shared>>, path: web::Path<String>) -> HttpResponse {
    let id = path.into_inner();
    json_ok(&json!({"cancelled": cancel(&shared, &id)}))
}

/// POST /api/jobs/cancel `{"job_ids": [...]}`.
pub async fn cancel_jobs(shared: web::Data<Arc<Shared>>, body: web::Bytes) -> HttpResponse {
    let Some(ids) = parse_json(&body)
        .and_then(|v| v.get("job_ids").cloned())
        .and_then(|v| v.as_array().cloned())
    else {
        return bad_request("job_ids must be a list of job ids".into());
    };
    let invalid: Vec<Value> = ids
        .iter()
        .filter(|v| !v.as_str().is_some_and(is_canonical_uuid))
        .cloned()
        .collect();
    if !invalid.is_empty() {
        return json_with(
            StatusCode::BAD_REQUEST,
            &json!({"error": "job_ids contains invalid id(s)", "invalid_ids": invalid}),
        );
    }
    let mut any = false;
    for id in ids.iter().filter_map(Value::as_str) {
        any |= cancel(&shared, id);
    }
    json_ok(&json!({"cancelled": any}))
}
