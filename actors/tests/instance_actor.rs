//! The Instance actor against in-memory fakes of the Launcher and Backend ports: boot,
//! crash and restart with backoff, crash loop and quarantine, readiness timeout, health
//! failures, jobs (progress, exactly one JobFinished, also on crash, reported after the crash),
//! the watchdog, shutdown, attach mode, an operator's drain and restart; and, behind the real scheduler, what a submitter is
//! told of a job its instance stopped. Everything is awaited on channels the fakes feed; the
//! only timeouts are safety nets.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use actix::prelude::*;
use comfy_fleet_actors::instance::{
    BackoffConfig, Instance, InstanceConfig, InstanceMode, InstanceSetup, RestartIntensity,
};
use comfy_fleet_actors::messages::{
    CancelJob, InstanceHandle, InstancePhase, InstanceReport, InstanceUpdate, JobFailure,
    JobFinished, JobProgress, JobSpec, RegisterInstance, RunJob, Shutdown, Submit,
};
use comfy_fleet_actors::ports::{
    Backend, BackendError, EventSink, ExecutionEvent, ExitInfo, InputFile, LaunchError, LaunchSpec,
    Launched, Launcher, PhaseObserver, ProcessStopper, PromptRun, PromptStatus, RunResult,
};
use comfy_fleet_actors::scheduling::{
    InstanceOperation, InstanceOrder, Scheduler, SchedulerConfig,
};
use comfy_fleet_actors::{InstanceId, JobEvent, JobId, JobOutput, UserId};
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use uuid::Uuid;

const SAFETY: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// A tiny single-threaded channel
// ---------------------------------------------------------------------------------------------

struct Chan<T> {
    inner: Rc<RefCell<(VecDeque<T>, Option<Waker>)>>,
}

impl<T> Clone for Chan<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<T> Chan<T> {
    fn new() -> Self {
        Self {
            inner: Rc::new(RefCell::new((VecDeque::new(), None))),
        }
    }

