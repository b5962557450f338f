//! The fleet's one waiting line: bounded, priority classes, fair across users.
//!
//! Fairness is a virtual-time fair queue per priority class. Each class keeps a virtual clock
//! (the tag of the job it dispatched last). A new job gets the tag
//! `max(class clock, tag of the user's previous queued job) + 1`, so each user's jobs are spaced
//! one tick apart from the moment they arrive: a user with 100 queued jobs holds tags
//! `t+1 … t+100`, and another user's single job arriving later gets `clock + 1`, which sorts
//! right after at most one of the first user's jobs. Jobs leave in order of (priority, highest
//! first; tag; arrival). Per-user order is FIFO because a user's tags only grow.
//!
//! Retried jobs go back to the front of their class (they already waited once) and may exceed
//! the capacity: a retry is never refused.
//!
//! Because tags are fixed at arrival, a queued job's position only changes when a job ahead of it
//! leaves or a newer job is placed ahead of it; positions are a walk over the order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use crate::ids::{JobId, UserId};

/// Where a job sorts in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct QueueKey {
    priority: Reverse<i32>,
    tag: u64,
    /// 0 for retries (ahead of new jobs with the same tag), 1 for new jobs.
    lane: u8,
    /// Arrival order, to break ties deterministically.
    seq: u64,
}

/// One priority class's virtual clock and its users' latest tags.
#[derive(Debug, Default)]
struct ClassClock {
    virtual_time: u64,
    /// Users with jobs queued in this class: (tag of their newest job, how many are queued).
    users: HashMap<UserId, (u64, usize)>,
}

/// The queue refused a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is full ({capacity} jobs)")]
    Full { capacity: usize },
    #[error("job {0} is already queued")]
    Duplicate(JobId),
}

/// A job that left the queue, with who submitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dequeued {
    pub job: JobId,
    pub user: UserId,
    pub priority: i32,
}

/// Bounded, fair, priority-ordered queue of job ids.
#[derive(Debug)]
pub struct FairQueue {
    capacity: usize,
    order: BTreeMap<QueueKey, (JobId, UserId)>,
    keys: HashMap<JobId, QueueKey>,
    classes: HashMap<i32, ClassClock>,
    next_seq: u64,
    /// The smallest key at or after which positions may have changed since the last
    /// [`FairQueue::take_moved`].
    moved_from: Option<QueueKey>,
}

