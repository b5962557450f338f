//! The jobs in flight on one instance, each reported finished exactly once.
//!
//! An entry is created when a `RunJob` is accepted and removed by whichever comes first: the
//! run's own result, a cancel before submission, the watchdog giving up, or an abort (crash,
//! shutdown). Only the remover reports `JobFinished`, so no job is reported twice or never.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use uuid::Uuid;

use crate::ids::JobId;
use crate::instance::watchdog::JobView;

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

/// One job in flight; `H` is the handle that aborts its running future.
#[derive(Debug)]
pub struct JobEntry<H> {
    pub job: JobId,
    pub attempt: u32,
    pub prompt_id: Uuid,
    /// The process generation it runs on.
    pub generation: u64,
    pub activity: Rc<JobActivity>,
    /// The watchdog granted a reconcile period.
    pub reconciling: bool,
    /// The watchdog is asking ComfyUI about it.
    pub checking: bool,
    pub handle: Option<H>,
}

impl<H> JobEntry<H> {
    /// What the watchdog needs to know.
    pub fn view(&self) -> JobView {
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
    jobs: HashMap<JobId, JobEntry<H>>,
}

impl<H> Default for JobBook<H> {
    fn default() -> Self {
        Self {
            jobs: HashMap::new(),
        }
    }
}

impl<H> JobBook<H> {
    /// Records an accepted job; returns its activity, to share with its running future.
    pub fn accept(
        &mut self,
        job: JobId,
        attempt: u32,
        prompt_id: Uuid,
        generation: u64,
        now: Instant,
    ) -> Result<Rc<JobActivity>, AlreadyInFlight> {
        if self.jobs.contains_key(&job) {
            return Err(AlreadyInFlight(job));
        }
        let activity = Rc::new(JobActivity::new(now));
        self.jobs.insert(
            job,
            JobEntry {
                job,
                attempt,
                prompt_id,
                generation,
                activity: Rc::clone(&activity),
                reconciling: false,
                checking: false,
                handle: None,
            },
        );
        Ok(activity)
    }

    /// The entry of `job`'s attempt `attempt`, if still in flight.
    pub fn get_mut(&mut self, job: JobId, attempt: u32) -> Option<&mut JobEntry<H>> {
        self.jobs.get_mut(&job).filter(|e| e.attempt == attempt)
    }

    /// The entry of `job`, any attempt.
    pub fn get(&self, job: JobId) -> Option<&JobEntry<H>> {
        self.jobs.get(&job)
    }

    /// Removes `job`'s attempt `attempt`; `Some` exactly once, for the caller that must report it.
    pub fn finish(&mut self, job: JobId, attempt: u32) -> Option<JobEntry<H>> {
        match self.jobs.get(&job) {
            Some(entry) if entry.attempt == attempt => self.jobs.remove(&job),
            _ => None,
        }
    }

    /// Removes every job (crash, shutdown), in no particular order.
    pub fn take_all(&mut self) -> Vec<JobEntry<H>> {
        self.jobs.drain().map(|(_, e)| e).collect()
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_job_is_finished_exactly_once() {
        let mut book = JobBook::<()>::default();
        let job = JobId::new();
        book.accept(job, 1, job.0, 1, Instant::now()).unwrap();
        assert_eq!(book.len(), 1);
        assert!(book.finish(job, 1).is_some());
        assert!(book.finish(job, 1).is_none());
        assert!(book.is_empty());
    }

    #[test]
    fn a_result_for_another_attempt_does_not_finish_the_current_one() {
        let mut book = JobBook::<()>::default();
        let job = JobId::new();
        book.accept(job, 2, job.0, 1, Instant::now()).unwrap();
        assert!(book.finish(job, 1).is_none());
        assert!(book.get_mut(job, 1).is_none());
        assert!(book.finish(job, 2).is_some());
    }

    #[test]
    fn a_duplicate_is_refused_and_aborts_take_everything() {
        let mut book = JobBook::<()>::default();
        let (a, b) = (JobId::new(), JobId::new());
        let now = Instant::now();
        book.accept(a, 1, a.0, 1, now).unwrap();
        assert_eq!(
            book.accept(a, 1, a.0, 1, now).unwrap_err(),
            AlreadyInFlight(a)
        );
        book.accept(b, 1, b.0, 1, now).unwrap();
        let mut taken: Vec<_> = book.take_all().into_iter().map(|e| e.job).collect();
        taken.sort();
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(taken, expected);
        assert!(
            book.finish(a, 1).is_none(),
            "an aborted job cannot be reported again"
        );
    }

    #[test]
    fn activity_is_shared_with_the_running_future() {
        let mut book = JobBook::<()>::default();
        let job = JobId::new();
        let t0 = Instant::now();
        let activity = book.accept(job, 1, job.0, 1, t0).unwrap();
        assert!(!book.get_mut(job, 1).unwrap().view().submitted);
        activity.mark_submitted();
        activity.touch(t0 + Duration::from_secs(5));
        let entry = book.get_mut(job, 1).unwrap();
        assert!(entry.view().submitted);
        assert_eq!(entry.activity.last(), t0 + Duration::from_secs(5));
    }
}
