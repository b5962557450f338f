//! Starting and stopping a fake Discord: an actix-web server on 127.0.0.1 (port 0 picks a free
//! one) running on its own thread with its own actix system, so tests on any runtime can use it.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::{App, HttpServer, web};

use crate::client::ControlClient;
use crate::config::FakeConfig;
use crate::routes;
use crate::world::{Shared, World};

/// Why a fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}; pick another port (0 picks a free one)")]
    Bind { port: u16, source: std::io::Error },
    #[error("cannot start the server thread: {0}")]
    Thread(std::io::Error),
    #[error("the server thread stopped before it was listening")]
    Vanished,
}

/// A running fake Discord. Dropping it stops the server.
pub struct RunningFake {
    addr: SocketAddr,
    config: FakeConfig,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl RunningFake {
    /// Starts a fake with `config` and returns once it is listening.
    pub fn start(config: FakeConfig) -> Result<Self, StartError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_config = config.clone();
        let thread = std::thread::Builder::new()
            .name("fake-discord".into())
            .spawn(move || serve(thread_config, ready_tx))
            .map_err(StartError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok((addr, handle))) => Ok(Self {
                addr,
                config,
                handle,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(StartError::Vanished)
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: what serenity's `HttpBuilder::proxy` takes (it replaces
    /// `https://discord.com`, so REST routes arrive as `/api/v10/...`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/api/v10`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v10", self.base_url())
    }

    /// `ws://127.0.0.1:PORT/gateway`, as `GET /gateway` returns it.
    pub fn gateway_url(&self) -> String {
        format!("ws://{}/gateway", self.addr)
    }

    pub fn config(&self) -> &FakeConfig {
        &self.config
    }

    /// The bot token the fake accepts.
    pub fn token(&self) -> &str {
        &self.config.bot_token
    }

    /// A client of this fake's control API.
    pub fn control(&self) -> ControlClient {
        ControlClient::new(&self.base_url())
    }

    /// Blocks until the server stops (the binary: on SIGINT/SIGTERM).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops the server and waits for its thread.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for RunningFake {
    fn drop(&mut self) {
        // `stop` sends the command at once; its future only reports completion.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Ready = Result<(SocketAddr, actix_web::dev::ServerHandle), StartError>;

fn serve(config: FakeConfig, ready: std::sync::mpsc::Sender<Ready>) {
    let system = actix_rt::System::new();
    system.block_on(async move {
        let listener = match TcpListener::bind(("127.0.0.1", config.port)) {
            Ok(l) => l,
            Err(source) => {
                let _ = ready.send(Err(StartError::Bind {
                    port: config.port,
                    source,
                }));
                return;
            }
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(source) => {
                let _ = ready.send(Err(StartError::Bind {
                    port: config.port,
                    source,
                }));
                return;
            }
        };
        let payload_limit = usize::try_from(config.attachment_size_limit.saturating_mul(11))
            .unwrap_or(usize::MAX)
            .max(64 * 1024 * 1024);
        let handle_signals = config.handle_signals;
        let shared = Arc::new(Shared::new(World::new(config, format!("http://{addr}"))));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(Arc::clone(&shared)))
                .app_data(web::PayloadConfig::new(payload_limit))
                .configure(routes::configure)
        })
        .workers(1)
        .shutdown_timeout(1);
        let server = if handle_signals {
            server
        } else {
            server.disable_signals()
        };
        let server = match server.listen(listener) {
            Ok(s) => s.run(),
            Err(source) => {
                let _ = ready.send(Err(StartError::Bind {
                    port: addr.port(),
                    source,
                }));
                return;
            }
        };
        let _ = ready.send(Ok((addr, server.handle())));
        let _ = server.await;
    });
}
