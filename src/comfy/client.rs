//! [`ComfyClient`]: one ComfyUI server's HTTP routes and websocket, over awc.
//!
//! awc's defaults do not fit ComfyUI (5 s request timeout, 2 MiB bodies, 64 KiB websocket
//! frames, while `/object_info` is 1.6 MB+, outputs are megabytes and previews exceed 64 KiB), so
//! every limit is explicit in [`ClientConfig`]. The client is `!Send`: create and use it on one
//! actix arbiter (see the module documentation of [`crate::comfy`]).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use awc::error::{PayloadError, SendRequestError, WsClientError};
use awc::http::StatusCode;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ComfyError, PromptRejection};
use super::multipart::MultipartForm;
use super::protocol::{
    FileRef, FolderType, FreeRequest, HistoryEntry, InterruptRequest, PromptErrorBody,
    PromptRequest, PromptResponse, QueueEdit, QueueSnapshot, SystemStats, UploadResponse,
};
use super::websocket::EventSocket;
use crate::workflow::ObjectInfo;

/// Limits and timeouts of a [`ComfyClient`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Time to open a TCP connection.
    pub connect_timeout: Duration,
    /// Time for a whole request: until the response head, then again for its body.
    pub request_timeout: Duration,
    /// Largest response body read (`/object_info`, `/view` downloads, `/history`).
    pub body_limit: usize,
    /// Largest websocket frame accepted (binary previews are hundreds of KiB).
    pub ws_max_frame: usize,
    /// Pause between `/queue` + `/history` polls while the websocket is down.
    pub poll_interval: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            body_limit: 256 * 1024 * 1024,
            ws_max_frame: 64 * 1024 * 1024,
            poll_interval: Duration::from_millis(250),
        }
    }
}

/// An image (or mask) to upload.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    /// The file name to store it under (ComfyUI may add ` (1)` if taken and `overwrite` is false).
    pub filename: &'a str,
    pub bytes: &'a [u8],
    /// Sub-folder of the target folder; empty for none.
    pub subfolder: &'a str,
    pub overwrite: bool,
    pub folder: FolderType,
}

/// One ComfyUI server, addressed by its base URL (`http://127.0.0.1:8188`).
pub struct ComfyClient {
    base: String,
    http: awc::Client,
    config: ClientConfig,
    object_info: RefCell<Option<Arc<ObjectInfo>>>,
}

