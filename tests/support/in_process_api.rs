//! The application (`App::start`: a real fleet of fake-comfyui child processes behind the real
//! HTTP API on 127.0.0.1:0) in this process, with an `awc` client for the API.

use std::path::Path;
use std::time::Duration;

use comfy_fleet::app::App;
use comfy_fleet::config::Config;
use comfy_fleet::shutdown::{self, ShutdownTrigger};
use serde_json::Value;

use super::waits::SAFETY;
use super::{FAKE_COMFYUI, workflows_dir};

/// The application with its HTTP API, in this process, with a client for the API.
pub struct Api {
    app: Option<App>,
    /// Asks the application to stop (a second request: at once).
    pub trigger: ShutdownTrigger,
    /// `http://ADDR` of the API.
    pub base: String,
    /// A client for the API (with [`SAFETY`] as its timeout).
    pub client: awc::Client,
    _dir: tempfile::TempDir,
}

/// The config: one CPU instance of fake-comfyui (`fake_args` added), then `edit`.
pub fn config(dir: &Path, fake_args: &[&str], edit: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    c.comfyui.state_dir = dir.join("state");
    let mut command = vec![
        FAKE_COMFYUI.to_string(),
        "--fake-step-time".into(),
        "0ms".into(),
    ];
    command.extend(fake_args.iter().map(|s| s.to_string()));
    c.comfyui.command = command;
    c.workflows.dir = workflows_dir();
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    c.logging.metrics_interval = Duration::ZERO;
    c.gpus.discovery = comfy_fleet::config::DiscoveryMode::Declared;
    c.gpus.cpu_instances = 1;
    c.lifecycle.stop_grace = Duration::from_secs(5);
    c.shutdown.drain_timeout = Duration::from_secs(5);
    edit(&mut c);
    c
}

/// Starts the application with its API on 127.0.0.1:0 and waits until its instances take jobs.
pub async fn start(fake_args: &[&str], edit: impl FnOnce(&mut Config)) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), fake_args, edit);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (trigger, shutdown) = shutdown::channel();
    let app = App::start(config, Some(listener), shutdown).await.unwrap();
    let ready = app
        .fleet()
        .phases
        .wait_until(|b| !b.is_empty() && b.values().all(|v| v.phase.accepts_jobs()));
    tokio::time::timeout(SAFETY, ready)
        .await
        .expect("instances ready");
    let base = format!("http://{}", app.api_addr().unwrap());
    let client = awc::Client::builder().timeout(SAFETY).finish();
    Api {
        app: Some(app),
        trigger,
        base,
        client,
        _dir: dir,
    }
}

impl Api {
    /// The application's state folder (instances' folders, the output store).
    pub fn state_dir(&self) -> std::path::PathBuf {
        self.app().fleet().config.comfyui.state_dir.clone()
    }

    /// `POST /v1/jobs` as multipart: a `request` part with `request`, and one PNG part per
    /// `(parameter, bytes)`.
    pub async fn post_multipart(&self, request: &Value, images: &[(&str, &[u8])]) -> (u16, Value) {
        let boundary = "comfyfleettestboundary4f2c";
        let mut body = Vec::new();
        let request = request.to_string();
        let mut part = |headers: String, data: &[u8]| {
            body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        };
        part(
            "Content-Disposition: form-data; name=\"request\"\r\nContent-Type: application/json"
                .into(),
            request.as_bytes(),
        );
        for (param, png) in images {
            part(
                format!(
                    "Content-Disposition: form-data; name=\"{param}\"; filename=\"{param}.png\"\r\nContent-Type: image/png"
                ),
                png,
            );
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let mut resp = self
            .client
            .post(format!("{}/v1/jobs", self.base))
            .insert_header((
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            ))
            .send_body(body)
            .await
            .unwrap();
        let answer = resp.json().await.unwrap_or(Value::Null);
        (resp.status().as_u16(), answer)
    }

    /// The running application.
    pub fn app(&self) -> &App {
        self.app.as_ref().expect("the application runs until stop")
    }

    /// Stops the application: running jobs may finish within the drain deadline.
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }

    /// Stops the application at once (a job that hangs would hold a drain).
    pub async fn stop_now(mut self) {
        if let Some(app) = self.app.take() {
            self.trigger.stop_now("test");
            app.stop().await;
        }
    }

    pub async fn post(
        &self,
        body: Value,
        token: Option<&str>,
    ) -> (u16, Value, awc::http::header::HeaderMap) {
        let mut req = self.client.post(format!("{}/v1/jobs", self.base));
        if let Some(t) = token {
            req = req.insert_header(("authorization", format!("Bearer {t}")));
        }
        let mut resp = req.send_json(&body).await.unwrap();
        let headers = resp.headers().clone();
        let body: Value = resp.json().await.unwrap();
        (resp.status().as_u16(), body, headers)
    }

    pub async fn get_json(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.insert_header(("authorization", format!("Bearer {t}")));
        }
        let mut resp = req.send().await.unwrap();
        let body = resp.body().limit(64 << 20).await.unwrap();
        (
            resp.status().as_u16(),
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        )
    }

    pub async fn delete(&self, id: &str) -> (u16, Value) {
        let mut resp = self
            .client
            .delete(format!("{}/v1/jobs/{id}", self.base))
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    /// The whole SSE stream of a job (it closes after the final event).
    pub async fn events(&self, id: &str) -> String {
        self.events_as(id, None).await
    }

    /// [`Api::events`] with a token.
    pub async fn events_as(&self, id: &str, token: Option<&str>) -> String {
        let mut req = self
            .client
            .get(format!("{}/v1/jobs/{id}/events", self.base));
        if let Some(t) = token {
            req = req.insert_header(("authorization", format!("Bearer {t}")));
        }
        let mut resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
        let body = resp.body().limit(64 << 20).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }
}
