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
//! Jobs with the same priority and tag form a **round**: at most one job per user (plus
//! retries). The affinity look-ahead ([`FairQueue::window`]) may dispatch a later job of the
//! head's round before the head, never a job of a lower class, and a job of a later round only
//! as far as `affinity_rounds_ahead` allows (default 0: never), so by default it never breaks
//! the order between users' turns: one user's flood still delays another user's job by at most
//! one slot. Each job counts how often it was passed over; once a job has been passed
//! `max_overtakes` times, no job behind it may go first.
//!
//! Retried jobs go back to the front of their class (they already waited once) and may exceed
//! the capacity: a retry is never refused.
//!
//! The order itself lives in [`QueueOrder`] (sorted blocks with exact positions), shared with the
//! job table through [`QueuePositions`].

use std::cmp::Reverse;
use std::collections::HashMap;

use crate::ids::{JobId, UserId};

use super::position_updates::PositionUpdates;
use super::queue_order::{Entry, QueueKey, QueuePositions};

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
    order: QueuePositions,
    classes: HashMap<i32, ClassClock>,
    next_seq: u64,
}

impl FairQueue {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: QueuePositions::default(),
            classes: HashMap::new(),
            next_seq: 0,
        }
    }

    /// A handle that reads positions from this queue (for the job table).
    pub fn positions(&self) -> QueuePositions {
        self.order.clone()
    }

    /// Jobs waiting (retries included).
    pub fn len(&self) -> usize {
        self.order.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn contains(&self, job: JobId) -> bool {
        self.order.read().contains(job)
    }

    /// Queues a new job behind the user's earlier ones; refused when the queue is full.
    pub fn push(&mut self, job: JobId, user: UserId, priority: i32) -> Result<(), QueueError> {
        if self.contains(job) {
            return Err(QueueError::Duplicate(job));
        }
        if self.len() >= self.capacity {
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
        if self.contains(job) {
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
        self.order.write().insert(Entry::new(key, job, user));
    }

    /// The job that would leave next.
    pub fn peek(&self) -> Option<JobId> {
        self.order.read().first().map(|e| e.job)
    }

    /// The jobs the look-ahead may dispatch now, head first, each with whether it has reached
    /// `max_overtakes` (then none behind it may go first, and the window ends there): at most
    /// `size` jobs of the head's priority class, of the head's fair-share round or at most
    /// `rounds_ahead` rounds later, and only each user's first job (a user's own jobs keep
    /// their order). Just the head when `size` ≤ 1.
    pub fn window(&self, size: usize, max_overtakes: u32, rounds_ahead: u64) -> Vec<(JobId, bool)> {
        let order = self.order.read();
        let Some(head) = order.first().map(|e| e.key) else {
            return Vec::new();
        };
        let mut window = Vec::new();
        let mut users: Vec<&UserId> = Vec::new();
        for entry in order.iter() {
            if window.len() >= size.max(1)
                || entry.key.priority != head.priority
                || entry.key.tag > head.tag.saturating_add(rounds_ahead)
            {
                break;
            }
            if users.contains(&&entry.user) {
                continue;
            }
            users.push(&entry.user);
            let at_limit = entry.overtaken >= max_overtakes;
            window.push((entry.job, at_limit));
            if at_limit {
                break;
            }
        }
        window
    }

    /// Takes the next job and advances its class's virtual clock.
    pub fn pop(&mut self) -> Option<Dequeued> {
        let head = self.peek()?;
        self.take(head)
    }

    /// Takes `job` out to run it, advancing its class's virtual clock; every job ahead of it
    /// counts one overtake (the look-ahead only takes jobs within [`FairQueue::window`]).
    pub fn take(&mut self, job: JobId) -> Option<Dequeued> {
        let mut order = self.order.write();
        let ahead = order.position(job)?;
        let entry = order.remove(job)?;
        order.overtake_first(ahead);
        drop(order);
        let priority = entry.key.priority.0;
        if let Some(class) = self.classes.get_mut(&priority) {
            class.virtual_time = class.virtual_time.max(entry.key.tag);
        }
        self.forget_one(priority, &entry.user);
        Some(Dequeued {
            job,
            user: entry.user,
            priority,
        })
    }

    /// Removes a queued job (cancel); `None` if it was not queued.
    pub fn remove(&mut self, job: JobId) -> Option<Dequeued> {
        let entry = self.order.write().remove(job)?;
        let priority = entry.key.priority.0;
        self.forget_one(priority, &entry.user);
        Some(Dequeued {
            job,
            user: entry.user,
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
    pub fn jobs(&self) -> Vec<JobId> {
        self.order.read().iter().map(|e| e.job).collect()
    }

    /// A job's position (0 = next).
    pub fn position(&self, job: JobId) -> Option<usize> {
        self.order.read().position(job)
    }

    /// Notes that `job`'s submitter was told `position`.
    pub fn mark_told(&mut self, job: JobId, position: usize, rule: &PositionUpdates) {
        self.order.write().mark_told(job, position, rule);
    }

    /// The jobs whose submitters are due their position under `rule`, with those positions;
    /// they count as told.
    pub fn take_due(&mut self, rule: &PositionUpdates) -> Vec<(usize, JobId)> {
        self.order.write().take_due(rule)
    }

    /// Every queued job is due its position again (its ETA changed a lot).
    pub fn mark_all_due(&mut self) {
        self.order.write().mark_all_due();
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

    fn jobs_of(window: Vec<(JobId, bool)>) -> Vec<JobId> {
        window.into_iter().map(|(job, _)| job).collect()
    }

    #[test]
    fn the_window_holds_each_users_first_job_of_the_heads_class_and_the_next_round() {
        let mut queue = FairQueue::new(100);
        // Rounds: a1 b1 c1 | a2 b2 | a3.
        let a = ids(3);
        let b = ids(2);
        let c1 = JobId::new();
        queue.push(a[0], user("a"), 0).unwrap();
        queue.push(b[0], user("b"), 0).unwrap();
        queue.push(c1, user("c"), 0).unwrap();
        queue.push(a[1], user("a"), 0).unwrap();
        queue.push(b[1], user("b"), 0).unwrap();
        queue.push(a[2], user("a"), 0).unwrap();
        assert_eq!(jobs_of(queue.window(8, 8, 1)), [a[0], b[0], c1]);
        assert_eq!(jobs_of(queue.window(2, 8, 1)), [a[0], b[0]]);
        assert_eq!(jobs_of(queue.window(1, 8, 1)), [a[0]]);
        assert_eq!(jobs_of(queue.window(0, 8, 1)), [a[0]]);
        // Once a1 has left, a's next job is a's first one queued, in reach (next round).
        queue.pop();
        assert_eq!(jobs_of(queue.window(8, 8, 1)), [b[0], c1, a[1]]);
        // a2 goes before b1 and c1 (look-ahead): both count an overtake. b2 is b's second job
        // and a3 is two rounds ahead of b1: neither is in reach.
        queue.take(a[1]).unwrap();
        assert_eq!(queue.window(8, 8, 1), [(b[0], false), (c1, false)]);
        assert_eq!(
            queue.window(8, 1, 1),
            [(b[0], true)],
            "b1 reached the limit"
        );
        assert_eq!(queue.jobs(), [b[0], c1, b[1], a[2]]);
        // A higher class is alone in its window.
        let urgent = JobId::new();
        queue.push(urgent, user("c"), 5).unwrap();
        assert_eq!(jobs_of(queue.window(8, 8, 1)), [urgent]);
    }

    #[test]
    fn a_job_is_passed_over_at_most_max_overtakes_times() {
        let max = 3;
        let mut queue = FairQueue::new(100);
        let head = JobId::new();
        queue.push(head, user("head"), 0).unwrap();
        for n in 0..10 {
            queue.push(JobId::new(), user(&format!("u{n}")), 0).unwrap();
        }
        // Always take the last job of the window, as a look-ahead preferring later jobs would.
        let mut passed = 0;
        loop {
            let window = queue.window(8, max, 1);
            let (last, _) = *window.last().unwrap();
            queue.take(last).unwrap();
            if last == head {
                break;
            }
            passed += 1;
        }
        assert_eq!(passed, max);
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
