//! The fake's CDN: every file users attach to an interaction and every file the bot uploads is
//! kept here and served at `/attachments/{channel}/{attachment}/{filename}` on the fake's own
//! address, the path shape of Discord's attachment CDN URLs.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Map, Value, json};

/// One stored file.
#[derive(Debug, Clone)]
pub struct CdnFile {
    pub filename: String,
    pub content_type: String,
    pub data: Bytes,
}

/// Files by (channel id, attachment id).
#[derive(Debug, Default)]
pub struct CdnStore {
    files: HashMap<(u64, u64), CdnFile>,
}

impl CdnStore {
    /// Stores `data` and returns Discord's attachment object for it.
    pub fn store(
        &mut self,
        base_url: &str,
        channel_id: u64,
        attachment_id: u64,
        filename: &str,
        content_type: Option<&str>,
        data: Bytes,
    ) -> Value {
        let filename = clean_filename(filename);
        let content_type = content_type
            .filter(|c| !c.is_empty() && *c != "application/octet-stream")
            .map(str::to_string)
            .unwrap_or_else(|| content_type_for(&filename).to_string());
        let url = format!(
            "{base_url}/attachments/{channel_id}/{attachment_id}/{filename}?ex={:x}&is={:x}&hm={:016x}&",
            attachment_id >> 22,
            attachment_id >> 22,
            attachment_id.rotate_left(17)
        );
        let mut object = Map::new();
        object.insert("id".into(), json!(attachment_id.to_string()));
        object.insert("filename".into(), json!(filename));
        object.insert("size".into(), json!(data.len()));
        object.insert("url".into(), json!(url));
        object.insert("proxy_url".into(), json!(url));
        object.insert("content_type".into(), json!(content_type));
        if let Some((width, height)) = image_size(&data) {
            object.insert("width".into(), json!(width));
            object.insert("height".into(), json!(height));
        }
        self.files.insert(
            (channel_id, attachment_id),
            CdnFile {
                filename,
                content_type,
                data,
            },
        );
        Value::Object(object)
    }

    /// The file at `/attachments/{channel}/{attachment}/{filename}`.
    pub fn get(&self, channel_id: u64, attachment_id: u64, filename: &str) -> Option<&CdnFile> {
        self.files
            .get(&(channel_id, attachment_id))
            .filter(|f| f.filename == filename)
    }
}

/// Discord keeps letters, digits, `.`, `-` and `_` of a filename and turns the rest into `_`.
pub fn clean_filename(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unknown".to_string()
    } else {
        cleaned
    }
}

/// The content type Discord reports for a filename's extension.
pub fn content_type_for(filename: &str) -> &'static str {
    let extension = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" | "jfif" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Width and height of a PNG or GIF, read from its header (Discord reports both for images).
pub fn image_size(data: &[u8]) -> Option<(u32, u32)> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if data.len() >= 24 && data.starts_with(PNG) && &data[12..16] == b"IHDR" {
        let width = u32::from_be_bytes([data[16], data[17], data[18], data[19]]);
        let height = u32::from_be_bytes([data[20], data[21], data[22], data[23]]);
        return Some((width, height));
    }
    if data.len() >= 10 && (data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a")) {
        let width = u32::from(u16::from_le_bytes([data[6], data[7]]));
        let height = u32::from(u16::from_le_bytes([data[8], data[9]]));
        return Some((width, height));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_files_get_a_cdn_url_and_image_size() {
        let mut cdn = CdnStore::default();
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&64u32.to_be_bytes());
        png.extend_from_slice(&32u32.to_be_bytes());
        let object = cdn.store(
            "http://h",
            5,
            9,
            "my cat.png",
            None,
            Bytes::from(png.clone()),
        );
        assert_eq!(object["filename"], "my_cat.png");
        assert_eq!(object["content_type"], "image/png");
        assert_eq!(object["width"], 64);
        assert_eq!(object["height"], 32);
        assert_eq!(object["size"], png.len());
        assert!(
            object["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http://h/attachments/5/9/my_cat.png?ex="))
        );
        assert_eq!(
            cdn.get(5, 9, "my_cat.png").map(|f| f.data.len()),
            Some(png.len())
        );
        assert!(cdn.get(5, 9, "other.png").is_none());
    }
}