impl FairQueue {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: BTreeMap::new(),
            keys: HashMap::new(),
            classes: HashMap::new(),
            next_seq: 0,
            moved_from: None,
        }
    }

    /// Jobs waiting (retries included).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn contains(&self, job: JobId) -> bool {
        self.keys.contains_key(&job)
    }

    /// Queues a new job behind the user's earlier ones; refused when the queue is full.
    pub fn push(&mut self, job: JobId, user: UserId, priority: i32) -> Result<(), QueueError> {
        if self.keys.contains_key(&job) {
            return Err(QueueError::Duplicate(job));
        }
        if self.order.len() >= self.capacity {
            return Err(QueueError::Full {
                capacity: self.capacity,
            });
        }
        let class = self.classes.entry(priority).or_default();
        let base = class.virtual_time;
        let entry = class.users.entry(user.clone()).or_insert((base, 0));
        let tag = entry.0.max(base) + 1;
        *entry = (tag, entry.1 + 1);
        self.insert(job, user, priority, tag, 1);
        Ok(())
    }

    /// Puts a job back at the front of its class (a retry). Never refused for capacity.
    pub fn push_front(
        &mut self,
        job: JobId,
        user: UserId,
        priority: i32,
    ) -> Result<(), QueueError> {
        if self.keys.contains_key(&job) {
            return Err(QueueError::Duplicate(job));
        }
        let class = self.classes.entry(priority).or_default();
        let tag = class.virtual_time;
        let entry = class.users.entry(user.clone()).or_insert((tag, 0));
        entry.1 += 1;
        self.insert(job, user, priority, tag, 0);
        Ok(())
    }

    fn insert(&mut self, job: JobId, user: UserId, priority: i32, tag: u64, lane: u8) {
        let key = QueueKey {
            priority: Reverse(priority),
            tag,
            lane,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.order.insert(key, (job, user));
        self.keys.insert(job, key);
        self.mark_moved(key);
    }

    fn mark_moved(&mut self, key: QueueKey) {
        self.moved_from = Some(match self.moved_from {
            Some(old) => old.min(key),
            None => key,
        });
    }

    /// Jobs whose position may have changed since the last call, with their positions:
    /// everything at or after the earliest insertion or removal. Jobs ahead of that point kept
    /// their positions and are not walked.
    pub fn take_moved(&mut self) -> impl Iterator<Item = (usize, JobId)> + '_ {
        let from = self.moved_from.take();
        let (start, entries) = match from {
            Some(key) => (
                self.order.range(..key).count(),
                Some(self.order.range(key..)),
            ),
            None => (0, None),
        };
        entries
            .into_iter()
            .flatten()
            .enumerate()
            .map(move |(i, (_, (job, _)))| (start + i, *job))
    }

    /// The job that would leave next.
    pub fn peek(&self) -> Option<JobId> {
        self.order.first_key_value().map(|(_, (job, _))| *job)
    }

    /// Takes the next job and advances its class's virtual clock.
    pub fn pop(&mut self) -> Option<Dequeued> {
        let (key, (job, user)) = self.order.pop_first()?;
        self.keys.remove(&job);
        self.mark_moved(key);
        let priority = key.priority.0;
        if let Some(class) = self.classes.get_mut(&priority) {
            class.virtual_time = class.virtual_time.max(key.tag);
        }
        self.forget_one(priority, &user);
        Some(Dequeued {
            job,
            user,
            priority,
        })
    }

    /// Removes a queued job (cancel); `None` if it was not queued.
    pub fn remove(&mut self, job: JobId) -> Option<Dequeued> {
        let key = self.keys.remove(&job)?;
        let (job, user) = self.order.remove(&key)?;
        self.mark_moved(key);
        let priority = key.priority.0;
        self.forget_one(priority, &user);
        Some(Dequeued {
            job,
            user,
            priority,
        })
    }

    fn forget_one(&mut self, priority: i32, user: &UserId) {
        let Some(class) = self.classes.get_mut(&priority) else {
            return;
        };
        if let Some(entry) = class.users.get_mut(user) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                class.users.remove(user);
            }
        }
        if class.users.is_empty() {
            // Every queued job is counted under its user, so the class is empty: its clock only
            // matters relative to queued jobs, and there are none left.
            self.classes.remove(&priority);
        }
    }

    /// Jobs in the order they will leave (position 0 first).
    pub fn iter(&self) -> impl Iterator<Item = JobId> + '_ {
        self.order.values().map(|(job, _)| *job)
    }

    /// A job's position (0 = next), by walking the order.
    pub fn position(&self, job: JobId) -> Option<usize> {
        let key = self.keys.get(&job)?;
        Some(self.order.range(..key).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name)
    }

    fn ids(n: usize) -> Vec<JobId> {
        (0..n).map(|_| JobId::new()).collect()
    }

    #[test]
    fn another_users_single_job_waits_at_most_one_slot_behind_a_flood() {
        let mut queue = FairQueue::new(1000);
        let flood = ids(100);
        for job in &flood {
            queue.push(*job, user("a"), 0).unwrap();
        }
        let single = JobId::new();
        queue.push(single, user("b"), 0).unwrap();
        assert!(queue.position(single).unwrap() <= 1);
        let first = queue.pop().unwrap().job;
        let second = queue.pop().unwrap().job;
        assert!(
            first == single || second == single,
            "B's job was not among the next two"
        );
        // A's jobs keep their own order.
        let rest: Vec<JobId> = std::iter::from_fn(|| queue.pop().map(|d| d.job)).collect();
        let expected: Vec<JobId> = flood
            .iter()
            .copied()
            .filter(|j| *j != first && *j != second)
            .collect();
        assert_eq!(rest, expected);
    }

    #[test]
    fn late_arrival_still_cuts_in_after_the_flood_has_been_partly_served() {
        let mut queue = FairQueue::new(1000);
        for job in ids(50) {
            queue.push(job, user("a"), 0).unwrap();
        }
        for _ in 0..10 {
            queue.pop().unwrap();
        }
        let late = JobId::new();
        queue.push(late, user("b"), 0).unwrap();
        assert!(queue.position(late).unwrap() <= 1);
    }

    #[test]
    fn users_alternate_when_both_have_many_jobs() {
        let mut queue = FairQueue::new(1000);
        for _ in 0..5 {
            queue.push(JobId::new(), user("a"), 0).unwrap();
        }
        for _ in 0..5 {
            queue.push(JobId::new(), user("b"), 0).unwrap();
        }
        let users: Vec<String> = std::iter::from_fn(|| queue.pop().map(|d| d.user.0)).collect();
        assert_eq!(users, ["a", "b", "a", "b", "a", "b", "a", "b", "a", "b"]);
    }

    #[test]
    fn higher_priority_goes_first_and_is_fair_within_its_class() {
        let mut queue = FairQueue::new(1000);
        let low = JobId::new();
        queue.push(low, user("a"), 0).unwrap();
        let op1 = JobId::new();
        let op2 = JobId::new();
        let mod1 = JobId::new();
        queue.push(op1, user("op"), 10).unwrap();
        queue.push(op2, user("op"), 10).unwrap();
        queue.push(mod1, user("mod"), 10).unwrap();
        let order: Vec<JobId> = std::iter::from_fn(|| queue.pop().map(|d| d.job)).collect();
        assert_eq!(order, [op1, mod1, op2, low]);
    }

    #[test]
    fn a_full_queue_refuses_but_retries_still_fit() {
        let mut queue = FairQueue::new(2);
        queue.push(JobId::new(), user("a"), 0).unwrap();
        queue.push(JobId::new(), user("b"), 0).unwrap();
        let err = queue.push(JobId::new(), user("c"), 0).unwrap_err();
        assert_eq!(err, QueueError::Full { capacity: 2 });
        let retry = JobId::new();
        queue.push_front(retry, user("c"), 0).unwrap();
        assert_eq!(queue.peek(), Some(retry));
        assert_eq!(queue.len(), 3);
    }

    #[test]
    fn removing_a_job_moves_the_ones_behind_it_up() {
        let mut queue = FairQueue::new(10);
        let jobs = ids(3);
        for job in &jobs {
            queue.push(*job, user("a"), 0).unwrap();
        }
        assert_eq!(queue.position(jobs[2]), Some(2));
        assert!(queue.remove(jobs[1]).is_some());
        assert_eq!(queue.position(jobs[2]), Some(1));
        assert!(queue.remove(jobs[1]).is_none());
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn only_jobs_at_or_behind_a_change_are_reported_as_moved() {
        let mut queue = FairQueue::new(10);
        let a = ids(3);
        for job in &a {
            queue.push(*job, user("a"), 0).unwrap();
        }
        assert_eq!(queue.take_moved().count(), 3);
        assert_eq!(queue.take_moved().count(), 0);
        // b's job cuts in at position 1: it and a's last two are walked, a's first is not.
        let b = JobId::new();
        queue.push(b, user("b"), 0).unwrap();
        let moved: Vec<(usize, JobId)> = queue.take_moved().collect();
        assert_eq!(moved, [(1, b), (2, a[1]), (3, a[2])]);
        queue.pop();
        let moved: Vec<(usize, JobId)> = queue.take_moved().collect();
        assert_eq!(moved, [(0, b), (1, a[1]), (2, a[2])]);
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let mut queue = FairQueue::new(10);
        let job = JobId::new();
        queue.push(job, user("a"), 0).unwrap();
        assert_eq!(
            queue.push(job, user("a"), 0),
            Err(QueueError::Duplicate(job))
        );
    }
}
