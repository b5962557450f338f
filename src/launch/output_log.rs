//! A child's stdout and stderr, line by line, into `tracing` (target `comfyui`, fields
//! `instance` and `stream`), read on their own threads so nothing waits on the child's output.
//!
//! Progress bars redraw with `\r`, so carriage returns end lines too; very long lines are cut
//! into pieces rather than buffered without bound. ComfyUI's logger colours its lines and tags
//! each record with its level (`[WARNING] …`): the colour codes are stripped, and the record is
//! logged at its own level (DEBUG and DETAIL as debug, WARNING as warn, ERROR and CRITICAL as
//! error) without the tag. The untagged lines that follow a tagged one in the same write (a
//! traceback under an `[ERROR]` line) keep its level; other untagged lines (prints, progress
//! bars) are info.

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

    /// Whether everything fed so far ended with a line end (no partial line is pending).
    pub fn at_line_start(&self) -> bool {
        self.pending.is_empty()
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

/// The level of one line of ComfyUI output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// The level tags of ComfyUI's logger and what they become.
const LEVEL_TAGS: &[(&str, LineLevel)] = &[
    ("[DEBUG] ", LineLevel::Debug),
    ("[DETAIL] ", LineLevel::Debug),
    ("[INFO] ", LineLevel::Info),
    ("[WARNING] ", LineLevel::Warn),
    ("[ERROR] ", LineLevel::Error),
    ("[CRITICAL] ", LineLevel::Error),
];

/// `line` without terminal escape sequences (colours, cursor moves, window titles).
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates, then one final byte in @..~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        chars.next_if_eq(&'\\');
                        break;
                    }
                }
            }
            // nF escapes (`ESC ( B`): intermediates in space../, then one final character.
            Some(c) if (' '..='/').contains(&c) => {
                for c in chars.by_ref() {
                    if !(' '..='/').contains(&c) {
                        break;
                    }
                }
            }
            // Any other escape is two characters long.
            _ => {}
        }
    }
    out
}

/// Reads the level of each line: from its tag, or from the tagged line it continues.
#[derive(Debug, Default)]
pub struct LevelReader {
    /// The level of the last tagged line of the current write, which untagged lines continue.
    continuing: Option<LineLevel>,
}

impl LevelReader {
    /// A new write from the process begins: untagged lines no longer continue a record.
    pub fn new_write(&mut self) {
        self.continuing = None;
    }

    /// The line's level and its text without colours and without the level tag.
    pub fn read(&mut self, line: &str) -> (LineLevel, String) {
        let plain = strip_ansi(line);
        for (tag, level) in LEVEL_TAGS {
            if let Some(message) = plain.strip_prefix(tag) {
                self.continuing = Some(*level);
                return (*level, message.to_string());
            }
        }
        (self.continuing.unwrap_or(LineLevel::Info), plain)
    }
}

fn log_line(instance: &InstanceId, stream: &str, (level, message): (LineLevel, String)) {
    match level {
        LineLevel::Debug => {
            tracing::debug!(target: "comfyui", instance = %instance, stream, "{message}")
        }
        LineLevel::Info => {
            tracing::info!(target: "comfyui", instance = %instance, stream, "{message}")
        }
        LineLevel::Warn => {
            tracing::warn!(target: "comfyui", instance = %instance, stream, "{message}")
        }
        LineLevel::Error => {
            tracing::error!(target: "comfyui", instance = %instance, stream, "{message}")
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
            let mut levels = LevelReader::default();
            let mut buf = [0u8; 8192];
            loop {
                match source.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        for line in splitter.feed(&buf[..n]) {
                            log_line(&instance, stream, levels.read(&line));
                        }
                        // A read that ends a line ends the write it came from (as far as can
                        // be told): the next untagged line starts a record of its own.
                        if splitter.at_line_start() {
                            levels.new_write();
                        }
                    }
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
                log_line(&instance, stream, levels.read(&line));
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
    fn colours_are_stripped_and_tags_give_the_level() {
        let mut levels = LevelReader::default();
        // ComfyUI's ColoredFormatter: bold + colour around the tag, reset after it.
        assert_eq!(
            levels.read("\u{1b}[1m\u{1b}[33m[WARNING]\u{1b}[0m low VRAM: offloading"),
            (LineLevel::Warn, "low VRAM: offloading".to_string())
        );
        assert_eq!(
            levels.read(
                "\u{1b}[32m[INFO]\u{1b}[0m \u{1b}[36mTo see the GUI go to: http://x\u{1b}[0m"
            ),
            (
                LineLevel::Info,
                "To see the GUI go to: http://x".to_string()
            )
        );
        assert_eq!(
            levels.read("[DETAIL] cache hit").0,
            LineLevel::Debug,
            "DETAIL is below INFO"
        );
        assert_eq!(levels.read("[CRITICAL] out of memory").0, LineLevel::Error);
        assert_eq!(
            strip_ansi("\u{1b}]0;title\u{7}done \u{1b}[2K\u{1b}(B100%"),
            "done 100%"
        );
    }

    #[test]
    fn a_traceback_keeps_the_level_of_its_record_within_one_write() {
        let mut levels = LevelReader::default();
        assert_eq!(
            levels.read("[ERROR] !!! Exception during processing !!!").0,
            LineLevel::Error
        );
        assert_eq!(
            levels.read("Traceback (most recent call last):"),
            (
                LineLevel::Error,
                "Traceback (most recent call last):".into()
            )
        );
        levels.new_write();
        assert_eq!(levels.read("got prompt").0, LineLevel::Info);
        assert_eq!(levels.read(" 50%|#####     | 10/20").0, LineLevel::Info);
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
