//! File routes: POST /upload/image and /upload/mask (multipart, ComfyUI's rename rule) and
//! GET /view (content type, Content-Disposition, nosniff, preview conversion, channels).

use std::collections::HashMap;
use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::http::header::HttpDate;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::files::{annotated, safe_join, upload_name};
use crate::http_support::{crash, json_ok, query_get, query_pairs};
use crate::imaging;
use crate::state::Shared;

/// A parsed upload form.
struct UploadForm {
    image: Option<(String, Vec<u8>)>,
    fields: HashMap<String, String>,
}

/// Reads the multipart form, refusing more than `limit` bytes in total.
async fn read_form(mut payload: Multipart, limit: u64) -> Result<UploadForm, HttpResponse> {
    let mut form = UploadForm {
        image: None,
        fields: HashMap::new(),
    };
    let mut total: u64 = 0;
    while let Some(field) = payload.next().await {
        let Ok(mut field) = field else {
            return Err(HttpResponse::BadRequest().finish());
        };
        let name = field.name().unwrap_or_default().to_string();
        let filename = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_string);
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let Ok(chunk) = chunk else {
                return Err(HttpResponse::BadRequest().finish());
            };
            total += chunk.len() as u64;
            if total > limit {
                return Err(HttpResponse::PayloadTooLarge().finish());
            }
            data.extend_from_slice(&chunk);
        }
        match filename {
            Some(f) if name == "image" => form.image = Some((f, data)),
            _ => {
                form.fields
                    .insert(name, String::from_utf8_lossy(&data).into_owned());
            }
        }
    }
    Ok(form)
}

/// Stores an upload as ComfyUI's `image_upload` does; `transform` may rewrite the bytes.
fn store(shared: &Shared, form: &UploadForm, transform: &dyn Fn(&[u8]) -> Vec<u8>) -> HttpResponse {
    let Some((filename, bytes)) = &form.image else {
        return HttpResponse::BadRequest().finish();
    };
    if filename.is_empty() {
        return HttpResponse::BadRequest().finish();
    }
    let kind = form
        .fields
        .get("type")
        .filter(|t| !t.is_empty())
        .cloned()
        .unwrap_or_else(|| "input".into());
    let Some(root) = shared.folders.by_type(&kind) else {
        return HttpResponse::BadRequest().finish();
    };
    let subfolder = form.fields.get("subfolder").cloned().unwrap_or_default();
    let Some(folder) = safe_join(root, &subfolder) else {
        return HttpResponse::BadRequest().finish();
    };
    let base = std::path::Path::new(filename)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if base.is_empty() || safe_join(&folder, &base).is_none() {
        return HttpResponse::BadRequest().finish();
    }
    if std::fs::create_dir_all(&folder).is_err() {
        return crash();
    }
    let overwrite = form
        .fields
        .get("overwrite")
        .is_some_and(|o| o == "true" || o == "1");
    let data = transform(bytes);
    let (name, write) = upload_name(&folder, &base, &data, overwrite);
    if write && std::fs::write(folder.join(&name), &data).is_err() {
        return crash();
    }
    json_ok(&json!({"name": name, "subfolder": subfolder, "type": kind}))
}

/// POST /upload/image.
pub async fn upload_image(shared: web::Data<Arc<Shared>>, payload: Multipart) -> HttpResponse {
    match read_form(payload, shared.config.max_upload_bytes).await {
        Ok(form) => store(&shared, &form, &|b| b.to_vec()),
        Err(resp) => resp,
    }
}

