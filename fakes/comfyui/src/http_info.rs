//! Discovery routes: /system_stats, /features, /object_info[/{class}], /embeddings,
//! /models[/{folder}], /extensions and the smaller ones the frontend probes (/api/users,
//! /api/settings, /internal/folder_paths, …).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::catalog::{LiveDirs, MODEL_FOLDERS, catalog};
use crate::http_support::{json_ok, json_text, json_with, not_found};
use crate::state::Shared;

const EXTENSIONS: &str = include_str!("../data/extensions.json");
const NODE_REPLACEMENTS: &str = include_str!("../data/node_replacements.json");

/// Bytes of total and available memory from /proc/meminfo (fallback: 16 GiB / 12 GiB).
fn memory() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    (
        field("MemTotal:").unwrap_or(16 << 30),
        field("MemAvailable:").unwrap_or(12 << 30),
    )
}

/// The server's feature flags (GET /features and the websocket handshake answer).
pub fn server_features(shared: &Shared) -> Value {
    json!({
        "supports_preview_metadata": true,
        "supports_model_type_tags": true,
        "max_upload_size": shared.config.max_upload_bytes,
        "extension": {"manager": {"supports_v4": true}},
        "node_replacements": true,
        "assets": shared.config.enable_assets,
    })
}

/// GET /system_stats.
pub async fn system_stats(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    let (ram_total, ram_free) = memory();
    let config = &shared.config;
    let device = if config.cpu {
        json!({
            "name": "cpu", "type": "cpu", "index": null,
            "vram_total": ram_total, "vram_free": ram_free,
            "torch_vram_total": ram_total, "torch_vram_free": ram_free,
        })
    } else {
        let visible = config
            .cuda_device
            .clone()
            .or_else(|| config.cuda_visible_devices.clone())
            .unwrap_or_else(|| "all".into());
        let total: u64 = 24 * (1 << 30);
        json!({
            "name": format!("cuda:0 Fake GPU (CUDA_VISIBLE_DEVICES={visible}) : cudaMallocAsync"),
            "type": "cuda", "index": 0,
            "vram_total": total, "vram_free": total - (512 << 20),
            "torch_vram_total": 0, "torch_vram_free": 0,
        })
    };
    let pkg = |name: &str, v: &str| json!({"name": name, "installed": v, "required": v});
    json_ok(&json!({
        "system": {
            "os": std::env::consts::OS,
            "ram_total": ram_total,
            "ram_free": ram_free,
            "comfyui_version": "0.33.0",
            "required_frontend_version": "1.49.6",
            "installed_templates_version": "0.11.44",
            "required_templates_version": "0.11.44",
            "comfy_package_versions": [
                pkg("comfyui-frontend-package", "1.49.6"),
                pkg("comfyui-workflow-templates", "0.11.44"),
                pkg("comfyui-embedded-docs", "0.5.10"),
                pkg("comfy-kitchen", "0.2.31"),
                pkg("comfy-aimdo", "0.4.13"),
            ],
            "python_version": "3.11.7 (fake-comfyui) [rustc]",
            "pytorch_version": "2.10.0+cu128",
            "embedded_python": false,
            "deploy_environment": "local-git",
            "argv": config.argv,
        },
        "devices": [device],
    }))
}

/// GET /features.
pub async fn features(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    json_ok(&server_features(&shared))
}

fn dirs(shared: &Shared) -> LiveDirs<'_> {
    LiveDirs {
        folders: &shared.folders,
    }
}

/// GET /object_info.
pub async fn object_info(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    json_text(catalog().live_json(&dirs(&shared), shared.config.disable_api_nodes))
}

