//! A `multipart/form-data` body built by hand, for ComfyUI's `/upload/image` and `/upload/mask`
//! (awc has no multipart encoder).

use rand::Rng;

/// A form being built: text fields and files, in order.
#[derive(Debug, Clone)]
pub struct MultipartForm {
    boundary: String,
    body: Vec<u8>,
}

impl Default for MultipartForm {
    fn default() -> Self {
        Self::new()
    }
}

impl MultipartForm {
    /// An empty form with a random boundary.
    pub fn new() -> Self {
        let mut rng = rand::rng();
        let token: String = (0..24)
            .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
            .collect();
        Self {
            boundary: format!("comfy-fleet-{token}"),
            body: Vec::new(),
        }
    }

    /// Adds a text field.
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.open_part();
        self.body.extend_from_slice(
            format!(
                "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                quote(name)
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// Adds a file field.
    pub fn file(mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Self {
        self.open_part();
        self.body.extend_from_slice(
            format!(
                "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                quote(name),
                quote(filename),
                content_type
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// The `Content-Type` header value.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The finished body.
    pub fn finish(mut self) -> Vec<u8> {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        self.body
    }

    fn open_part(&mut self) {
        self.body
            .extend_from_slice(format!("--{}\r\n", self.boundary).as_bytes());
    }
}

/// Escapes a header parameter the way browsers do (quotes and line breaks percent-encoded).
fn quote(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_has_fields_files_and_closing_boundary() {
        let form = MultipartForm::new()
            .file("image", "a \"b\".png", "image/png", b"\x89PNG")
            .text("overwrite", "true");
        let ct = form.content_type();
        let boundary = ct.split("boundary=").nth(1).unwrap().to_owned();
        let body = form.finish();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"image\"; filename=\"a %22b%22.png\"\r\nContent-Type: image/png\r\n\r\n\u{FFFD}PNG\r\n"));
        assert!(text.contains("name=\"overwrite\"\r\n\r\ntrue\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
