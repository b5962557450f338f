//! The jobs in flight on one instance: each reported finished exactly once, with the failure
//! the way it ended deserves, and the lifecycle told when the instance becomes busy or idle.
//!
//! An entry is created when a `RunJob` is accepted and removed by whichever comes first: the
//! run's own result, a cancel before submission, the watchdog giving up, or an abort (crash,
//! shutdown). Only the remover reports, so no job is reported twice or never. Every operation
//! returns the [`JobEffect`]s the actor performs, in the order they must happen: a job's future
//! is dropped before its report is sent, and its report before the [`JobEffect::Idle`] its
//! removal causes.
//!
//! How a job that did not end by itself is reported (only a loss of the server is retried on
//! another instance):
//! - offered while the instance takes no jobs: [`JobFailure::NotTaken`] (nothing ran; retriable);
//! - lost with its server (process exit, failed health checks, another job hung, an operator's
//!   restart): [`JobFailure::ServerLost`] (retriable);
//! - the hung job itself: [`BackendError::Silent`] (retriable);
//! - given up at the shutdown deadline: [`JobFailure::Aborted`] (not retried);
//! - cancelled before it reached ComfyUI: [`BackendError::Interrupted`], as ComfyUI reports an
//!   interrupted prompt.
//!
//! A run's own result is reported as the backend said it: a workflow ComfyUI refused
//! ([`BackendError::Rejected`]) or a node that failed is the job's fault, not the server's.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::ids::{InstanceId, JobId};
use crate::instance::lifecycle::{AbortReason, CrashCause};
use crate::instance::watchdog::{JobView, Silence, Watchdog, WatchdogAction};
use crate::messages::{InstancePhase, JobFailure, JobFinished};
use crate::ports::{BackendError, PromptStatus, RunResult};

/// Progress of one job, shared with its running future (which stamps every event).
#[derive(Debug)]
pub struct JobActivity {
    last: Cell<Instant>,
    submitted: Cell<bool>,
}

impl JobActivity {
    pub fn new(now: Instant) -> Self {
        Self {
            last: Cell::new(now),
            submitted: Cell::new(false),
        }
    }

    /// Something happened (an upload finished, an execution event arrived).
    pub fn touch(&self, now: Instant) {
        self.last.set(now);
    }

    /// The prompt was handed to the backend.
    pub fn mark_submitted(&self) {
        self.submitted.set(true);
    }

    pub fn last(&self) -> Instant {
        self.last.get()
    }

    pub fn submitted(&self) -> bool {
        self.submitted.get()
    }
}

/// What the actor must do for the jobs in flight; `H` is the handle of a job's running future.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEffect<H> {
    /// Drop the job's running future (uploads or run): its result is no longer wanted.
    StopRun(H),
    /// Ask ComfyUI to interrupt the prompt, or to drop it from its queue.
    Interrupt { job: JobId, prompt_id: Uuid },
    /// Look at the job's silence again after `after` ([`JobBook::check_silence`]).
    Watch {
        job: JobId,
        attempt: u32,
        after: Duration,
    },
    /// Ask ComfyUI where the prompt stands and hand the answer to
    /// [`JobBook::status_answered`].
    AskStatus {
        job: JobId,
        attempt: u32,
        prompt_id: Uuid,
        silent_for: Duration,
    },
    /// Interrupt the hung prompt, then tell the lifecycle the job hung on the process of
    /// `generation` (which restarts the instance and aborts the job).
    InterruptHung {
        job: JobId,
        prompt_id: Uuid,
        generation: u64,
        silent_for: Duration,
    },
    /// Tell the scheduler the attempt ended.
    Report(JobFinished),
    /// The first job is in flight: the lifecycle's `JobsStarted`.
    Busy,
    /// The last job in flight ended: the lifecycle's `JobsIdle`.
    Idle,
}

/// One job in flight.
#[derive(Debug)]
struct JobEntry<H> {
    attempt: u32,
    prompt_id: Uuid,
    /// The process generation it runs on.
    generation: u64,
    activity: Rc<JobActivity>,
    /// The watchdog granted a reconcile period.
    reconciling: bool,
    /// The watchdog is asking ComfyUI about it.
    checking: bool,
    handle: Option<H>,
}

impl<H> JobEntry<H> {
    /// What the watchdog needs to know.
    fn view(&self) -> JobView {
        JobView {
            submitted: self.activity.submitted(),
            reconciling: self.reconciling,
        }
    }
}

/// The job is already in flight here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("job {0} is already running on this instance")]
pub struct AlreadyInFlight(pub JobId);

