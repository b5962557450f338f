//! A blocking client of the fleet's HTTP API, used the way a script with an HTTP session uses
//! it: `POST /v1/jobs`, then `GET /v1/jobs/{id}/events` read frame by frame until the final
//! event, both on one kept-alive connection. The socket sets `TCP_NODELAY`, as curl and browsers
//! do. For the benches, which time a job from the POST to its `done` frame.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::Value;

use super::waits::SAFETY;

/// A connection to the API that submits jobs and follows them.
pub struct ApiClient {
    addr: SocketAddr,
    /// The kept-alive connection (opened on first use, reopened after the server closed it).
    connection: Option<BufReader<TcpStream>>,
}

/// How a followed job ended, with the event names seen on its stream.
#[derive(Debug)]
pub struct Followed {
    pub last: String,
    pub events: Vec<String>,
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, SAFETY)
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream.set_nodelay(true).expect("TCP_NODELAY on the client");
    stream.set_read_timeout(Some(SAFETY)).expect("read timeout");
    stream
}

/// Reads a response head; returns the status and the headers (names lower-cased).
fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("a status line");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (status, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl ApiClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            connection: None,
        }
    }

    fn send(&mut self, message: &[u8]) -> &mut BufReader<TcpStream> {
        let addr = self.addr;
        let reader = self
            .connection
            .get_or_insert_with(|| BufReader::new(connect(addr)));
        reader
            .get_mut()
            .write_all(message)
            .expect("the request is sent");
        reader
    }

    /// Forgets the connection when the server said it closes it.
    fn keep_or_close(&mut self, headers: &[(String, String)]) {
        if header(headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            self.connection = None;
        }
    }

    /// `POST /v1/jobs` with `body`; returns the status and the JSON answer.
    pub fn post_job(&mut self, body: &Value) -> (u16, Value) {
        let body = serde_json::to_vec(body).expect("a JSON body");
        let request = format!(
            "POST /v1/jobs HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut message = request.into_bytes();
        message.extend_from_slice(&body);
        let reader = self.send(&message);
        let (status, headers) = read_head(reader);
        let length: usize = header(&headers, "content-length")
            .and_then(|v| v.parse().ok())
            .expect("the answer has a Content-Length");
        let mut answer = vec![0; length];
        reader.read_exact(&mut answer).expect("the answer's body");
        self.keep_or_close(&headers);
        let json = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        (status, json)
    }

    /// Follows `GET /v1/jobs/{id}/events` until its final event (`done`, `failed`,
    /// `cancelled`), then reads the stream to its end so the connection can be used again.
    /// `on_final` runs the moment the final event's frame has arrived.
    pub fn follow(&mut self, id: &str, on_final: impl FnOnce()) -> Followed {
        let request = format!(
            "GET /v1/jobs/{id}/events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.addr
        );
        let reader = self.send(request.as_bytes());
        let (status, headers) = read_head(reader);
        assert_eq!(status, 200, "the event stream of job {id}");
        assert_eq!(
            header(&headers, "transfer-encoding"),
            Some("chunked"),
            "the event stream of job {id} is chunked"
        );
        let mut events = Vec::new();
        let mut last = None;
        let mut on_final = Some(on_final);
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).expect("a chunk size");
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
                .unwrap_or_else(|_| panic!("not a chunk size: {size_line:?}"));
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).expect("a chunk");
            if size == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&chunk[..size]).into_owned();
            for name in text.lines().filter_map(|l| l.strip_prefix("event: ")) {
                events.push(name.to_string());
                if matches!(name, "done" | "failed" | "cancelled") {
                    last = Some(name.to_string());
                    if let Some(f) = on_final.take() {
                        f();
                    }
                }
            }
        }
        self.keep_or_close(&headers);
        let last = last.unwrap_or_else(|| {
            panic!("the stream of job {id} ended without a final event: {events:?}")
        });
        Followed { last, events }
    }
}
