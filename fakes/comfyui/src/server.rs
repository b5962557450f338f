//! Starting the server: the boot ComfyUI logs (device, versions, folders, database, custom
//! nodes), the prompt worker, then the HTTP + websocket listener. The program runs it in the
//! foreground ([`crate::run_command_line`]); [`start`] and [`start_on`] run it on a thread of the
//! calling process and return a [`RunningServer`].

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, middleware, web};
use thiserror::Error;

use crate::config::FakeConfig;
use crate::console;
use crate::database::{self, DatabaseError, DatabaseLock};
use crate::files::Folders;
use crate::hub::Hub;
use crate::model_paths::{ModelPaths, ModelPathsError};
use crate::state::{ServerState, Shared};
use crate::stop_signal::StopSignal;
use crate::{http_support, origin_guard, routes, worker};

/// Why the server did not start (or stopped with an error). The texts are the program's log lines.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("fake-comfyui: cannot prepare folders: {0}")]
    Folders(std::io::Error),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    ModelPaths(#[from] ModelPathsError),
    #[error(
        "Port {port} is already in use on address {address}. Please close the other application or use a different port with --port."
    )]
    PortInUse { port: u16, address: String },
    #[error("fake-comfyui: cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("fake-comfyui: cannot start the worker thread: {0}")]
    Worker(std::io::Error),
    #[error("fake-comfyui: cannot start the server thread: {0}")]
    ServerThread(std::io::Error),
    #[error("fake-comfyui: the server thread ended before it listened")]
    ServerThreadEnded,
    #[error("fake-comfyui: server error: {0}")]
    Serve(std::io::Error),
}

/// A booted server that does not listen yet: its state, its worker and its database lock.
pub struct Booted {
    pub shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    _database: DatabaseLock,
}

impl Booted {
    /// Stops the worker and waits for it; the database lock goes with `self`.
    fn stop(mut self) {
        self.shared.stop_worker();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Where to listen.
pub enum Bind {
    /// Every `--listen` address on `--port` (0 picks a free port).
    Configured,
    /// An already bound listener.
    Listener(TcpListener),
}

/// Whether SIGINT/SIGTERM stop the server (the program) or are left to the host (in-process).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    Handled,
    Ignored,
}

/// A listening server (a future to await) and its addresses.
pub struct Bound {
    pub server: Server,
    pub addrs: Vec<SocketAddr>,
}

fn prepare_folders(config: &FakeConfig, models: ModelPaths) -> std::io::Result<Folders> {
    let folders = Folders {
        input: config.input_dir.clone(),
        output: config.output_dir.clone(),
        temp: config.temp_dir.clone(),
        user: config.user_dir.clone(),
        models,
    };
    // ComfyUI wipes its temp folder at every start.
    if folders.temp.exists() {
        console::info(&format!(
            "Cleaning temp directory {}",
            folders.temp.display()
        ));
        std::fs::remove_dir_all(&folders.temp)?;
    }
    for dir in [
        &folders.input,
        &folders.output,
        &folders.temp,
        &folders.user,
    ] {
        std::fs::create_dir_all(dir)?;
    }
    Ok(folders)
}

/// Everything ComfyUI does before it listens, with its log lines, and the prompt worker.
pub fn boot(config: FakeConfig) -> Result<Booted, StartError> {
    console::init(config.log_stdout);
    for arg in &config.ignored {
        console::warn(&format!("fake-comfyui: ignoring unknown argument {arg:?}"));
    }
    console::info("Checkpoint files will always be loaded safely.");
    if config.cpu {
        console::info("Set vram state to: DISABLED");
        console::info("Device: cpu");
    } else {
        console::info("Set vram state to: NORMAL_VRAM");
        console::info("Device: cuda:0 Fake GPU : cudaMallocAsync");
    }
    console::info("Python version: 3.11.7 (fake-comfyui)");
    console::info("ComfyUI version: 0.33.0");
    console::info("ComfyUI frontend version: 1.49.6");
    let models =
        ModelPaths::with_extra_files(config.models_dir.clone(), &config.extra_model_paths)?
            .listing(config.listed_models.clone());
    for (folder, dir) in models.registered() {
        console::info(&format!(
            "Adding extra search path {folder} {}",
            dir.display()
        ));
    }
    let folders = prepare_folders(&config, models).map_err(StartError::Folders)?;
    console::info(&format!(
        "Setting output directory to: {}",
        folders.output.display()
    ));
    console::info(&format!(
        "Setting input directory to: {}",
        folders.input.display()
    ));
    console::info(&format!(
        "Setting user directory to: {}",
        folders.user.display()
    ));
    let database = database::open(&config.database, config.enable_assets)?;
    if !config.faults.start_delay.is_zero() {
        console::info(&format!(
            "fake-comfyui: waiting {} before listening (--fake-start-delay)",
            humantime::format_duration(config.faults.start_delay)
        ));
        std::thread::sleep(config.faults.start_delay);
    }
    console::info(&format!(
        "Import times for custom nodes:\n   0.0 seconds: {}",
        config
            .cwd
            .join("custom_nodes/websocket_image_save.py")
            .display()
    ));
    if config.faults.refuse_port {
        return Err(port_in_use(&config));
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(ServerState::default()),
        wake: Condvar::new(),
        interrupt: AtomicBool::new(false),
        hub: Hub::default(),
        config,
        folders,
        stop: StopSignal::default(),
    });
    let worker = worker::spawn(Arc::clone(&shared)).map_err(StartError::Worker)?;
    Ok(Booted {
        shared,
        worker: Some(worker),
        _database: database,
    })
}

