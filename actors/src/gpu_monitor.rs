//! The GPU monitor: samples the machine's GPUs on an interval and publishes [`GpuSample`]s to
//! its subscribers (the scheduler, the metrics log).
//!
//! Probing may block (NVML), so the probe runs on its own thread ([`SyncArbiter`]); the actor
//! only keeps time, forwards results and asks [`ProbeHealth`] what to log. A failing probe is
//! logged, never fatal: the monitor keeps sampling and says when the probe recovers.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use crate::messages::GpuSample;
use crate::ports::{GpuProbe, GpuProbeError};

/// Decides what to log about probe failures: the first failure of a streak, then every
/// `repeat_every`-th, and a recovery line when a streak ends.
#[derive(Debug, Clone)]
pub struct ProbeHealth {
    failures_in_a_row: u64,
    repeat_every: u64,
}

/// A line [`ProbeHealth`] wants logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthNote {
    /// The probe failed (again); `in_a_row` counts this failure.
    Failing { in_a_row: u64, error: String },
    /// The probe works again after `after_failures` failures.
    Recovered { after_failures: u64 },
}

impl ProbeHealth {
    /// `repeat_every` of 0 logs only the first failure of a streak.
    pub fn new(repeat_every: u64) -> Self {
        Self {
            failures_in_a_row: 0,
            repeat_every,
        }
    }

    pub fn on_failure(&mut self, error: &GpuProbeError) -> Option<HealthNote> {
        self.failures_in_a_row += 1;
        let n = self.failures_in_a_row;
        let log = n == 1 || (self.repeat_every > 0 && n.is_multiple_of(self.repeat_every));
        log.then(|| HealthNote::Failing {
            in_a_row: n,
            error: error.to_string(),
        })
    }

    pub fn on_success(&mut self) -> Option<HealthNote> {
        let after = std::mem::take(&mut self.failures_in_a_row);
        (after > 0).then_some(HealthNote::Recovered {
            after_failures: after,
        })
    }
}

impl Default for ProbeHealth {
    fn default() -> Self {
        Self::new(60)
    }
}

/// Adds a subscriber: it receives every sample from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<GpuSample>);

/// Samples at once, publishes the sample to the subscribers and answers it.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<GpuSample, GpuProbeError>")]
pub struct SampleNow;

/// Samples the GPUs periodically and publishes the samples.
pub struct GpuMonitor {
    worker: Addr<ProbeWorker>,
    interval: Duration,
    subscribers: Vec<Recipient<GpuSample>>,
    health: ProbeHealth,
    /// A periodic sample is still running: the next tick is skipped rather than queued.
    in_flight: bool,
}

impl GpuMonitor {
    /// Starts the monitor and its probe thread; it samples every `interval`, the first time
    /// at once. Must be called from inside a running actix system.
    pub fn start(
        probe: Box<dyn GpuProbe>,
        interval: Duration,
        subscribers: Vec<Recipient<GpuSample>>,
    ) -> Addr<Self> {
        let probe = Arc::new(Mutex::new(probe));
        let worker = SyncArbiter::start_with_thread_builder(
            1,
            || std::thread::Builder::new().name("gpu-probe".into()),
            move || ProbeWorker {
                probe: Arc::clone(&probe),
            },
        );
        Self {
            worker,
            interval,
            subscribers,
            health: ProbeHealth::default(),
            in_flight: false,
        }
        .start()
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight {
            return;
        }
        self.in_flight = true;
        let request = self.worker.send(Probe);
        ctx.spawn(request.into_actor(self).map(|answer, act, _| {
            act.in_flight = false;
            let _ = act.take(flatten(answer));
        }));
    }

    /// Logs, publishes a good sample, and hands the result back.
    fn take(
        &mut self,
        result: Result<GpuSample, GpuProbeError>,
    ) -> Result<GpuSample, GpuProbeError> {
        let note = match &result {
            Ok(sample) => {
                self.subscribers.retain(|s| s.connected());
                for subscriber in &self.subscribers {
                    subscriber.do_send(sample.clone());
                }
                self.health.on_success()
            }
            Err(e) => self.health.on_failure(e),
        };
        match note {
            Some(HealthNote::Failing { in_a_row, error }) => {
                tracing::warn!(
                    failures_in_a_row = in_a_row,
                    "cannot sample the GPUs: {error}"
                );
            }
            Some(HealthNote::Recovered { after_failures }) => {
                tracing::info!("GPU sampling works again after {after_failures} failure(s)");
            }
            None => {}
        }
        result
    }
}