/// The jobs in flight on one instance.
#[derive(Debug)]
pub struct JobBook<H> {
    instance: InstanceId,
    watchdog: Watchdog,
    jobs: HashMap<JobId, JobEntry<H>>,
}

impl<H> JobBook<H> {
    pub fn new(instance: InstanceId, watchdog: Watchdog) -> Self {
        Self {
            instance,
            watchdog,
            jobs: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// A job offered while the instance, in `phase`, takes none: the report that sends it to
    /// another instance.
    pub fn refuse(&self, job: JobId, attempt: u32, phase: InstancePhase) -> Vec<JobEffect<H>> {
        let failure = JobFailure::NotTaken {
            instance: self.instance.clone(),
            phase,
        };
        tracing::info!(instance = %self.instance, %job, attempt, error = %failure, "job refused");
        vec![self.report(job, attempt, Err(failure))]
    }

    /// Records an accepted job. Returns its activity, to share with its running future (whose
    /// handle goes to [`JobBook::attach`]), and the effects: watch its silence, and
    /// [`JobEffect::Busy`] when it is the only job in flight.
    pub fn accept(
        &mut self,
        job: JobId,
        attempt: u32,
        prompt_id: Uuid,
        generation: u64,
        now: Instant,
    ) -> Result<(Rc<JobActivity>, Vec<JobEffect<H>>), AlreadyInFlight> {
        if self.jobs.contains_key(&job) {
            return Err(AlreadyInFlight(job));
        }
        let activity = Rc::new(JobActivity::new(now));
        self.jobs.insert(
            job,
            JobEntry {
                attempt,
                prompt_id,
                generation,
                activity: Rc::clone(&activity),
                reconciling: false,
                checking: false,
                handle: None,
            },
        );
        let mut fx = vec![JobEffect::Watch {
            job,
            attempt,
            after: self.watchdog.silence(),
        }];
        if self.jobs.len() == 1 {
            fx.push(JobEffect::Busy);
        }
        Ok((activity, fx))
    }

    /// Hands over the handle of the running future of `job`'s attempt `attempt`.
    pub fn attach(&mut self, job: JobId, attempt: u32, handle: H) {
        if let Some(entry) = self.jobs.get_mut(&job).filter(|e| e.attempt == attempt) {
            entry.handle = Some(handle);
        }
    }

    /// The run ended by itself: reported as the backend said (nothing when the job was already
    /// reported another way).
    pub fn finished(
        &mut self,
        job: JobId,
        attempt: u32,
        result: Result<RunResult, BackendError>,
    ) -> Vec<JobEffect<H>> {
        let mut fx = Vec::new();
        if self.remove(job, attempt).is_none() {
            return fx;
        }
        match &result {
            Ok(run) => tracing::info!(
                instance = %self.instance, %job, attempt,
                outputs = run.outputs.len(), "job finished"
            ),
            Err(error) => tracing::info!(
                instance = %self.instance, %job, attempt,
                %error, retriable = error.is_retriable(), "job failed"
            ),
        }
        fx.push(self.report(job, attempt, result.map_err(JobFailure::from)));
        self.push_idle(&mut fx);
        fx
    }

    /// The scheduler cancels `job`: a job still uploading ends at once (nothing reached
    /// ComfyUI); a submitted one is interrupted and ends when its run does.
    pub fn cancel(&mut self, job: JobId) -> Vec<JobEffect<H>> {
        let mut fx = Vec::new();
        let Some(entry) = self.jobs.get(&job) else {
            tracing::debug!(instance = %self.instance, %job, "cancel for a job not running here");
            return fx;
        };
        if entry.activity.submitted() {
            fx.push(JobEffect::Interrupt {
                job,
                prompt_id: entry.prompt_id,
            });
            return fx;
        }
        let attempt = entry.attempt;
        if let Some(entry) = self.remove(job, attempt) {
            tracing::info!(instance = %self.instance, %job, attempt, "job cancelled before submission");
            fx.extend(entry.handle.map(JobEffect::StopRun));
            fx.push(self.report(job, attempt, Err(BackendError::Interrupted.into())));
            self.push_idle(&mut fx);
        }
        fx
    }

    /// Gives up every job in flight for `reason`; when `interrupt`, ComfyUI is asked to cancel
    /// each prompt too. Jobs go in id order.
    pub fn abort_all(&mut self, reason: &AbortReason, interrupt: bool) -> Vec<JobEffect<H>> {
        let mut fx = Vec::new();
        let mut entries: Vec<(JobId, JobEntry<H>)> = self.jobs.drain().collect();
        if entries.is_empty() {
            return fx;
        }
        entries.sort_by_key(|(job, _)| *job);
        for (job, entry) in entries {
            let failure = self.abort_failure(reason, job);
            tracing::warn!(
                instance = %self.instance, %job, attempt = entry.attempt,
                error = %failure, retriable = failure.is_retriable(), "job given up"
            );
            fx.extend(entry.handle.map(JobEffect::StopRun));
            if interrupt {
                fx.push(JobEffect::Interrupt {
                    job,
                    prompt_id: entry.prompt_id,
                });
            }
            fx.push(self.report(job, entry.attempt, Err(failure)));
        }
        fx.push(JobEffect::Idle);
        fx
    }

    /// The failure `job`, given up for `reason`, is reported with.
    fn abort_failure(&self, reason: &AbortReason, job: JobId) -> JobFailure {
        match reason {
            AbortReason::Crash(CrashCause::JobHung {
                job: hung,
                silent_for,
            }) if *hung == job => BackendError::Silent {
                silent_for: *silent_for,
            }
            .into(),
            AbortReason::Crash(cause) => JobFailure::ServerLost {
                instance: self.instance.clone(),
                cause: cause.to_string(),
            },
            AbortReason::OperatorRestart => JobFailure::ServerLost {
                instance: self.instance.clone(),
                cause: "it was restarted by an operator (operator restart)".into(),
            },
            AbortReason::Shutdown => JobFailure::Aborted {
                instance: self.instance.clone(),
                reason: "the instance is shutting down and its deadline for running jobs passed"
                    .into(),
            },
        }
    }

    /// The watchdog looks at `job`'s silence: not yet silent long enough (look again later),
    /// or silent (ask ComfyUI about it, once at a time).
    pub fn check_silence(&mut self, job: JobId, attempt: u32, now: Instant) -> Vec<JobEffect<H>> {
        let Some(entry) = self.jobs.get_mut(&job).filter(|e| e.attempt == attempt) else {
            return Vec::new();
        };
        match self.watchdog.check(entry.activity.last(), now) {
            Silence::Within { remaining } => vec![JobEffect::Watch {
                job,
                attempt,
                after: remaining,
            }],
            Silence::Exceeded { .. } if entry.checking => Vec::new(),
            Silence::Exceeded { silent_for } => {
                entry.checking = true;
                tracing::warn!(
                    instance = %self.instance, %job, attempt,
                    silent_for = %crate::duration_text::rounded(silent_for),
                    "job silent; asking ComfyUI where it stands"
                );
                vec![JobEffect::AskStatus {
                    job,
                    attempt,
                    prompt_id: entry.prompt_id,
                    silent_for,
                }]
            }
        }
    }

    /// ComfyUI's answer about a silent job (`Err`: no answer): interrupt it and restart the
    /// instance, give it one more silence period to reconcile, or give it up.
    pub fn status_answered(
        &mut self,
        job: JobId,
        attempt: u32,
        silent_for: Duration,
        status: Result<PromptStatus, String>,
        now: Instant,
    ) -> Vec<JobEffect<H>> {
        let Some(entry) = self.jobs.get_mut(&job).filter(|e| e.attempt == attempt) else {
            return Vec::new();
        };
        entry.checking = false;
        let action = self.watchdog.decide(status.clone(), entry.view());
        tracing::warn!(
            instance = %self.instance, %job, attempt, status = ?status, action = ?action, "watchdog decision"
        );
        match action {
            WatchdogAction::InterruptAndRestart => vec![JobEffect::InterruptHung {
                job,
                prompt_id: entry.prompt_id,
                generation: entry.generation,
                silent_for,
            }],
            WatchdogAction::AwaitReconcile => {
                entry.reconciling = true;
                entry.activity.touch(now);
                vec![JobEffect::Watch {
                    job,
                    attempt,
                    after: self.watchdog.silence(),
                }]
            }
            WatchdogAction::GiveUp(error) => {
                let mut fx = Vec::new();
                if let Some(entry) = self.remove(job, attempt) {
                    fx.extend(entry.handle.map(JobEffect::StopRun));
                    fx.push(self.report(job, attempt, Err(error.into())));
                    self.push_idle(&mut fx);
                }
                fx
            }
        }
    }

    /// Removes `job`'s attempt `attempt`; `Some` exactly once, for the caller that reports it.
    fn remove(&mut self, job: JobId, attempt: u32) -> Option<JobEntry<H>> {
        match self.jobs.get(&job) {
            Some(entry) if entry.attempt == attempt => self.jobs.remove(&job),
            _ => None,
        }
    }

    fn report(
        &self,
        job: JobId,
        attempt: u32,
        result: Result<RunResult, JobFailure>,
    ) -> JobEffect<H> {
        JobEffect::Report(JobFinished {
            instance: self.instance.clone(),
            job,
            attempt,
            result,
        })
    }

    /// After a removal: `Idle` when it was the last job.
    fn push_idle(&self, fx: &mut Vec<JobEffect<H>>) {
        if self.jobs.is_empty() {
            fx.push(JobEffect::Idle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn book() -> JobBook<u32> {
        JobBook::new(InstanceId::new("gpu0"), Watchdog::new(S(60)))
    }

    /// Accepts `job` (attempt 1) with `handle` as its running future.
    fn accept(book: &mut JobBook<u32>, job: JobId, handle: u32, now: Instant) -> Rc<JobActivity> {
        let (activity, _) = book.accept(job, 1, job.0, 1, now).unwrap();
        book.attach(job, 1, handle);
        activity
    }

    /// The reports among `fx`.
    fn reports(fx: &[JobEffect<u32>]) -> Vec<&JobFinished> {
        fx.iter()
            .filter_map(|e| match e {
                JobEffect::Report(finished) => Some(finished),
                _ => None,
            })
            .collect()
    }

    fn failure(fx: &[JobEffect<u32>]) -> &JobFailure {
        match reports(fx).as_slice() {
            [finished] => finished.result.as_ref().unwrap_err(),
            other => panic!("expected one report, got {other:?}"),
        }
    }

    fn rejected() -> BackendError {
        BackendError::Rejected {
            kind: "prompt_outputs_failed_validation".into(),
            message: "Prompt outputs failed validation".into(),
            node_errors: vec![],
        }
    }

    #[test]
    fn the_first_job_makes_the_instance_busy_and_the_last_one_idle() {
        let mut book = book();
        let (a, b) = (JobId::new(), JobId::new());
        let now = Instant::now();
        let (_, fx) = book.accept(a, 1, a.0, 1, now).unwrap();
        assert_eq!(
            fx,
            vec![
                JobEffect::Watch {
                    job: a,
                    attempt: 1,
                    after: S(60)
                },
                JobEffect::Busy
            ]
        );
        let (_, fx) = book.accept(b, 1, b.0, 1, now).unwrap();
        assert!(!fx.contains(&JobEffect::Busy), "already busy: {fx:?}");
        let fx = book.finished(a, 1, Ok(RunResult::default()));
        assert_eq!(reports(&fx).len(), 1);
        assert!(!fx.contains(&JobEffect::Idle), "b still runs: {fx:?}");
        let fx = book.finished(b, 1, Ok(RunResult::default()));
        assert!(matches!(
            fx.as_slice(),
            [JobEffect::Report(JobFinished { job, result: Ok(_), .. }), JobEffect::Idle] if *job == b
        ));
        assert!(book.is_empty());
    }

    #[test]
    fn a_job_is_reported_exactly_once() {
        let mut book = book();
        let job = JobId::new();
        accept(&mut book, job, 7, Instant::now());
        assert_eq!(
            reports(&book.finished(job, 1, Ok(RunResult::default()))).len(),
            1
        );
        assert!(book.finished(job, 1, Ok(RunResult::default())).is_empty());
        assert!(book.cancel(job).is_empty());
        assert!(
            book.abort_all(&AbortReason::Shutdown, true).is_empty(),
            "nothing left to abort, and no second Idle"
        );
    }

    #[test]
    fn a_result_for_another_attempt_does_not_finish_the_current_one() {
        let mut book = book();
        let job = JobId::new();
        book.accept(job, 2, job.0, 1, Instant::now()).unwrap();
        assert!(book.finished(job, 1, Ok(RunResult::default())).is_empty());
        assert!(book.check_silence(job, 1, Instant::now()).is_empty());
        assert_eq!(book.len(), 1);
        assert_eq!(
            reports(&book.finished(job, 2, Ok(RunResult::default()))).len(),
            1
        );
    }

    #[test]
    fn a_duplicate_is_refused() {
        let mut book = book();
        let job = JobId::new();
        let now = Instant::now();
        book.accept(job, 1, job.0, 1, now).unwrap();
        assert_eq!(
            book.accept(job, 1, job.0, 1, now).unwrap_err(),
            AlreadyInFlight(job)
        );
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn a_job_refused_by_comfyui_is_reported_as_comfyui_said_and_not_retried() {
        let mut book = book();
        let job = JobId::new();
        accept(&mut book, job, 7, Instant::now());
        let fx = book.finished(job, 1, Err(rejected()));
        let failure = failure(&fx);
        assert_eq!(failure, &JobFailure::Backend(rejected()));
        assert!(!failure.is_retriable());
        let text = failure.to_string();
        assert!(text.starts_with("ComfyUI rejected the workflow"), "{text}");
        assert!(!text.contains("unreachable"), "{text}");
    }

    #[test]
    fn a_job_offered_while_not_ready_is_not_taken_and_goes_elsewhere() {
        let book = book();
        let job = JobId::new();
        let fx = book.refuse(job, 2, InstancePhase::Crashed);
        let JobEffect::Report(finished) = &fx[0] else {
            panic!("{fx:?}")
        };
        assert_eq!((finished.job, finished.attempt), (job, 2));
        let failure = failure(&fx);
        assert!(
            failure.is_retriable(),
            "nothing ran: another instance may take it"
        );
        assert_eq!(
            failure.to_string(),
            "instance gpu0 is crashed and takes no jobs"
        );
    }

    #[test]
    fn a_job_cancelled_while_uploading_ends_at_once_interrupted() {
        let mut book = book();
        let job = JobId::new();
        accept(&mut book, job, 7, Instant::now());
        let fx = book.cancel(job);
        assert_eq!(
            fx,
            vec![
                JobEffect::StopRun(7),
                JobEffect::Report(JobFinished {
                    instance: InstanceId::new("gpu0"),
                    job,
                    attempt: 1,
                    result: Err(BackendError::Interrupted.into()),
                }),
                JobEffect::Idle,
            ]
        );
        assert!(!failure(&fx).is_retriable());
    }

    #[test]
    fn a_submitted_job_is_interrupted_on_cancel_and_ends_with_its_run() {
        let mut book = book();
        let job = JobId::new();
        let activity = accept(&mut book, job, 7, Instant::now());
        activity.mark_submitted();
        assert_eq!(
            book.cancel(job),
            vec![JobEffect::Interrupt {
                job,
                prompt_id: job.0
            }]
        );
        assert_eq!(book.len(), 1, "the run reports the interrupt itself");
        let fx = book.finished(job, 1, Err(BackendError::Interrupted));
        assert_eq!(
            failure(&fx),
            &JobFailure::Backend(BackendError::Interrupted)
        );
        assert!(book.cancel(JobId::new()).is_empty(), "not here");
    }

    #[test]
    fn a_crash_loses_every_job_retriably_and_blames_the_hung_one_on_its_silence() {
        let mut book = book();
        let (a, b) = {
            let (x, y) = (JobId::new(), JobId::new());
            if x < y { (x, y) } else { (y, x) }
        };
        let now = Instant::now();
        accept(&mut book, a, 1, now);
        accept(&mut book, b, 2, now);
        let reason = AbortReason::Crash(CrashCause::JobHung {
            job: b,
            silent_for: S(90),
        });
        let fx = book.abort_all(&reason, false);
        // Each job's future is dropped before its report; Idle comes last.
        assert!(
            matches!(
                fx.as_slice(),
                [
                    JobEffect::StopRun(1),
                    JobEffect::Report(JobFinished { job: ja, .. }),
                    JobEffect::StopRun(2),
                    JobEffect::Report(JobFinished { job: jb, .. }),
                    JobEffect::Idle,
                ] if *ja == a && *jb == b
            ),
            "{fx:?}"
        );
        let failures: Vec<&JobFailure> = reports(&fx)
            .iter()
            .map(|f| f.result.as_ref().unwrap_err())
            .collect();
        assert_eq!(
            failures[0],
            &JobFailure::ServerLost {
                instance: InstanceId::new("gpu0"),
                cause: format!("job {b} hung: no event for 1m 30s while ComfyUI still had it"),
            }
        );
        assert_eq!(
            failures[1],
            &JobFailure::Backend(BackendError::Silent { silent_for: S(90) })
        );
        assert!(failures.iter().all(|f| f.is_retriable()));
        assert!(book.is_empty());
    }

    #[test]
    fn a_process_exit_is_a_loss_of_the_server_not_an_unreachable_comfyui() {
        let mut book = book();
        let job = JobId::new();
        accept(&mut book, job, 1, Instant::now());
        let fx = book.abort_all(
            &AbortReason::Crash(CrashCause::Exited("exit code 1".into())),
            false,
        );
        let failure = failure(&fx);
        assert!(failure.is_retriable());
        assert_eq!(
            failure.to_string(),
            "instance gpu0 failed under the job: process exited (exit code 1)"
        );
        assert!(
            !fx.iter().any(|e| matches!(e, JobEffect::Interrupt { .. })),
            "a dead server is not asked to interrupt: {fx:?}"
        );
    }

    #[test]
    fn jobs_given_up_at_the_shutdown_deadline_are_interrupted_and_not_retried() {
        let mut book = book();
        let job = JobId::new();
        accept(&mut book, job, 7, Instant::now()).mark_submitted();
        let fx = book.abort_all(&AbortReason::Shutdown, true);
        assert!(
            matches!(
                fx.as_slice(),
                [
                    JobEffect::StopRun(7),
                    JobEffect::Interrupt { .. },
                    JobEffect::Report(_),
                    JobEffect::Idle
                ]
            ),
            "{fx:?}"
        );
        let failure = failure(&fx);
        assert!(matches!(failure, JobFailure::Aborted { .. }), "{failure:?}");
        assert!(!failure.is_retriable());
        let text = failure.to_string();
        assert!(
            text.contains("instance gpu0 stopped the job") && text.contains("shutting down"),
            "{text}"
        );
        assert!(!text.contains("unreachable"), "{text}");
    }

    #[test]
    fn a_silent_job_is_asked_about_once_then_restarted_reconciled_or_given_up() {
        let t0 = Instant::now();
        let mut book = book();
        let job = JobId::new();
        let activity = accept(&mut book, job, 7, t0);
        activity.mark_submitted();
        activity.touch(t0 + S(20));
        assert_eq!(
            book.check_silence(job, 1, t0 + S(60)),
            vec![JobEffect::Watch {
                job,
                attempt: 1,
                after: S(20)
            }]
        );
        let ask = book.check_silence(job, 1, t0 + S(80));
        assert_eq!(
            ask,
            vec![JobEffect::AskStatus {
                job,
                attempt: 1,
                prompt_id: job.0,
                silent_for: S(60)
            }]
        );
        assert!(
            book.check_silence(job, 1, t0 + S(81)).is_empty(),
            "one question at a time"
        );
        // Still running on ComfyUI: interrupt, and let the lifecycle restart the instance.
        assert_eq!(
            book.status_answered(job, 1, S(60), Ok(PromptStatus::Running), t0 + S(81)),
            vec![JobEffect::InterruptHung {
                job,
                prompt_id: job.0,
                generation: 1,
                silent_for: S(60)
            }]
        );
        assert_eq!(book.len(), 1, "the lifecycle's abort reports it");

        // Finished meanwhile: one more silence period, then given up retriable.
        let mut book = self::book();
        let activity = accept(&mut book, job, 7, t0);
        activity.mark_submitted();
        book.check_silence(job, 1, t0 + S(60));
        assert_eq!(
            book.status_answered(job, 1, S(60), Ok(PromptStatus::Succeeded), t0 + S(61)),
            vec![JobEffect::Watch {
                job,
                attempt: 1,
                after: S(60)
            }]
        );
        assert_eq!(
            activity.last(),
            t0 + S(61),
            "the reconcile period starts now"
        );
        assert!(matches!(
            book.check_silence(job, 1, t0 + S(121)).as_slice(),
            [JobEffect::AskStatus { .. }]
        ));
        let fx = book.status_answered(job, 1, S(60), Ok(PromptStatus::Succeeded), t0 + S(122));
        assert_eq!(fx[0], JobEffect::StopRun(7));
        assert!(failure(&fx).is_retriable());
        assert_eq!(fx.last(), Some(&JobEffect::Idle));
        assert!(
            book.status_answered(job, 1, S(60), Ok(PromptStatus::Succeeded), t0 + S(123))
                .is_empty(),
            "a late answer for a finished job changes nothing"
        );
    }

    #[test]
    fn activity_is_shared_with_the_running_future() {
        let mut book = book();
        let job = JobId::new();
        let t0 = Instant::now();
        let activity = accept(&mut book, job, 7, t0);
        activity.touch(t0 + S(50));
        assert!(
            matches!(
                book.check_silence(job, 1, t0 + S(60)).as_slice(),
                [JobEffect::Watch { after, .. }] if *after == S(50)
            ),
            "silence counts from the future's last stamp"
        );
    }
}
