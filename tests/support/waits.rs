//! Bounded waits: every test waits on a real signal (a log line, an answer, a `/proc` state)
//! polled in a loop; the bound is only a safety net that fails the test with a message.

use std::future::Future;
use std::time::{Duration, Instant};

/// Safety net for every wait: far beyond what any condition needs, on a loaded 2-core machine.
pub const SAFETY: Duration = Duration::from_secs(60);

/// How often an HTTP condition (a job's or the fleet's status) is polled.
pub const POLL: Duration = Duration::from_millis(50);

/// How often a cheap local condition (a file, `/proc`) is polled.
const QUICK_POLL: Duration = Duration::from_millis(10);

/// Polls `condition` until it holds; panics after [`SAFETY`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let poll = async {
        while !condition() {
            actix_rt::time::sleep(QUICK_POLL).await;
        }
    };
    if actix_rt::time::timeout(SAFETY, poll).await.is_err() {
        panic!("timed out waiting until {what}");
    }
}

/// [`wait_until`] for tests without a runtime.
pub fn wait_until_blocking(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + SAFETY;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(QUICK_POLL);
    }
}

/// Awaits `future`; panics after [`SAFETY`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    actix_rt::time::timeout(SAFETY, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
