//! The queue's order, kept as sorted blocks so that a job's position and the jobs due a position
//! update are found without walking the whole queue.
//!
//! Entries are sorted by [`QueueKey`] and split into blocks of at most `2 × BLOCK` entries. A
//! job's position is the sizes of the blocks before its own plus its index there:
//! O(N / BLOCK + log N). Each entry carries the positions at which its submitter should next hear
//! of it (at or below `due_down`, at or above `due_up`, see `position_updates.rs`); each block
//! keeps the loosest of those relative to the block's start, so a walk over the blocks skips
//! every block where no entry is due: O(N / BLOCK) per walk, plus O(BLOCK) per block with a due
//! entry.
//!
//! The order is shared (behind a lock) with the job table through [`QueuePositions`], so readers
//! get a queued job's exact position without the scheduler writing it on every move.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::ids::{JobId, UserId};

use super::position_updates::{NEVER_TOLD, PositionUpdates};

/// Target block size; a block splits beyond twice this.
const BLOCK: usize = 64;

/// Where a job sorts in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct QueueKey {
    pub priority: Reverse<i32>,
    /// Fair-share virtual time (see `queue.rs`).
    pub tag: u64,
    /// 0 for retries (ahead of new jobs with the same tag), 1 for new jobs.
    pub lane: u8,
    /// Arrival order, to break ties deterministically.
    pub seq: u64,
}

/// One queued job.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: QueueKey,
    pub job: JobId,
    pub user: UserId,
    /// Times a later job was dispatched before this one (look-ahead).
    pub overtaken: u32,
    /// Due a position update at this position or below…
    due_down: i64,
    /// …or at this position or above.
    due_up: i64,
}

impl Entry {
    pub fn new(key: QueueKey, job: JobId, user: UserId) -> Self {
        Self {
            key,
            job,
            user,
            overtaken: 0,
            due_down: NEVER_TOLD.0,
            due_up: NEVER_TOLD.1,
        }
    }
}

#[derive(Debug, Default)]
struct Block {
    entries: Vec<Entry>,
    /// The block needs a look when its first position is at or below this…
    reach_down: i64,
    /// …or at or above this.
    reach_up: i64,
}

impl Block {
    fn refresh(&mut self) {
        self.reach_down = i64::MIN;
        self.reach_up = i64::MAX;
        for (i, entry) in self.entries.iter().enumerate() {
            let i = i as i64;
            self.reach_down = self.reach_down.max(entry.due_down.saturating_sub(i));
            self.reach_up = self.reach_up.min(entry.due_up.saturating_sub(i));
        }
    }

    fn last_key(&self) -> Option<QueueKey> {
        self.entries.last().map(|e| e.key)
    }
}

/// Queued jobs in the order they will leave.
#[derive(Debug, Default)]
pub(crate) struct QueueOrder {
    blocks: Vec<Block>,
    keys: HashMap<JobId, QueueKey>,
}

impl QueueOrder {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn contains(&self, job: JobId) -> bool {
        self.keys.contains_key(&job)
    }

    /// The block holding (or that should hold) `key`.
    fn block_of(&self, key: &QueueKey) -> usize {
        self.blocks
            .partition_point(|b| b.last_key().is_some_and(|last| last < *key))
            .min(self.blocks.len().saturating_sub(1))
    }

    pub fn insert(&mut self, entry: Entry) {
        self.keys.insert(entry.job, entry.key);
        if self.blocks.is_empty() {
            self.blocks.push(Block::default());
        }
        let b = self.block_of(&entry.key);
        let block = &mut self.blocks[b];
        let at = block.entries.partition_point(|e| e.key < entry.key);
        block.entries.insert(at, entry);
        if block.entries.len() > 2 * BLOCK {
            let tail = block.entries.split_off(BLOCK);
            block.refresh();
            let mut next = Block {
                entries: tail,
                ..Block::default()
            };
            next.refresh();
            self.blocks.insert(b + 1, next);
        } else {
            block.refresh();
        }
    }

    /// (block, index) of a queued job.
    fn locate(&self, job: JobId) -> Option<(usize, usize)> {
        let key = self.keys.get(&job)?;
        let b = self.block_of(key);
        let at = self.blocks[b]
            .entries
            .binary_search_by(|e| e.key.cmp(key))
            .ok()?;
        Some((b, at))
    }

    pub fn remove(&mut self, job: JobId) -> Option<Entry> {
        let (b, at) = self.locate(job)?;
        self.keys.remove(&job);
        let block = &mut self.blocks[b];
        let entry = block.entries.remove(at);
        if block.entries.is_empty() {
            self.blocks.remove(b);
        } else {
            block.refresh();
        }
        Some(entry)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.blocks.iter().flat_map(|b| b.entries.iter())
    }

    pub fn first(&self) -> Option<&Entry> {
        self.iter().next()
    }

    /// Counts one overtake for each of the first `n` jobs.
    pub fn overtake_first(&mut self, n: usize) {
        self.blocks
            .iter_mut()
            .flat_map(|b| b.entries.iter_mut())
            .take(n)
            .for_each(|e| e.overtaken = e.overtaken.saturating_add(1));
    }

