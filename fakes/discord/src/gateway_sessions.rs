//! The gateway protocol as a plain state machine: connections, sessions made by IDENTIFY, the
//! sequence numbers of dispatches, the replay buffer RESUME draws from, and the close codes the
//! gateway documentation gives for each mistake. The websocket task (`gateway_connection`)
//! only moves frames between the socket and this registry.

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::{FakeConfig, KNOWN_INTENTS, PRIVILEGED_INTENTS};
use crate::identity;

/// What a connection task is told to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// A dispatch (op 0) frame; may be compressed when the session asked for it.
    Dispatch(String),
    /// Any other frame, always sent as text.
    Frame(String),
    /// End the connection without a close frame (as a network failure would).
    Drop,
    /// Send a close frame with this code and reason, then end.
    Close(u16, String),
}

pub type Link = UnboundedSender<Outbound>;

/// How the registry wants a received payload answered.
#[derive(Debug, Default, PartialEq)]
pub struct Reaction {
    pub frames: Vec<Outbound>,
    /// The payload was a heartbeat (the connection's heartbeat deadline restarts).
    pub heartbeat: bool,
}

/// How a connection ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum ConnectionEnd {
    /// The client sent a close frame with this code.
    Client { code: Option<u16> },
    /// The fake closed with a close code (a protocol error, or a test asked).
    Server { code: u16, reason: String },
    /// A test dropped the socket without a close frame.
    Dropped,
    /// No heartbeat within the interval plus grace; dropped without a close frame.
    HeartbeatTimeout,
    /// The socket failed or the client vanished without a close frame.
    Lost,
}

/// One websocket connection, for the control API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionRecord {
    pub id: usize,
    pub path: String,
    pub query: String,
    pub opened_ms: u64,
    pub session_id: Option<String>,
    pub identified: bool,
    pub resumed: bool,
    /// Sequence number the client gave in RESUME.
    pub resume_seq: Option<u64>,
    pub heartbeats: u32,
    /// The `d` of the last heartbeat (the client's last sequence number).
    pub last_heartbeat_seq: Option<u64>,
    /// Every opcode the client sent, in order.
    pub client_ops: Vec<u64>,
    pub ended_ms: Option<u64>,
    pub end: Option<ConnectionEnd>,
}

/// One session, for the control API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionView {
    pub id: String,
    pub seq: u64,
    pub intents: u64,
    pub compress: bool,
    pub resumes: u32,
    pub connected: bool,
    pub current: bool,
}

#[derive(Debug)]
struct Session {
    id: String,
    seq: u64,
    events: Vec<(u64, String)>,
    link: Option<(usize, Link)>,
    intents: u64,
    compress: bool,
    resumes: u32,
}

/// Why a dispatch could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSession;

/// All gateway state of one fake.
#[derive(Debug)]
pub struct SessionRegistry {
    started: Instant,
    sessions: HashMap<String, Session>,
    connections: Vec<ConnectionRecord>,
    links: HashMap<usize, Link>,
    current: Option<String>,
}

/// Close codes (opcodes-and-status-codes: "Gateway Close Event Codes").
pub mod close {
    pub const UNKNOWN_OPCODE: u16 = 4001;
    pub const DECODE_ERROR: u16 = 4002;
    pub const NOT_AUTHENTICATED: u16 = 4003;
    pub const AUTHENTICATION_FAILED: u16 = 4004;
    pub const ALREADY_AUTHENTICATED: u16 = 4005;
    pub const INVALID_SEQ: u16 = 4007;
    pub const INVALID_SHARD: u16 = 4010;
    pub const INVALID_API_VERSION: u16 = 4012;
    pub const INVALID_INTENTS: u16 = 4013;
    pub const DISALLOWED_INTENTS: u16 = 4014;
}

