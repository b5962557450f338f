//! Tests that the typed protocol parses every capture of ComfyUI 0.33.0 in
//! `tests/fixtures/comfyui/`: websocket traces, history entries, `/prompt` answers, queues,
//! uploads and `/system_stats`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::events::{BinaryFrame, WsMessage};
use super::protocol::{
    HistoryEnding, HistoryEntry, PromptErrorBody, PromptResponse, QueueSnapshot, SystemStats,
    UploadResponse,
};

fn dir() -> PathBuf {
    crate::test_fixtures::captured_dir()
}

fn files(pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| pred(p.file_name().unwrap().to_str().unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixture matched");
    out
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The body of an HTTP record, or the file itself for bare bodies.
fn body(path: &Path) -> Value {
    let v = json(path);
    match v.get("response") {
        Some(r) => r.get("body").cloned().unwrap_or(Value::Null),
        None => v,
    }
}

#[test]
fn every_text_frame_of_every_trace_is_a_known_message() {
    let mut text_frames = 0;
    let mut binary_frames = 0;
    for path in files(|n| n.ends_with(".jsonl")) {
        let content = std::fs::read_to_string(&path).unwrap();
        for (i, line) in content.lines().enumerate() {
            let frame: Value = serde_json::from_str(line).unwrap();
            let at = format!("{}:{}", path.display(), i + 1);
            match frame["frame"].as_str() {
                Some("text") => {
                    text_frames += 1;
                    let msg = WsMessage::parse(&frame["data"].to_string())
                        .unwrap_or_else(|e| panic!("{at}: {e}"));
                    assert!(
                        !matches!(msg, WsMessage::Unknown { .. }),
                        "{at}: not recognised: {line}"
                    );
                    assert_eq!(msg.kind(), frame["data"]["type"].as_str().unwrap(), "{at}");
                }
                Some("binary") => {
                    binary_frames += 1;
                    // The trace keeps the decoded fields; rebuild the frame and decode it.
                    assert_eq!(frame["event_type"], 3, "{at}");
                    let node = frame["node_id"].as_str().unwrap();
                    let text = frame["text"].as_str().unwrap();
                    let mut bytes = 3u32.to_be_bytes().to_vec();
                    bytes.extend_from_slice(&(node.len() as u32).to_be_bytes());
                    bytes.extend_from_slice(node.as_bytes());
                    bytes.extend_from_slice(text.as_bytes());
                    assert_eq!(
                        bytes.len() as u64,
                        frame["length"].as_u64().unwrap(),
                        "{at}"
                    );
                    let head = hex(&bytes[..bytes.len().min(24)]);
                    assert_eq!(head, frame["head_hex"].as_str().unwrap(), "{at}");
                    assert_eq!(
                        BinaryFrame::parse(bytes.into()),
                        BinaryFrame::Text {
                            node_id: node.into(),
                            text: text.into()
                        },
                        "{at}"
                    );
                }
                other => panic!("{at}: unknown frame kind {other:?}"),
            }
        }
    }
    assert!(text_frames > 300, "only {text_frames} text frames");
    assert!(binary_frames >= 1);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn finished_prompt_is_executing_null_with_our_prompt_id() {
    let content = std::fs::read_to_string(dir().join("trivial_ws.jsonl")).unwrap();
    let last = content.lines().last().unwrap();
    let frame: Value = serde_json::from_str(last).unwrap();
    match WsMessage::parse(&frame["data"].to_string()).unwrap() {
        WsMessage::Executing(d) => {
            assert_eq!(d.node, None);
            assert_eq!(
                d.prompt_id.as_deref(),
                Some("ef61dbab-0b81-4e04-9293-62de0435fac2")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_history_entry_parses_with_its_outputs_and_ending() {
    let mut entries = 0;
    for path in files(|n| n.ends_with("history.json")) {
        let map = body(&path);
        for (id, entry) in map.as_object().unwrap() {
            let e: HistoryEntry = serde_json::from_value(entry.clone())
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            assert_eq!(&e.prompt.prompt_id, id);
            entries += 1;
        }
    }
    assert!(entries >= 10);

    let trivial = history("trivial_history.json");
    assert_eq!(trivial.ending(), HistoryEnding::Success);
    let files = trivial.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "3");
    assert_eq!(files[0].1.filename, "fixture_trivial_00001_.png");
    assert_eq!(files[0].1.kind, "output");

    let text = history("text_output_history.json");
    assert_eq!(
        text.texts(),
        vec![("6".to_string(), vec!["True".to_string()])]
    );
    assert!(text.files().is_empty());

    let preview = history("loadimage_subfolder_preview_history.json");
    assert_eq!(preview.files()[0].1.kind, "temp");

    assert_eq!(
        history("interrupt_history.json").ending(),
        HistoryEnding::Interrupted
    );
    let partial = history("runtime_error_partial_history.json");
    match partial.ending() {
        HistoryEnding::Error(e) => {
            assert_eq!(e.node_id, "7");
            assert_eq!(e.exception_type, "PIL.UnidentifiedImageError");
        }
        other => panic!("{other:?}"),
    }
    // The branch that finished before the error keeps its file.
    assert_eq!(partial.files().len(), 1);

    let extras = history("extras_history.json");
    assert_eq!(extras.prompt.number, 5.0);
    assert_eq!(extras.prompt.extra_data["discord"]["user"], "123");
}

fn history(name: &str) -> HistoryEntry {
    let map = body(&dir().join(name));
    let (_, entry) = map.as_object().unwrap().iter().next().unwrap();
    serde_json::from_value(entry.clone()).unwrap()
}

#[test]
fn every_post_prompt_answer_parses() {
    for path in
        files(|n| n.ends_with(".json") && (n.contains("post_prompt") || n.starts_with("error_")))
    {
        let record = json(&path);
        let status = record["response"]["status"].as_u64().unwrap();
        let b = record["response"].get("body").cloned();
        match (status, b) {
            (200, Some(b)) => {
                let r: PromptResponse =
                    serde_json::from_value(b).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                uuid::Uuid::parse_str(&r.prompt_id).unwrap();
            }
            (400, Some(b)) => {
                let r: PromptErrorBody =
                    serde_json::from_value(b).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!r.error.kind.is_empty(), "{}", path.display());
            }
            // Plain-text 500s: recorded as `body_text` or as a string `body`.
            (500, None) => assert!(record["response"]["body_text"].is_string()),
            (500, Some(Value::String(text))) => assert!(text.starts_with("500")),
            other => panic!("{}: unexpected {other:?}", path.display()),
        }
    }
    let partly = body(&dir().join("partly_valid_post_prompt.json"));
    let r: PromptResponse = serde_json::from_value(partly).unwrap();
    assert_eq!(r.node_errors.len(), 1);
    assert_eq!(r.node_errors[0].class_type, "LoadImage");
    assert_eq!(r.node_errors[0].errors[0].input_name(), Some("image"));
    let front = body(&dir().join("queue_mgmt_post_prompt_front.json"));
    let r: PromptResponse = serde_json::from_value(front).unwrap();
    assert!(r.number < 0.0);
}

#[test]
fn queues_uploads_and_system_stats_parse() {
    for path in
        files(|n| n.starts_with("queue_") && n.ends_with(".json") && !n.contains("post_prompt"))
    {
        let b = body(&path);
        if b.is_null() {
            continue; // POST /queue answers with an empty body
        }
        serde_json::from_value::<QueueSnapshot>(b)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let busy: QueueSnapshot =
        serde_json::from_value(body(&dir().join("queue_running_and_pending.json"))).unwrap();
    assert_eq!(busy.queue_running.len(), 1);
    let order: Vec<f64> = busy.pending_in_order().iter().map(|i| i.number).collect();
    assert_eq!(order, [-33.0, 29.0, 30.0, 31.0, 32.0, 34.0]);
    assert!(busy.is_pending("d2f289b8-b263-474b-bdcf-79f6fda7212a"));
    assert!(busy.is_running(&busy.queue_running[0].prompt_id));

    for path in files(|n| n.starts_with("upload_image")) {
        let r: UploadResponse = serde_json::from_value(body(&path)).unwrap();
        assert!(!r.name.is_empty());
    }
    let sub: UploadResponse =
        serde_json::from_value(body(&dir().join("upload_image_subfolder.json"))).unwrap();
    assert_eq!(sub.load_image_name(), "discord/sub_upload.png");
    let renamed: UploadResponse =
        serde_json::from_value(body(&dir().join("upload_image_rename.json"))).unwrap();
    assert_eq!(renamed.name, "fixture_upload (1).png");

    let stats: SystemStats =
        serde_json::from_value(body(&dir().join("system_stats.json"))).unwrap();
    assert_eq!(stats.system.comfyui_version, "0.33.0");
    assert_eq!(stats.devices[0].name, "cpu");
}