    /// A queued job's position (0 = next).
    pub fn position(&self, job: JobId) -> Option<usize> {
        let (b, at) = self.locate(job)?;
        Some(
            self.blocks[..b]
                .iter()
                .map(|b| b.entries.len())
                .sum::<usize>()
                + at,
        )
    }

    /// Notes that `job` was told `position`.
    pub fn mark_told(&mut self, job: JobId, position: usize, rule: &PositionUpdates) {
        let Some((b, at)) = self.locate(job) else {
            return;
        };
        let block = &mut self.blocks[b];
        (block.entries[at].due_down, block.entries[at].due_up) = rule.due_after(position);
        block.refresh();
    }

    /// Makes every queued job due a position update.
    pub fn mark_all_due(&mut self) {
        for block in &mut self.blocks {
            for entry in &mut block.entries {
                (entry.due_down, entry.due_up) = NEVER_TOLD;
            }
            block.refresh();
        }
    }

    /// The jobs due a position update, with their positions, marked as told them.
    pub fn take_due(&mut self, rule: &PositionUpdates) -> Vec<(usize, JobId)> {
        let mut due = Vec::new();
        let mut start = 0usize;
        for block in &mut self.blocks {
            let first = start as i64;
            if first <= block.reach_down || first >= block.reach_up {
                for (i, entry) in block.entries.iter_mut().enumerate() {
                    let position = start + i;
                    let at = position as i64;
                    if at <= entry.due_down || at >= entry.due_up {
                        (entry.due_down, entry.due_up) = rule.due_after(position);
                        due.push((position, entry.job));
                    }
                }
                block.refresh();
            }
            start += block.entries.len();
        }
        due
    }
}

/// A shared, read-mostly handle on the queue's order: the scheduler writes it, the job table
/// reads positions from it.
#[derive(Debug, Clone, Default)]
pub struct QueuePositions(Arc<RwLock<QueueOrder>>);

impl QueuePositions {
    /// A queued job's exact position (0 = next); `None` when it is not queued.
    pub fn position(&self, job: JobId) -> Option<usize> {
        self.read().position(job)
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, QueueOrder> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, QueueOrder> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: PositionUpdates = PositionUpdates {
        first: 10,
        change: 0.1,
    };

    fn key(tag: u64, seq: u64) -> QueueKey {
        QueueKey {
            priority: Reverse(0),
            tag,
            lane: 1,
            seq,
        }
    }

    fn filled(n: u64) -> (QueueOrder, Vec<JobId>) {
        let mut order = QueueOrder::default();
        let mut jobs = Vec::new();
        // Inserted out of order, so blocks split in the middle too.
        for i in (0..n).map(|i| (i * 7919) % n) {
            let job = JobId::new();
            order.insert(Entry::new(key(i, i), job, UserId::new("a")));
            jobs.push((i, job));
        }
        jobs.sort();
        (order, jobs.into_iter().map(|(_, j)| j).collect())
    }

    #[test]
    fn positions_stay_exact_across_blocks_through_inserts_and_removals() {
        let (mut order, jobs) = filled(1000);
        assert_eq!(order.len(), 1000);
        for (i, job) in jobs.iter().enumerate() {
            assert_eq!(order.position(*job), Some(i));
        }
        // Remove every third job and the first one.
        let mut left = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            if i % 3 == 0 {
                assert!(order.remove(*job).is_some());
            } else {
                left.push(*job);
            }
        }
        assert!(order.remove(jobs[0]).is_none());
        for (i, job) in left.iter().enumerate() {
            assert_eq!(order.position(*job), Some(i));
        }
        let walked: Vec<JobId> = order.iter().map(|e| e.job).collect();
        assert_eq!(walked, left);
        assert_eq!(order.first().map(|e| e.job), Some(left[0]));
    }

    #[test]
    fn only_jobs_whose_position_moved_enough_are_due() {
        let (mut order, jobs) = filled(1000);
        // Everyone is due once: never told.
        assert_eq!(order.take_due(&RULE).len(), 1000);
        assert!(order.take_due(&RULE).is_empty());
        // The first job leaves: positions 1..10 move into 0..9 (told); the rest moved by one.
        order.remove(jobs[0]);
        let due = order.take_due(&RULE);
        let expected: Vec<(usize, JobId)> = (0..10).map(|i| (i, jobs[i + 1])).collect();
        assert_eq!(due, expected);
        // 100 more leave: the job told 999 is now at 898 (due: ≤ 899); the one told 990 is at
        // 889 (due: ≤ 891).
        for job in &jobs[1..101] {
            order.remove(*job);
        }
        let due = order.take_due(&RULE);
        assert!(
            due.contains(&(898, jobs[999])),
            "{:?}",
            &due[due.len() - 3..]
        );
        assert!(due.contains(&(889, jobs[990])));
        // Someone cutting in at the front (told at once) pushes everyone back by one: the first
        // ten are told, and the one at 10 (now 11, +10 %); from 11 on (+9 % or less) nobody.
        order.insert(Entry::new(key(0, 5000), JobId::new(), UserId::new("b")));
        let due: Vec<usize> = order.take_due(&RULE).iter().map(|d| d.0).collect();
        assert_eq!(due, (0..=11).collect::<Vec<_>>());
        order.mark_all_due();
        assert_eq!(order.take_due(&RULE).len(), order.len());
    }
}
