//! The gateway over a real websocket, spoken by hand: HELLO, IDENTIFY → READY, heartbeats,
//! payload compression, the documented close codes, RESUME with replay of missed dispatches,
//! INVALID_SESSION, RECONNECT, a dropped socket, and a connection that stops heartbeating.

mod support;

use std::time::Duration;

use fake_discord::gateway_sessions::ConnectionEnd;
use fake_discord::{FakeConfig, RunningFake, SlashCommand};
use serde_json::{Value, json};

use support::{Gateway, Received, call, http};

fn url(fake: &RunningFake) -> String {
    format!("{}?v=10&encoding=json", fake.gateway_url())
}

fn bot_token(fake: &RunningFake) -> String {
    format!("Bot {}", fake.token())
}

/// Registers `/ping` so interactions can be injected.
async fn register_ping(fake: &RunningFake) {
    let (status, _, body) = call(
        http()
            .put(format!(
                "{}/applications/{}/commands",
                fake.api_url(),
                fake.config().application_id
            ))
            .insert_header(("Authorization", bot_token(fake))),
        Some(json!([{"name": "ping", "description": "Ping"}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[actix_rt::test]
async fn hello_identify_ready_and_heartbeats() {
    let fake = RunningFake::start(FakeConfig::for_tests()).expect("fake starts");
    let (mut gateway, hello) = Gateway::connect(&url(&fake)).await;
    assert_eq!(
        hello,
        json!({"op": 10, "d": {"heartbeat_interval": 1000}, "s": null, "t": null})
    );
    gateway
        .send(
            json!({"op": 2, "d": {"token": bot_token(&fake), "intents": 513, "shard": [0, 1],
            "properties": {"os": "linux", "browser": "test", "device": "test"}}}),
        )
        .await;
    let ready = gateway.next_json().await;
    assert_eq!(
        (ready["op"].clone(), ready["t"].clone(), ready["s"].clone()),
        (json!(0), json!("READY"), json!(1))
    );
    let d = &ready["d"];
    assert_eq!(d["v"], 10);
    assert_eq!(d["user"]["id"], fake.config().application_id.to_string());
    assert_eq!(d["user"]["bot"], true);
    assert_eq!(
        d["guilds"],
        json!([{"id": fake.config().guild_ids[0].to_string(), "unavailable": true}])
    );
    assert_eq!(d["shard"], json!([0, 1]));
    assert_eq!(
        d["application"],
        json!({"id": fake.config().application_id.to_string(), "flags": 0})
    );
    assert!(
        d["resume_gateway_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("ws://127.0.0.1:"))
    );
    assert_eq!(d["session_id"].as_str().map(str::len), Some(32));

    gateway.send(json!({"op": 1, "d": 1})).await;
    assert_eq!(
        gateway.next().await,
        Received::Json(json!({"op": 11, "d": null, "s": null, "t": null}))
    );
    let view = fake.control().gateway().await.expect("gateway");
    assert_eq!(view.connections[0].heartbeats, 1);
    assert_eq!(view.connections[0].last_heartbeat_seq, Some(1));
    assert_eq!(view.connections[0].client_ops, vec![2, 1]);
}

#[actix_rt::test]
async fn dispatches_are_zlib_compressed_when_identify_asks() {
    let fake = RunningFake::start(FakeConfig {
        compress_threshold: 0,
        ..FakeConfig::for_tests()
    })
    .expect("fake starts");
    let (mut gateway, _) = Gateway::connect(&url(&fake)).await;
    gateway
        .send(json!({"op": 2, "d": {"token": bot_token(&fake), "intents": 1, "compress": true, "properties": {}}}))
        .await;
    match gateway.next().await {
        Received::Compressed(ready) => assert_eq!(ready["t"], "READY"),
        other => panic!("expected a compressed READY, got {other:?}"),
    }
    gateway.send(json!({"op": 1, "d": 1})).await;
    assert!(
        matches!(gateway.next().await, Received::Json(ack) if ack["op"] == 11),
        "only dispatches are compressed"
    );
}

/// Sends `payloads` on a fresh connection; returns how the connection ended.
async fn close_code_of(gateway_url: &str, payloads: &[Value]) -> Received {
    let (mut gateway, _) = Gateway::connect(gateway_url).await;
    for payload in payloads {
        gateway.send(payload.clone()).await;
    }
    loop {
        match gateway.next().await {
            Received::Json(_) | Received::Compressed(_) => continue,
            end => return end,
        }
    }
}

#[actix_rt::test]
async fn mistakes_close_the_connection_with_the_documented_codes() {
    let fake = RunningFake::start(FakeConfig::for_tests()).expect("fake starts");
    let u = url(&fake);
    let identify = |token: &str, intents: u64| json!({"op": 2, "d": {"token": token, "intents": intents, "properties": {}}});
    let token = bot_token(&fake);
    assert_eq!(
        close_code_of(&u, &[identify("Bot wrong", 1)]).await,
        Received::Close(Some(4004))
    );
    assert_eq!(
        close_code_of(&u, &[identify(&token, 1 << 15)]).await,
        Received::Close(Some(4014))
    );
    assert_eq!(
        close_code_of(&u, &[identify(&token, 1 << 40)]).await,
        Received::Close(Some(4013))
    );
    assert_eq!(
        close_code_of(&u, &[json!({"op": 3, "d": {}})]).await,
        Received::Close(Some(4003))
    );
    assert_eq!(
        close_code_of(&u, &[json!({"op": 42})]).await,
        Received::Close(Some(4001))
    );
    assert_eq!(
        close_code_of(&u, &[identify(&token, 1), identify(&token, 1)]).await,
        Received::Close(Some(4005))
    );
    let v9 = format!("{}?v=9", fake.gateway_url());
    assert_eq!(close_code_of(&v9, &[]).await, Received::Close(Some(4012)));
    let etf = awc::Client::new()
        .ws(format!("{}?v=10&encoding=etf", fake.gateway_url()))
        .connect()
        .await;
    assert!(etf.is_err(), "ETF is refused before the upgrade");
    let granted = RunningFake::start(FakeConfig {
        allowed_privileged_intents: 1 << 15,
        ..FakeConfig::for_tests()
    })
    .expect("fake starts");
    let (mut gateway, _) = Gateway::connect(&url(&granted)).await;
    assert_eq!(
        gateway.identify(&bot_token(&granted), 1 << 15).await["t"],
        "READY"
    );
}

#[actix_rt::test]
async fn resume_replays_what_the_bot_missed_then_sends_resumed() {
    let fake = RunningFake::start(FakeConfig::for_tests()).expect("fake starts");
    let control = fake.control();
    register_ping(&fake).await;
    let (mut gateway, _) = Gateway::connect(&url(&fake)).await;
    let ready = gateway.identify(&bot_token(&fake), 1).await;
    let session = ready["d"]["session_id"]
        .as_str()
        .expect("session")
        .to_string();
    let resume_url = format!(
        "{}?v=10&encoding=json",
        ready["d"]["resume_gateway_url"].as_str().expect("url")
    );
    let seen = control
        .inject_command(&SlashCommand::new("ping"))
        .await
        .expect("inject");
    let dispatch = gateway.next_json().await;
    assert_eq!(
        (dispatch["t"].clone(), dispatch["s"].clone()),
        (json!("INTERACTION_CREATE"), json!(2))
    );
    assert_eq!(dispatch["d"]["id"], seen.id);

    drop(gateway);
    control
        .wait_for_gateway(|g| g.connections[0].end.is_some())
        .await
        .expect("the fake notices the lost socket");
    let missed = control
        .inject_command(&SlashCommand::new("ping"))
        .await
        .expect("inject while away");
    assert_eq!(missed.sequence, 3);

    let (mut again, _) = Gateway::connect(&resume_url).await;
    again
        .send(json!({"op": 6, "d": {"token": bot_token(&fake), "session_id": session, "seq": 2}}))
        .await;
    let replayed = again.next_json().await;
    assert_eq!(
        (replayed["t"].clone(), replayed["s"].clone()),
        (json!("INTERACTION_CREATE"), json!(3))
    );
    assert_eq!(replayed["d"]["id"], missed.id);
    let resumed = again.next_json().await;
    assert_eq!(
        (
            resumed["t"].clone(),
            resumed["s"].clone(),
            resumed["d"].clone()
        ),
        (json!("RESUMED"), json!(4), json!({}))
    );
    let view = control.gateway().await.expect("gateway");
    assert_eq!(view.connections[0].end, Some(ConnectionEnd::Lost));
    assert_eq!(view.connections[1].path, "/gateway/resume");
    assert_eq!(view.connections[1].resume_seq, Some(2));
    assert_eq!(view.sessions[0].resumes, 1);

    // A clean close ends the session: it cannot be resumed.
    again.close(1000).await;
    control
        .wait_for_gateway(|g| g.sessions.is_empty())
        .await
        .expect("a clean close ends the session");
    let (mut third, _) = Gateway::connect(&resume_url).await;
    third
        .send(json!({"op": 6, "d": {"token": bot_token(&fake), "session_id": session, "seq": 4}}))
        .await;
    assert_eq!(
        third.next().await,
        Received::Json(json!({"op": 9, "d": false, "s": null, "t": null}))
    );
}

#[actix_rt::test]
async fn tests_can_drop_the_socket_request_a_reconnect_or_invalidate_the_session() {
    let fake = RunningFake::start(FakeConfig::for_tests()).expect("fake starts");
    let control = fake.control();
    let (mut gateway, _) = Gateway::connect(&url(&fake)).await;
    gateway.identify(&bot_token(&fake), 1).await;
    control.request_reconnect().await.expect("reconnect");
    assert_eq!(
        gateway.next().await,
        Received::Json(json!({"op": 7, "d": null, "s": null, "t": null}))
    );
    control.invalidate_session(false).await.expect("invalidate");
    assert_eq!(
        gateway.next().await,
        Received::Json(json!({"op": 9, "d": false, "s": null, "t": null}))
    );
    assert!(
        control
            .gateway()
            .await
            .expect("gateway")
            .sessions
            .is_empty()
    );

    gateway.identify(&bot_token(&fake), 1).await;
    control.drop_gateway().await.expect("drop");
    assert_eq!(gateway.next().await, Received::Ended, "no close frame");
    let view = control
        .wait_for_gateway(|g| g.connections[0].end.is_some())
        .await
        .expect("ended");
    assert_eq!(view.connections[0].end, Some(ConnectionEnd::Dropped));
    assert_eq!(view.sessions.len(), 1, "a dropped session stays resumable");
    assert!(!view.sessions[0].connected);
}

#[actix_rt::test]
async fn a_connection_that_stops_heartbeating_is_dropped_without_a_close_frame() {
    let fake = RunningFake::start(FakeConfig {
        heartbeat_interval: Duration::from_millis(20),
        heartbeat_grace: Duration::ZERO,
        ..FakeConfig::for_tests()
    })
    .expect("fake starts");
    let (mut gateway, hello) = Gateway::connect(&url(&fake)).await;
    assert_eq!(hello["d"]["heartbeat_interval"], 20);
    assert_eq!(gateway.next().await, Received::Ended);
    let view = fake
        .control()
        .wait_for_gateway(|g| g.connections[0].end.is_some())
        .await
        .expect("ended");
    assert_eq!(
        view.connections[0].end,
        Some(ConnectionEnd::HeartbeatTimeout)
    );
}
