//! The ComfyUI connector against the real `fake-comfyui` process: every route it uses, every
//! error class, websocket loss and recovery from history, crashes, hangs, uploads, downloads
//! and concurrent prompts.

mod support;

use std::cell::RefCell;
use std::io::Cursor;
use std::time::Duration;

use comfy_fleet::comfy::client::{ClientConfig, Upload};
use comfy_fleet::comfy::events::{ServerEvent, WsMessage};
use comfy_fleet::comfy::protocol::{FileRef, FolderType, FreeRequest};
use comfy_fleet::comfy::{ComfyBackend, ComfyClient, ComfyError, RunOptions};
use comfy_fleet_actors::job::JobOutput;
use comfy_fleet_actors::ports::{
    Backend, BackendError, ExecutionEvent, InputFile, PromptRun, PromptStatus,
};
use futures_util::future::{Either, join, select};
use serde_json::{Value, json};
use support::fake_process::FakeComfy;
use support::fixtures::{captured, captured_json};
use support::images::png_size;
use support::ports::closed_port_url;
use tcp_cutter::TcpCutter;
use uuid::Uuid;

/// Safety net only: a test that gets here has hung.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A fake on a port of its own choosing, with one (empty) checkpoint so sampler graphs validate.
fn start_fake(extra: &[&str]) -> FakeComfy {
    FakeComfy::builder()
        .port(0)
        .file("models/checkpoints/fake-model.safetensors", b"")
        .args(["--cpu", "--database-url", "sqlite:///:memory:"])
        .args(extra.iter().copied())
        .spawn()
}

fn client(fake: &FakeComfy) -> ComfyClient {
    ComfyClient::new(&fake.base_url(), ClientConfig::default()).unwrap()
}

/// EmptyImage → ImageInvert → SaveImage with a given size and prefix.
fn trivial_prompt(width: u32, height: u32, prefix: &str) -> Value {
    let mut p = captured_json("prompt_trivial.json");
    p["1"]["inputs"]["width"] = json!(width);
    p["1"]["inputs"]["height"] = json!(height);
    p["3"]["inputs"]["filename_prefix"] = json!(prefix);
    p
}

async fn guarded<F: std::future::Future>(f: F) -> F::Output {
    actix_rt::time::timeout(HANG_GUARD, f)
        .await
        .expect("the connector hung")
}

