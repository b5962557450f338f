//! `fake-comfyui`: a real HTTP + websocket server that speaks ComfyUI 0.33.0's protocol (routes,
//! status codes, body shapes, websocket message order, validation errors, queue/history/jobs,
//! output files), launched exactly like ComfyUI. Run with `--help` for the flags, including the
//! `--fake-*` timing and fault-injection knobs and their `FAKE_COMFYUI_*` environment variables.
//!
//! Readiness: once listening it logs `To see the GUI go to: http://ADDR:PORT` (stderr, or stdout
//! with `--log-stdout`), as ComfyUI does. A taken port exits 1 with ComfyUI's message.

mod catalog;
mod config;
mod console;
mod database;
mod execution;
mod files;
mod http_files;
mod http_history;
mod http_info;
mod http_jobs;
mod http_prompt;
mod http_support;
mod hub;
mod imaging;
mod nodes;
mod origin_guard;
mod pyfmt;
mod routes;
mod schedule;
mod state;
mod validation;
mod websocket;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex};

use actix_web::{App, HttpServer, middleware, web};

use crate::config::FakeConfig;
use crate::files::Folders;
use crate::hub::Hub;
use crate::state::{ServerState, Shared};

fn port_in_use_message(config: &FakeConfig) -> String {
    format!(
        "Port {} is already in use on address {}. Please close the other application or use a different port with --port.",
        config.port, config.listen_text
    )
}

fn prepare_folders(config: &FakeConfig) -> std::io::Result<Folders> {
    let folders = Folders {
        input: config.input_dir.clone(),
        output: config.output_dir.clone(),
        temp: config.temp_dir.clone(),
        user: config.user_dir.clone(),
        models: config.models_dir.clone(),
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
    let config = match FakeConfig::parse(&args, &|k| std::env::var(k).ok(), &cwd) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("usage: fake-comfyui [-h] [--listen [IP]] [--port PORT] ...");
            eprintln!("fake-comfyui: error: {e}");
            std::process::exit(2);
        }
    };
    if config.help {
        print!("{}", config::HELP);
        return;
    }
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
    let folders = match prepare_folders(&config) {
        Ok(f) => f,
        Err(e) => {
            console::error(&format!("fake-comfyui: cannot prepare folders: {e}"));
            std::process::exit(1);
        }
    };
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
    files::init(folders.clone());
    let _database = match database::open(&config.database, config.enable_assets) {
        Ok(lock) => lock,
        Err(e) => {
            console::error(&e.to_string());
            std::process::exit(1);
        }
    };
    if !config.faults.start_delay.is_zero() {
        console::info(&format!(
            "fake-comfyui: waiting {} before listening (--fake-start-delay)",
            humantime::format_duration(config.faults.start_delay)
        ));
        std::thread::sleep(config.faults.start_delay);
    }
    console::info(&format!(
        "Import times for custom nodes:\n   0.0 seconds: {}",
        cwd.join("custom_nodes/websocket_image_save.py").display()
    ));
    if config.faults.refuse_port {
        console::error(&port_in_use_message(&config));
        std::process::exit(1);
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(ServerState::default()),
        wake: Condvar::new(),
        interrupt: AtomicBool::new(false),
        hub: Hub::default(),
        config: config.clone(),
        folders,
    });
    if let Err(e) = worker::spawn(Arc::clone(&shared)) {
        console::error(&format!(
            "fake-comfyui: cannot start the worker thread: {e}"
        ));
        std::process::exit(1);
    }
    let result = actix_web::rt::System::new().block_on(serve(shared, config));
    if let Err(e) = result {
        console::error(&format!("fake-comfyui: server error: {e}"));
        std::process::exit(1);
    }
    std::process::exit(0);
}

async fn serve(shared: Arc<Shared>, config: FakeConfig) -> std::io::Result<()> {
    let payload_limit = config.max_upload_bytes.max(1 << 20) as usize;
    let data = web::Data::new(Arc::clone(&shared));
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
    for ip in &config.listen {
        server = match server.bind(SocketAddr::new(*ip, config.port)) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                console::error(&port_in_use_message(&config));
                std::process::exit(1);
            }
            Err(e) => {
                console::error(&format!(
                    "fake-comfyui: cannot listen on {ip}:{}: {e}",
                    config.port
                ));
                std::process::exit(1);
            }
        };
    }
    let addrs = server.addrs();
    let server = server.run();
    console::info("Starting server\n");
    for addr in addrs {
        let host = match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        };
        console::info(&format!(
            "To see the GUI go to: http://{host}:{}",
            addr.port()
        ));
    }
    server.await
}