impl std::fmt::Debug for ComfyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComfyClient")
            .field("base", &self.base)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ComfyClient {
    /// A client for the server at `base_url` (`http://host:port`, optionally with a path prefix).
    pub fn new(base_url: &str, config: ClientConfig) -> Result<Self, ComfyError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let uri: awc::http::Uri = base.parse().map_err(|e| ComfyError::Unreachable {
            url: base.clone(),
            reason: format!("not a valid URL ({e}); expected e.g. http://127.0.0.1:8188"),
        })?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(ComfyError::Unreachable {
                url: base,
                reason: "expected an http:// URL with a host, e.g. http://127.0.0.1:8188".into(),
            });
        }
        let http = awc::Client::builder()
            .connector(awc::Connector::new().timeout(config.connect_timeout))
            .timeout(config.request_timeout)
            .finish();
        Ok(Self {
            base,
            http,
            config,
            object_info: RefCell::new(None),
        })
    }

    /// The server's base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    // -----------------------------------------------------------------------------------------
    // Discovery
    // -----------------------------------------------------------------------------------------

    /// `GET /system_stats`: also the readiness check.
    pub async fn system_stats(&self) -> Result<SystemStats, ComfyError> {
        self.get_json("/system_stats").await
    }

    /// `GET /object_info`, fetched once per client and then served from memory (shared: the
    /// document is 1.6 MB+, so callers get the same copy).
    pub async fn object_info(&self) -> Result<Arc<ObjectInfo>, ComfyError> {
        if let Some(info) = self.object_info.borrow().as_ref() {
            return Ok(Arc::clone(info));
        }
        let json = self.object_info_json().await?;
        let info = ObjectInfo::from_bytes(&json).map_err(|e| ComfyError::Protocol {
            route: "/object_info".into(),
            reason: e.to_string(),
        })?;
        let info = Arc::new(info);
        *self.object_info.borrow_mut() = Some(Arc::clone(&info));
        Ok(info)
    }

    /// `GET /object_info` as the server sent it (JSON bytes), neither parsed nor kept.
    pub async fn object_info_json(&self) -> Result<Bytes, ComfyError> {
        let route = "/object_info";
        let req = self.http.get(self.route_url(route));
        let (status, body) = self.send(route, req, None).await?;
        if status != StatusCode::OK {
            return Err(http_error(route, status, &body));
        }
        Ok(body)
    }

    /// Forgets the cached `/object_info` (after installing nodes or models).
    pub fn forget_object_info(&self) {
        self.object_info.borrow_mut().take();
    }

    // -----------------------------------------------------------------------------------------
    // Uploads and downloads
    // -----------------------------------------------------------------------------------------

    /// `POST /upload/image`.
    pub async fn upload_image(&self, upload: &Upload<'_>) -> Result<UploadResponse, ComfyError> {
        let form = upload_form(upload);
        self.post_form("/upload/image", form).await
    }

    /// `POST /upload/mask`: stores `upload` as the alpha channel of the image `original`
    /// (ComfyUI reads that image and writes a copy with the mask applied).
    pub async fn upload_mask(
        &self,
        upload: &Upload<'_>,
        original: &FileRef,
    ) -> Result<UploadResponse, ComfyError> {
        let original_ref = serde_json::to_string(original).map_err(|e| ComfyError::Protocol {
            route: "/upload/mask".into(),
            reason: e.to_string(),
        })?;
        let form = upload_form(upload).text("original_ref", &original_ref);
        self.post_form("/upload/mask", form).await
    }

    /// `GET /view`: the bytes of one file of ComfyUI's folders.
    pub async fn view(&self, file: &FileRef) -> Result<Bytes, ComfyError> {
        let query = [
            ("filename", file.filename.as_str()),
            ("subfolder", file.subfolder.as_str()),
            ("type", file.kind.as_str()),
        ];
        let route = "/view";
        let req = self
            .http
            .get(self.route_url(route))
            .query(&query)
            .map_err(|e| ComfyError::Protocol {
                route: route.into(),
                reason: e.to_string(),
            })?;
        let (status, body) = self.send(route, req, None).await?;
        if status != StatusCode::OK {
            return Err(http_error(
                &format!("{route}?filename={}", file.filename),
                status,
                &body,
            ));
        }
        Ok(body)
    }

    // -----------------------------------------------------------------------------------------
    // Prompts
    // -----------------------------------------------------------------------------------------

    /// `POST /prompt`. A 400 becomes [`ComfyError::Rejected`]; a 200 is returned as is, and may
    /// carry `node_errors` (the invalid outputs were dropped, the rest was queued).
    pub async fn submit(&self, request: &PromptRequest) -> Result<PromptResponse, ComfyError> {
        let route = "/prompt";
        let (status, body) = self.post_json_raw(route, request).await?;
        match status {
            StatusCode::OK => parse_json(route, &body),
            StatusCode::BAD_REQUEST => match serde_json::from_slice::<PromptErrorBody>(&body) {
                Ok(err) => Err(ComfyError::Rejected(Box::new(PromptRejection {
                    status: 400,
                    error: err.error,
                    node_errors: err.node_errors,
                }))),
                Err(_) => Err(http_error(route, status, &body)),
            },
            _ => Err(http_error(route, status, &body)),
        }
    }

    /// `GET /history/{id}`: the entry, or `None` while the prompt is not finished (or unknown).
    pub async fn history(&self, prompt_id: &str) -> Result<Option<HistoryEntry>, ComfyError> {
        let route = format!("/history/{prompt_id}");
        let mut map: serde_json::Map<String, Value> = self.get_json(&route).await?;
        match map.remove(prompt_id) {
            None => Ok(None),
            Some(entry) => {
                serde_json::from_value(entry)
                    .map(Some)
                    .map_err(|e| ComfyError::Protocol {
                        route,
                        reason: format!("history entry: {e}"),
                    })
            }
        }
    }

    /// `GET /history?max_items=N[&offset=K]`: entries oldest first. `max_items` alone gives
    /// the newest N; with `offset`, K counts from the oldest.
    pub async fn history_page(
        &self,
        max_items: Option<usize>,
        offset: Option<usize>,
    ) -> Result<Vec<(String, HistoryEntry)>, ComfyError> {
        let mut params = Vec::new();
        if let Some(n) = max_items {
            params.push(format!("max_items={n}"));
        }
        if let Some(k) = offset {
            params.push(format!("offset={k}"));
        }
        let route = if params.is_empty() {
            "/history".to_owned()
        } else {
            format!("/history?{}", params.join("&"))
        };
        let map: serde_json::Map<String, Value> = self.get_json(&route).await?;
        map.into_iter()
            .map(|(id, entry)| {
                serde_json::from_value(entry)
                    .map(|e| (id.clone(), e))
                    .map_err(|e| ComfyError::Protocol {
                        route: route.clone(),
                        reason: format!("history entry {id}: {e}"),
                    })
            })
            .collect()
    }

    /// `GET /queue`.
    pub async fn queue(&self) -> Result<QueueSnapshot, ComfyError> {
        self.get_json("/queue").await
    }

    /// `POST /queue {"delete": ids}`: removes pending prompts (not the running one).
    pub async fn delete_from_queue(&self, prompt_ids: &[String]) -> Result<(), ComfyError> {
        let edit = QueueEdit {
            delete: prompt_ids.to_vec(),
            clear: false,
        };
        self.post_expect_ok("/queue", &edit).await
    }

    /// `POST /queue {"clear": true}`: removes every pending prompt.
    pub async fn clear_queue(&self) -> Result<(), ComfyError> {
        let edit = QueueEdit {
            delete: Vec::new(),
            clear: true,
        };
        self.post_expect_ok("/queue", &edit).await
    }

    /// `POST /interrupt`: with `Some(id)`, interrupts that prompt only if it is the one running
    /// (otherwise a silent no-op); with `None`, whatever runs.
    pub async fn interrupt(&self, prompt_id: Option<&str>) -> Result<(), ComfyError> {
        let body = InterruptRequest {
            prompt_id: prompt_id.map(str::to_owned),
        };
        self.post_expect_ok("/interrupt", &body).await
    }

    /// `POST /free`.
    pub async fn free(&self, request: FreeRequest) -> Result<(), ComfyError> {
        self.post_expect_ok("/free", &request).await
    }

    // -----------------------------------------------------------------------------------------
    // Websocket
    // -----------------------------------------------------------------------------------------

    /// Opens `/ws?clientId=client_id` and waits for the server's first `status` frame, so the
    /// socket is registered before anything is submitted for that client id.
    pub async fn connect_events(&self, client_id: &str) -> Result<EventSocket, ComfyError> {
        let url = format!("{}/ws?clientId={client_id}", self.base);
        let connect = self
            .http
            .ws(url.as_str())
            .max_frame_size(self.config.ws_max_frame)
            .connect();
        let (_, framed) = connect.await.map_err(|e| self.ws_error(e))?;
        EventSocket::open(
            framed,
            &self.base,
            self.config.request_timeout,
            self.config.ws_max_frame,
        )
        .await
    }

    // -----------------------------------------------------------------------------------------
    // Plumbing
    // -----------------------------------------------------------------------------------------

    fn route_url(&self, route: &str) -> String {
        format!("{}{route}", self.base)
    }

    async fn get_json<T: DeserializeOwned>(&self, route: &str) -> Result<T, ComfyError> {
        let req = self.http.get(self.route_url(route));
        let (status, body) = self.send(route, req, None).await?;
        if status != StatusCode::OK {
            return Err(http_error(route, status, &body));
        }
        parse_json(route, &body)
    }

    async fn post_json_raw<B: Serialize>(
        &self,
        route: &str,
        body: &B,
    ) -> Result<(StatusCode, Bytes), ComfyError> {
        let json = serde_json::to_vec(body).map_err(|e| ComfyError::Protocol {
            route: route.into(),
            reason: format!("cannot encode the request: {e}"),
        })?;
        let req = self
            .http
            .post(self.route_url(route))
            .content_type("application/json");
        self.send(route, req, Some(Bytes::from(json))).await
    }

    async fn post_expect_ok<B: Serialize>(&self, route: &str, body: &B) -> Result<(), ComfyError> {
        let (status, body) = self.post_json_raw(route, body).await?;
        if status == StatusCode::OK {
            Ok(())
        } else {
            Err(http_error(route, status, &body))
        }
    }

    async fn post_form<T: DeserializeOwned>(
        &self,
        route: &str,
        form: MultipartForm,
    ) -> Result<T, ComfyError> {
        let req = self
            .http
            .post(self.route_url(route))
            .content_type(form.content_type());
        let (status, body) = self
            .send(route, req, Some(Bytes::from(form.finish())))
            .await?;
        if status != StatusCode::OK {
            return Err(http_error(route, status, &body));
        }
        parse_json(route, &body)
    }

    /// Sends a request and reads the whole body within the configured limits.
    async fn send(
        &self,
        route: &str,
        req: awc::ClientRequest,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), ComfyError> {
        let sent = match body {
            Some(b) => req.send_body(b).await,
            None => req.send().await,
        };
        // awc stops timing at the response head; the body gets its own deadline.
        let mut res = sent
            .map_err(|e| self.send_error(e))?
            .timeout(self.config.request_timeout);
        let status = res.status();
        let body = res
            .body()
            .limit(self.config.body_limit)
            .await
            .map_err(|e| self.payload_error(route, e))?;
        Ok((status, body))
    }

    fn send_error(&self, e: SendRequestError) -> ComfyError {
        match e {
            SendRequestError::Connect(c) => ComfyError::Unreachable {
                url: self.base.clone(),
                reason: c.to_string(),
            },
            SendRequestError::Timeout => ComfyError::Unreachable {
                url: self.base.clone(),
                reason: format!(
                    "no answer within {}",
                    humantime::format_duration(self.config.request_timeout)
                ),
            },
            other => ComfyError::Disconnected {
                url: self.base.clone(),
                reason: other.to_string(),
            },
        }
    }

    fn payload_error(&self, route: &str, e: PayloadError) -> ComfyError {
        match e {
            PayloadError::Overflow => ComfyError::Protocol {
                route: route.into(),
                reason: format!(
                    "the answer is larger than the body limit of {} bytes (raise it in the client config)",
                    self.config.body_limit
                ),
            },
            other => ComfyError::Disconnected {
                url: self.base.clone(),
                reason: format!("while reading the answer to {route}: {other}"),
            },
        }
    }

    fn ws_error(&self, e: WsClientError) -> ComfyError {
        match e {
            WsClientError::SendRequest(e) => self.send_error(e),
            WsClientError::InvalidResponseStatus(status) => ComfyError::Http {
                route: "/ws".into(),
                status: status.as_u16(),
                body: "the websocket upgrade was refused".into(),
            },
            other => ComfyError::Protocol {
                route: "/ws".into(),
                reason: other.to_string(),
            },
        }
    }
}

