//! Small helpers shared by the HTTP handlers: ComfyUI's JSON content type, the empty 200, the
//! 500 page the real server shows when a handler crashes, query-string and body parsing.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::Value;

/// `application/json; charset=utf-8` with `body`.
pub fn json_with(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}

/// 200 with a JSON body.
pub fn json_ok(body: &Value) -> HttpResponse {
    json_with(StatusCode::OK, body)
}

/// 200 with an already serialized JSON body.
pub fn json_text(text: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .body(text)
}

/// 200 with an empty body (many ComfyUI POSTs answer this way).
pub fn empty_ok() -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// aiohttp's answer when a handler raises.
pub fn crash() -> HttpResponse {
    HttpResponse::InternalServerError()
        .content_type("text/plain; charset=utf-8")
        .body("500 Internal Server Error\n\nServer got itself in trouble")
}

/// aiohttp's 404.
pub fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("application/octet-stream")
        .body("404: Not Found")
}

/// Decodes a `application/x-www-form-urlencoded` component.
pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string as ordered `(key, value)` pairs.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (url_decode(k), url_decode(v)),
            None => (url_decode(p), String::new()),
        })
        .collect()
}

/// The first value of `key`.
pub fn query_get(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// Parses a JSON body; `None` for malformed JSON.
pub fn parse_json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// The body of `POST /queue` and `POST /history`: `{"clear": true}` and/or `{"delete": [ids]}`.
pub struct ClearDelete {
    pub clear: bool,
    pub delete: Vec<String>,
}

impl ClearDelete {
    /// `None` when the body is not a JSON object (the real server answers 500 then).
    pub fn parse(body: &[u8]) -> Option<Self> {
        let Some(Value::Object(data)) = parse_json(body) else {
            return None;
        };
        Some(Self {
            clear: data
                .get("clear")
                .is_some_and(|c| c.as_bool().unwrap_or(false)),
            delete: data
                .get("delete")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let q = query_pairs("filename=a%20b.png&subfolder=&type=output&preview=webp%3B50");
        assert_eq!(query_get(&q, "filename").as_deref(), Some("a b.png"));
        assert_eq!(query_get(&q, "subfolder").as_deref(), Some(""));
        assert_eq!(query_get(&q, "preview").as_deref(), Some("webp;50"));
        assert_eq!(url_decode("100%"), "100%");
    }
}
