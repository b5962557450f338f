//! A child process's output, read line by line (one thread per pipe) into a shared log that
//! tests wait on: until a line appears, a count of lines appears, or every pipe has closed.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::waits::SAFETY;

/// The log of a process, shared with the threads that read its pipes.
#[derive(Clone, Default)]
pub struct LogLines(Arc<(Mutex<LogState>, Condvar)>);

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    /// Pipes still being read.
    open: usize,
}

impl LogLines {
    /// Reads `source` line by line into the log, in a thread, until it closes.
    pub fn follow(source: impl Read + Send + 'static) -> Self {
        Self::follow_all(vec![Box::new(source)])
    }

    /// Reads every source (e.g. stdout and stderr) into one log, a thread each.
    pub fn follow_all(sources: Vec<Box<dyn Read + Send>>) -> Self {
        let log = Self::default();
        log.0.0.lock().unwrap().open = sources.len();
        for source in sources {
            let writer = log.clone();
            std::thread::spawn(move || {
                let (state, changed) = &*writer.0;
                for line in BufReader::new(source).lines() {
                    let Ok(line) = line else { break };
                    state.lock().unwrap().lines.push(line);
                    changed.notify_all();
                }
                state.lock().unwrap().open -= 1;
                changed.notify_all();
            });
        }
        log
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.0.lock().unwrap().lines.clone()
    }

    /// Every line so far, joined with newlines.
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// The lines so far that satisfy `pred`.
    pub fn matching(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        self.lines().into_iter().filter(|l| pred(l)).collect()
    }

    /// The last `n` lines, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits until a line satisfies `pred`; false when `timeout` passed or every pipe closed
    /// first.
    pub fn wait_until_logged(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (state, changed) = &*self.0;
        let mut guard = state.lock().unwrap();
        loop {
            if guard.lines.iter().any(|l| pred(l)) {
                return true;
            }
            let now = Instant::now();
            if guard.open == 0 || now >= deadline {
                return false;
            }
            guard = changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Waits until every pipe has closed (the process and its children are done writing);
    /// false when `timeout` passed first.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (state, changed) = &*self.0;
        let mut guard = state.lock().unwrap();
        while guard.open > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
        true
    }

    /// Waits until `count` lines (seen since the start) satisfy `pred`; returns the last of them.
    /// Panics with the log's tail after [`SAFETY`] or when the log closed first.
    pub fn wait_for_count(&self, what: &str, count: usize, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SAFETY;
        let (state, changed) = &*self.0;
        let mut guard = state.lock().unwrap();
        loop {
            let found: Vec<&String> = guard.lines.iter().filter(|l| pred(l)).collect();
            if found.len() >= count {
                return found[count - 1].clone();
            }
            let seen = found.len();
            let now = Instant::now();
            if now >= deadline || guard.open == 0 {
                let lines = guard.lines.clone();
                drop(guard);
                panic!(
                    "never logged {what} ({seen} of {count} seen; {}); log tail:\n{}",
                    if now >= deadline {
                        "timed out"
                    } else {
                        "the log closed"
                    },
                    lines[lines.len().saturating_sub(60)..].join("\n")
                );
            }
            guard = changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Waits for a line satisfying `pred` (seen since the start).
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for_count(what, 1, pred)
    }
}

/// A line that mentions every one of `parts`.
pub fn has_all<'a>(parts: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
    move |line| parts.iter().all(|p| line.contains(p))
}
