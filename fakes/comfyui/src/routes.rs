//! The route table: every non-static route at `/x` and `/api/x` (like ComfyUI), `/api/jobs…` only
//! with the prefix, `/internal/…` only without it, aiohttp-style 404 for the rest.

use actix_web::web;

use crate::{http_files, http_history, http_info, http_jobs, http_prompt, websocket};

fn mirrored(cfg: &mut web::ServiceConfig, prefix: &str) {
    let p = |path: &str| format!("{prefix}{path}");
    cfg.route(&p("/ws"), web::get().to(websocket::websocket))
        .route(&p("/system_stats"), web::get().to(http_info::system_stats))
        .route(&p("/features"), web::get().to(http_info::features))
        .route(&p("/object_info"), web::get().to(http_info::object_info))
        .route(
            &p("/object_info/{class}"),
            web::get().to(http_info::object_info_class),
        )
        .route(&p("/embeddings"), web::get().to(http_info::embeddings))
        .route(&p("/models"), web::get().to(http_info::models))
        .route(
            &p("/models/{folder}"),
            web::get().to(http_info::models_folder),
        )
        .route(&p("/extensions"), web::get().to(http_info::extensions))
        .route(&p("/users"), web::get().to(http_info::users))
        .route(&p("/settings"), web::get().to(http_info::empty_object))
        .route(&p("/i18n"), web::get().to(http_info::empty_object))
        .route(
            &p("/workflow_templates"),
            web::get().to(http_info::empty_object),
        )
        .route(
            &p("/node_replacements"),
            web::get().to(http_info::node_replacements),
        )
        .route(
            &p("/experiment/models"),
            web::get().to(http_info::experiment_models),
        )
        .route(
            &p("/experiment/models/{folder}"),
            web::get().to(http_info::experiment_models_folder),
        )
        .route(&p("/assets"), web::get().to(http_info::assets_disabled))
        .route(&p("/tags"), web::get().to(http_info::assets_disabled))
        .route(&p("/prompt"), web::get().to(http_prompt::get_prompt))
        .route(&p("/prompt"), web::post().to(http_prompt::post_prompt))
        .route(&p("/queue"), web::get().to(http_prompt::get_queue))
        .route(&p("/queue"), web::post().to(http_prompt::post_queue))
        .route(
            &p("/interrupt"),
            web::post().to(http_prompt::post_interrupt),
        )
        .route(&p("/free"), web::post().to(http_prompt::post_free))
        .route(&p("/history"), web::get().to(http_history::get_history))
        .route(&p("/history"), web::post().to(http_history::post_history))
        .route(
            &p("/history/{prompt_id}"),
            web::get().to(http_history::get_history_entry),
        )
        .route(
            &p("/upload/image"),
            web::post().to(http_files::upload_image),
        )
        .route(&p("/upload/mask"), web::post().to(http_files::upload_mask))
        .route(&p("/view"), web::get().to(http_files::view));
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(http_info::index))
        .route("/api/jobs", web::get().to(http_jobs::list_jobs))
        .route("/api/jobs/cancel", web::post().to(http_jobs::cancel_jobs))
        .route("/api/jobs/{id}", web::get().to(http_jobs::get_job))
        .route(
            "/api/jobs/{id}/cancel",
            web::post().to(http_jobs::cancel_job),
        )
        .route(
            "/internal/folder_paths",
            web::get().to(http_info::folder_paths),
        )
        .route("/internal/logs", web::get().to(http_info::empty_list))
        .route(
            "/internal/files/{kind}",
            web::get().to(http_info::empty_list),
        );
    mirrored(cfg, "");
    mirrored(cfg, "/api");
}
