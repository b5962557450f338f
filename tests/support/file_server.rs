//! A small HTTP/1.1 file server on 127.0.0.1 for download tests: it serves fixed bytes at
//! paths, honours `Range: bytes=N-` (206 with `Content-Range`, 416 past the end), can cut the
//! first transfer of a file after some bytes (as a dropped connection would), and records each
//! request's path and `Range` header.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub path: String,
    pub range: Option<String>,
}

#[derive(Default)]
struct State {
    files: BTreeMap<String, Vec<u8>>,
    /// Path → bytes sent before the connection is cut (once).
    cuts: BTreeMap<String, usize>,
    seen: Vec<SeenRequest>,
}

/// A running file server (it stops with the test process).
pub struct FileServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FileServer {
    /// Serves `files` (path → bytes).
    pub fn start(files: &[(&str, &[u8])]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            files: files
                .iter()
                .map(|(p, b)| (p.to_string(), b.to_vec()))
                .collect(),
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Self { addr, state }
    }

    /// The next transfer of `path` stops after `bytes` bytes of its body.
    pub fn cut_next(&self, path: &str, bytes: usize) {
        self.state
            .lock()
            .unwrap()
            .cuts
            .insert(path.to_string(), bytes);
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().seen.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }
    let (body, cut) = {
        let mut state = state.lock().unwrap();
        state.seen.push(SeenRequest {
            path: path.clone(),
            range: range.clone(),
        });
        let cut = state.cuts.remove(&path);
        (state.files.get(&path).cloned(), cut)
    };
    let mut out = stream;
    let Some(body) = body else {
        let _ = out
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let start: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let head = if range.is_some() && start >= body.len() {
        let _ = out.write_all(
            format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        return;
    } else if range.is_some() {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len() - 1,
            body.len(),
            body.len() - start
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
            body.len()
        )
    };
    let rest = &body[start..];
    let sent = cut.map_or(rest.len(), |c| c.min(rest.len()));
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(&rest[..sent]);
    let _ = out.flush();
    let _ = out.shutdown(std::net::Shutdown::Both);
}