#[actix_rt::test]
async fn readiness_object_info_and_its_cache() {
    let mut fake = start_fake(&[]);
    let c = client(&fake);
    let stats = c.system_stats().await.unwrap();
    assert_eq!(stats.system.comfyui_version, "0.33.0");
    let info = c.object_info().await.unwrap();
    assert!(info.contains("EmptyImage") && info.contains("LoadImage"));
    assert!(info.node("SaveImage").unwrap().is_output_node());

    fake.kill();
    // The server is gone: readiness fails, the cached /object_info is still served.
    match c.system_stats().await {
        Err(ComfyError::Unreachable { url, .. }) => assert_eq!(url, fake.base_url()),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(c.object_info().await.unwrap().len(), info.len());
    c.forget_object_info();
    assert!(matches!(
        c.object_info().await,
        Err(ComfyError::Unreachable { .. })
    ));
}

#[actix_rt::test]
async fn body_limit_is_applied_and_explained() {
    let fake = start_fake(&[]);
    let small = ClientConfig {
        body_limit: 64 * 1024,
        ..ClientConfig::default()
    };
    let c = ComfyClient::new(&fake.base_url(), small).unwrap();
    c.system_stats().await.unwrap();
    // /object_info is 1.6 MB: too big for this client, with a message saying what to raise.
    match c.object_info().await {
        Err(ComfyError::Protocol { route, reason }) => {
            assert_eq!(route, "/object_info");
            assert!(reason.contains("body limit"), "{reason}");
        }
        other => panic!("expected Protocol, got {other:?}"),
    }
    // The default limits take it.
    assert!(client(&fake).object_info().await.unwrap().len() > 800);
}

#[actix_rt::test]
async fn nothing_listening_is_unreachable_with_the_url() {
    let url = closed_port_url();
    let c = ComfyClient::new(&url, ClientConfig::default()).unwrap();
    let err = c.system_stats().await.unwrap_err();
    assert!(matches!(&err, ComfyError::Unreachable { url: u, .. } if *u == url));
    assert!(err.to_string().contains(&url));
    assert!(matches!(
        BackendError::from(err),
        BackendError::Unreachable { .. }
    ));
    let run = c
        .run_prompt(
            Uuid::new_v4(),
            &trivial_prompt(8, 8, "x"),
            None,
            &RunOptions::default(),
            |_: &ServerEvent| {},
        )
        .await;
    assert!(matches!(run, Err(ComfyError::Unreachable { .. })));
}

#[actix_rt::test]
async fn trivial_prompt_streams_events_and_downloads_a_real_png() {
    let fake = start_fake(&[]);
    let c = client(&fake);
    let id = Uuid::new_v4();
    let mut kinds: Vec<String> = Vec::new();
    let mut executing: Vec<String> = Vec::new();
    let outcome = guarded(c.run_prompt(
        id,
        &trivial_prompt(64, 40, "trivial"),
        Some(&json!({"discord": {"user": "42"}})),
        &RunOptions::default(),
        |e: &ServerEvent| {
            if let ServerEvent::Message(m) = e {
                kinds.push(m.kind().to_owned());
                if let WsMessage::Executing(d) = m
                    && let Some(n) = &d.node
                {
                    executing.push(n.clone());
                }
            }
        },
    ))
    .await
    .unwrap();

    assert_eq!(outcome.prompt_id, id.as_hyphenated().to_string());
    assert!(!outcome.resynced);
    for k in [
        "execution_start",
        "executed",
        "execution_success",
        "executing",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
    }
    assert_eq!(executing, ["1", "2", "3"]);
    assert_eq!(kinds.last().map(String::as_str), Some("executing"));
    // extra_data is kept verbatim by the server.
    assert_eq!(
        outcome.history.prompt.extra_data["discord"]["user"],
        json!("42")
    );

    assert_eq!(outcome.files.len(), 1);
    let (node, file) = &outcome.files[0];
    assert_eq!(node, "3");
    assert_eq!(file.kind, "output");
    assert!(file.filename.starts_with("trivial"));
    let png = c.view(file).await.unwrap();
    assert_eq!(png_size(&png), (64, 40));
    // The file is really in the server's output folder.
    assert_eq!(
        std::fs::read(fake.output_dir().join(&file.subfolder).join(&file.filename)).unwrap(),
        png.to_vec()
    );

    // History by id and by page.
    let entry = c
        .history(&outcome.prompt_id)
        .await
        .unwrap()
        .expect("history entry");
    assert_eq!(entry.files(), outcome.files);
    let page = c.history_page(Some(1), None).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].0, outcome.prompt_id);
    assert!(
        c.history(&Uuid::new_v4().to_string())
            .await
            .unwrap()
            .is_none()
    );
}

#[actix_rt::test]
async fn uploaded_image_feeds_loadimage_and_output_keeps_its_subfolder() {
    let fake = start_fake(&[]);
    let c = client(&fake);
    let source = std::fs::read(captured("upload_source.png")).unwrap();
    let stored = c
        .upload_image(&Upload {
            filename: "fixture_upload.png",
            bytes: &source,
            subfolder: "",
            overwrite: true,
            folder: FolderType::Input,
        })
        .await
        .unwrap();
    assert_eq!(stored.load_image_name(), "fixture_upload.png");
    assert_eq!(
        std::fs::read(fake.input_dir().join("fixture_upload.png")).unwrap(),
        source
    );
    let in_sub = c
        .upload_image(&Upload {
            filename: "sub_upload.png",
            bytes: &source,
            subfolder: "discord",
            overwrite: true,
            folder: FolderType::Input,
        })
        .await
        .unwrap();
    assert_eq!(in_sub.load_image_name(), "discord/sub_upload.png");

    let outcome = guarded(c.run_prompt(
        Uuid::new_v4(),
        &captured_json("prompt_loadimage.json"),
        None,
        &RunOptions::default(),
        |_: &ServerEvent| {},
    ))
    .await
    .unwrap();
    let (_, file) = &outcome.files[0];
    assert_eq!(file.subfolder, "fixture_upload");
    assert_eq!(png_size(&c.view(file).await.unwrap()), (64, 48));

    // The uploaded input can be read back through /view too.
    let back = c
        .view(&FileRef {
            filename: "sub_upload.png".into(),
            subfolder: "discord".into(),
            kind: "input".into(),
        })
        .await
        .unwrap();
    assert_eq!(png_size(&back), (32, 24));
}

