//! The `fake-discord` binary as a real child process: it announces its address once listening,
//! serves the API there, and refuses a port that is taken with a clear message.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

use support::{call, http};

const BINARY: &str = env!("CARGO_BIN_EXE_fake-discord");

#[actix_rt::test]
async fn the_binary_announces_its_address_and_serves_the_api() {
    let mut child = Command::new(BINARY)
        .args([
            "--port",
            "0",
            "--token",
            "binary-token",
            "--heartbeat-interval-ms",
            "5000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a first line");
    let base = line
        .trim()
        .strip_prefix("fake-discord listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let (status, _, body) = call(http().get(format!("{base}/api/v10/gateway")), None).await;
    let gateway = format!("{}/gateway", base.replacen("http://", "ws://", 1));
    assert_eq!((status, body), (200, json!({"url": gateway})));
    let (status, _, me) = call(
        http()
            .get(format!("{base}/api/v10/users/@me"))
            .insert_header(("Authorization", "Bot binary-token")),
        None,
    )
    .await;
    assert_eq!((status, me["bot"].clone()), (200, json!(true)));
    child.kill().expect("stop the child");
    let _ = child.wait();
}

#[test]
fn a_taken_port_is_refused_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let output = Command::new(BINARY)
        .args(["--port", &port.to_string()])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}
