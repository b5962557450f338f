//! The gateway websocket (`/gateway`, and `/gateway/resume` for `resume_gateway_url`): sends
//! HELLO, hands every client payload to the `SessionRegistry` and sends back what it answers,
//! forwards dispatches, compresses large dispatches with zlib when IDENTIFY asked for
//! `compress: true`, and drops a connection that stops heartbeating. The websocket query must ask
//! for API version 10 and JSON (`?v=10`, `encoding=json` optional, no transport compression).

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason};
use serde_json::{Value, json};
use tokio::sync::mpsc::unbounded_channel;

use crate::gateway_sessions::{ConnectionEnd, Outbound, close, control_frame};
use crate::world::Shared;

/// Client payloads larger than this close the connection (gateway: "Must not exceed 4096 bytes").
const MAX_CLIENT_PAYLOAD: usize = 4096;

/// Why a connection's query is refused before the upgrade (the fake speaks JSON without
/// transport compression; the version is checked after the upgrade, with close code 4012).
fn query_problem(query: &str) -> Option<String> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "encoding" if value != "json" => {
                return Some(format!(
                    "the fake gateway speaks JSON only; encoding={value} is not supported (use encoding=json)"
                ));
            }
            "compress" => {
                return Some(format!(
                    "the fake gateway has no transport compression; drop compress={value} (payload compression via IDENTIFY's compress: true works)"
                ));
            }
            _ => {}
        }
    }
    None
}

/// GET /gateway and /gateway/resume (websocket upgrade).
pub async fn connect(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let query = req.query_string().to_string();
    if let Some(problem) = query_problem(&query) {
        return HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body(problem);
    }
    let bad_version = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .any(|(k, v)| k == "v" && v != "10");
    let (response, session, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(_) => {
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body("this is the gateway: open it as a websocket");
        }
    };
    let (tx, rx) = unbounded_channel();
    let path = req.path().to_string();
    let shared: Arc<Shared> = Arc::clone(shared.get_ref());
    let conn = shared.change(|w| w.gateway.open(&path, &query, tx.clone(), Instant::now()));
    if bad_version {
        let _ = tx.send(Outbound::Close(
            close::INVALID_API_VERSION,
            "Invalid API version.".into(),
        ));
    }
    actix_web::rt::spawn(run(shared, conn, session, stream, rx));
    response
}

async fn run(
    shared: Arc<Shared>,
    conn: usize,
    mut session: actix_ws::Session,
    stream: actix_ws::MessageStream,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Outbound>,
) {
    let (interval, grace, threshold) = shared.read(|w| {
        (
            w.config.heartbeat_interval,
            w.config.heartbeat_grace,
            w.config.compress_threshold,
        )
    });
    let hello = control_frame(
        10,
        json!({"heartbeat_interval": interval.as_millis() as u64}),
    );
    if session.text(hello).await.is_err() {
        shared.change(|w| w.gateway.closed(conn, ConnectionEnd::Lost, Instant::now()));
        return;
    }
    let mut stream = stream.max_frame_size(1 << 20).aggregate_continuations();
    let mut deadline = tokio::time::Instant::now() + interval + grace;
    let end = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break ConnectionEnd::HeartbeatTimeout,
            outbound = rx.recv() => {
                let Some(outbound) = outbound else { break ConnectionEnd::Lost };
                match send(&shared, conn, &mut session, outbound, threshold).await {
                    Ok(()) => {}
                    Err(end) => break end,
                }
            }
            incoming = stream.recv() => {
                let text = match incoming {
                    Some(Ok(actix_ws::AggregatedMessage::Text(text))) => text.to_string(),
                    Some(Ok(actix_ws::AggregatedMessage::Binary(_))) => {
                        break close_with(session, close::DECODE_ERROR, "Decode error.").await;
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Ping(data))) => {
                        if session.pong(&data).await.is_err() { break ConnectionEnd::Lost }
                        continue;
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => continue,
                    Some(Ok(actix_ws::AggregatedMessage::Close(reason))) => {
                        let code = reason.as_ref().map(|r| u16::from(r.code));
                        let _ = session.close(reason).await;
                        break ConnectionEnd::Client { code };
                    }
                    Some(Err(_)) | None => break ConnectionEnd::Lost,
                };
                if text.len() > MAX_CLIENT_PAYLOAD {
                    break close_with(session, close::DECODE_ERROR, "Decode error.").await;
                }
                let Ok(payload) = serde_json::from_str::<Value>(&text) else {
                    break close_with(session, close::DECODE_ERROR, "Decode error.").await;
                };
                let reaction = shared.change(|w| {
                    let resume_url = w.resume_gateway_url();
                    let config = w.config.clone();
                    w.gateway.receive(conn, &payload, &config, &resume_url)
                });
                if reaction.heartbeat {
                    deadline = tokio::time::Instant::now() + interval + grace;
                }
                let mut ended = None;
                for outbound in reaction.frames {
                    if let Err(end) = send(&shared, conn, &mut session, outbound, threshold).await {
                        ended = Some(end);
                        break;
                    }
                }
                if let Some(end) = ended { break end }
            }
        }
    };
    // Dropping the session without a close frame ends the socket abruptly where `end` says so.
    shared.change(|w| w.gateway.closed(conn, end, Instant::now()));
}

/// Sends one outbound frame; `Err` when the connection ends with it.
async fn send(
    shared: &Shared,
    conn: usize,
    session: &mut actix_ws::Session,
    outbound: Outbound,
    threshold: usize,
) -> Result<(), ConnectionEnd> {
    let sent = match outbound {
        Outbound::Frame(text) => session.text(text).await,
        Outbound::Dispatch(text) => {
            if text.len() >= threshold && shared.read(|w| w.gateway.compresses(conn)) {
                match zlib(text.as_bytes()) {
                    Some(compressed) => session.binary(compressed).await,
                    None => session.text(text).await,
                }
            } else {
                session.text(text).await
            }
        }
        Outbound::Drop => return Err(ConnectionEnd::Dropped),
        Outbound::Close(code, reason) => {
            let _ = session
                .clone()
                .close(Some(CloseReason {
                    code: CloseCode::Other(code),
                    description: Some(reason.clone()),
                }))
                .await;
            return Err(ConnectionEnd::Server { code, reason });
        }
    };
    sent.map_err(|_| ConnectionEnd::Lost)
}

async fn close_with(session: actix_ws::Session, code: u16, reason: &str) -> ConnectionEnd {
    let _ = session
        .close(Some(CloseReason {
            code: CloseCode::Other(code),
            description: Some(reason.to_string()),
        }))
        .await;
    ConnectionEnd::Server {
        code,
        reason: reason.to_string(),
    }
}

/// Payload compression: one zlib stream per payload (RFC 1950), no shared context.
fn zlib(data: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).ok()?;
    encoder.finish().ok()
}
