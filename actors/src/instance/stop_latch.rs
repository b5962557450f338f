//! A one-way latch that `Shutdown` requests wait on until the instance has stopped.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct LatchState {
    open: bool,
    waiters: Vec<Waker>,
}

/// Opens once; every [`StopLatch::wait`] future resolves when it is open.
#[derive(Debug, Clone, Default)]
pub struct StopLatch {
    state: Rc<RefCell<LatchState>>,
}

impl StopLatch {
    /// Opens the latch and wakes every waiter. Idempotent.
    pub fn open(&self) {
        let waiters = {
            let mut state = self.state.borrow_mut();
            state.open = true;
            std::mem::take(&mut state.waiters)
        };
        for waker in waiters {
            waker.wake();
        }
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
    fn waiters_resolve_only_once_open() {
        let latch = StopLatch::default();
        let mut first = latch.wait();
        assert!((&mut first).now_or_never().is_none());
        latch.open();
        assert!(first.now_or_never().is_some());
        assert!(
            latch.wait().now_or_never().is_some(),
            "a late waiter resolves at once"
        );
        assert!(latch.is_open());
    }
}
