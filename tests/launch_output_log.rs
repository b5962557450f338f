//! A launched process's stdout and stderr reach the log, line by line, tagged with the
//! instance and the stream.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfy_fleet::launch::ProcessLauncher;
use comfy_fleet_actors::ports::Launcher;
use support::launch_scripts::*;
use support::waits::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The `comfyui` events logged so far, as (instance, stream, message).
    fn comfyui_lines(&self) -> Vec<(String, String, String)> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "comfyui")
            .map(|v| {
                let f = &v["fields"];
                let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                (s("instance"), s("stream"), s("message"))
            })
            .collect()
    }
}

#[actix_rt::test]
async fn output_lines_are_logged_with_instance_and_stream() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .init();

    let root = tempfile::tempdir().unwrap();
    let launcher = ProcessLauncher::new(root.path()).unwrap();
    let script = "echo 'Starting server'\nprintf ' 10%%|#\\r 20%%|##\\n'\necho 'Traceback: boom' >&2\n\
                  printf 'no newline at the end'\nexec sleep 1000";
    let spec = script_spec("gpu3", &root.path().join("gpu3"), None, script);
    let launched = launcher.launch(spec).await.unwrap();
    wait_until("the terminated lines are logged", || {
        captured.comfyui_lines().len() >= 4
    })
    .await;
    // The last line has no newline: it is logged when the stream ends.
    launched.stopper.stop(Duration::from_secs(30)).await;
    wait_until("the unterminated line is logged", || {
        captured.comfyui_lines().len() >= 5
    })
    .await;

    let mut lines = captured.comfyui_lines();
    lines.sort();
    let line =
        |stream: &str, message: &str| ("gpu3".to_string(), stream.to_string(), message.to_string());
    let mut wanted = vec![
        line("stdout", "Starting server"),
        line("stdout", " 10%|#"),
        line("stdout", " 20%|##"),
        line("stderr", "Traceback: boom"),
        line("stdout", "no newline at the end"),
    ];
    wanted.sort();
    assert_eq!(lines, wanted);
}
