//! A TCP proxy on 127.0.0.1 in front of a real server that counts the requests it forwards for
//! one request line prefix (e.g. `GET /object_info `), so a test can tell how often the fleet
//! asked a server for something. Bytes pass through unchanged, both ways, on threads of its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The running proxy; it serves until the process ends.
pub struct CountingProxy {
    pub addr: SocketAddr,
    count: Arc<AtomicUsize>,
}

impl CountingProxy {
    /// Forwards to `upstream`, counting requests whose bytes start with `request_prefix`.
    pub fn start(upstream: SocketAddr, request_prefix: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let count = Arc::new(AtomicUsize::new(0));
        let prefix = request_prefix.as_bytes().to_vec();
        let counted = Arc::clone(&count);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(client_read), Ok(server_write)) = (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                let (prefix, counted) = (prefix.clone(), Arc::clone(&counted));
                std::thread::spawn(move || {
                    pipe(client_read, server_write, Some((prefix, counted)))
                });
                std::thread::spawn(move || pipe(server, client, None));
            }
        });
        Self { addr, count }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests counted so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// Copies `from` into `to` until either side closes; with `counting`, counts occurrences of
/// the prefix at the start of a line (a request line; bodies rarely hold one).
fn pipe(mut from: TcpStream, mut to: TcpStream, counting: Option<(Vec<u8>, Arc<AtomicUsize>)>) {
    let mut buf = [0u8; 16 * 1024];
    // The end of what came before, so a prefix split over two reads is still seen.
    let mut seen = b"\n".to_vec();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((prefix, count)) = &counting {
            seen.extend_from_slice(&buf[..n]);
            let mut needle = b"\n".to_vec();
            needle.extend_from_slice(prefix);
            let found = seen
                .windows(needle.len())
                .filter(|w| *w == needle.as_slice())
                .count();
            count.fetch_add(found, Ordering::SeqCst);
            let keep = seen.len().saturating_sub(needle.len() - 1);
            seen.drain(..keep);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}