/// GET /object_info/{class}.
pub async fn object_info_class(
    shared: web::Data<Arc<Shared>>,
    path: web::Path<String>,
) -> HttpResponse {
    let class = path.into_inner();
    let mut out = Map::new();
    let hidden = shared.config.disable_api_nodes
        && catalog()
            .class(&class)
            .and_then(|c| c.get("api_node"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
    if !hidden && let Some(entry) = catalog().live_class(&class, &dirs(&shared)) {
        out.insert(class, entry);
    }
    json_ok(&Value::Object(out))
}

/// GET /embeddings.
pub async fn embeddings(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    let names: Vec<String> = shared
        .folders
        .models
        .files("embeddings")
        .into_iter()
        .map(|f| match f.rsplit_once('.') {
            Some((stem, _)) => stem.to_string(),
            None => f,
        })
        .collect();
    json_ok(&json!(names))
}

/// GET /models.
pub async fn models() -> HttpResponse {
    json_ok(&json!(MODEL_FOLDERS))
}

/// GET /models/{folder}.
pub async fn models_folder(
    shared: web::Data<Arc<Shared>>,
    path: web::Path<String>,
) -> HttpResponse {
    let folder = path.into_inner();
    if !MODEL_FOLDERS.contains(&folder.as_str()) {
        return HttpResponse::NotFound().finish();
    }
    json_ok(&json!(shared.folders.models.files(&folder)))
}

/// GET /api/experiment/models.
pub async fn experiment_models(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    let list: Vec<Value> = MODEL_FOLDERS
        .iter()
        .filter(|f| **f != "custom_nodes" && **f != "configs")
        .map(|f| {
            json!({
                "name": f,
                "folders": shared.folders.models.dirs(f).iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
                "extensions": [".bin", ".ckpt", ".pkl", ".pt", ".pt2", ".pth", ".safetensors", ".sft"],
            })
        })
        .collect();
    json_ok(&json!(list))
}

/// GET /api/experiment/models/{folder}.
pub async fn experiment_models_folder(
    shared: web::Data<Arc<Shared>>,
    path: web::Path<String>,
) -> HttpResponse {
    let folder = path.into_inner();
    if !MODEL_FOLDERS.contains(&folder.as_str()) {
        return not_found();
    }
    let files: Vec<Value> = shared
        .folders
        .models
        .files_by_dir(&folder)
        .into_iter()
        .map(|(name, index)| json!({"name": name, "pathIndex": index}))
        .collect();
    json_ok(&json!(files))
}

/// GET /extensions.
pub async fn extensions() -> HttpResponse {
    json_text(EXTENSIONS.to_string())
}

/// GET /api/node_replacements.
pub async fn node_replacements() -> HttpResponse {
    json_text(NODE_REPLACEMENTS.to_string())
}

/// GET /users.
pub async fn users() -> HttpResponse {
    json_ok(&json!({"storage": "server", "migrated": false}))
}

/// Routes answering `{}` (settings, i18n, workflow templates).
pub async fn empty_object() -> HttpResponse {
    json_ok(&json!({}))
}

/// Routes answering `[]`.
pub async fn empty_list() -> HttpResponse {
    json_ok(&json!([]))
}

/// GET /internal/folder_paths.
pub async fn folder_paths(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    let mut out = Map::new();
    for f in MODEL_FOLDERS {
        out.insert(
            (*f).to_string(),
            json!(
                shared
                    .folders
                    .models
                    .dirs(f)
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
            ),
        );
    }
    json_ok(&Value::Object(out))
}

/// /api/assets and /api/tags without --enable-assets.
pub async fn assets_disabled() -> HttpResponse {
    json_with(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": {"code": "SERVICE_DISABLED", "message": "Assets system is disabled. Start the server with --enable-assets to use this feature.", "details": {}}}),
    )
}

/// GET /: a small page instead of the web UI.
pub async fn index(req: HttpRequest) -> HttpResponse {
    let host = req.connection_info().host().to_string();
    HttpResponse::Ok().content_type("text/html").body(format!(
        "<!doctype html><html lang=\"en\"><head><title>ComfyUI (fake)</title></head><body>\
         <p>fake-comfyui at {host}: speaks the ComfyUI 0.33.0 API (no web UI).</p></body></html>"
    ))
}
