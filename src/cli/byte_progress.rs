//! Progress of a file transfer (a model download or copy) on stderr: an indicatif bar with bytes,
//! rate and time left on a terminal; otherwise a plain line at the start, every tenth of the
//! file, and the end.

use std::io::{IsTerminal, Write};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The display of one transfer.
pub enum ByteProgress {
    Bar(ProgressBar),
    Lines {
        out: Box<dyn Write + Send>,
        label: String,
        done: u64,
        total: Option<u64>,
        /// The last tenth reported.
        tenth: u64,
    },
}

impl ByteProgress {
    /// A bar when stderr is a terminal, plain lines on stderr otherwise.
    pub fn on_stderr(label: &str) -> Self {
        if std::io::stderr().is_terminal() {
            Self::bar(label, ProgressDrawTarget::stderr())
        } else {
            Self::lines(label, Box::new(std::io::stderr()))
        }
    }

    /// A bar drawn on `target`.
    pub fn bar(label: &str, target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(None, target);
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        Self::Bar(bar)
    }

    /// Plain lines on `out`.
    pub fn lines(label: &str, out: Box<dyn Write + Send>) -> Self {
        Self::Lines {
            out,
            label: label.to_string(),
            done: 0,
            total: None,
            tenth: 0,
        }
    }

    /// The transfer starts with `done` bytes already there, of `total` when known.
    pub fn start(&mut self, done: u64, total: Option<u64>) {
        match self {
            Self::Bar(bar) => {
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(done);
                bar.reset_eta();
            }
            Self::Lines {
                out,
                label,
                done: d,
                total: t,
                tenth,
            } => {
                *d = done;
                *t = total;
                *tenth = total.filter(|t| *t > 0).map_or(0, |t| done * 10 / t);
                let size =
                    total.map_or_else(|| "unknown size".into(), |t| HumanBytes(t).to_string());
                let _ = if done > 0 {
                    writeln!(out, "{label}: {size}, resuming at {}", HumanBytes(done))
                } else {
                    writeln!(out, "{label}: {size}")
                };
            }
        }
    }

    /// `bytes` more arrived.
    pub fn advance(&mut self, bytes: u64) {
        match self {
            Self::Bar(bar) => bar.inc(bytes),
            Self::Lines {
                out,
                label,
                done,
                total,
                tenth,
            } => {
                *done += bytes;
                if let Some(total) = total.filter(|t| *t > 0) {
                    let now = (*done * 10 / total).min(10);
                    if now > *tenth && now < 10 {
                        *tenth = now;
                        let _ = writeln!(out, "{label}: {}%", now * 10);
                    }
                }
            }
        }
    }

    /// A step without bytes (checking the checksum).
    pub fn note(&mut self, text: &str) {
        match self {
            Self::Bar(bar) => bar.set_message(text.to_string()),
            Self::Lines { out, label, .. } => {
                let _ = writeln!(out, "{label}: {text}");
            }
        }
    }

    /// The transfer ended: `text` says how.
    pub fn finish(&mut self, text: &str) {
        match self {
            Self::Bar(bar) => {
                bar.finish_and_clear();
                eprintln!("{}: {text}", bar.prefix());
            }
            Self::Lines { out, label, .. } => {
                let _ = writeln!(out, "{label}: {text}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_lines_report_each_tenth_once_and_the_resume() {
        let out = Shared::default();
        let mut progress = ByteProgress::lines("loras/a", Box::new(out.clone()));
        progress.start(300, Some(1000));
        for _ in 0..70 {
            progress.advance(10);
        }
        progress.finish("installed");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "loras/a: 1000 B, resuming at 300 B\nloras/a: 40%\nloras/a: 50%\nloras/a: 60%\n\
             loras/a: 70%\nloras/a: 80%\nloras/a: 90%\nloras/a: installed\n"
        );
    }
}
