//! ComfyUI-style console logging: plain message lines, all on stderr by default; with
//! `--log-stdout` lines below ERROR go to stdout (as ComfyUI's logger does).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static LOG_STDOUT: AtomicBool = AtomicBool::new(false);

/// Chooses where info lines go.
pub fn init(log_stdout: bool) {
    LOG_STDOUT.store(log_stdout, Ordering::Relaxed);
}

fn write_line(to_stdout: bool, line: &str) {
    if to_stdout {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    } else {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
        let _ = err.flush();
    }
}

/// An INFO line.
pub fn info(line: &str) {
    write_line(LOG_STDOUT.load(Ordering::Relaxed), line);
}

/// A WARNING line.
pub fn warn(line: &str) {
    write_line(LOG_STDOUT.load(Ordering::Relaxed), line);
}

/// An ERROR line (always stderr).
pub fn error(line: &str) {
    write_line(false, line);
}
