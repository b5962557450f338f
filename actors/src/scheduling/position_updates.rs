//! When a queued job's submitter hears of its position again.
//!
//! Telling every queued job its new position on every dispatch costs O(queue) events per
//! dispatch (N²/2 for a queue of N draining). Instead, a job last told position `p` is told
//! again only when its position
//! - changes at all while it is among the first `first` positions (so the last few steps, and
//!   reaching 0, are always seen), or
//! - has dropped to `p × (1 − change)` or below, or risen to `p × (1 + change)` or above.
//!
//! A job at position N of a draining queue is then told O(log N) + `first` times. The rule is
//! deterministic: it depends only on the positions told and reached. (ETAs are re-told to
//! everyone when the fleet's pace changes a lot: see `policy.rs`.)

/// Not told yet: due at any position.
pub const NEVER_TOLD: (i64, i64) = (i64::MAX, i64::MIN);

/// The throttle, from `position_updates_first` and `position_update_change`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionUpdates {
    pub first: usize,
    pub change: f64,
}

impl PositionUpdates {
    /// For a job just told position `told`: it is due again at a position at or below the first
    /// number, or at or above the second.
    pub fn due_after(&self, told: usize) -> (i64, i64) {
        let p = told as i64;
        let first = self.first as i64;
        let down = if p == 0 {
            -1
        } else {
            let step = (told as f64 * (1.0 - self.change)).floor() as i64;
            step.max((p - 1).min(first - 1)).min(p - 1)
        };
        let up = if p + 1 < first {
            p + 1
        } else {
            ((told as f64 * (1.0 + self.change)).ceil() as i64).max(p + 1)
        };
        (down, up)
    }

    /// Whether a job told `told` is due at `position`.
    pub fn is_due(&self, told: usize, position: usize) -> bool {
        let (down, up) = self.due_after(told);
        let at = position as i64;
        at <= down || at >= up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: PositionUpdates = PositionUpdates {
        first: 10,
        change: 0.1,
    };

    #[test]
    fn every_change_is_told_among_the_first_positions() {
        for told in 0..9 {
            assert!(RULE.is_due(told, told + 1), "{told} -> {}", told + 1);
            if told > 0 {
                assert!(RULE.is_due(told, told - 1), "{told} -> {}", told - 1);
            }
            assert!(!RULE.is_due(told, told));
        }
        // From 11 to 9: into the first ten, told; 0 is always told.
        assert!(RULE.is_due(11, 9));
        assert!(RULE.is_due(5000, 0));
    }

    #[test]
    fn further_back_only_a_tenth_of_a_change_is_told() {
        assert!(!RULE.is_due(1000, 901));
        assert!(RULE.is_due(1000, 900));
        assert!(!RULE.is_due(1000, 1099));
        assert!(RULE.is_due(1000, 1100));
        // Just outside the first ten, one step still counts (rounding never stalls).
        assert!(RULE.is_due(10, 9));
        assert!(!RULE.is_due(12, 11));
        assert!(RULE.is_due(12, 10));
    }

    /// A queue of N draining one job at a time: the job at the back is told O(log N) + 10 times.
    #[test]
    fn a_draining_queue_tells_each_job_logarithmically_often() {
        for n in [100usize, 1_000, 10_000, 100_000] {
            let mut told = n - 1;
            let mut updates = 1;
            for position in (0..n - 1).rev() {
                if RULE.is_due(told, position) {
                    told = position;
                    updates += 1;
                }
            }
            assert_eq!(told, 0, "the job was not told it reached the front");
            // ln(n / 10) / ln(1 / 0.9) steps down to 10, then one per position.
            let bound = ((n as f64 / 10.0).ln() / (1.0f64 / 0.9).ln()).ceil() as usize + 12;
            assert!(updates <= bound, "n = {n}: {updates} updates > {bound}");
        }
    }
}
