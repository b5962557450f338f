//! Reads a REST request body the ways Discord takes one: `application/json`, or
//! `multipart/form-data` with the JSON in a `payload_json` part (or as plain form fields) and
//! files in `files[n]` parts (reference: "Uploading Files").

use actix_web::http::header::{CONTENT_TYPE, HeaderMap};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::discord_error::DiscordError;
use crate::form_errors::{FieldError, FormErrors};

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// The form field name, e.g. `files[0]`.
    pub field: String,
    /// `n` of `files[n]`: the placeholder `attachments[].id` refers to.
    pub index: Option<u64>,
    pub filename: String,
    pub content_type: Option<String>,
    pub data: Bytes,
}

/// A body as read: its JSON (an object, or whatever JSON was sent) and its files.
#[derive(Debug, Clone, Default)]
pub struct IncomingBody {
    pub json: Option<Value>,
    pub files: Vec<UploadedFile>,
    pub multipart: bool,
}

/// Form fields sent without `payload_json` that stay strings even when they look like JSON.
const TEXT_FIELDS: &[&str] = &["content", "username", "avatar_url", "nonce", "thread_name"];

/// Reads `raw` according to its `Content-Type`. An empty body reads as no JSON.
pub async fn read(headers: &HeaderMap, raw: Bytes) -> Result<IncomingBody, DiscordError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        return read_multipart(headers, raw).await;
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(IncomingBody::default());
    }
    if !content_type.is_empty() && !content_type.starts_with("application/json") {
        // Discord: a missing or unsupported Content-Type is an invalid form body.
        let mut errors = FormErrors::default();
        errors.push(
            &[],
            FieldError::new(
                "CONTENT_TYPE_INVALID",
                format!("Expected \"Content-Type\" header to be one of {{'application/json', 'multipart/form-data'}}, not {content_type:?}."),
            ),
        );
        return Err(DiscordError::invalid_form_body(&errors));
    }
    let json = serde_json::from_slice(&raw).map_err(|_| DiscordError::invalid_json())?;
    Ok(IncomingBody {
        json: Some(json),
        files: Vec::new(),
        multipart: false,
    })
}

async fn read_multipart(headers: &HeaderMap, raw: Bytes) -> Result<IncomingBody, DiscordError> {
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, actix_web::error::PayloadError>(raw) });
    let mut form = actix_multipart::Multipart::new(headers, stream);
    let mut payload_json: Option<Value> = None;
    let mut fields = Map::new();
    let mut files = Vec::new();
    while let Some(part) = form.next().await {
        let mut part = part.map_err(|_| DiscordError::invalid_form_body(&malformed()))?;
        let name = part.name().unwrap_or_default().to_string();
        let filename = part
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_string);
        let content_type = part.content_type().map(|m| m.essence_str().to_string());
        let mut data = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| DiscordError::invalid_form_body(&malformed()))?;
            data.extend_from_slice(&chunk);
        }
        if name == "payload_json" {
            payload_json =
                Some(serde_json::from_slice(&data).map_err(|_| DiscordError::invalid_json())?);
        } else if let Some(filename) = filename {
            files.push(UploadedFile {
                index: file_index(&name),
                field: name,
                filename,
                content_type,
                data: Bytes::from(data),
            });
        } else {
            let text = String::from_utf8_lossy(&data).into_owned();
            let value = if TEXT_FIELDS.contains(&name.as_str()) {
                Value::String(text)
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            fields.insert(name, value);
        }
    }
    let json = match payload_json {
        Some(json) => Some(json),
        None if !fields.is_empty() => Some(Value::Object(fields)),
        None => None,
    };
    Ok(IncomingBody {
        json,
        files,
        multipart: true,
    })
}

fn malformed() -> FormErrors {
    let mut errors = FormErrors::default();
    errors.push(
        &[],
        FieldError::new(
            "MULTIPART_INVALID",
            "The multipart/form-data body is malformed.",
        ),
    );
    errors
}

/// `files[3]` → 3; Discord also takes `file` and `files` style names, which get no index.
fn file_index(field: &str) -> Option<u64> {
    field
        .strip_prefix("files[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("header"),
        );
        h
    }

    #[actix_rt::test]
    async fn multipart_carries_payload_json_and_indexed_files() {
        let body = "--b\r\nContent-Disposition: form-data; name=\"files[1]\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n--b\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{\"content\":\"hi\",\"attachments\":[{\"id\":1}]}\r\n--b--\r\n";
        let read = read(
            &headers("multipart/form-data; boundary=b"),
            Bytes::from(body),
        )
        .await
        .expect("well formed");
        assert!(read.multipart);
        assert_eq!(
            read.json,
            Some(serde_json::json!({"content": "hi", "attachments": [{"id": 1}]}))
        );
        assert_eq!(read.files.len(), 1);
        assert_eq!(read.files[0].index, Some(1));
        assert_eq!(read.files[0].filename, "a.png");
        assert_eq!(&read.files[0].data[..], b"PNGDATA");
    }

    #[actix_rt::test]
    async fn form_fields_without_payload_json_become_the_json() {
        let body = "--b\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\n123\r\n--b\r\nContent-Disposition: form-data; name=\"tts\"\r\n\r\ntrue\r\n--b--\r\n";
        let read = read(
            &headers("multipart/form-data; boundary=b"),
            Bytes::from(body),
        )
        .await
        .expect("well formed");
        assert_eq!(
            read.json,
            Some(serde_json::json!({"content": "123", "tts": true}))
        );
    }

    #[actix_rt::test]
    async fn broken_json_is_code_50109() {
        let error = read(&headers("application/json"), Bytes::from_static(b"{nope"))
            .await
            .expect_err("not JSON");
        assert_eq!(error.code, 50109);
        let error = read(&headers("text/plain"), Bytes::from_static(b"{}"))
            .await
            .expect_err("not a Discord content type");
        assert_eq!(error.code, 50035);
    }
}