fn flatten(
    answer: Result<Result<GpuSample, GpuProbeError>, MailboxError>,
) -> Result<GpuSample, GpuProbeError> {
    answer.unwrap_or_else(|e| {
        Err(GpuProbeError::Failed(format!(
            "the probe thread is gone: {e}"
        )))
    })
}

impl Actor for GpuMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.tick(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.tick(ctx));
    }
}

impl Handler<Subscribe> for GpuMonitor {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.push(msg.0);
    }
}

impl Handler<SampleNow> for GpuMonitor {
    type Result = ResponseActFuture<Self, Result<GpuSample, GpuProbeError>>;

    fn handle(&mut self, _: SampleNow, _: &mut Context<Self>) -> Self::Result {
        Box::pin(
            self.worker
                .send(Probe)
                .into_actor(self)
                .map(|answer, act, _| act.take(flatten(answer))),
        )
    }
}

/// Monitor → probe thread: list the GPUs.
#[derive(Message)]
#[rtype(result = "Result<GpuSample, GpuProbeError>")]
struct Probe;

/// Runs the (possibly blocking) probe on its own thread.
struct ProbeWorker {
    probe: Arc<Mutex<Box<dyn GpuProbe>>>,
}

impl Actor for ProbeWorker {
    type Context = SyncContext<Self>;
}

impl Handler<Probe> for ProbeWorker {
    type Result = Result<GpuSample, GpuProbeError>;

