//! Event streams a client closes are released at once: the server does not keep the socket
//! (in CLOSE-WAIT) until the job's next event or keep-alive, so clients that come and go cannot
//! use up its file descriptors.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;
use support::in_process_api::start;
use support::waits::{SAFETY, wait_until};

/// The server's sockets (local port `port`) still open to one of `clients` (their ports):
/// established, or in CLOSE-WAIT (the client closed, the server did not), from `/proc/net/tcp`
/// and `tcp6`.
fn server_sockets_to(port: u16, clients: &[u16]) -> usize {
    let port_of = |field: &str| {
        field
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut count = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(state)) =
                (fields.get(1), fields.get(2), fields.get(3))
            else {
                continue;
            };
            let open = matches!(*state, "01" | "08");
            if open
                && port_of(local) == Some(port)
                && port_of(remote).is_some_and(|p| clients.contains(&p))
            {
                count += 1;
            }
        }
    }
    count
}

/// Opens the job's event stream and reads until its first event, as a client would.
fn open_stream(addr: &str, job: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(SAFETY)).unwrap();
    write!(
        stream,
        "GET /v1/jobs/{job}/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("event: ") {
            return stream;
        }
    }
}

#[actix_rt::test]
async fn streams_closed_by_their_clients_are_released_at_once() {
    // The job waits behind a long one, so its stream stays quiet: no event, no keep-alive.
    let api = start(&["--fake-node-time", "30s"], |c| {
        c.scheduler.pipeline_depth = 1;
        c.limits.user_concurrent = 0;
        c.http.sse_keep_alive = Duration::from_secs(3600);
    })
    .await;
    let (status, _, _) = api.post(json!({"template": "demo"}), None).await;
    assert_eq!(status, 201);
    let (status, body, _) = api.post(json!({"template": "demo"}), None).await;
    assert_eq!(status, 201);
    let job = body["id"].as_str().unwrap().to_string();
    let addr = api.base.trim_start_matches("http://").to_string();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();

    let streams: Vec<TcpStream> = {
        let (addr, job) = (addr.clone(), job.clone());
        actix_rt::task::spawn_blocking(move || (0..200).map(|_| open_stream(&addr, &job)).collect())
            .await
            .unwrap()
    };
    let clients: Vec<u16> = streams
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    assert_eq!(
        server_sockets_to(port, &clients),
        200,
        "every stream is open"
    );
    drop(streams);
    wait_until("every closed stream released by the server", || {
        server_sockets_to(port, &clients) == 0
    })
    .await;
    let (status, s) = api.get_json("/v1/status", None).await;
    assert_eq!((status, s["jobs"]["queued"].as_u64()), (200, Some(1)));
    api.stop_now().await;
}
