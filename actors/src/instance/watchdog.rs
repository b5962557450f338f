//! The per-job watchdog: a running job that sends no execution event for too long is checked
//! against ComfyUI's own view of its prompt, then interrupted (and the instance restarted),
//! given time to reconcile, or given up.

use std::time::{Duration, Instant};

use crate::ports::{BackendError, PromptStatus};

/// The silence policy of one instance.
#[derive(Debug, Clone)]
pub struct Watchdog {
    silence: Duration,
}

/// Whether a job has been silent long enough to be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// Not yet: look again after `remaining`.
    Within { remaining: Duration },
    /// Silent for `silent_for` (at least the configured silence): ask ComfyUI.
    Exceeded { silent_for: Duration },
}

/// What to do with a silent job once ComfyUI has been asked about it.
#[derive(Debug, Clone)]
pub enum WatchdogAction {
    /// ComfyUI still has it queued or running (or does not answer): interrupt it, restart the
    /// instance, and report the job retriable with [`BackendError::Silent`].
    InterruptAndRestart,
    /// ComfyUI finished it but its end never reached us: give the run one more silence period
    /// to reconcile the outputs from `/history`.
    AwaitReconcile,
    /// Give the job up with this retriable error; the server itself is fine.
    GiveUp(BackendError),
}

/// What the watchdog knows about the job when it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobView {
    /// The prompt was handed to `Backend::run` (inputs uploaded).
    pub submitted: bool,
    /// A reconcile period was already granted.
    pub reconciling: bool,
}

impl Watchdog {
    pub fn new(silence: Duration) -> Self {
        Self { silence }
    }

    /// The configured silence.
    pub fn silence(&self) -> Duration {
        self.silence
    }

    /// Whether a job last heard from at `last_activity` is silent at `now`.
    pub fn check(&self, last_activity: Instant, now: Instant) -> Silence {
        let silent_for = now.saturating_duration_since(last_activity);
        if silent_for >= self.silence {
            Silence::Exceeded { silent_for }
        } else {
            Silence::Within {
                remaining: self.silence - silent_for,
            }
        }
    }

    /// Decides from ComfyUI's answer (`Err` = no answer) about a silent job.
    pub fn decide(&self, status: Result<PromptStatus, String>, job: JobView) -> WatchdogAction {
        match status {
            Ok(PromptStatus::Pending | PromptStatus::Running) | Err(_) => {
                WatchdogAction::InterruptAndRestart
            }
            Ok(PromptStatus::Succeeded | PromptStatus::Failed) if !job.reconciling => {
                WatchdogAction::AwaitReconcile
            }
            Ok(PromptStatus::Succeeded | PromptStatus::Failed) => {
                WatchdogAction::GiveUp(BackendError::Disconnected(format!(
                    "ComfyUI finished the prompt but its result did not arrive within {}",
                    humantime::format_duration(self.silence)
                )))
            }
            // Uploads stuck for the whole silence: the server is not answering.
            Ok(PromptStatus::Unknown) if !job.submitted => WatchdogAction::InterruptAndRestart,
            Ok(PromptStatus::Unknown) => WatchdogAction::GiveUp(BackendError::Disconnected(
                "ComfyUI lost the prompt: it is neither queued nor in its history".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: JobView = JobView {
        submitted: true,
        reconciling: false,
    };

    #[test]
    fn silence_is_measured_from_the_last_event() {
        let w = Watchdog::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(
            w.check(t0, t0 + Duration::from_secs(45)),
            Silence::Within {
                remaining: Duration::from_secs(15)
            }
        );
        assert_eq!(
            w.check(t0, t0 + Duration::from_secs(60)),
            Silence::Exceeded {
                silent_for: Duration::from_secs(60)
            }
        );
        assert_eq!(
            w.check(t0, t0 + Duration::from_secs(90)),
            Silence::Exceeded {
                silent_for: Duration::from_secs(90)
            }
        );
    }

    #[test]
    fn still_queued_or_running_or_no_answer_means_interrupt_and_restart() {
        let w = Watchdog::new(Duration::from_secs(60));
        for status in [
            Ok(PromptStatus::Pending),
            Ok(PromptStatus::Running),
            Err("timed out".into()),
        ] {
            assert!(
                matches!(
                    w.decide(status.clone(), RUNNING),
                    WatchdogAction::InterruptAndRestart
                ),
                "{status:?}"
            );
        }
    }

    #[test]
    fn finished_meanwhile_gets_one_reconcile_period_then_is_given_up_retriable() {
        let w = Watchdog::new(Duration::from_secs(60));
        for status in [PromptStatus::Succeeded, PromptStatus::Failed] {
            assert!(matches!(
                w.decide(Ok(status), RUNNING),
                WatchdogAction::AwaitReconcile
            ));
            let again = JobView {
                reconciling: true,
                ..RUNNING
            };
            let WatchdogAction::GiveUp(error) = w.decide(Ok(status), again) else {
                panic!("{status:?} twice should give up");
            };
            assert!(error.is_retriable(), "{error}");
        }
    }

    #[test]
    fn a_prompt_the_server_lost_is_given_up_but_stuck_uploads_restart() {
        let w = Watchdog::new(Duration::from_secs(60));
        let WatchdogAction::GiveUp(error) = w.decide(Ok(PromptStatus::Unknown), RUNNING) else {
            panic!("lost prompt should be given up");
        };
        assert!(error.is_retriable());
        assert!(error.to_string().contains("lost the prompt"), "{error}");
        let uploading = JobView {
            submitted: false,
            reconciling: false,
        };
        assert!(matches!(
            w.decide(Ok(PromptStatus::Unknown), uploading),
            WatchdogAction::InterruptAndRestart
        ));
    }
}