    fn handle(&mut self, _: Probe, _: &mut SyncContext<Self>) -> Self::Result {
        let probe = self
            .probe
            .lock()
            .map_err(|_| GpuProbeError::Failed("the GPU probe panicked earlier".into()))?;
        match catch_unwind(AssertUnwindSafe(|| probe.gpus())) {
            Ok(result) => result.map(|gpus| GpuSample { gpus }),
            Err(_) => Err(GpuProbeError::Failed("the GPU probe panicked".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::task::{Poll, Waker};

    use futures_util::future::poll_fn;

    use super::*;
    use crate::ids::GpuId;
    use crate::ports::GpuInfo;

    const SAFETY: Duration = Duration::from_secs(30);

    fn gpu(index: u32) -> GpuInfo {
        GpuInfo {
            index,
            id: GpuId(format!("GPU-{index}")),
            name: "static".into(),
            pci_bus_id: String::new(),
            memory_total_bytes: 1 << 30,
            memory_used_bytes: 0,
            memory_free_bytes: 1 << 30,
            utilization_percent: None,
            temperature_celsius: None,
            processes: vec![],
        }
    }

    struct StaticProbe(Vec<GpuInfo>);

    impl GpuProbe for StaticProbe {
        fn gpus(&self) -> Result<Vec<GpuInfo>, GpuProbeError> {
            Ok(self.0.clone())
        }
    }

    /// Fails its first `failures` calls, then answers one GPU.
    struct FlakyProbe {
        calls: AtomicUsize,
        failures: usize,
    }

    impl GpuProbe for FlakyProbe {
        fn gpus(&self) -> Result<Vec<GpuInfo>, GpuProbeError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
                Err(GpuProbeError::Failed("driver hiccup".into()))
            } else {
                Ok(vec![gpu(0)])
            }
        }
    }

    /// Collects the samples a recorder actor receives; tests wait on it.
    #[derive(Clone, Default)]
    struct Inbox(Rc<RefCell<(Vec<GpuSample>, Option<Waker>)>>);

    impl Inbox {
        async fn wait_for(&self, n: usize) -> Vec<GpuSample> {
            let wait = poll_fn(|cx| {
                let mut state = self.0.borrow_mut();
                if state.0.len() >= n {
                    Poll::Ready(state.0.clone())
                } else {
                    state.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            });
            actix_rt::time::timeout(SAFETY, wait)
                .await
                .expect("samples did not arrive")
        }

        fn count(&self) -> usize {
            self.0.borrow().0.len()
        }
    }

    struct Recorder(Inbox);

    impl Actor for Recorder {
        type Context = Context<Self>;
    }

    impl Handler<GpuSample> for Recorder {
        type Result = ();

        fn handle(&mut self, msg: GpuSample, _: &mut Context<Self>) {
            let mut state = (self.0).0.borrow_mut();
            state.0.push(msg);
            if let Some(w) = state.1.take() {
                w.wake();
            }
        }
    }

    fn recorder() -> (Inbox, Recipient<GpuSample>) {
        let inbox = Inbox::default();
        let addr = Recorder(inbox.clone()).start();
        (inbox, addr.recipient())
    }

    #[actix_rt::test]
    async fn every_subscriber_receives_periodic_samples() {
        let (scheduler, to_scheduler) = recorder();
        let (metrics, to_metrics) = recorder();
        let probe = StaticProbe(vec![gpu(0), gpu(1)]);
        let _monitor = GpuMonitor::start(
            Box::new(probe),
            Duration::from_millis(5),
            vec![to_scheduler, to_metrics],
        );
        for inbox in [scheduler, metrics] {
            let samples = inbox.wait_for(3).await;
            for sample in samples {
                let ids: Vec<_> = sample.gpus.iter().map(|g| g.id.0.as_str()).collect();
                assert_eq!(ids, ["GPU-0", "GPU-1"]);
            }
        }
    }

    #[actix_rt::test]
    async fn probe_errors_are_survived_and_not_published() {
        let (inbox, to_inbox) = recorder();
        let probe = FlakyProbe {
            calls: AtomicUsize::new(0),
            failures: 2,
        };
        // An interval far longer than the test: only SampleNow drives the probe after the
        // first (failing) tick.
        let monitor = GpuMonitor::start(Box::new(probe), Duration::from_secs(3600), vec![]);
        monitor.send(Subscribe(to_inbox)).await.unwrap();
        let second = monitor.send(SampleNow).await.unwrap();
        assert!(matches!(second, Err(GpuProbeError::Failed(ref m)) if m == "driver hiccup"));
        let third = monitor.send(SampleNow).await.unwrap().unwrap();
        assert_eq!(third.gpus.len(), 1);
        let got = inbox.wait_for(1).await;
        assert_eq!(got.len(), 1, "only the good sample is published");
    }

    /// Blocks in `gpus()` until released, saying when it entered.
    struct BlockingProbe {
        entered: mpsc::Sender<()>,
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl GpuProbe for BlockingProbe {
        fn gpus(&self) -> Result<Vec<GpuInfo>, GpuProbeError> {
            let _ = self.entered.send(());
            let _ = self.release.lock().unwrap().recv();
            Ok(vec![gpu(7)])
        }
    }

    #[actix_rt::test]
    async fn a_blocked_probe_does_not_block_the_monitor() {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let probe = BlockingProbe {
            entered: entered_tx,
            release: Mutex::new(release_rx),
        };
        let monitor = GpuMonitor::start(Box::new(probe), Duration::from_secs(3600), vec![]);
        // The first tick is now stuck inside the probe on the probe thread...
        actix_rt::task::spawn_blocking(move || entered_rx.recv_timeout(SAFETY))
            .await
            .unwrap()
            .expect("the probe was never called");
        // ...and the monitor still answers messages.
        let (inbox, to_inbox) = recorder();
        monitor.send(Subscribe(to_inbox)).await.unwrap();
        assert_eq!(inbox.count(), 0);
        release_tx.send(()).unwrap();
        let samples = inbox.wait_for(1).await;
        assert_eq!(samples[0].gpus[0].id.0, "GPU-7");
    }

    #[test]
    fn health_logs_first_failure_every_nth_and_the_recovery() {
        let mut health = ProbeHealth::new(3);
        let e = GpuProbeError::Failed("x".into());
        let logged: Vec<bool> = (0..7).map(|_| health.on_failure(&e).is_some()).collect();
        assert_eq!(logged, [true, false, true, false, false, true, false]);
        assert_eq!(
            health.on_success(),
            Some(HealthNote::Recovered { after_failures: 7 })
        );
        assert_eq!(health.on_success(), None);
        assert!(matches!(
            health.on_failure(&e),
            Some(HealthNote::Failing { in_a_row: 1, .. })
        ));
    }
}