    fn send(&self, value: T) {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            inner.0.push_back(value);
            inner.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn try_recv(&self) -> Option<T> {
        self.inner.borrow_mut().0.pop_front()
    }

    fn recv(&self) -> impl Future<Output = T> + '_ {
        poll_fn(move |cx| {
            let mut inner = self.inner.borrow_mut();
            match inner.0.pop_front() {
                Some(v) => Poll::Ready(v),
                None => {
                    inner.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

async fn next<T>(chan: &Chan<T>, what: &str) -> T {
    actix::clock::timeout(SAFETY, chan.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

// ---------------------------------------------------------------------------------------------
// Collector: receives what the instance reports
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Reports {
    updates: Chan<InstanceUpdate>,
    progress: Chan<JobProgress>,
    finished: Chan<JobFinished>,
    /// Every report, in the order received.
    all: Chan<InstanceReport>,
}

struct Collector(Reports);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<InstanceReport> for Collector {
    type Result = ();
    fn handle(&mut self, report: InstanceReport, _: &mut Context<Self>) {
        self.0.all.send(report.clone());
        match report {
            InstanceReport::Phase(update) => self.0.updates.send(update),
            InstanceReport::Progress(progress) => self.0.progress.send(progress),
            InstanceReport::Finished(finished) => self.0.finished.send(finished),
        }
    }
}

/// Answered once every message sent to the collector before it has been handled.
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

impl Handler<Flush> for Collector {
    type Result = ();
    fn handle(&mut self, _: Flush, _: &mut Context<Self>) {}
}

// ---------------------------------------------------------------------------------------------
// Fake launcher: processes that exit when the test says so (or when stopped)
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct FakeProcess {
    number: u32,
    exit: Chan<ExitInfo>,
}

impl FakeProcess {
    fn crash(&self) {
        self.exit.send(ExitInfo {
            code: Some(1),
            signal: None,
        });
    }
}

struct FakeLauncher {
    launched: Chan<FakeProcess>,
    stops: Chan<u32>,
    count: Cell<u32>,
    /// The process exits as soon as it is told to stop (otherwise the test makes it exit).
    exit_on_stop: Cell<bool>,
    /// How many of the next launches fail to spawn.
    fail_next: Cell<u32>,
}

struct FakeStopper {
    process: FakeProcess,
    stops: Chan<u32>,
    exit_on_stop: bool,
}

impl ProcessStopper for FakeStopper {
    fn stop(&self, _grace: Duration) -> LocalBoxFuture<'static, ()> {
        self.stops.send(self.process.number);
        if self.exit_on_stop {
            self.process.exit.send(ExitInfo {
                code: None,
                signal: Some(15),
            });
        }
        async {}.boxed_local()
    }
}

impl Launcher for FakeLauncher {
    fn launch(&self, spec: LaunchSpec) -> LocalBoxFuture<'_, Result<Launched, LaunchError>> {
        if self.fail_next.get() > 0 {
            self.fail_next.set(self.fail_next.get() - 1);
            let error = LaunchError::Spawn {
                instance: spec.instance,
                command: spec.command.join(" "),
                reason: "No such file or directory".into(),
            };
            return async move { Err(error) }.boxed_local();
        }
        let number = self.count.get() + 1;
        self.count.set(number);
        let process = FakeProcess {
            number,
            exit: Chan::new(),
        };
        self.launched.send(process.clone());
        let exit = process.exit.clone();
        let stopper = FakeStopper {
            process,
            stops: self.stops.clone(),
            exit_on_stop: self.exit_on_stop.get(),
        };
        async move {
            Ok(Launched {
                pid: 1000 + number,
                url: format!("http://fake/{number}"),
                port: 8000 + number as u16,
                exited: async move { exit.recv().await }.boxed_local(),
                stopper: Box::new(stopper),
            })
        }
        .boxed_local()
    }
}

// ---------------------------------------------------------------------------------------------
// Fake backend: the test drives every run through its control channel
// ---------------------------------------------------------------------------------------------

enum RunStep {
    Event(ExecutionEvent),
    Finish(Result<RunResult, BackendError>),
}

struct RunControl {
    prompt_id: Uuid,
    steps: Chan<RunStep>,
}

struct FakeServer {
    up: Cell<bool>,
    pings: Cell<u32>,
    status: Cell<PromptStatus>,
    /// Cancels end the run with `Interrupted` (a hung server ignores them).
    honour_cancel: Cell<bool>,
    runs: Chan<Rc<RunControl>>,
    live_runs: RefCell<Vec<Rc<RunControl>>>,
    uploads: Chan<String>,
    cancels: Chan<Uuid>,
    status_queries: Chan<Uuid>,
}

struct FakeBackend {
    url: String,
    server: Rc<FakeServer>,
}

impl Backend for FakeBackend {
    fn url(&self) -> &str {
        &self.url
    }

    fn ping(&self) -> LocalBoxFuture<'_, Result<(), BackendError>> {
        self.server.pings.set(self.server.pings.get() + 1);
        let up = self.server.up.get();
        async move {
            if up {
                Ok(())
            } else {
                Err(BackendError::Unreachable {
                    url: self.url.clone(),
                    reason: "refused".into(),
                })
            }
        }
        .boxed_local()
    }

    fn object_info(&self) -> LocalBoxFuture<'_, Result<usize, BackendError>> {
        async { Ok(1) }.boxed_local()
    }

    fn upload(&self, input: InputFile) -> LocalBoxFuture<'_, Result<String, BackendError>> {
        self.server.uploads.send(input.name.clone());
        async move { Ok(input.name) }.boxed_local()
    }

    fn run(
        &self,
        run: PromptRun,
        mut sink: EventSink,
    ) -> LocalBoxFuture<'_, Result<RunResult, BackendError>> {
        let control = Rc::new(RunControl {
            prompt_id: run.prompt_id,
            steps: Chan::new(),
        });
        self.server.live_runs.borrow_mut().push(Rc::clone(&control));
        self.server.runs.send(Rc::clone(&control));
        async move {
            loop {
                match control.steps.recv().await {
                    RunStep::Event(event) => sink(event),
                    RunStep::Finish(result) => return result,
                }
            }
        }
        .boxed_local()
    }

    fn prompt_status(
        &self,
        prompt_id: Uuid,
    ) -> LocalBoxFuture<'_, Result<PromptStatus, BackendError>> {
        self.server.status_queries.send(prompt_id);
        let status = self.server.status.get();
        async move { Ok(status) }.boxed_local()
    }

    fn cancel(&self, prompt_id: Uuid) -> LocalBoxFuture<'_, Result<(), BackendError>> {
        self.server.cancels.send(prompt_id);
        if self.server.honour_cancel.get() {
            for run in self.server.live_runs.borrow().iter() {
                if run.prompt_id == prompt_id {
                    run.steps
                        .send(RunStep::Finish(Err(BackendError::Interrupted)));
                }
            }
        }
        async { Ok(()) }.boxed_local()
    }

    fn free(&self, _: bool, _: bool) -> LocalBoxFuture<'_, Result<(), BackendError>> {
        async { Ok(()) }.boxed_local()
    }

    fn download(&self, _: &JobOutput) -> LocalBoxFuture<'_, Result<Vec<u8>, BackendError>> {
        async { Ok(Vec::new()) }.boxed_local()
    }
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

struct Harness {
    addr: Addr<Instance>,
    collector: Addr<Collector>,
    reports: Reports,
    launcher: Rc<FakeLauncher>,
    server: Rc<FakeServer>,
}