#[actix_rt::test]
async fn mask_upload_puts_the_mask_alpha_on_the_original() {
    let fake = start_fake(&[]);
    let c = client(&fake);
    let source = std::fs::read(captured("upload_source.png")).unwrap();
    let original = c
        .upload_image(&Upload {
            filename: "paint.png",
            bytes: &source,
            subfolder: "",
            overwrite: true,
            folder: FolderType::Input,
        })
        .await
        .unwrap();
    let mut mask = image::RgbaImage::new(32, 24);
    for (x, _, p) in mask.enumerate_pixels_mut() {
        *p = image::Rgba([0, 0, 0, if x < 16 { 0 } else { 255 }]);
    }
    let mut mask_png = Vec::new();
    image::DynamicImage::ImageRgba8(mask)
        .write_to(&mut Cursor::new(&mut mask_png), image::ImageFormat::Png)
        .unwrap();
    let stored = c
        .upload_mask(
            &Upload {
                filename: "paint_mask.png",
                bytes: &mask_png,
                subfolder: "",
                overwrite: true,
                folder: FolderType::Input,
            },
            &FileRef {
                filename: original.name.clone(),
                subfolder: original.subfolder.clone(),
                kind: "input".into(),
            },
        )
        .await
        .unwrap();
    let merged = c
        .view(&FileRef {
            filename: stored.name.clone(),
            subfolder: stored.subfolder.clone(),
            kind: "input".into(),
        })
        .await
        .unwrap();
    let merged = image::load_from_memory(&merged).unwrap().to_rgba8();
    let base = image::load_from_memory(&source).unwrap().to_rgba8();
    assert_eq!(merged.dimensions(), (32, 24));
    assert_eq!(merged.get_pixel(3, 5)[3], 0);
    assert_eq!(merged.get_pixel(20, 5)[3], 255);
    assert_eq!(merged.get_pixel(20, 5).0[..3], base.get_pixel(20, 5).0[..3]);
}

/// CheckpointLoader → prompts → EmptyLatentImage → KSampler → VAEDecode → SaveImage.
fn txt2img_prompt(size: u32, steps: u32) -> Value {
    json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "fake-model.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 7, "steps": steps, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "txt2img", "images": ["8", 0]}}
    })
}

#[actix_rt::test]
async fn sampler_progress_and_binary_previews_reach_the_caller() {
    let fake = start_fake(&[]);
    let c = client(&fake);
    let mut steps = Vec::new();
    let mut previews: Vec<(String, Vec<u8>)> = Vec::new();
    let outcome = guarded(c.run_prompt(
        Uuid::new_v4(),
        &txt2img_prompt(1024, 3),
        None,
        &RunOptions::default(),
        |e: &ServerEvent| match e {
            ServerEvent::Message(WsMessage::Progress(p)) => steps.push((p.value, p.max)),
            ServerEvent::Binary(frame) => {
                if let Some((mime, bytes)) = frame.preview() {
                    previews.push((mime.to_owned(), bytes.to_vec()));
                }
            }
            _ => {}
        },
    ))
    .await
    .unwrap();
    assert_eq!(steps, [(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)]);
    assert_eq!(previews.len(), 3, "one preview per step");
    for (mime, bytes) in &previews {
        assert_eq!(mime, "image/jpeg");
        let img = image::load_from_memory(bytes).unwrap();
        assert!(img.width() > 0 && img.height() > 0);
    }
    assert_eq!(
        png_size(&c.view(&outcome.files[0].1).await.unwrap()),
        (1024, 1024)
    );
}