fn port_in_use(config: &FakeConfig) -> StartError {
    StartError::PortInUse {
        port: config.port,
        address: config.listen_text.clone(),
    }
}

/// Binds and starts the HTTP + websocket server (call it inside an actix system) and logs
/// ComfyUI's readiness lines, one per address.
pub fn listen(shared: Arc<Shared>, bind: Bind, signals: Signals) -> Result<Bound, StartError> {
    let config = shared.config.clone();
    let payload_limit = config.max_upload_bytes.max(1 << 20) as usize;
    let data = web::Data::new(shared);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(payload_limit))
            .wrap(middleware::from_fn(origin_guard::origin_guard))
            .configure(routes::configure)
            .default_service(web::to(|| async { http_support::not_found() }))
    })
    .workers(2)
    // Like ComfyUI's server (asyncio sets TCP_NODELAY on every TCP transport): small frames go
    // out at once instead of waiting for the peer's delayed ACK (Nagle), ~40 ms per exchange.
    .tcp_nodelay(true)
    .shutdown_timeout(1);
    if signals == Signals::Ignored {
        server = server.disable_signals();
    }
    match bind {
        Bind::Configured => {
            for ip in &config.listen {
                server = match server.bind(SocketAddr::new(*ip, config.port)) {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                        return Err(port_in_use(&config));
                    }
                    Err(source) => {
                        return Err(StartError::Listen {
                            address: format!("{ip}:{}", config.port),
                            source,
                        });
                    }
                };
            }
        }
        Bind::Listener(listener) => {
            let address = listener
                .local_addr()
                .map_or_else(|_| "the given listener".to_string(), |a| a.to_string());
            server = server
                .listen(listener)
                .map_err(|source| StartError::Listen { address, source })?;
        }
    }
    let addrs = server.addrs();
    let server = server.run();
    console::info("Starting server\n");
    for addr in &addrs {
        let host = match addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        console::info(&format!(
            "To see the GUI go to: http://{host}:{}",
            addr.port()
        ));
    }
    Ok(Bound { server, addrs })
}

/// Starts the server in this process on the configured addresses and port (`--port 0` picks a
/// free port); returns once it listens.
pub fn start(config: FakeConfig) -> Result<RunningServer, StartError> {
    start_with(config, Bind::Configured)
}

/// Starts the server in this process on an already bound listener (the configured addresses
/// and port are not used); returns once it listens.
pub fn start_on(config: FakeConfig, listener: TcpListener) -> Result<RunningServer, StartError> {
    start_with(config, Bind::Listener(listener))
}

fn start_with(config: FakeConfig, bind: Bind) -> Result<RunningServer, StartError> {
    let booted = boot(config)?;
    let shared = Arc::clone(&booted.shared);
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("fake-comfyui-http".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match listen(shared, bind, Signals::Ignored) {
                    Ok(bound) => {
                        let _ = tx.send(Ok((bound.server.handle(), bound.addrs)));
                        bound.server.await
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        Ok(())
                    }
                }
            })
        });
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            booted.stop();
            return Err(StartError::ServerThread(e));
        }
    };
    let listening = rx.recv();
    match listening {
        Ok(Ok((handle, addrs))) => match addrs.first().copied() {
            Some(addr) => Ok(RunningServer {
                addr,
                addrs,
                shared: Arc::clone(&booted.shared),
                handle,
                thread: Some(thread),
                booted: Some(booted),
            }),
            None => {
                drop(handle.stop(false));
                let _ = thread.join();
                booted.stop();
                Err(StartError::ServerThreadEnded)
            }
        },
        Ok(Err(e)) => {
            let _ = thread.join();
            booted.stop();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            booted.stop();
            Err(StartError::ServerThreadEnded)
        }
    }
}

/// A server running in this process. Dropping it stops it, like [`RunningServer::stop`].
pub struct RunningServer {
    addr: SocketAddr,
    addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    handle: ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    booted: Option<Booted>,
}

impl RunningServer {
    /// The address it listens on (the first one, with several `--listen` addresses).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every address it listens on.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// `http://ADDR`, its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration it runs with (its folders, timings and faults).
    pub fn config(&self) -> &FakeConfig {
        &self.shared.config
    }

    /// Stops listening, closes every connection, ends the running prompt early (its node and
    /// step pauses are cut short) and waits until the server's threads have ended.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(thread) = self.thread.take() {
            // the stop command is sent at once; the thread ends when the server has stopped
            drop(self.handle.stop(false));
            let _ = thread.join();
        }
        if let Some(booted) = self.booted.take() {
            booted.stop();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}