fn config() -> InstanceConfig {
    InstanceConfig {
        readiness_timeout: Duration::from_secs(5),
        readiness_poll: Duration::from_millis(5),
        control_timeout: Duration::from_secs(1),
        health_interval: Duration::from_millis(10),
        health_failures: 2,
        warmup: false,
        warmup_prompt: None,
        job_silence: Duration::from_secs(60),
        stop_grace: Duration::from_millis(10),
        backoff: BackoffConfig {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(80),
            multiplier: 2.0,
            jitter: 0.0,
        },
        restart_intensity: RestartIntensity {
            max_restarts: 5,
            period: Duration::from_secs(60),
            cooldown: Duration::from_millis(50),
        },
    }
}

fn spec() -> LaunchSpec {
    LaunchSpec {
        instance: InstanceId::new("gpu0"),
        command: vec!["fake-comfyui".into()],
        working_dir: None,
        extra_args: vec![],
        env: vec![],
        gpu: None,
        listen: "127.0.0.1".into(),
        port: 0,
        state_dir: std::env::temp_dir(),
    }
}

fn start(config: InstanceConfig, attach: Option<&str>) -> Harness {
    let reports = Reports {
        updates: Chan::new(),
        progress: Chan::new(),
        finished: Chan::new(),
        all: Chan::new(),
    };
    let collector = Collector(reports.clone()).start();
    let (addr, launcher, server) = start_instance(config, attach, collector.clone().recipient());
    Harness {
        addr,
        collector,
        reports,
        launcher,
        server,
    }
}

/// Starts an instance on the fakes that reports to `reports`.
fn start_instance(
    config: InstanceConfig,
    attach: Option<&str>,
    reports: Recipient<InstanceReport>,
) -> (Addr<Instance>, Rc<FakeLauncher>, Rc<FakeServer>) {
    let launcher = Rc::new(FakeLauncher {
        launched: Chan::new(),
        stops: Chan::new(),
        count: Cell::new(0),
        exit_on_stop: Cell::new(true),
        fail_next: Cell::new(0),
    });
    let server = Rc::new(FakeServer {
        up: Cell::new(true),
        pings: Cell::new(0),
        status: Cell::new(PromptStatus::Running),
        honour_cancel: Cell::new(true),
        runs: Chan::new(),
        live_runs: RefCell::new(Vec::new()),
        uploads: Chan::new(),
        cancels: Chan::new(),
        status_queries: Chan::new(),
    });
    let factory_server = Rc::clone(&server);
    let mode = match attach {
        Some(url) => InstanceMode::Attach { url: url.into() },
        None => InstanceMode::Managed {
            spec: spec(),
            launcher: Rc::clone(&launcher) as Rc<dyn Launcher>,
        },
    };
    let instance = Instance::new(InstanceSetup {
        id: InstanceId::new("gpu0"),
        gpu: None,
        mode,
        config,
        backend_factory: Box::new(move |url| {
            Rc::new(FakeBackend {
                url: url.to_string(),
                server: Rc::clone(&factory_server),
            }) as Rc<dyn Backend>
        }),
        reports,
    })
    .unwrap();
    (instance.start(), launcher, server)
}

impl Harness {
    async fn update(&self) -> InstanceUpdate {
        next(&self.reports.updates, "an instance update").await
    }

    /// The next updates have exactly these phases; returns them.
    async fn expect_phases(&self, phases: &[InstancePhase]) -> Vec<InstanceUpdate> {
        let mut seen = Vec::new();
        for want in phases {
            let update = self.update().await;
            assert_eq!(update.phase, *want, "after {seen:?}, got {update:?}");
            seen.push(update);
        }
        seen
    }

    async fn process(&self) -> FakeProcess {
        next(&self.launcher.launched, "a launch").await
    }

    async fn boot(&self) -> FakeProcess {
        self.expect_phases(&[InstancePhase::Starting]).await;
        let process = self.process().await;
        let ready = self.expect_phases(&[InstancePhase::Ready]).await;
        assert_eq!(
            ready[0].url.as_deref(),
            Some(format!("http://fake/{}", process.number).as_str())
        );
        process
    }

    async fn run(&self) -> Rc<RunControl> {
        next(&self.server.runs, "a run").await
    }

    async fn finished(&self) -> JobFinished {
        next(&self.reports.finished, "a JobFinished").await
    }

    /// Every report sent so far has reached the collector.
    async fn flush(&self) {
        self.collector.send(Flush).await.unwrap();
    }
}

fn run_job(inputs: Vec<InputFile>) -> RunJob {
    let job = JobId::new();
    RunJob {
        job,
        attempt: 1,
        run: PromptRun {
            job: Some(job),
            prompt_id: job.0,
            prompt: serde_json::json!({"3": {"class_type": "KSampler", "inputs": {}}}),
            extra_data: serde_json::json!({}),
        },
        inputs,
    }
}

