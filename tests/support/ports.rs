//! Loopback ports for tests: one that was free a moment ago, and a URL nothing listens on.

use std::net::TcpListener;

/// A port that was free a moment ago (bind 127.0.0.1:0, read it, release it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A URL on which nothing listens (a port that was just free).
pub fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}
