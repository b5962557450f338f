//! `multipart/form-data` bodies as clients send them to `POST /v1/jobs` (a `request` part with
//! the job's JSON, then image parts), built by hand so tests control every byte, and a small
//! real PNG to send.

use serde_json::Value;

/// One part of a form.
pub struct Part<'a> {
    pub name: &'a str,
    pub filename: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub bytes: Vec<u8>,
}

impl<'a> Part<'a> {
    /// The `request` part: the job's JSON.
    pub fn request(job: &Value) -> Self {
        Self {
            name: "request",
            filename: None,
            content_type: Some("application/json"),
            bytes: job.to_string().into_bytes(),
        }
    }

    /// An image part named after its parameter.
    pub fn image(name: &'a str, filename: &'a str, bytes: Vec<u8>) -> Self {
        Self {
            name,
            filename: Some(filename),
            content_type: Some("image/png"),
            bytes,
        }
    }
}

/// The boundary every form of these tests uses.
pub const BOUNDARY: &str = "comfy-fleet-test-boundary";

/// The `content-type` header of a form.
pub fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// The body of a form with `parts`.
pub fn body(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(f) = part.filename {
            disposition.push_str(&format!("; filename=\"{f}\""));
        }
        out.extend_from_slice(disposition.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(t) = part.content_type {
            out.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&part.bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// A real `width`×`height` PNG (a gradient).
pub fn test_png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 200])
    });
    let mut out = Vec::new();
    picture
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("a PNG encodes");
    out
}
