//! The server's stop signal: raised once when an in-process server is stopped. The worker's
//! timed pauses (node and step times) and a hung prompt end early on it, so the worker thread
//! can be joined; the program never raises it (its process just exits).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A flag that is raised once, with waits that end when it is.
#[derive(Debug, Default)]
pub struct StopSignal {
    raised: Mutex<bool>,
    changed: Condvar,
}

impl StopSignal {
    /// Raises the signal and wakes every wait.
    pub fn raise(&self) {
        *self.raised.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Whether the signal was raised.
    pub fn is_raised(&self) -> bool {
        *self.raised.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps for `duration`, or less when the signal is raised.
    pub fn sleep(&self, duration: Duration) {
        if duration.is_zero() {
            return;
        }
        let deadline = Instant::now() + duration;
        let mut raised = self.raised.lock().unwrap_or_else(|p| p.into_inner());
        while !*raised {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            raised = match self.changed.wait_timeout(raised, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Waits until the signal is raised.
    pub fn wait(&self) {
        let mut raised = self.raised.lock().unwrap_or_else(|p| p.into_inner());
        while !*raised {
            raised = self.changed.wait(raised).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_raised_signal_ends_a_long_sleep_and_a_wait() {
        let signal = Arc::new(StopSignal::default());
        let sleeper = {
            let signal = Arc::clone(&signal);
            std::thread::spawn(move || signal.sleep(Duration::from_secs(3600)))
        };
        let waiter = {
            let signal = Arc::clone(&signal);
            std::thread::spawn(move || signal.wait())
        };
        assert!(!signal.is_raised());
        signal.raise();
        sleeper.join().unwrap();
        waiter.join().unwrap();
        assert!(signal.is_raised());
        // once raised, sleeps return at once
        signal.sleep(Duration::from_secs(3600));
    }
}