impl SessionRegistry {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            sessions: HashMap::new(),
            connections: Vec::new(),
            links: HashMap::new(),
            current: None,
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        now.duration_since(self.started).as_millis() as u64
    }

    /// Registers a new connection; returns its id.
    pub fn open(&mut self, path: &str, query: &str, link: Link, now: Instant) -> usize {
        let id = self.connections.len();
        self.connections.push(ConnectionRecord {
            id,
            path: path.to_string(),
            query: query.to_string(),
            opened_ms: self.ms(now),
            session_id: None,
            identified: false,
            resumed: false,
            resume_seq: None,
            heartbeats: 0,
            last_heartbeat_seq: None,
            client_ops: Vec::new(),
            ended_ms: None,
            end: None,
        });
        self.links.insert(id, link);
        id
    }

    /// Answers one payload the client sent on connection `conn`.
    pub fn receive(
        &mut self,
        conn: usize,
        payload: &Value,
        config: &FakeConfig,
        resume_url: &str,
    ) -> Reaction {
        let Some(op) = payload.get("op").and_then(Value::as_u64) else {
            return closing(close::DECODE_ERROR, "Decode error.");
        };
        let Some(record) = self.connections.get_mut(conn) else {
            return Reaction::default();
        };
        record.client_ops.push(op);
        let authenticated = record.identified || record.resumed;
        let d = payload.get("d").unwrap_or(&Value::Null);
        match op {
            1 => {
                record.heartbeats += 1;
                record.last_heartbeat_seq = d.as_u64();
                Reaction {
                    frames: vec![Outbound::Frame(control_frame(11, Value::Null))],
                    heartbeat: true,
                }
            }
            2 if authenticated => closing(close::ALREADY_AUTHENTICATED, "Already authenticated."),
            2 => self.identify(conn, d, config, resume_url),
            6 if authenticated => closing(close::ALREADY_AUTHENTICATED, "Already authenticated."),
            6 => self.resume(conn, d, config),
            3 | 4 | 8 | 31 | 43 if !authenticated => {
                closing(close::NOT_AUTHENTICATED, "Not authenticated.")
            }
            3 | 4 | 8 | 31 | 43 => Reaction::default(),
            _ => closing(close::UNKNOWN_OPCODE, "Unknown opcode."),
        }
    }

    fn identify(
        &mut self,
        conn: usize,
        d: &Value,
        config: &FakeConfig,
        resume_url: &str,
    ) -> Reaction {
        let token = d.get("token").and_then(Value::as_str).unwrap_or("");
        if !config.token_matches(token) {
            return closing(close::AUTHENTICATION_FAILED, "Authentication failed.");
        }
        let Some(intents) = d.get("intents").and_then(Value::as_u64) else {
            return closing(close::INVALID_INTENTS, "Invalid intent(s).");
        };
        if intents & !KNOWN_INTENTS != 0 {
            return closing(close::INVALID_INTENTS, "Invalid intent(s).");
        }
        if intents & PRIVILEGED_INTENTS & !config.allowed_privileged_intents != 0 {
            return closing(close::DISALLOWED_INTENTS, "Disallowed intent(s).");
        }
        let shard = match d.get("shard") {
            None | Some(Value::Null) => None,
            Some(Value::Array(pair)) => match (
                pair.first().and_then(Value::as_u64),
                pair.get(1).and_then(Value::as_u64),
            ) {
                (Some(id), Some(total)) if pair.len() == 2 && total >= 1 && id < total => {
                    Some([id, total])
                }
                _ => return closing(close::INVALID_SHARD, "Invalid shard."),
            },
            Some(_) => return closing(close::INVALID_SHARD, "Invalid shard."),
        };
        let session_id = format!("{:032x}", rand::random::<u128>());
        let Some(link) = self.links.get(&conn).cloned() else {
            return Reaction::default();
        };
        let compress = d.get("compress").and_then(Value::as_bool).unwrap_or(false);
        let mut session = Session {
            id: session_id.clone(),
            seq: 0,
            events: Vec::new(),
            link: Some((conn, link)),
            intents,
            compress,
            resumes: 0,
        };
        let ready = identity::ready_event(config, &session_id, resume_url, shard);
        let frame = push_event(&mut session, "READY", ready);
        self.sessions.insert(session_id.clone(), session);
        self.current = Some(session_id.clone());
        if let Some(record) = self.connections.get_mut(conn) {
            record.identified = true;
            record.session_id = Some(session_id);
        }
        Reaction {
            frames: vec![Outbound::Dispatch(frame)],
            heartbeat: false,
        }
    }

    fn resume(&mut self, conn: usize, d: &Value, config: &FakeConfig) -> Reaction {
        let token = d.get("token").and_then(Value::as_str).unwrap_or("");
        if !config.token_matches(token) {
            return closing(close::AUTHENTICATION_FAILED, "Authentication failed.");
        }
        let session_id = d.get("session_id").and_then(Value::as_str).unwrap_or("");
        let seq = d.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let Some(link) = self.links.get(&conn).cloned() else {
            return Reaction::default();
        };
        let Some(session) = self.sessions.get_mut(session_id) else {
            return Reaction {
                frames: vec![Outbound::Frame(control_frame(9, json!(false)))],
                heartbeat: false,
            };
        };
        if seq > session.seq {
            return closing(close::INVALID_SEQ, "Invalid seq.");
        }
        if let Some((_, old)) = session.link.take() {
            // The session moves to the new connection; the old one is cut.
            let _ = old.send(Outbound::Drop);
        }
        session.link = Some((conn, link));
        session.resumes += 1;
        let mut frames: Vec<Outbound> = session
            .events
            .iter()
            .filter(|(s, _)| *s > seq)
            .map(|(_, f)| Outbound::Dispatch(f.clone()))
            .collect();
        frames.push(Outbound::Dispatch(push_event(
            session,
            "RESUMED",
            json!({}),
        )));
        self.current = Some(session.id.clone());
        if let Some(record) = self.connections.get_mut(conn) {
            record.resumed = true;
            record.resume_seq = Some(seq);
            record.session_id = Some(session_id.to_string());
        }
        Reaction {
            frames,
            heartbeat: false,
        }
    }

    /// Whether the connection's session asked for payload compression.
    pub fn compresses(&self, conn: usize) -> bool {
        self.connections
            .get(conn)
            .and_then(|c| c.session_id.as_ref())
            .and_then(|s| self.sessions.get(s))
            .is_some_and(|s| s.compress)
    }

    /// Sends a dispatch `t` to the current session (buffered for RESUME when it is not
    /// connected); returns its sequence number.
    pub fn dispatch(&mut self, event: &str, data: Value) -> Result<u64, NoSession> {
        let current = self.current.as_ref().ok_or(NoSession)?;
        let session = self.sessions.get_mut(current).ok_or(NoSession)?;
        let frame = push_event(session, event, data);
        if let Some((_, link)) = &session.link {
            let _ = link.send(Outbound::Dispatch(frame));
        }
        Ok(session.seq)
    }

    /// Records how connection `conn` ended. A clean client close (1000/1001) and the fatal
    /// close codes end its session; any other end leaves it resumable.
    pub fn closed(&mut self, conn: usize, end: ConnectionEnd, now: Instant) {
        let at = self.ms(now);
        self.links.remove(&conn);
        let Some(record) = self.connections.get_mut(conn) else {
            return;
        };
        if record.end.is_none() {
            record.end = Some(end.clone());
            record.ended_ms = Some(at);
        }
        let Some(session_id) = record.session_id.clone() else {
            return;
        };
        let ends_session = match &end {
            ConnectionEnd::Client { code } => matches!(code, Some(1000 | 1001)),
            ConnectionEnd::Server { code, .. } => matches!(code, 4004 | 4010..=4014),
            _ => false,
        };
        if let Some(session) = self.sessions.get_mut(&session_id)
            && session.link.as_ref().is_some_and(|(c, _)| *c == conn)
        {
            session.link = None;
        }
        if ends_session {
            self.sessions.remove(&session_id);
            if self.current.as_deref() == Some(session_id.as_str()) {
                self.current = None;
            }
        }
    }

    /// Sends `outbound` to the current session's connection; false when none is connected.
    pub fn tell_current(&mut self, outbound: Outbound) -> bool {
        let link = self
            .current
            .as_ref()
            .and_then(|id| self.sessions.get(id))
            .and_then(|s| s.link.as_ref());
        match link {
            Some((_, link)) => link.send(outbound).is_ok(),
            None => false,
        }
    }

    /// Sends INVALID_SESSION (op 9) to the current session; unless `resumable`, the session ends
    /// and its connection may IDENTIFY again.
    pub fn invalidate_current(&mut self, resumable: bool) -> bool {
        let sent = self.tell_current(Outbound::Frame(control_frame(9, json!(resumable))));
        if sent
            && !resumable
            && let Some(id) = self.current.take()
            && let Some(session) = self.sessions.remove(&id)
            && let Some((conn, _)) = session.link
            && let Some(record) = self.connections.get_mut(conn)
        {
            record.identified = false;
            record.resumed = false;
            record.session_id = None;
        }
        sent
    }

    /// Whether a session exists (connected or waiting to be resumed).
    pub fn has_session(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|id| self.sessions.contains_key(id))
    }

    pub fn sessions(&self) -> Vec<SessionView> {
        let mut views: Vec<SessionView> = self
            .sessions
            .values()
            .map(|s| SessionView {
                id: s.id.clone(),
                seq: s.seq,
                intents: s.intents,
                compress: s.compress,
                resumes: s.resumes,
                connected: s.link.is_some(),
                current: self.current.as_deref() == Some(s.id.as_str()),
            })
            .collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        views
    }

    pub fn connections(&self) -> &[ConnectionRecord] {
        &self.connections
    }
}

