//! `GET /attachments/{channel_id}/{attachment_id}/{filename}`: the fake's CDN, serving the files
//! of attachment URLs (query parameters such as `ex`, `is`, `hm` are accepted and ignored).
//! Downloads are logged like API requests.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::request_log::RequestRecord;
use crate::world::Shared;

pub const ATTACHMENT: &str = "/attachments/{channel_id}/{attachment_id}/{filename}";

pub async fn attachment(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (channel, attachment, filename) = path.into_inner();
    let now = std::time::Instant::now();
    shared.change(|w| {
        let file = match (channel.parse::<u64>(), attachment.parse::<u64>()) {
            (Ok(c), Ok(a)) => w.cdn.get(c, a, &filename).cloned(),
            _ => None,
        };
        let status = if file.is_some() { 200 } else { 404 };
        let at_ms = w.ms(now);
        w.requests.push(RequestRecord {
            seq: 0,
            at_ms,
            method: "GET".into(),
            path: req.path().to_string(),
            route: ATTACHMENT.into(),
            status,
            content_type: None,
            body: None,
            files: Vec::new(),
            error_code: None,
            form_errors: None,
            response_schema_errors: Vec::new(),
        });
        match file {
            Some(file) => HttpResponse::Ok()
                .content_type(file.content_type)
                .body(file.data),
            None => HttpResponse::NotFound()
                .content_type("text/plain; charset=utf-8")
                .body("404: Not Found"),
        }
    })
}