fn output(name: &str) -> JobOutput {
    JobOutput {
        node_id: "9".into(),
        filename: name.into(),
        subfolder: String::new(),
        kind: "output".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn boots_to_ready_after_http_and_object_info() {
    let h = start(config(), None);
    let process = h.boot().await;
    assert_eq!(process.number, 1);
    assert!(h.server.pings.get() >= 1, "readiness pinged the server");
}

#[actix_rt::test]
async fn warm_up_prompt_runs_before_ready() {
    let mut cfg = config();
    cfg.warmup_prompt = Some(serde_json::json!({"1": {"class_type": "CheckpointLoaderSimple"}}));
    let h = start(cfg, None);
    h.expect_phases(&[InstancePhase::Starting]).await;
    let warmup = h.run().await;
    assert!(
        h.reports.updates.try_recv().is_none(),
        "not ready before the warm-up ended"
    );
    warmup.steps.send(RunStep::Finish(Ok(RunResult::default())));
    h.expect_phases(&[InstancePhase::Ready]).await;
}

#[actix_rt::test]
async fn crash_restarts_with_exponential_backoff() {
    let h = start(config(), None);
    let first = h.boot().await;
    first.crash();
    let seen = h
        .expect_phases(&[
            InstancePhase::Crashed,
            InstancePhase::Restarting,
            InstancePhase::Starting,
        ])
        .await;
    assert!(
        seen[0].detail.as_deref().unwrap().contains("exit code 1"),
        "{:?}",
        seen[0]
    );
    assert!(
        seen[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("next attempt in 20ms"),
        "{:?}",
        seen[1]
    );
    let second = h.process().await;
    assert_eq!(second.number, 2);
    h.expect_phases(&[InstancePhase::Ready]).await;

    // Crashes before readiness do not reset the backoff: it doubles.
    h.server.up.set(false);
    second.crash();
    let seen = h
        .expect_phases(&[
            InstancePhase::Crashed,
            InstancePhase::Restarting,
            InstancePhase::Starting,
        ])
        .await;
    assert!(
        seen[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("next attempt in 20ms"),
        "{:?}",
        seen[1]
    );
    h.process().await.crash();
    let seen = h
        .expect_phases(&[
            InstancePhase::Crashed,
            InstancePhase::Restarting,
            InstancePhase::Starting,
        ])
        .await;
    assert!(
        seen[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("next attempt in 40ms"),
        "{:?}",
        seen[1]
    );
    h.server.up.set(true);
    h.process().await;
    h.expect_phases(&[InstancePhase::Ready]).await;
}

#[actix_rt::test]
async fn crash_loop_quarantines_then_retries_after_the_cooldown() {
    let mut cfg = config();
    cfg.restart_intensity.max_restarts = 2;
    let h = start(cfg, None);
    let mut process = h.boot().await;
    for _ in 0..2 {
        process.crash();
        h.expect_phases(&[
            InstancePhase::Crashed,
            InstancePhase::Restarting,
            InstancePhase::Starting,
        ])
        .await;
        process = h.process().await;
        h.expect_phases(&[InstancePhase::Ready]).await;
    }
    process.crash();
    let seen = h
        .expect_phases(&[InstancePhase::Crashed, InstancePhase::Quarantined])
        .await;
    let detail = seen[1].detail.as_deref().unwrap();
    assert!(
        detail.contains("3 crashes") && detail.contains("next attempt in 50ms"),
        "{detail}"
    );
    // While quarantined, jobs are refused (retriable).
    h.addr.send(run_job(vec![])).await.unwrap();
    let refused = h.finished().await;
    assert!(refused.result.as_ref().unwrap_err().is_retriable());
    // After the cooldown: started afresh.
    h.expect_phases(&[InstancePhase::Starting]).await;
    assert_eq!(h.process().await.number, 4);
    h.expect_phases(&[InstancePhase::Ready]).await;
}

#[actix_rt::test]
async fn launch_failure_backs_off_and_retries() {
    let h = start(config(), None);
    h.launcher.fail_next.set(1);
    let seen = h
        .expect_phases(&[
            InstancePhase::Starting,
            InstancePhase::Crashed,
            InstancePhase::Restarting,
            InstancePhase::Starting,
        ])
        .await;
    let detail = seen[1].detail.as_deref().unwrap();
    assert!(
        detail.contains("launch failed") && detail.contains("No such file"),
        "{detail}"
    );
    assert_eq!(h.process().await.number, 1, "the first launch that spawned");
    h.expect_phases(&[InstancePhase::Ready]).await;
}

#[actix_rt::test]
async fn readiness_timeout_stops_the_process_and_backs_off() {
    let mut cfg = config();
    cfg.readiness_timeout = Duration::from_millis(100);
    let h = start(cfg, None);
    h.server.up.set(false);
    h.expect_phases(&[InstancePhase::Starting]).await;
    let process = h.process().await;
    let seen = h.expect_phases(&[InstancePhase::Crashed]).await;
    assert!(
        seen[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("not ready within"),
        "{:?}",
        seen[0]
    );
    assert_eq!(next(&h.launcher.stops, "the stop").await, process.number);
    h.expect_phases(&[InstancePhase::Restarting, InstancePhase::Starting])
        .await;
    h.server.up.set(true);
    assert_eq!(h.process().await.number, 2);
    h.expect_phases(&[InstancePhase::Ready]).await;
}

#[actix_rt::test]
async fn failed_health_checks_restart_the_instance() {
    let h = start(config(), None);
    let first = h.boot().await;
    h.server.up.set(false);
    let seen = h.expect_phases(&[InstancePhase::Crashed]).await;
    assert!(
        seen[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("2 health checks failed"),
        "{:?}",
        seen[0]
    );
    assert_eq!(next(&h.launcher.stops, "the stop").await, first.number);
    h.expect_phases(&[InstancePhase::Restarting, InstancePhase::Starting])
        .await;
    h.server.up.set(true);
    h.process().await;
    h.expect_phases(&[InstancePhase::Ready]).await;
}

#[actix_rt::test]
async fn attach_mode_reprobes_an_unreachable_server() {
    let h = start(config(), Some("http://remote:8188"));
    let ready = h
        .expect_phases(&[InstancePhase::Starting, InstancePhase::Ready])
        .await;
    assert_eq!(ready[1].url.as_deref(), Some("http://remote:8188"));
    h.server.up.set(false);
    h.expect_phases(&[
        InstancePhase::Crashed,
        InstancePhase::Restarting,
        InstancePhase::Starting,
    ])
    .await;
    h.server.up.set(true);
    h.expect_phases(&[InstancePhase::Ready]).await;
    assert_eq!(h.launcher.count.get(), 0, "attach mode launches nothing");
    actix::clock::timeout(
        SAFETY,
        h.addr.send(Shutdown {
            deadline: Duration::from_secs(1),
        }),
    )
    .await
    .unwrap()
    .unwrap();
    h.expect_phases(&[InstancePhase::Stopped]).await;
}

// ---------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn job_uploads_streams_progress_and_finishes_exactly_once() {
    let h = start(config(), None);
    h.boot().await;
    let input = InputFile {
        name: "face.png".into(),
        subfolder: String::new(),
        bytes: Arc::from(&b"png"[..]),
        overwrite: true,
    };
    let msg = run_job(vec![input]);
    let job = msg.job;
    h.addr.send(msg).await.unwrap();
    assert_eq!(next(&h.server.uploads, "the upload").await, "face.png");
    let run = h.run().await;
    assert_eq!(run.prompt_id, job.0);
    run.steps.send(RunStep::Event(ExecutionEvent::Executing {
        node: "3".into(),
    }));
    run.steps.send(RunStep::Event(ExecutionEvent::Progress {
        node: "3".into(),
        value: 1,
        max: 20,
    }));
    let first = next(&h.reports.progress, "progress").await;
    assert_eq!(
        (first.job, first.event),
        (job, ExecutionEvent::Executing { node: "3".into() })
    );
    let second = next(&h.reports.progress, "progress").await;
    assert_eq!(
        second.event,
        ExecutionEvent::Progress {
            node: "3".into(),
            value: 1,
            max: 20
        }
    );
    run.steps.send(RunStep::Finish(Ok(RunResult {
        outputs: vec![output("out.png")],
        ..RunResult::default()
    })));
    let done = h.finished().await;
    assert_eq!((done.job, done.attempt), (job, 1));
    assert_eq!(done.result.unwrap().outputs, vec![output("out.png")]);
    // Stop the instance; nothing more is reported for the job.
    actix::clock::timeout(
        SAFETY,
        h.addr.send(Shutdown {
            deadline: Duration::from_secs(1),
        }),
    )
    .await
    .unwrap()
    .unwrap();
    h.flush().await;
    assert!(
        h.reports.finished.try_recv().is_none(),
        "a job is finished exactly once"
    );
}

#[actix_rt::test]
async fn concurrent_jobs_finish_independently() {
    let h = start(config(), None);
    h.boot().await;
    let (a, b) = (run_job(vec![]), run_job(vec![]));
    let (ja, jb) = (a.job, b.job);
    h.addr.send(a).await.unwrap();
    h.addr.send(b).await.unwrap();
    let run_a = h.run().await;
    let run_b = h.run().await;
    run_b.steps.send(RunStep::Finish(Ok(RunResult::default())));
    assert_eq!(h.finished().await.job, jb);
    run_a
        .steps
        .send(RunStep::Finish(Err(BackendError::Execution {
            node_id: "3".into(),
            node_type: "KSampler".into(),
            exception_type: "RuntimeError".into(),
            message: "out of memory".into(),
        })));
    let failed = h.finished().await;
    assert_eq!(failed.job, ja);
    assert!(!failed.result.unwrap_err().is_retriable());
}

#[actix_rt::test]
async fn process_death_mid_job_reports_the_job_retriable_once() {
    let h = start(config(), None);
    let process = h.boot().await;
    let msg = run_job(vec![]);
    let job = msg.job;
    h.addr.send(msg).await.unwrap();
    let run = h.run().await;
    process.crash();
    let finished = h.finished().await;
    assert_eq!(finished.job, job);
    let error = finished.result.unwrap_err();
    assert!(error.is_retriable(), "{error}");
    assert_eq!(
        error.to_string(),
        "instance gpu0 failed under the job: process exited (exit code 1)"
    );
    h.expect_phases(&[
        InstancePhase::Crashed,
        InstancePhase::Restarting,
        InstancePhase::Starting,
    ])
    .await;
    // The dead run finishing late changes nothing.
    run.steps.send(RunStep::Finish(Ok(RunResult::default())));
    h.process().await;
    h.expect_phases(&[InstancePhase::Ready]).await;
    h.flush().await;
    assert!(h.reports.finished.try_recv().is_none(), "reported once");
    // The crash reached the scheduler before the job's failure: its retry cannot be placed on
    // the instance that just went down.
    let mut order = Vec::new();
    while let Some(report) = h.reports.all.try_recv() {
        match report {
            InstanceReport::Phase(update) => order.push(format!("{:?}", update.phase)),
            InstanceReport::Finished(f) if f.job == job => order.push("job failed".into()),
            InstanceReport::Finished(_) | InstanceReport::Progress(_) => {}
        }
    }
    assert_eq!(
        order,
        [
            "Starting",
            "Ready",
            "Crashed",
            "job failed",
            "Restarting",
            "Starting",
            "Ready"
        ]
    );
}

#[actix_rt::test]
async fn hung_job_is_interrupted_reported_silent_and_the_instance_restarted() {
    let mut cfg = config();
    cfg.job_silence = Duration::from_millis(50);
    let h = start(cfg, None);
    let process = h.boot().await;
    h.server.honour_cancel.set(false);
    h.server.status.set(PromptStatus::Running);
    let msg = run_job(vec![]);
    let job = msg.job;
    h.addr.send(msg).await.unwrap();
    let _run = h.run().await;
    assert_eq!(
        next(&h.server.status_queries, "the watchdog's status query").await,
        job.0
    );
    assert_eq!(next(&h.server.cancels, "the interrupt").await, job.0);
    let finished = h.finished().await;
    assert_eq!(finished.job, job);
    let error = finished.result.unwrap_err();
    assert!(
        matches!(error, JobFailure::Backend(BackendError::Silent { .. })),
        "{error}"
    );
    assert!(error.is_retriable());
    let seen = h.expect_phases(&[InstancePhase::Crashed]).await;
    assert!(
        seen[0].detail.as_deref().unwrap().contains("hung"),
        "{:?}",
        seen[0]
    );
    assert_eq!(next(&h.launcher.stops, "the stop").await, process.number);
    h.expect_phases(&[InstancePhase::Restarting, InstancePhase::Starting])
        .await;
    h.process().await;
    h.expect_phases(&[InstancePhase::Ready]).await;
}

#[actix_rt::test]
async fn watchdog_lets_a_job_that_finished_meanwhile_reconcile() {
    let mut cfg = config();
    cfg.job_silence = Duration::from_millis(50);
    let h = start(cfg, None);
    h.boot().await;
    h.server.status.set(PromptStatus::Succeeded);
    let msg = run_job(vec![]);
    let job = msg.job;
    h.addr.send(msg).await.unwrap();
    let run = h.run().await;
    next(&h.server.status_queries, "the watchdog's status query").await;
    // The run reconciles from history and ends well: no restart, no interrupt.
    run.steps.send(RunStep::Finish(Ok(RunResult {
        outputs: vec![output("late.png")],
        ..RunResult::default()
    })));
    let finished = h.finished().await;
    assert_eq!(finished.job, job);
    assert!(finished.result.is_ok());
    h.flush().await;
    assert!(h.server.cancels.try_recv().is_none(), "nothing interrupted");
    assert!(h.reports.updates.try_recv().is_none(), "no crash");
}

#[actix_rt::test]
async fn cancel_interrupts_the_running_prompt() {
    let h = start(config(), None);
    h.boot().await;
    let msg = run_job(vec![]);
    let job = msg.job;
    h.addr.send(msg).await.unwrap();
    let run = h.run().await;
    h.addr.send(CancelJob { job }).await.unwrap();
    assert_eq!(
        next(&h.server.cancels, "the interrupt").await,
        run.prompt_id
    );
    let finished = h.finished().await;
    assert_eq!(
        finished.result,
        Err(JobFailure::Backend(BackendError::Interrupted))
    );
}

#[actix_rt::test]
async fn run_job_before_ready_is_refused_retriable() {
    let h = start(config(), None);
    h.server.up.set(false);
    h.expect_phases(&[InstancePhase::Starting]).await;
    let msg = run_job(vec![]);
    let job = msg.job;
    h.addr.send(msg).await.unwrap();
    let refused = h.finished().await;
    assert_eq!(refused.job, job);
    let error = refused.result.unwrap_err();
    assert!(
        error.is_retriable(),
        "nothing ran: another instance may take it"
    );
    assert_eq!(
        error.to_string(),
        "instance gpu0 is starting and takes no jobs"
    );
}

// ---------------------------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn shutdown_drains_then_resolves_only_after_the_process_exited() {
    let h = start(config(), None);
    let process = h.boot().await;
    h.launcher.exit_on_stop.set(false);
    // The stopper was made at launch with exit_on_stop = true; relaunch under the new setting.
    process.crash();
    h.expect_phases(&[
        InstancePhase::Crashed,
        InstancePhase::Restarting,
        InstancePhase::Starting,
    ])
    .await;
    let process = h.process().await;
    h.expect_phases(&[InstancePhase::Ready]).await;

    let msg = run_job(vec![]);
    let job = msg.job;
    h.addr.send(msg).await.unwrap();
    let run = h.run().await;
    let mut shutdown = Box::pin(h.addr.send(Shutdown {
        deadline: Duration::from_secs(30),
    }));
    assert!(shutdown.as_mut().now_or_never().is_none());
    h.expect_phases(&[InstancePhase::Draining]).await;
    // New jobs are refused while draining.
    h.addr.send(run_job(vec![])).await.unwrap();
    let refused = h.finished().await;
    assert_ne!(refused.job, job);
    assert!(refused.result.unwrap_err().is_retriable());
    // The in-flight job finishes normally, then the process is stopped.
    run.steps.send(RunStep::Finish(Ok(RunResult::default())));
    let done = h.finished().await;
    assert_eq!(done.job, job);
    assert!(done.result.is_ok());
    assert_eq!(next(&h.launcher.stops, "the stop").await, process.number);
    assert!(
        shutdown.as_mut().now_or_never().is_none(),
        "resolved before the process exited"
    );
    process.exit.send(ExitInfo {
        code: None,
        signal: Some(15),
    });
    actix::clock::timeout(SAFETY, shutdown)
        .await
        .unwrap()
        .unwrap();
    h.expect_phases(&[InstancePhase::Stopped]).await;
}

#[actix_rt::test]
async fn shutdown_deadline_cancels_unfinished_jobs_and_reports_them_stopped_not_retriable() {
    let h = start(config(), None);
    let process = h.boot().await;
    h.server.honour_cancel.set(false);
    let msg = run_job(vec![]);
    let job = msg.job;
    h.addr.send(msg).await.unwrap();
    h.run().await;
    let shutdown = h.addr.send(Shutdown {
        deadline: Duration::from_millis(30),
    });
    let finish = async {
        h.expect_phases(&[InstancePhase::Draining]).await;
        assert_eq!(next(&h.server.cancels, "the cancel").await, job.0);
        let finished = h.finished().await;
        assert_eq!(finished.job, job);
        let error = finished.result.unwrap_err();
        assert!(matches!(error, JobFailure::Aborted { .. }), "{error:?}");
        assert!(!error.is_retriable(), "the server was fine: {error}");
        let text = error.to_string();
        assert!(text.contains("shutting down"), "{text}");
        assert!(!text.contains("unreachable"), "{text}");
        assert_eq!(next(&h.launcher.stops, "the stop").await, process.number);
    };
    let (resolved, ()) =
        futures_util::future::join(actix::clock::timeout(SAFETY, shutdown), finish).await;
    resolved.unwrap().unwrap();
    h.expect_phases(&[InstancePhase::Stopped]).await;
}

// ---------------------------------------------------------------------------------------------
// Behind the real scheduler: what the submitter is told
// ---------------------------------------------------------------------------------------------

/// The submitter: records the events of its jobs.
struct Submitter(Chan<JobEvent>);

impl Actor for Submitter {
    type Context = Context<Self>;
}

impl Handler<JobEvent> for Submitter {
    type Result = ();
    fn handle(&mut self, event: JobEvent, _: &mut Context<Self>) {
        self.0.send(event);
    }
}

/// Records the phases the scheduler applied.
struct PhaseLog(Chan<InstanceUpdate>);

impl PhaseObserver for PhaseLog {
    fn phase_applied(&self, update: &InstanceUpdate) {
        self.0.send(update.clone());
    }
}

#[actix_rt::test]
async fn a_job_its_instance_stopped_fails_with_that_reason_not_as_an_unreachable_comfyui() {
    let phases = Chan::new();
    let scheduler = Scheduler::new(SchedulerConfig::default())
        .observe_phases(PhaseLog(phases.clone()))
        .start();
    let (instance, _launcher, server) =
        start_instance(config(), None, scheduler.clone().recipient());
    let id = InstanceId::new("gpu0");
    scheduler.do_send(RegisterInstance(InstanceHandle {
        id: id.clone(),
        gpu: None,
        run: instance.clone().recipient(),
        cancel: instance.clone().recipient(),
        operate: instance.clone().recipient(),
    }));
    loop {
        let update = next(&phases, "a phase the scheduler applied").await;
        assert_eq!(update.instance, id);
        if update.phase == InstancePhase::Ready {
            break;
        }
    }

    let events = Chan::new();
    let submitter = Submitter(events.clone()).start();
    let job = JobId::new();
    scheduler
        .send(Submit {
            job: JobSpec {
                id: job,
                user: UserId::new("alice"),
                priority: 0,
                template: "demo".into(),
                prompt: serde_json::json!({"3": {"class_type": "KSampler", "inputs": {}}}),
                extra_data: serde_json::json!({}),
                inputs: Vec::new(),
                models: Vec::new(),
            },
            events: submitter.recipient(),
        })
        .await
        .unwrap()
        .unwrap();
    let run = next(&server.runs, "the run").await;
    assert_eq!(run.prompt_id, job.0);

    // The operator stops this one instance; the fleet (and its scheduler) keeps running.
    actix::clock::timeout(
        SAFETY,
        instance.send(Shutdown {
            deadline: Duration::ZERO,
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let mut seen = Vec::new();
    let last = loop {
        let event = next(&events, "the job's events").await;
        if event.is_final() {
            break event;
        }
        seen.push(event);
    };
    assert!(
        !seen.iter().any(|e| matches!(e, JobEvent::Retrying { .. })),
        "a stopped job is not retried: {seen:?}"
    );
    let JobEvent::Failed { message, .. } = last else {
        panic!("expected the job to fail, got {last:?} after {seen:?}")
    };
    assert_eq!(
        message,
        "instance gpu0 stopped the job before it finished (the instance is shutting down and \
         its deadline for running jobs passed); submit it again"
    );
    assert!(!message.contains("unreachable"), "{message}");
}

#[actix_rt::test]
async fn an_operator_drain_finishes_the_job_then_stops_and_a_restart_brings_it_back() {
    let h = start(config(), None);
    let first = h.boot().await;
    let job = run_job(vec![]);
    h.addr.do_send(job.clone());
    let run = h.run().await;
    h.addr.do_send(InstanceOrder {
        operation: InstanceOperation::Drain,
    });
    let draining = h.expect_phases(&[InstancePhase::Draining]).await;
    assert_eq!(draining[0].detail.as_deref(), Some("operator drain"));
    // A job offered now is not taken (and reported so, to go elsewhere).
    let late = run_job(vec![]);
    h.addr.do_send(late.clone());
    let refused = h.finished().await;
    assert_eq!(refused.job, late.job);
    assert!(matches!(
        refused.result,
        Err(JobFailure::NotTaken {
            phase: InstancePhase::Draining,
            ..
        })
    ));
    // The running job finishes normally, then the process stops and the instance stays down.
    run.steps.send(RunStep::Finish(Ok(RunResult {
        outputs: vec![output("a.png")],
        ..Default::default()
    })));
    let done = h.finished().await;
    assert_eq!(done.job, job.job);
    assert!(done.result.is_ok(), "{:?}", done.result);
    assert_eq!(next(&h.launcher.stops, "the stop").await, first.number);
    h.expect_phases(&[InstancePhase::Stopped]).await;

    // Restarted by the operator: a fresh process, ready again.
    h.addr.do_send(InstanceOrder {
        operation: InstanceOperation::Restart,
    });
    h.expect_phases(&[InstancePhase::Starting]).await;
    let second = h.process().await;
    assert_eq!(second.number, first.number + 1);
    h.expect_phases(&[InstancePhase::Ready]).await;

    // A restart while busy hands the job back as lost with its server (retried elsewhere).
    let job = run_job(vec![]);
    h.addr.do_send(job.clone());
    h.run().await;
    h.addr.do_send(InstanceOrder {
        operation: InstanceOperation::Restart,
    });
    let restarting = h.expect_phases(&[InstancePhase::Restarting]).await;
    assert_eq!(restarting[0].detail.as_deref(), Some("operator restart"));
    let lost = h.finished().await;
    assert_eq!(lost.job, job.job);
    match &lost.result {
        Err(failure @ JobFailure::ServerLost { cause, .. }) => {
            assert!(failure.is_retriable());
            assert!(cause.contains("operator restart"), "{cause}");
        }
        other => panic!("lost with its server: {other:?}"),
    }
    assert_eq!(next(&h.launcher.stops, "the stop").await, second.number);
    h.expect_phases(&[InstancePhase::Starting]).await;
    assert_eq!(h.process().await.number, second.number + 1);
    h.expect_phases(&[InstancePhase::Ready]).await;
    h.addr
        .send(Shutdown {
            deadline: Duration::ZERO,
        })
        .await
        .unwrap();
}
