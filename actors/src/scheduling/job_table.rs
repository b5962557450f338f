//! The job table: every job's state, readable by anyone without asking the scheduler.
//!
//! The scheduler is the only writer; the HTTP API, the Discord session and the metrics line
//! read it concurrently (a `DashMap`). Finished jobs are kept up to a retention limit, oldest
//! finished evicted first; unfinished jobs are never evicted.
//!
//! A queued job's position is read from the queue itself when the record is read (through
//! [`QueuePositions`]), so it is exact at every moment while the scheduler does not rewrite
//! thousands of records on every dispatch. Its ETA is the one its submitter was last told.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::ids::{InstanceId, JobId, UserId};
use crate::job::{JobOutput, JobState};

use super::queue_order::QueuePositions;

/// One job as the table shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub user: UserId,
    pub template: String,
    pub priority: i32,
    pub state: JobState,
    /// The instance running it (or that ran its last attempt).
    pub instance: Option<InstanceId>,
    /// Attempts started so far (0 while first queued).
    pub attempt: u32,
    /// Queue position while queued (0 = next), exact when read from the table.
    pub position: Option<usize>,
    /// Expected time until the job is done, while queued (as last told to the submitter).
    #[serde(with = "humantime_serde", default)]
    pub eta: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub queued_at: SystemTime,
    #[serde(with = "humantime_serde", default)]
    pub started_at: Option<SystemTime>,
    #[serde(with = "humantime_serde", default)]
    pub finished_at: Option<SystemTime>,
    pub outputs: Vec<JobOutput>,
    /// Why it failed, in words for the user.
    pub error: Option<String>,
}

/// How many jobs the table holds in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    pub queued: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    pub cancelled: usize,
}

/// Shared, concurrently readable table of jobs. Cloning shares the same table.
#[derive(Debug, Clone)]
pub struct JobTable {
    records: Arc<DashMap<JobId, JobRecord>>,
    /// Finished jobs, oldest first, for eviction.
    finished: Arc<Mutex<VecDeque<JobId>>>,
    retention: usize,
    /// Where queued jobs' positions are read from (none: the recorded position is shown).
    positions: Option<QueuePositions>,
}

impl JobTable {
    /// A table keeping at most `retention` finished jobs.
    pub fn new(retention: usize) -> Self {
        Self {
            records: Arc::new(DashMap::new()),
            finished: Arc::new(Mutex::new(VecDeque::new())),
            retention,
            positions: None,
        }
    }

    /// A table whose queued jobs show their position in `positions` (the scheduler's queue).
    pub fn with_positions(retention: usize, positions: QueuePositions) -> Self {
        Self {
            positions: Some(positions),
            ..Self::new(retention)
        }
    }

    /// The record as readers see it: a queued job's position as it is now.
    fn current(&self, mut record: JobRecord) -> JobRecord {
        if record.state == JobState::Queued
            && let Some(positions) = &self.positions
            && let Some(position) = positions.position(record.id)
        {
            record.position = Some(position);
        }
        record
    }

    /// A copy of one job's record.
    pub fn get(&self, job: JobId) -> Option<JobRecord> {
        let record = self.records.get(&job).map(|r| r.value().clone())?;
        Some(self.current(record))
    }

    pub fn state(&self, job: JobId) -> Option<JobState> {
        self.records.get(&job).map(|r| r.state)
    }

    pub fn contains(&self, job: JobId) -> bool {
        self.records.contains_key(&job)
    }

    /// Jobs in the table (unfinished and retained finished ones).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// One user's jobs, oldest submission first.
    pub fn jobs_of(&self, user: &UserId) -> Vec<JobRecord> {
        let jobs: Vec<JobRecord> = self
            .records
            .iter()
            .filter(|r| &r.user == user)
            .map(|r| r.value().clone())
            .collect();
        let mut jobs: Vec<JobRecord> = jobs.into_iter().map(|r| self.current(r)).collect();
        jobs.sort_by_key(|r| r.queued_at);
        jobs
    }

    /// How many jobs are in each state.
    pub fn counts(&self) -> JobCounts {
        let mut counts = JobCounts::default();
        for record in self.records.iter() {
            match record.state {
                JobState::Queued => counts.queued += 1,
                JobState::Running => counts.running += 1,
                JobState::Done => counts.done += 1,
                JobState::Failed => counts.failed += 1,
                JobState::Cancelled => counts.cancelled += 1,
            }
        }
        counts
    }

    /// Adds a new job (scheduler only).
    pub(crate) fn insert(&self, record: JobRecord) {
        self.records.insert(record.id, record);
    }

    /// Changes an unfinished job (scheduler only).
    pub(crate) fn update(&self, job: JobId, change: impl FnOnce(&mut JobRecord)) {
        if let Some(mut record) = self.records.get_mut(&job) {
            change(record.value_mut());
        }
    }

    /// Ends a job in `state` (scheduler only) and evicts the oldest finished jobs beyond the
    /// retention limit.
    pub(crate) fn finish(
        &self,
        job: JobId,
        state: JobState,
        at: SystemTime,
        change: impl FnOnce(&mut JobRecord),
    ) {
        let Some(mut record) = self.records.get_mut(&job) else {
            return;
        };
        record.state = state;
        record.finished_at = Some(at);
        record.position = None;
        record.eta = None;
        change(record.value_mut());
        drop(record);
        let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        finished.push_back(job);
        while finished.len() > self.retention {
            if let Some(oldest) = finished.pop_front() {
                self.records.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str) -> JobRecord {
        JobRecord {
            id: JobId::new(),
            user: UserId::new(user),
            template: "txt2img".into(),
            priority: 0,
            state: JobState::Queued,
            instance: None,
            attempt: 0,
            position: Some(0),
            eta: None,
            queued_at: SystemTime::UNIX_EPOCH,
            started_at: None,
            finished_at: None,
            outputs: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn evicts_the_oldest_finished_jobs_and_never_unfinished_ones() {
        let table = JobTable::new(2);
        let jobs: Vec<JobRecord> = (0..5).map(|_| record("a")).collect();
        for job in &jobs {
            table.insert(job.clone());
        }
        // Finish jobs 1, 2, 3 in that order; 0 and 4 stay queued.
        for job in &jobs[1..4] {
            table.finish(job.id, JobState::Done, SystemTime::UNIX_EPOCH, |_| {});
        }
        assert!(table.contains(jobs[0].id));
        assert!(
            !table.contains(jobs[1].id),
            "the oldest finished job was kept"
        );
        assert_eq!(table.state(jobs[2].id), Some(JobState::Done));
        assert_eq!(table.state(jobs[3].id), Some(JobState::Done));
        assert_eq!(table.state(jobs[4].id), Some(JobState::Queued));
        let counts = table.counts();
        assert_eq!((counts.queued, counts.done), (2, 2));
    }

    #[test]
    fn finishing_clears_the_position_and_records_the_error() {
        let table = JobTable::new(10);
        let job = record("a");
        table.insert(job.clone());
        table.finish(job.id, JobState::Failed, SystemTime::UNIX_EPOCH, |r| {
            r.error = Some("node 3 failed".into())
        });
        let read = table.get(job.id).unwrap();
        assert_eq!(read.position, None);
        assert_eq!(read.error.as_deref(), Some("node 3 failed"));
        assert_eq!(table.jobs_of(&UserId::new("a")).len(), 1);
        let json = serde_json::to_value(&read).unwrap();
        assert_eq!(json["state"], "failed");
        assert_eq!(json["queued_at"], "1970-01-01T00:00:00Z");
    }
}