fn push_event(session: &mut Session, event: &str, data: Value) -> String {
    session.seq += 1;
    let frame = json!({"op": 0, "d": data, "s": session.seq, "t": event}).to_string();
    session.events.push((session.seq, frame.clone()));
    frame
}

/// A non-dispatch frame (`s` and `t` are null for them).
pub fn control_frame(op: u8, d: Value) -> String {
    json!({"op": op, "d": d, "s": null, "t": null}).to_string()
}

fn closing(code: u16, reason: &str) -> Reaction {
    Reaction {
        frames: vec![Outbound::Close(code, reason.to_string())],
        heartbeat: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    struct Fixture {
        registry: SessionRegistry,
        config: FakeConfig,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                registry: SessionRegistry::new(Instant::now()),
                config: FakeConfig::default(),
            }
        }

        fn connect(&mut self) -> (usize, UnboundedReceiver<Outbound>) {
            let (tx, rx) = unbounded_channel();
            (
                self.registry.open("/gateway", "v=10", tx, Instant::now()),
                rx,
            )
        }

        fn send(&mut self, conn: usize, payload: Value) -> Reaction {
            self.registry
                .receive(conn, &payload, &self.config, "ws://h/resume")
        }

        fn identify(&mut self, conn: usize, intents: u64) -> Reaction {
            let token = format!("Bot {}", self.config.bot_token);
            self.send(
                conn,
                json!({"op": 2, "d": {"token": token, "intents": intents, "properties": {}}}),
            )
        }
    }

    fn parsed(outbound: &Outbound) -> Value {
        match outbound {
            Outbound::Dispatch(f) | Outbound::Frame(f) => {
                serde_json::from_str(f).expect("json frame")
            }
            other => panic!("not a frame: {other:?}"),
        }
    }

    #[test]
    fn identify_answers_ready_with_sequence_one() {
        let mut fx = Fixture::new();
        let (conn, _rx) = fx.connect();
        let reaction = fx.identify(conn, 1);
        let ready = parsed(&reaction.frames[0]);
        assert_eq!(ready["t"], "READY");
        assert_eq!(ready["s"], 1);
        assert_eq!(ready["d"]["v"], 10);
        assert_eq!(ready["d"]["resume_gateway_url"], "ws://h/resume");
        assert!(fx.registry.has_session());
    }

    #[test]
    fn bad_token_intents_and_order_get_their_close_codes() {
        let mut fx = Fixture::new();
        let (conn, _rx) = fx.connect();
        let code = |r: Reaction| match r.frames.first() {
            Some(Outbound::Close(code, _)) => *code,
            other => panic!("expected a close, got {other:?}"),
        };
        assert_eq!(
            code(fx.send(conn, json!({"op": 2, "d": {"token": "nope", "intents": 1}}))),
            4004
        );
        assert_eq!(code(fx.identify(conn, 1 << 15)), 4014);
        assert_eq!(code(fx.identify(conn, 1 << 30)), 4013);
        assert_eq!(code(fx.send(conn, json!({"op": 3, "d": {}}))), 4003);
        assert_eq!(code(fx.send(conn, json!({"op": 99}))), 4001);
        assert_eq!(code(fx.send(conn, json!({"d": 1}))), 4002);
        fx.config.allowed_privileged_intents = 1 << 15;
        assert!(matches!(
            fx.identify(conn, 1 << 15).frames[0],
            Outbound::Dispatch(_)
        ));
        assert_eq!(code(fx.identify(conn, 1)), 4005);
    }

    #[test]
    fn heartbeats_are_acknowledged() {
        let mut fx = Fixture::new();
        let (conn, _rx) = fx.connect();
        let reaction = fx.send(conn, json!({"op": 1, "d": null}));
        assert!(reaction.heartbeat);
        assert_eq!(parsed(&reaction.frames[0])["op"], 11);
        assert_eq!(fx.registry.connections()[0].heartbeats, 1);
    }

    #[test]
    fn resume_replays_missed_dispatches_then_resumed() {
        let mut fx = Fixture::new();
        let (first, mut first_rx) = fx.connect();
        fx.identify(first, 1);
        let session = fx.registry.sessions()[0].id.clone();
        assert_eq!(
            fx.registry.dispatch("INTERACTION_CREATE", json!({"n": 1})),
            Ok(2)
        );
        assert!(matches!(first_rx.try_recv(), Ok(Outbound::Dispatch(_))));
        fx.registry
            .closed(first, ConnectionEnd::Lost, Instant::now());
        assert_eq!(
            fx.registry.dispatch("INTERACTION_CREATE", json!({"n": 2})),
            Ok(3)
        );
        let (second, _rx) = fx.connect();
        let token = fx.config.bot_token.clone();
        let reaction = fx.send(
            second,
            json!({"op": 6, "d": {"token": token, "session_id": session, "seq": 2}}),
        );
        let frames: Vec<Value> = reaction.frames.iter().map(parsed).collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0]["d"]["n"], 2);
        assert_eq!(frames[0]["s"], 3);
        assert_eq!(frames[1]["t"], "RESUMED");
        assert_eq!(frames[1]["s"], 4);
        assert_eq!(fx.registry.sessions()[0].resumes, 1);
    }

    #[test]
    fn unknown_sessions_are_invalid_and_clean_closes_end_sessions() {
        let mut fx = Fixture::new();
        let (conn, _rx) = fx.connect();
        let token = fx.config.bot_token.clone();
        let reaction = fx.send(
            conn,
            json!({"op": 6, "d": {"token": token, "session_id": "x", "seq": 0}}),
        );
        assert_eq!(
            parsed(&reaction.frames[0]),
            json!({"op": 9, "d": false, "s": null, "t": null})
        );
        fx.identify(conn, 1);
        fx.registry.closed(
            conn,
            ConnectionEnd::Client { code: Some(1000) },
            Instant::now(),
        );
        assert!(!fx.registry.has_session());
        assert_eq!(fx.registry.dispatch("X", json!({})), Err(NoSession));
    }

    #[test]
    fn lost_dropped_and_silent_connections_leave_the_session_resumable() {
        let mut fx = Fixture::new();
        for end in [
            ConnectionEnd::Lost,
            ConnectionEnd::Dropped,
            ConnectionEnd::HeartbeatTimeout,
            ConnectionEnd::Client { code: Some(4000) },
        ] {
            let (conn, _rx) = fx.connect();
            fx.identify(conn, 1);
            fx.registry.closed(conn, end, Instant::now());
            assert!(fx.registry.has_session());
            assert!(!fx.registry.sessions().iter().any(|s| s.connected));
        }
        let (conn, _rx) = fx.connect();
        fx.identify(conn, 1);
        fx.registry.closed(
            conn,
            ConnectionEnd::Server {
                code: 4004,
                reason: String::new(),
            },
            Instant::now(),
        );
        assert!(
            !fx.registry.has_session(),
            "a fatal close code ends the session"
        );
    }

    #[test]
    fn a_resume_ahead_of_the_session_is_an_invalid_seq() {
        let mut fx = Fixture::new();
        let (conn, _rx) = fx.connect();
        fx.identify(conn, 1);
        let session = fx.registry.sessions()[0].id.clone();
        fx.registry
            .closed(conn, ConnectionEnd::Lost, Instant::now());
        let (again, _rx2) = fx.connect();
        let token = fx.config.bot_token.clone();
        let reaction = fx.send(
            again,
            json!({"op": 6, "d": {"token": token, "session_id": session, "seq": 9}}),
        );
        assert_eq!(
            reaction.frames,
            vec![Outbound::Close(4007, "Invalid seq.".into())]
        );
    }
}
