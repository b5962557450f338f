//! `/v1/models`: the fleet's model library. Any user may list it (`GET`, the source of the
//! Discord bot's autocomplete); operators (`http.operators`) may add a file with a streamed
//! `PUT /v1/models/{kind}/{name}` (at most `http.max_model_upload_mb`; `?ephemeral=true` deletes
//! it when the fleet stops; `?sha256=HEX` checks it) and remove one with `DELETE`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::http::ApiState;
use crate::http::api_types::{ModelFileView, ModelList};
use crate::http::error::ApiError;
use crate::models::{LibraryError, ModelFile, ModelKind};

impl From<LibraryError> for ApiError {
    fn from(e: LibraryError) -> Self {
        match e {
            LibraryError::Kind(_) => ApiError::bad_request("unknown_model_kind", e.to_string()),
            LibraryError::Name(_)
            | LibraryError::NotAModel { .. }
            | LibraryError::Escapes { .. } => {
                ApiError::bad_request("invalid_model_name", e.to_string())
            }
            LibraryError::Checksum { .. } => {
                ApiError::bad_request("checksum_mismatch", e.to_string())
            }
            LibraryError::ReadOnly { .. } | LibraryError::Exists { .. } => {
                ApiError::Conflict(e.to_string())
            }
            LibraryError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            LibraryError::Io { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

fn view(file: ModelFile) -> ModelFileView {
    ModelFileView {
        kind: file.kind.as_str().to_string(),
        name: file.name,
        size_bytes: file.size,
        sha256: file.sha256,
        ephemeral: file.ephemeral,
    }
}

/// The query of `GET /v1/models`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    kind: Option<String>,
}

/// `GET /v1/models[?kind=loras]`.
pub async fn list(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    state.tokens.user(&req)?;
    let kind = query
        .kind
        .as_deref()
        .map(ModelKind::parse)
        .transpose()
        .map_err(LibraryError::from)?;
    let fleet = state.fleet.clone();
    // The library is read from disk, so files added by any means show at once.
    let files = web::block(move || {
        fleet.notice_model_changes();
        fleet.library.list(kind)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut models: std::collections::BTreeMap<String, Vec<String>> = match kind {
        Some(kind) => [(kind.as_str().to_string(), Vec::new())].into(),
        None => ModelKind::all()
            .map(|k| (k.as_str().to_string(), Vec::new()))
            .collect(),
    };
    for file in files {
        models
            .entry(file.kind.as_str().to_string())
            .or_default()
            .push(file.name);
    }
    Ok(HttpResponse::Ok().json(ModelList { models }))
}

/// The query of `PUT /v1/models/{kind}/{name}`.
#[derive(Debug, Deserialize)]
pub struct PutQuery {
    #[serde(default)]
    ephemeral: bool,
    sha256: Option<String>,
}

/// `PUT /v1/models/{kind}/{name}`: the body is the file, streamed to disk.
pub async fn put(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<PutQuery>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    state.tokens.operator(&req)?;
    let (kind, name) = path.into_inner();
    let kind = ModelKind::parse(&kind).map_err(LibraryError::from)?;
    let limit_mb = state.fleet.config.http.max_model_upload_mb;
    let limit = limit_mb.saturating_mul(1024 * 1024);
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the file is larger than the {limit_mb} MiB allowed (http.max_model_upload_mb); \
             copy it with `comfy-fleet models add` on the server instead"
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut writer = state
        .fleet
        .library
        .begin_add(kind, &name, query.ephemeral)
        .await?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("upload_broken", format!("the upload broke off: {e}"))
        })?;
        if writer.size() + chunk.len() as u64 > limit {
            // Dropping the writer deletes the partial file.
            return Err(too_large());
        }
        writer.write(&chunk).await?;
    }
    let file = writer.finish(query.sha256.as_deref()).await?;
    tracing::info!(kind = %file.kind, name = %file.name, size = file.size, ephemeral = file.ephemeral, "model added to the library");
    let fleet = state.fleet.clone();
    let _ = web::block(move || fleet.notice_model_changes()).await;
    let location = format!("/v1/models/{}/{}", file.kind, file.name);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(view(file)))
}

/// `DELETE /v1/models/{kind}/{name}`.
pub async fn delete(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    state.tokens.operator(&req)?;
    let (kind, name) = path.into_inner();
    let kind = ModelKind::parse(&kind).map_err(LibraryError::from)?;
    let fleet = state.fleet.clone();
    let removed = web::block(move || {
        let removed = fleet.library.remove(kind, &name);
        fleet.notice_model_changes();
        removed
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    tracing::info!(kind = %removed.kind, name = %removed.name, "model removed from the library");
    Ok(HttpResponse::Ok().json(view(removed)))
}