#[actix_rt::test]
async fn missing_file_is_an_http_error_with_route_and_status() {
    let fake = start_fake(&[]);
    let c = client(&fake);
    let err = c
        .view(&FileRef {
            filename: "nope.png".into(),
            subfolder: String::new(),
            kind: "output".into(),
        })
        .await
        .unwrap_err();
    match &err {
        ComfyError::Http { route, status, .. } => {
            assert_eq!(*status, 404);
            assert!(route.contains("nope.png"), "{route}");
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert!(!err.is_retriable());
}

#[actix_rt::test]
async fn invalid_workflow_is_rejected_with_node_input_and_reason() {
    let fake = start_fake(&[]);
    let c = client(&fake);
    let prompt =
        captured_json("error_multiple_errors.json")["request"]["json_body"]["prompt"].clone();
    let mut events = 0;
    let err = guarded(c.run_prompt(
        Uuid::new_v4(),
        &prompt,
        None,
        &RunOptions::default(),
        |_: &ServerEvent| events += 1,
    ))
    .await
    .unwrap_err();
    let ComfyError::Rejected(r) = &err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert_eq!(r.status, 400);
    assert_eq!(r.error.kind, "prompt_outputs_failed_validation");
    let text = err.to_string();
    assert!(
        text.contains("node 4 (LoadImage), input `image`: "),
        "{text}"
    );
    assert!(text.contains("nope.png"), "{text}");
    assert!(
        text.contains("node 1 (EmptyImage), input `height`: "),
        "{text}"
    );
    assert!(
        text.contains("node 1 (EmptyImage), input `width`: "),
        "{text}"
    );
    assert_eq!(events, 0, "nothing runs for a rejected prompt");
    let backend = BackendError::from(err);
    let BackendError::Rejected { node_errors, .. } = &backend else {
        panic!("{backend:?}");
    };
    assert!(
        node_errors
            .iter()
            .any(|e| e.input.as_deref() == Some("height"))
    );

    // An unknown node class is named too.
    let mut unknown = trivial_prompt(8, 8, "u");
    unknown["2"]["class_type"] = json!("NoSuchNodeClass");
    let err = c
        .run_prompt(
            Uuid::new_v4(),
            &unknown,
            None,
            &RunOptions::default(),
            |_: &ServerEvent| {},
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NoSuchNodeClass"), "{err}");
}

#[actix_rt::test]
async fn partly_valid_workflow_is_rejected_although_http_200_and_is_withdrawn() {
    let fake = start_fake(&[]);
    let c = client(&fake);
    let id = Uuid::new_v4();
    let err = guarded(c.run_prompt(
        id,
        &captured_json("prompt_partly_valid.json"),
        None,
        &RunOptions::default(),
        |_: &ServerEvent| {},
    ))
    .await
    .unwrap_err();
    let ComfyError::Rejected(r) = &err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert_eq!(r.status, 200);
    assert_eq!(r.node_errors.len(), 1);
    assert_eq!(r.node_errors[0].node_id, "3");
    assert_eq!(r.node_errors[0].errors[0].input_name(), Some("image"));
    assert!(
        err.to_string()
            .contains("node 3 (LoadImage), input `image`")
    );
    let queue = c.queue().await.unwrap();
    assert!(!queue.is_pending(&id.to_string()));
}

#[actix_rt::test]
async fn failing_node_is_an_execution_error_with_node_and_exception() {
    let fake = start_fake(&["--fake-fail-node", "ImageInvert"]);
    let c = client(&fake);
    let err = guarded(c.run_prompt(
        Uuid::new_v4(),
        &trivial_prompt(8, 8, "fail"),
        None,
        &RunOptions::default(),
        |_: &ServerEvent| {},
    ))
    .await
    .unwrap_err();
    let ComfyError::Execution(x) = &err else {
        panic!("expected Execution, got {err:?}");
    };
    assert_eq!(x.node_id, "2");
    assert_eq!(x.node_type, "ImageInvert");
    assert!(!x.exception_type.is_empty());
    assert!(err.to_string().starts_with("node 2 (ImageInvert) failed: "));
    assert!(!err.is_retriable());
}

#[actix_rt::test]
async fn out_of_memory_is_an_execution_error_naming_the_exception() {
    let fake = start_fake(&["--fake-oom"]);
    let c = client(&fake);
    let err = guarded(c.run_prompt(
        Uuid::new_v4(),
        &trivial_prompt(8, 8, "oom"),
        None,
        &RunOptions::default(),
        |_: &ServerEvent| {},
    ))
    .await
    .unwrap_err();
    let ComfyError::Execution(x) = &err else {
        panic!("expected Execution, got {err:?}");
    };
    assert!(x.exception_type.contains("OutOfMemoryError"), "{x:?}");
    assert!(err.to_string().contains("OutOfMemoryError"));
}

#[actix_rt::test]
async fn interrupting_the_running_prompt_ends_it_as_interrupted() {
    let fake = start_fake(&["--fake-node-time", "300ms"]);
    let c = client(&fake);
    let id = Uuid::new_v4();
    let pid = id.to_string();
    let prompt = captured_json("prompt_slow_blur_chain.json");
    let (tx, rx) = signal();
    let options = RunOptions::default();
    let run = c.run_prompt(id, &prompt, None, &options, |e: &ServerEvent| {
        if matches!(e, ServerEvent::Message(WsMessage::Executing(_))) {
            tx.notify();
        }
    });
    let interrupter = async {
        rx.wait().await;
        c.interrupt(Some(&pid)).await.unwrap();
    };
    let (result, ()) = guarded(join(run, interrupter)).await;
    match result {
        Err(ComfyError::Interrupted { node }) => assert!(node.is_some()),
        other => panic!("expected Interrupted, got {other:?}"),
    }
    let entry = c.history(&pid).await.unwrap().unwrap();
    assert_eq!(entry.status.unwrap().status_str, "error");
}

#[actix_rt::test]
async fn hung_prompt_is_silent_and_a_dropped_run_leaves_the_client_usable() {
    let fake = start_fake(&["--fake-hang-after-nodes", "1"]);
    let c = client(&fake);
    let first = Uuid::new_v4();
    let options = RunOptions {
        silence_timeout: Some(Duration::from_secs(2)),
        client_id: None,
    };
    let err = guarded(c.run_prompt(
        first,
        &trivial_prompt(8, 8, "hang"),
        None,
        &options,
        |_: &ServerEvent| {},
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, ComfyError::Silent { .. }), "{err:?}");
    assert!(err.is_retriable());
    // HTTP still answers: the prompt is still "running" on the server.
    let queue = c.queue().await.unwrap();
    assert!(queue.is_running(&first.to_string()));

    // A second prompt waits behind the hung one; its submitter gives up by dropping the run
    // future once the prompt is queued.
    let second = Uuid::new_v4();
    let (tx, rx) = signal();
    let behind = trivial_prompt(9, 9, "behind");
    let defaults = RunOptions::default();
    let run = c.run_prompt(second, &behind, None, &defaults, |e: &ServerEvent| {
        if matches!(e, ServerEvent::Message(WsMessage::Status(_))) {
            tx.notify();
        }
    });
    let outcome = guarded(select(Box::pin(run), Box::pin(rx.wait()))).await;
    assert!(
        matches!(outcome, Either::Right(_)),
        "the run ended by itself"
    );
    // The client still works, and withdrawing removes the pending prompt.
    assert!(c.queue().await.unwrap().is_pending(&second.to_string()));
    c.withdraw(&second.to_string()).await.unwrap();
    assert!(!c.queue().await.unwrap().is_pending(&second.to_string()));
}

#[actix_rt::test]
async fn prompt_removed_from_the_queue_before_it_starts_is_dequeued() {
    let fake = start_fake(&["--fake-hang-after-nodes", "1"]);
    let c = client(&fake);
    // Occupy the worker with a prompt that never finishes.
    let blocker = Uuid::new_v4();
    let (tx, rx) = signal();
    let block_prompt = trivial_prompt(8, 8, "block");
    let waiting_prompt = trivial_prompt(9, 9, "waiting");
    let defaults = RunOptions::default();
    let block = c.run_prompt(
        blocker,
        &block_prompt,
        None,
        &defaults,
        |e: &ServerEvent| {
            if matches!(e, ServerEvent::Message(WsMessage::Executing(_))) {
                tx.notify();
            }
        },
    );
    let test = async {
        rx.wait().await;
        let waiting = Uuid::new_v4();
        let (tx2, rx2) = signal();
        let run = c.run_prompt(
            waiting,
            &waiting_prompt,
            None,
            &defaults,
            |e: &ServerEvent| {
                if matches!(e, ServerEvent::Message(WsMessage::Status(_))) {
                    tx2.notify();
                }
            },
        );
        let remover = async {
            rx2.wait().await;
            c.delete_from_queue(&[waiting.to_string()]).await.unwrap();
        };
        let (result, ()) = join(run, remover).await;
        result
    };
    match guarded(select(Box::pin(block), Box::pin(test))).await {
        Either::Right((result, _)) => {
            assert!(
                matches!(result, Err(ComfyError::Dequeued { .. })),
                "{result:?}"
            );
        }
        Either::Left((r, _)) => panic!("the hung prompt ended: {r:?}"),
    }
}

#[actix_rt::test]
async fn server_crash_mid_prompt_is_a_disconnect_not_a_hang() {
    let mut fake = start_fake(&["--fake-crash-after-nodes", "1"]);
    let c = client(&fake);
    let mut lost = false;
    let err = guarded(c.run_prompt(
        Uuid::new_v4(),
        &trivial_prompt(8, 8, "crash"),
        None,
        &RunOptions::default(),
        |e: &ServerEvent| lost |= matches!(e, ServerEvent::ConnectionLost { .. }),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(err, ComfyError::Disconnected { .. }),
        "expected Disconnected, got {err:?}"
    );
    assert!(lost);
    assert!(err.is_retriable());
    assert!(
        fake.wait_exit(HANG_GUARD).is_some(),
        "the fake should have exited"
    );
}

#[actix_rt::test]
async fn websocket_drop_mid_prompt_loses_nothing() {
    let fake = start_fake(&["--fake-node-time", "300ms"]);
    // All traffic goes through a TCP relay whose connections the test can cut.
    let relay = TcpCutter::start(fake.port);
    let c = ComfyClient::new(&relay.url(), ClientConfig::default()).unwrap();
    let mut cut = false;
    let mut reconnected = false;
    let outcome = guarded(c.run_prompt(
        Uuid::new_v4(),
        &trivial_prompt(32, 16, "dropped"),
        None,
        &RunOptions::default(),
        |e: &ServerEvent| match e {
            ServerEvent::Message(WsMessage::Executing(d)) if d.node.is_some() && !cut => {
                cut = true;
                relay.cut_all();
            }
            ServerEvent::Reconnected => reconnected = true,
            _ => {}
        },
    ))
    .await
    .unwrap();
    assert!(cut && outcome.resynced);
    assert!(reconnected);
    assert_eq!(outcome.files.len(), 1);
    let png = c.view(&outcome.files[0].1).await.unwrap();
    assert_eq!(png_size(&png), (32, 16));
}

#[actix_rt::test]
async fn two_prompts_on_one_client_both_complete() {
    let fake = start_fake(&["--fake-node-time", "50ms"]);
    let c = client(&fake);
    let events_a = RefCell::new(0);
    let events_b = RefCell::new(0);
    let pa = trivial_prompt(16, 16, "first");
    let pb = trivial_prompt(24, 8, "second");
    let defaults = RunOptions::default();
    let a = c.run_prompt(Uuid::new_v4(), &pa, None, &defaults, |_: &ServerEvent| {
        *events_a.borrow_mut() += 1
    });
    let b = c.run_prompt(Uuid::new_v4(), &pb, None, &defaults, |_: &ServerEvent| {
        *events_b.borrow_mut() += 1
    });
    let (ra, rb) = guarded(join(a, b)).await;
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_ne!(ra.prompt_id, rb.prompt_id);
    assert!(ra.files[0].1.filename.starts_with("first"));
    assert!(rb.files[0].1.filename.starts_with("second"));
    assert_eq!(png_size(&c.view(&ra.files[0].1).await.unwrap()), (16, 16));
    assert_eq!(png_size(&c.view(&rb.files[0].1).await.unwrap()), (24, 8));
    assert!(*events_a.borrow() > 0 && *events_b.borrow() > 0);
}

#[actix_rt::test]
async fn housekeeping_routes_answer() {
    let fake = start_fake(&[]);
    let c = client(&fake);
    c.free(FreeRequest {
        unload_models: true,
        free_memory: true,
    })
    .await
    .unwrap();
    c.interrupt(None).await.unwrap();
    c.interrupt(Some(&Uuid::new_v4().to_string()))
        .await
        .unwrap();
    c.clear_queue().await.unwrap();
    c.delete_from_queue(&[Uuid::new_v4().to_string()])
        .await
        .unwrap();
    let q = c.queue().await.unwrap();
    assert!(q.queue_running.is_empty() && q.queue_pending.is_empty());
    assert!(c.history_page(None, None).await.unwrap().is_empty());

    // The websocket registers our client id and answers our feature flags with the server's.
    let mut socket = c.connect_events("housekeeping").await.unwrap();
    let status = socket.initial_status().unwrap();
    assert_eq!(status.sid.as_deref(), Some("housekeeping"));
    assert_eq!(status.status.exec_info.queue_remaining, 0);
    socket
        .send_feature_flags(json!({"supports_preview_metadata": true}))
        .await
        .unwrap();
    match guarded(socket.next_event()).await.unwrap() {
        ServerEvent::Message(WsMessage::FeatureFlags(flags)) => {
            assert!(flags.contains_key("max_upload_size"), "{flags:?}")
        }
        other => panic!("expected feature_flags, got {other:?}"),
    }
}

#[actix_rt::test]
async fn backend_port_runs_uploads_reports_and_downloads() {
    let fake = start_fake(&[]);
    let backend = ComfyBackend::new(client(&fake), RunOptions::default());
    assert_eq!(backend.url(), fake.base_url());
    backend.ping().await.unwrap();
    // The port reports how many node classes the server knows (the captured 0.33.0 count).
    assert_eq!(backend.object_info().await.unwrap(), 887);

    let source = std::fs::read(captured("upload_source.png")).unwrap();
    let name = backend
        .upload(InputFile {
            name: "fixture_upload.png".into(),
            subfolder: "jobs".into(),
            bytes: source.into(),
            overwrite: true,
        })
        .await
        .unwrap();
    assert_eq!(name, "jobs/fixture_upload.png");

    let mut prompt = captured_json("prompt_loadimage.json");
    prompt["10"]["inputs"]["image"] = json!(name);
    let id = Uuid::new_v4();
    let seen = std::rc::Rc::new(RefCell::new(Vec::new()));
    let sink_seen = seen.clone();
    let result = guarded(backend.run(
        PromptRun {
            job: None,
            prompt_id: id,
            prompt,
            extra_data: json!({"job": "x"}),
        },
        Box::new(move |e| sink_seen.borrow_mut().push(e)),
    ))
    .await
    .unwrap();
    let events = seen.borrow().clone();
    assert_eq!(events.first(), Some(&ExecutionEvent::Started));
    assert!(events.contains(&ExecutionEvent::Executing { node: "13".into() }));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ExecutionEvent::Executed { node, .. } if node == "13"))
    );
    assert_eq!(result.outputs.len(), 1);
    let out: &JobOutput = &result.outputs[0];
    assert_eq!(out.node_id, "13");
    assert_eq!(png_size(&backend.download(out).await.unwrap()), (64, 48));
    assert_eq!(
        backend.prompt_status(id).await.unwrap(),
        PromptStatus::Succeeded
    );
    assert_eq!(
        backend.prompt_status(Uuid::new_v4()).await.unwrap(),
        PromptStatus::Unknown
    );
    backend.cancel(Uuid::new_v4()).await.unwrap();
    backend.free(false, true).await.unwrap();
}

/// A one-shot "it happened" signal, raised from a synchronous event callback.
fn signal() -> (Notifier, Waiter) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    (Notifier(tx), Waiter(rx))
}

struct Notifier(tokio::sync::watch::Sender<bool>);

impl Notifier {
    fn notify(&self) {
        self.0.send_replace(true);
    }
}

struct Waiter(tokio::sync::watch::Receiver<bool>);

impl Waiter {
    async fn wait(mut self) {
        self.0.wait_for(|v| *v).await.expect("notifier dropped");
    }
}

/// The relay of the websocket-drop test.
mod tcp_cutter {
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    /// A TCP relay to a local port whose open connections the test can cut at once,
    /// as a network drop or proxy restart would.
    pub struct TcpCutter {
        port: u16,
        open: Arc<Mutex<Vec<TcpStream>>>,
    }

    impl TcpCutter {
        pub fn start(upstream: u16) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
            let registry = open.clone();
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { break };
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        continue;
                    };
                    {
                        let mut open = registry.lock().unwrap();
                        open.push(client.try_clone().unwrap());
                        open.push(server.try_clone().unwrap());
                    }
                    pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                    pump(server, client);
                }
            });
            Self { port, open }
        }

        pub fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        /// Resets every connection relayed so far; new connections still go through.
        pub fn cut_all(&self) {
            for s in self.open.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    fn pump(mut from: TcpStream, mut to: TcpStream) {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
}
