//! How `comfy-fleet run` shows a job's progress on stderr: on a terminal, a progress bar per job
//! (indicatif) with its queue position and ETA, then the instance and node it runs and the
//! sampler's steps as the bar's percentage; when stderr is not a terminal (a pipe, a log file,
//! CI), one plain line per change instead.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use comfy_fleet_actors::JobEvent;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What one event changes in the display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The line a plain display prints, and the bar's message.
    pub text: String,
    /// Steps done of the total, for the bar's percentage.
    pub steps: Option<(u64, u64)>,
}

/// What an event means to someone watching the job; `None` for events not worth a line.
pub fn describe(event: &JobEvent) -> Option<Status> {
    let text = |text: String| Some(Status { text, steps: None });
    match event {
        JobEvent::Queued { position, eta, .. } => text(match eta {
            Some(eta) if *position > 0 => format!(
                "queued, position {position}, about {} to wait",
                humantime::format_duration(Duration::from_secs(eta.as_secs().max(1)))
            ),
            _ => format!("queued, position {position}"),
        }),
        JobEvent::Started {
            instance, attempt, ..
        } => text(format!("running on {instance} (attempt {attempt})")),
        JobEvent::Executing { node, title, .. } => text(match title {
            Some(title) => format!("executing node {node} ({title})"),
            None => format!("executing node {node}"),
        }),
        JobEvent::Progress {
            node, value, max, ..
        } => Some(Status {
            text: format!("node {node}: step {value}/{max}"),
            steps: Some((*value, *max)),
        }),
        JobEvent::Retrying {
            attempt, reason, ..
        } => text(format!("retrying (attempt {attempt}): {reason}")),
        JobEvent::Preview { .. }
        | JobEvent::Done { .. }
        | JobEvent::Failed { .. }
        | JobEvent::Cancelled { .. } => None,
    }
}

/// The progress display of one job.
pub enum JobProgress {
    /// A bar redrawn in place (a terminal).
    Bar { bar: ProgressBar, node: String },
    /// One line per change.
    Lines(Box<dyn Write + Send>),
}

impl JobProgress {
    /// A bar when stderr is a terminal, plain lines on stderr otherwise.
    pub fn on_stderr(job: &str) -> Self {
        if std::io::stderr().is_terminal() {
            Self::bar(job, ProgressDrawTarget::stderr())
        } else {
            Self::Lines(Box::new(std::io::stderr()))
        }
    }

    /// A bar for `job` drawn on `target`.
    pub fn bar(job: &str, target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(100), target);
        let style =
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {percent:>3}% {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!("job {}", short(job)));
        bar.enable_steady_tick(Duration::from_millis(120));
        Self::Bar {
            bar,
            node: String::new(),
        }
    }

    /// Shows what `event` changes.
    pub fn event(&mut self, event: &JobEvent) {
        let Some(status) = describe(event) else {
            return;
        };
        match self {
            Self::Lines(out) => {
                let _ = writeln!(out, "{}", status.text);
            }
            Self::Bar { bar, node } => {
                match event {
                    // A new node, or a new attempt: its steps start from nothing.
                    JobEvent::Executing { node: n, .. } => {
                        *node = n.clone();
                        bar.set_position(0);
                    }
                    JobEvent::Started { .. } | JobEvent::Retrying { .. } => bar.set_position(0),
                    _ => {}
                }
                match status.steps {
                    Some((value, max)) if max > 0 => {
                        bar.set_length(max);
                        bar.set_position(value.min(max));
                    }
                    _ => bar.set_message(status.text),
                }
            }
        }
    }

    /// A line that is not a job event (an upload, the seed).
    pub fn note(&mut self, text: &str) {
        match self {
            Self::Lines(out) => {
                let _ = writeln!(out, "{text}");
            }
            Self::Bar { bar, .. } => bar.println(text),
        }
    }

    /// Ends the display with a last line.
    pub fn finish(&mut self, text: &str) {
        match self {
            Self::Lines(out) => {
                let _ = writeln!(out, "{text}");
            }
            Self::Bar { bar, .. } => bar.finish_with_message(text.to_string()),
        }
    }

    /// Removes a bar without a last line (before an error is printed).
    pub fn abandon(&mut self) {
        if let Self::Bar { bar, .. } = self {
            bar.abandon();
        }
    }

    /// The bar's message, position and length (for tests; `None` for plain lines).
    pub fn bar_state(&self) -> Option<(String, u64, Option<u64>)> {
        match self {
            Self::Bar { bar, .. } => Some((bar.message(), bar.position(), bar.length())),
            Self::Lines(_) => None,
        }
    }
}

fn short(job: &str) -> &str {
    job.get(..8).unwrap_or(job)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use comfy_fleet_actors::{InstanceId, JobId};

    use super::*;

    fn events(job: JobId) -> Vec<JobEvent> {
        vec![
            JobEvent::Queued {
                job,
                position: 2,
                eta: Some(Duration::from_secs(90)),
            },
            JobEvent::Started {
                job,
                instance: InstanceId::new("gpu1"),
                attempt: 1,
            },
            JobEvent::Executing {
                job,
                node: "3".into(),
                title: Some("KSampler".into()),
            },
            JobEvent::Progress {
                job,
                node: "3".into(),
                value: 5,
                max: 20,
            },
        ]
    }

    /// A writer the test can read back.
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
    fn plain_lines_say_position_wait_instance_node_and_steps() {
        let out = Shared::default();
        let mut progress = JobProgress::Lines(Box::new(out.clone()));
        for event in events(JobId::new()) {
            progress.event(&event);
        }
        progress.finish("done: 1 file");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "queued, position 2, about 1m 30s to wait\nrunning on gpu1 (attempt 1)\n\
             executing node 3 (KSampler)\nnode 3: step 5/20\ndone: 1 file\n"
        );
    }

    #[test]
    fn the_bar_shows_the_node_and_the_steps_as_its_percentage() {
        let job = JobId::new();
        let mut progress = JobProgress::bar(&job.to_string(), ProgressDrawTarget::hidden());
        let all = events(job);
        progress.event(&all[0]);
        assert_eq!(
            progress.bar_state().unwrap().0,
            "queued, position 2, about 1m 30s to wait"
        );
        for event in &all[1..] {
            progress.event(event);
        }
        let (message, position, length) = progress.bar_state().unwrap();
        assert_eq!(message, "executing node 3 (KSampler)");
        assert_eq!((position, length), (5, Some(20)));
        // The next node starts its steps from nothing.
        progress.event(&JobEvent::Executing {
            job,
            node: "8".into(),
            title: Some("VAE Decode".into()),
        });
        assert_eq!(progress.bar_state().unwrap().1, 0);
    }
}
