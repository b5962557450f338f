//! A one-way latch that `Shutdown` requests wait on until the instance has stopped: its
//! lifecycle has finished the shutdown and every process stop under way has finished (signals,
//! then the launcher's clean-up of files and records), so nothing is left when the program exits.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct LatchState {
    shutdown_complete: bool,
    stops_pending: usize,
    open: bool,
    waiters: Vec<Waker>,
}

impl LatchState {
    /// Opens once the shutdown is complete and no stop is pending; returns the waiters to wake.
    fn open_if_stopped(&mut self) -> Vec<Waker> {
        if self.open || !self.shutdown_complete || self.stops_pending > 0 {
            return Vec::new();
        }
        self.open = true;
        std::mem::take(&mut self.waiters)
    }
}

/// Opens once; every [`StopLatch::wait`] future resolves when it is open.
#[derive(Debug, Clone, Default)]
pub struct StopLatch {
    state: Rc<RefCell<LatchState>>,
}

impl StopLatch {
    /// A process stop began.
    pub fn stop_started(&self) {
        self.state.borrow_mut().stops_pending += 1;
    }

    /// A process stop finished.
    pub fn stop_finished(&self) {
        self.update(|state| state.stops_pending = state.stops_pending.saturating_sub(1));
    }

    /// The lifecycle finished its shutdown (idempotent).
    pub fn shutdown_complete(&self) {
        self.update(|state| state.shutdown_complete = true);
    }

    pub fn is_open(&self) -> bool {
        self.state.borrow().open
    }

    /// Resolves once the latch is open.
    pub fn wait(&self) -> LatchWait {
        LatchWait {
            state: Rc::clone(&self.state),
        }
    }

    fn update(&self, change: impl FnOnce(&mut LatchState)) {
        let waiters = {
            let mut state = self.state.borrow_mut();
            change(&mut state);
            state.open_if_stopped()
        };
        for waker in waiters {
            waker.wake();
        }
    }
}

/// The future returned by [`StopLatch::wait`].
#[derive(Debug)]
pub struct LatchWait {
    state: Rc<RefCell<LatchState>>,
}

impl Future for LatchWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.borrow_mut();
        if state.open {
            Poll::Ready(())
        } else {
            if !state.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                state.waiters.push(cx.waker().clone());
            }
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn waiters_resolve_once_the_shutdown_is_complete() {
        let latch = StopLatch::default();
        let mut first = latch.wait();
        assert!((&mut first).now_or_never().is_none());
        latch.shutdown_complete();
        assert!(first.now_or_never().is_some());
        assert!(
            latch.wait().now_or_never().is_some(),
            "a late waiter resolves at once"
        );
        assert!(latch.is_open());
    }

    #[test]
    fn a_stop_under_way_holds_the_latch_until_it_finished() {
        let latch = StopLatch::default();
        latch.stop_started();
        latch.stop_started();
        latch.shutdown_complete();
        let mut waiter = latch.wait();
        assert!((&mut waiter).now_or_never().is_none());
        latch.stop_finished();
        assert!(!latch.is_open(), "one stop still under way");
        latch.stop_finished();
        assert!(waiter.now_or_never().is_some());
    }

    #[test]
    fn stops_finished_before_the_shutdown_do_not_open_it() {
        let latch = StopLatch::default();
        latch.stop_started();
        latch.stop_finished();
        assert!(!latch.is_open(), "a restart's stop is no shutdown");
        latch.shutdown_complete();
        assert!(latch.is_open());
    }
}