/// POST /upload/mask: the original image (`original_ref`) with the mask's alpha channel.
pub async fn upload_mask(shared: web::Data<Arc<Shared>>, payload: Multipart) -> HttpResponse {
    let form = match read_form(payload, shared.config.max_upload_bytes).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let Some(original_ref) = form
        .fields
        .get("original_ref")
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
    else {
        return crash();
    };
    let name = original_ref
        .get("filename")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (plain, annotated_kind) = annotated(name);
    if plain.is_empty() || plain.starts_with('/') || plain.contains("..") {
        return HttpResponse::BadRequest().finish();
    }
    let kind = annotated_kind.map(str::to_string).unwrap_or_else(|| {
        original_ref
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("output")
            .to_string()
    });
    let Some(root) = shared.folders.by_type(&kind) else {
        return HttpResponse::BadRequest().finish();
    };
    let sub = original_ref
        .get("subfolder")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(dir) = safe_join(root, sub) else {
        return HttpResponse::Forbidden().finish();
    };
    let original = std::fs::read(dir.join(plain)).ok();
    store(&shared, &form, &|mask| {
        let merged = original.as_ref().and_then(|o| {
            let mut base = image::load_from_memory(o).ok()?.to_rgba8();
            let mask = image::load_from_memory(mask).ok()?.to_rgba8();
            if mask.dimensions() != base.dimensions() {
                return None;
            }
            for (p, m) in base.pixels_mut().zip(mask.pixels()) {
                p[3] = m[3];
            }
            let mut out = Vec::new();
            image::DynamicImage::ImageRgba8(base)
                .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                .ok()?;
            Some(out)
        });
        merged.unwrap_or_else(|| mask.to_vec())
    })
}

/// GET /view.
pub async fn view(shared: web::Data<Arc<Shared>>, req: HttpRequest) -> HttpResponse {
    let q = query_pairs(req.query_string());
    let Some(filename) = query_get(&q, "filename") else {
        return HttpResponse::NotFound().finish();
    };
    let (plain, annotated_kind) = annotated(&filename);
    if plain.is_empty() {
        return HttpResponse::BadRequest().finish();
    }
    if plain.starts_with('/') || plain.contains("..") {
        return HttpResponse::BadRequest().finish();
    }
    let kind = annotated_kind
        .map(str::to_string)
        .unwrap_or_else(|| query_get(&q, "type").unwrap_or_else(|| "output".into()));
    let Some(mut dir) = shared.folders.by_type(&kind).map(|d| d.to_path_buf()) else {
        return HttpResponse::BadRequest().finish();
    };
    if let Some(sub) = query_get(&q, "subfolder") {
        match safe_join(&dir, &sub) {
            Some(d) => dir = d,
            None => return HttpResponse::Forbidden().finish(),
        }
    }
    let base = std::path::Path::new(plain)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = dir.join(&base);
    let Ok(bytes) = std::fs::read(&path)
        .map_err(|_| ())
        .and_then(|b| if path.is_file() { Ok(b) } else { Err(()) })
    else {
        return HttpResponse::NotFound().finish();
    };
    let disposition = format!("filename=\"{base}\"");
    let channel = query_get(&q, "channel").unwrap_or_default();
    if let Some(preview) = query_get(&q, "preview") {
        let parts: Vec<&str> = preview.split(';').collect();
        let mut format = parts.first().copied().unwrap_or("webp");
        if !(format == "webp" || format == "jpeg") || channel.contains('a') {
            format = "webp";
        }
        let quality = parts
            .last()
            .and_then(|q| q.parse::<u8>().ok())
            .unwrap_or(90);
        return match imaging::convert_preview(&bytes, format, quality, &channel) {
            Ok((data, content_type)) => HttpResponse::Ok()
                .content_type(content_type)
                .insert_header(("Content-Disposition", disposition))
                .body(data),
            Err(_) => crash(),
        };
    }
    if channel == "rgb" || channel == "a" {
        return match imaging::extract_channel(&bytes, &channel) {
            Ok(data) => HttpResponse::Ok()
                .content_type("image/png")
                .insert_header(("Content-Disposition", disposition))
                .body(data),
            Err(_) => crash(),
        };
    }
    let mut content_type = mime_guess::from_path(&base)
        .first_raw()
        .unwrap_or("application/octet-stream");
    if matches!(
        content_type,
        "text/html"
            | "text/html-sandboxed"
            | "application/xhtml+xml"
            | "text/javascript"
            | "text/css"
    ) {
        content_type = "application/octet-stream";
    }
    let mut resp = HttpResponse::Ok();
    resp.content_type(content_type)
        .insert_header(("Content-Disposition", disposition))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Accept-Ranges", "bytes"));
    if let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified()) {
        resp.insert_header(("Last-Modified", HttpDate::from(modified).to_string()));
    }
    resp.body(bytes)
}
