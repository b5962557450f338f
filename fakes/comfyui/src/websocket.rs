//! GET /ws?clientId=…: registers the socket in the hub, sends the initial `status` (and the
//! `executing` resync frame when this client's prompt is running), answers a first
//! `feature_flags` message with the server's flags, ignores other client messages.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::Message;
use serde_json::{Value, json};
use tokio::sync::mpsc::unbounded_channel;

use crate::http_info::server_features;
use crate::http_support::{query_get, query_pairs};
use crate::hub::Frame;
use crate::state::Shared;

/// Largest client frame accepted.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// GET /ws.
pub async fn websocket(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let q = query_pairs(req.query_string());
    let sid = query_get(&q, "clientId")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let (response, mut session, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(_) => {
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body("No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" only to \"WebSocket\".");
        }
    };
    let (tx, mut rx) = unbounded_channel::<Frame>();
    let conn = {
        let state = shared.lock();
        let conn = shared.hub.register(&sid, tx.clone());
        let status = json!({"type": "status", "data": {"status": state.queue_info(), "sid": sid}});
        let _ = tx.send(Frame::Text(status.to_string()));
        if let Some(r) = state.running.as_ref()
            && r.item.client_id().as_deref() == Some(sid.as_str())
            && let Some(node) = &r.last_node
        {
            let frame = json!({"type": "executing", "data": {"node": node}});
            let _ = tx.send(Frame::Text(frame.to_string()));
        }
        conn
    };
    drop(tx);
    let shared = Arc::clone(&shared);
    actix_web::rt::spawn(async move {
        let mut stream = stream.max_frame_size(MAX_FRAME);
        let mut first_message = true;
        loop {
            tokio::select! {
                frame = rx.recv() => {
                    let sent = match frame {
                        Some(Frame::Text(t)) => session.text(t).await,
                        Some(Frame::Binary(b)) => session.binary(b).await,
                        None => break,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                msg = stream.recv() => {
                    match msg {
                        Some(Ok(Message::Text(text))) => {
                            if first_message
                                && let Ok(v) = serde_json::from_str::<Value>(&text)
                                    && v.get("type").and_then(Value::as_str) == Some("feature_flags") {
                                        let flags = v.get("data").cloned().unwrap_or(json!({}));
                                        shared.hub.set_client_flags(&sid, conn, &flags);
                                        let reply = json!({"type": "feature_flags", "data": server_features(&shared)});
                                        if session.text(reply.to_string()).await.is_err() {
                                            break;
                                        }
                                    }
                            first_message = false;
                        }
                        Some(Ok(Message::Ping(p))) => {
                            if session.pong(&p).await.is_err() {
                                break;
                            }
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    }
                }
            }
        }
        shared.hub.unregister(&sid, conn);
        let _ = session.close(None).await;
    });
    response
}
