//! A child's stdout and stderr, line by line, into `tracing` (target `comfyui`, fields
//! `instance` and `stream`), read on their own threads so nothing waits on the child's output.
//!
//! Progress bars redraw with `\r`, so carriage returns end lines too; very long lines are cut
//! into pieces rather than buffered without bound.

use std::io::Read;
use std::thread::JoinHandle;

use comfy_fleet_actors::InstanceId;

/// The longest line kept whole; longer ones are logged in pieces of this size.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Splits a byte stream into lines at `\n` and `\r`, dropping empty lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds bytes and returns the lines they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                self.flush_into(&mut lines);
            } else {
                self.pending.push(b);
                if self.pending.len() >= MAX_LINE_BYTES {
                    self.flush_into(&mut lines);
                }
            }
        }
        lines
    }

    /// The last, unterminated line, at end of stream.
    pub fn finish(&mut self) -> Option<String> {
        let mut lines = Vec::new();
        self.flush_into(&mut lines);
        lines.pop()
    }

    fn flush_into(&mut self, lines: &mut Vec<String>) {
        if !self.pending.is_empty() {
            lines.push(String::from_utf8_lossy(&self.pending).into_owned());
            self.pending.clear();
        }
    }
}

/// Logs every line of `source` until it ends (the child exited and closed it).
pub fn forward_lines(
    instance: InstanceId,
    stream: &'static str,
    mut source: impl Read + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("{instance}-{stream}"))
        .spawn(move || {
            let mut splitter = LineSplitter::default();
            let mut buf = [0u8; 8192];
            let log = |line: &str| {
                tracing::info!(target: "comfyui", instance = %instance, stream, "{line}");
            };
            loop {
                match source.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => splitter.feed(&buf[..n]).iter().for_each(|l| log(l)),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!(
                            target: "comfyui", instance = %instance, stream,
                            "cannot read the process's {stream}: {e}"
                        );
                        break;
                    }
                }
            }
            if let Some(line) = splitter.finish() {
                log(&line);
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_at_newlines_and_carriage_returns() {
        let mut s = LineSplitter::default();
        assert_eq!(s.feed(b"Starting server\r\n\nTo see"), ["Starting server"]);
        assert_eq!(
            s.feed(b" the GUI\n 10%|#\r 20%|##\r"),
            ["To see the GUI", " 10%|#", " 20%|##"]
        );
        assert_eq!(s.feed(b"tail \xff"), Vec::<String>::new());
        assert_eq!(s.finish().as_deref(), Some("tail \u{fffd}"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn endless_lines_are_cut() {
        let mut s = LineSplitter::default();
        let lines = s.feed(&vec![b'x'; MAX_LINE_BYTES * 2 + 5]);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() == MAX_LINE_BYTES));
        assert_eq!(s.finish().map(|l| l.len()), Some(5));
    }
}
