//! A launched process's stdout and stderr reach the log, line by line, tagged with the
//! instance and the stream, at the level ComfyUI's logger gave each record, without colours.

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
    /// The `comfyui` events logged so far, as (instance, stream, message, level).
    fn comfyui_lines(&self) -> Vec<(String, String, String, String)> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "comfyui")
            .map(|v| {
                let f = &v["fields"];
                let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                let level = v["level"].as_str().unwrap_or_default().to_string();
                (s("instance"), s("stream"), s("message"), level)
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
    // ComfyUI's logger writes `ESC[1m ESC[33m [WARNING] ESC[0m message`; a logged exception
    // is one write: the `[ERROR]` line and its traceback.
    let script = "echo 'Starting server'\nprintf ' 10%%|#\\r 20%%|##\\n'\n\
                  printf '\\033[1m\\033[33m[WARNING]\\033[0m low memory\\n' >&2\n\
                  printf '\\033[1m\\033[31m[ERROR]\\033[0m !!! Exception !!!\\nTraceback: boom\\n' >&2\n\
                  printf 'no newline at the end'\nexec sleep 1000";
    let spec = script_spec("gpu3", &root.path().join("gpu3"), None, script);
    let launched = launcher.launch(spec).await.unwrap();
    wait_until("the terminated lines are logged", || {
        captured.comfyui_lines().len() >= 6
    })
    .await;
    // The last line has no newline: it is logged when the stream ends.
    launched.stopper.stop(Duration::from_secs(30)).await;
    wait_until("the unterminated line is logged", || {
        captured.comfyui_lines().len() >= 7
    })
    .await;

    let mut lines = captured.comfyui_lines();
    lines.sort();
    let line = |stream: &str, message: &str, level: &str| {
        (
            "gpu3".to_string(),
            stream.to_string(),
            message.to_string(),
            level.to_string(),
        )
    };
    let mut wanted = vec![
        line("stdout", "Starting server", "INFO"),
        line("stdout", " 10%|#", "INFO"),
        line("stdout", " 20%|##", "INFO"),
        line("stderr", "low memory", "WARN"),
        line("stderr", "!!! Exception !!!", "ERROR"),
        line("stderr", "Traceback: boom", "ERROR"),
        line("stdout", "no newline at the end", "INFO"),
    ];
    wanted.sort();
    assert_eq!(lines, wanted);
}