fn upload_form(upload: &Upload<'_>) -> MultipartForm {
    let mime = mime_guess::from_path(upload.filename).first_or_octet_stream();
    MultipartForm::new()
        .file("image", upload.filename, mime.essence_str(), upload.bytes)
        .text("overwrite", if upload.overwrite { "true" } else { "false" })
        .text("type", upload.folder.as_str())
        .text("subfolder", upload.subfolder)
}

fn parse_json<T: DeserializeOwned>(route: &str, body: &[u8]) -> Result<T, ComfyError> {
    serde_json::from_slice(body).map_err(|e| ComfyError::Protocol {
        route: route.into(),
        reason: format!("{e}; body starts with {:?}", preview(body)),
    })
}

fn http_error(route: &str, status: StatusCode, body: &[u8]) -> ComfyError {
    ComfyError::Http {
        route: route.into(),
        status: status.as_u16(),
        body: preview(body),
    }
}

/// The start of a body, as text, for error messages.
fn preview(body: &[u8]) -> String {
    const MAX: usize = 500;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]).into_owned();
    if body.len() > MAX {
        format!("{text}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_urls_it_cannot_use() {
        assert!(matches!(
            ComfyClient::new("localhost:8188", ClientConfig::default()),
            Err(ComfyError::Unreachable { .. })
        ));
        assert!(ComfyClient::new("ftp://x", ClientConfig::default()).is_err());
    }

    #[actix_rt::test]
    async fn trailing_slash_is_dropped() {
        let c = ComfyClient::new("http://127.0.0.1:8188/", ClientConfig::default()).unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:8188");
    }
}
