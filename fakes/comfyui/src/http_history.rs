//! The history routes: GET /history (max_items/offset paging as ComfyUI pages), GET
//! /history/{id}, POST /history (delete / clear).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};

use crate::http_support::{ClearDelete, crash, empty_ok, json_ok, query_get, query_pairs};
use crate::state::Shared;

fn parse_int(v: Option<String>) -> Result<Option<i64>, ()> {
    match v {
        None => Ok(None),
        Some(s) => s.trim().parse::<i64>().map(Some).map_err(|_| ()),
    }
}

/// GET /history.
pub async fn get_history(shared: web::Data<Arc<Shared>>, req: HttpRequest) -> HttpResponse {
    let q = query_pairs(req.query_string());
    let (Ok(max_items), Ok(offset)) = (
        parse_int(query_get(&q, "max_items")),
        parse_int(query_get(&q, "offset")),
    ) else {
        return crash();
    };
    let state = shared.lock();
    let mut offset = offset.unwrap_or(-1);
    if offset < 0
        && let Some(m) = max_items
    {
        offset = state.history.len() as i64 - m;
    }
    let mut out = Map::new();
    for (i, record) in state.history.iter().enumerate() {
        if i as i64 >= offset {
            out.insert(record.item.prompt_id.clone(), record.to_json());
            if max_items.is_some_and(|m| out.len() as i64 >= m) {
                break;
            }
        }
    }
    json_ok(&Value::Object(out))
}

/// GET /history/{prompt_id}.
pub async fn get_history_entry(
    shared: web::Data<Arc<Shared>>,
    path: web::Path<String>,
) -> HttpResponse {
    let id = path.into_inner();
    let state = shared.lock();
    let mut out = Map::new();
    if let Some(record) = state.history_entry(&id) {
        out.insert(id, record.to_json());
    }
    json_ok(&Value::Object(out))
}

/// POST /history.
pub async fn post_history(shared: web::Data<Arc<Shared>>, body: web::Bytes) -> HttpResponse {
    let Some(request) = ClearDelete::parse(&body) else {
        return crash();
    };
    let mut state = shared.lock();
    if request.clear {
        state.history.clear();
    }
    for id in &request.delete {
        state.history.retain(|r| &r.item.prompt_id != id);
    }
    empty_ok()
}
