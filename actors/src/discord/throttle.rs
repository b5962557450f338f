//! The edit throttle of one message: at most one edit per interval, always the latest state
//! (states that arrive in between are coalesced), one edit in flight at a time (so edits land in
//! order), and final states sent as soon as the edit in flight is done. Time is passed in.

use std::time::{Duration, Instant};

/// What the owner of the message should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Go {
    /// Send the latest state now.
    Now,
    /// Look again at this moment (schedule a wake-up; it is asked for once per moment).
    At(Instant),
    /// Nothing to do until something changes or the edit in flight ends.
    Wait,
}

/// What is waiting to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    None,
    Progress,
    Final,
}

/// The throttle of one message.
#[derive(Debug, Clone)]
pub struct EditThrottle {
    interval: Duration,
    last_start: Option<Instant>,
    in_flight: bool,
    pending: Pending,
    wake_at: Option<Instant>,
}

impl EditThrottle {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_start: None,
            in_flight: false,
            pending: Pending::None,
            wake_at: None,
        }
    }

    /// Changes the least time between two edits (it applies from the next decision on).
    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval;
    }

    /// The state changed; `is_final` for a state after which nothing changes.
    pub fn changed(&mut self, now: Instant, is_final: bool) -> Go {
        let kind = if is_final {
            Pending::Final
        } else {
            Pending::Progress
        };
        self.pending = self.pending.max(kind);
        self.next(now)
    }

    /// A send is starting outside [`EditThrottle::changed`] (the message's first post, a
    /// hand-over): it counts as the edit in flight.
    pub fn started(&mut self, now: Instant) {
        self.in_flight = true;
        self.last_start = Some(now);
        self.wake_at = None;
    }

    /// The edit in flight ended (sent or not).
    pub fn finished(&mut self, now: Instant) -> Go {
        self.in_flight = false;
        self.next(now)
    }

    /// A wake-up asked for with [`Go::At`] came.
    pub fn woke(&mut self, now: Instant) -> Go {
        if self.wake_at.is_some_and(|at| at <= now) {
            self.wake_at = None;
        }
        self.next(now)
    }

    /// Whether a send is under way.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    fn next(&mut self, now: Instant) -> Go {
        if self.pending == Pending::None || self.in_flight {
            return Go::Wait;
        }
        if self.pending == Pending::Final {
            return self.start(now);
        }
        match self.last_start.map(|t| t + self.interval) {
            Some(due) if now < due => {
                if self.wake_at == Some(due) {
                    Go::Wait
                } else {
                    self.wake_at = Some(due);
                    Go::At(due)
                }
            }
            _ => self.start(now),
        }
    }

    fn start(&mut self, now: Instant) -> Go {
        self.pending = Pending::None;
        self.started(now);
        Go::Now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Duration = Duration::from_millis(1500);

    #[test]
    fn the_first_change_goes_at_once_and_later_ones_wait_for_the_interval() {
        let t0 = Instant::now();
        let mut t = EditThrottle::new(STEP);
        assert_eq!(t.changed(t0, false), Go::Now);
        assert_eq!(t.finished(t0 + Duration::from_millis(100)), Go::Wait);
        let due = t0 + STEP;
        assert_eq!(
            t.changed(t0 + Duration::from_millis(200), false),
            Go::At(due)
        );
        // More changes before the wake-up coalesce into the one pending edit.
        assert_eq!(t.changed(t0 + Duration::from_millis(300), false), Go::Wait);
        assert_eq!(t.changed(t0 + Duration::from_millis(900), false), Go::Wait);
        assert_eq!(t.woke(due), Go::Now);
        assert_eq!(t.finished(due + Duration::from_millis(50)), Go::Wait);
    }

    #[test]
    fn a_change_during_an_edit_is_sent_after_it_at_the_interval() {
        let t0 = Instant::now();
        let mut t = EditThrottle::new(STEP);
        assert_eq!(t.changed(t0, false), Go::Now);
        assert_eq!(t.changed(t0 + Duration::from_millis(10), false), Go::Wait);
        // The slow edit ends after the interval: the pending state goes at once.
        assert_eq!(t.finished(t0 + STEP * 2), Go::Now);
        // A fast one ends early: the pending state waits for the interval.
        assert_eq!(t.changed(t0 + STEP * 2, false), Go::Wait);
        let mut t = EditThrottle::new(STEP);
        t.changed(t0, false);
        t.changed(t0 + Duration::from_millis(10), false);
        assert_eq!(
            t.finished(t0 + Duration::from_millis(20)),
            Go::At(t0 + STEP)
        );
    }

    #[test]
    fn a_final_state_skips_the_interval_but_not_the_edit_in_flight() {
        let t0 = Instant::now();
        let mut t = EditThrottle::new(STEP);
        t.changed(t0, false);
        t.finished(t0);
        assert_eq!(t.changed(t0 + Duration::from_millis(1), true), Go::Now);
        let mut t = EditThrottle::new(STEP);
        t.changed(t0, false);
        assert_eq!(t.changed(t0 + Duration::from_millis(1), true), Go::Wait);
        assert_eq!(t.finished(t0 + Duration::from_millis(2)), Go::Now);
    }

    #[test]
    fn no_two_edits_start_within_one_interval_under_a_storm_of_changes() {
        let t0 = Instant::now();
        let mut t = EditThrottle::new(STEP);
        let mut starts = Vec::new();
        let mut wake = None;
        let mut apply = |go: Go, now: Instant, wake: &mut Option<Instant>| match go {
            Go::Now => starts.push(now),
            Go::At(at) => *wake = Some(at),
            Go::Wait => {}
        };
        for ms in (0..20_000).step_by(7) {
            let now = t0 + Duration::from_millis(ms);
            if wake.is_some_and(|w| w <= now) {
                wake = None;
                apply(t.woke(now), now, &mut wake);
            }
            if t.in_flight() && ms % 70 == 0 {
                apply(t.finished(now), now, &mut wake);
            }
            apply(t.changed(now, false), now, &mut wake);
        }
        assert!(starts.len() > 5);
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= STEP, "{:?}", pair[1] - pair[0]);
        }
    }
}
