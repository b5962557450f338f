//! The Instance actor: one per managed (or attached) ComfyUI server.
//!
//! A thin shell around [`Lifecycle`], [`Watchdog`] and [`JobBook`]: it receives messages and
//! the results of its own futures, feeds them to the policies with the current time, and
//! performs the effects they return through the [`Launcher`] and [`Backend`] ports. Every
//! `RunJob` it accepts is answered by exactly one `JobFinished`.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::clock::{sleep, timeout};
use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use uuid::Uuid;

use crate::ids::{GpuId, InstanceId, JobId};
use crate::instance::config::{InstanceConfig, InstanceConfigError};
use crate::instance::jobs::JobBook;
use crate::instance::lifecycle::{AbortReason, CrashCause, Effect, Event, Lifecycle};
use crate::instance::stop_latch::StopLatch;
use crate::instance::watchdog::{Silence, Watchdog, WatchdogAction};
use crate::messages::{CancelJob, InstanceReport, JobFinished, JobProgress, RunJob, Shutdown};
use crate::ports::{
    Backend, BackendError, LaunchSpec, Launched, Launcher, ProcessStopper, PromptRun, PromptStatus,
    RunResult,
};

/// Makes the backend client of a server from its base URL.
pub type BackendFactory = Box<dyn Fn(&str) -> Rc<dyn Backend>>;

/// How the instance gets its server.
pub enum InstanceMode {
    /// comfy-fleet launches (and stops, and restarts) the process.
    Managed {
        spec: LaunchSpec,
        launcher: Rc<dyn Launcher>,
    },
    /// A remote server comfy-fleet does not launch: a crash means unreachable, and a restart
    /// means probing it again.
    Attach { url: String },
}

/// Everything an instance needs.
pub struct InstanceSetup {
    pub id: InstanceId,
    pub gpu: Option<GpuId>,
    pub mode: InstanceMode,
    pub config: InstanceConfig,
    pub backend_factory: BackendFactory,
    /// Receives every report — phase changes, job progress, finished jobs (one per `RunJob`)
    /// — in the order they happened: the scheduler.
    pub reports: Recipient<InstanceReport>,
}

/// Why an instance cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InstanceSetupError {
    #[error("instance {instance}: {source}")]
    Config {
        instance: InstanceId,
        #[source]
        source: InstanceConfigError,
    },
    #[error(
        "instance {instance}: the attach URL is empty; give the remote ComfyUI's base URL, e.g. http://10.0.0.5:8188"
    )]
    EmptyAttachUrl { instance: InstanceId },
}

/// The Instance actor. Build with [`Instance::new`], then `start()` it on an arbiter.
pub struct Instance {
    id: InstanceId,
    gpu: Option<GpuId>,
    config: InstanceConfig,
    mode: InstanceMode,
    backend_factory: BackendFactory,
    reports: Recipient<InstanceReport>,
    lifecycle: Lifecycle,
    watchdog: Watchdog,
    jobs: JobBook<SpawnHandle>,
    backend: Option<Rc<dyn Backend>>,
    stopper: Option<Rc<dyn ProcessStopper>>,
    probe: Option<SpawnHandle>,
    stopped: StopLatch,
    events: VecDeque<Event>,
    applying: bool,
}

impl Instance {
    /// Checks the setup; the instance launches (or probes) its server once started.
    pub fn new(setup: InstanceSetup) -> Result<Self, InstanceSetupError> {
        setup
            .config
            .validate()
            .map_err(|source| InstanceSetupError::Config {
                instance: setup.id.clone(),
                source,
            })?;
        if let InstanceMode::Attach { url } = &setup.mode
            && url.trim().is_empty()
        {
            return Err(InstanceSetupError::EmptyAttachUrl { instance: setup.id });
        }
        let managed = matches!(setup.mode, InstanceMode::Managed { .. });
        let lifecycle = Lifecycle::new(
            setup.id.clone(),
            setup.gpu.clone(),
            managed,
            &setup.config,
            Box::new(rand::random::<f64>),
        );
        Ok(Self {
            watchdog: Watchdog::new(setup.config.job_silence),
            id: setup.id,
            gpu: setup.gpu,
            config: setup.config,
            mode: setup.mode,
            backend_factory: setup.backend_factory,
            reports: setup.reports,
            lifecycle,
            jobs: JobBook::default(),
            backend: None,
            stopper: None,
            probe: None,
            stopped: StopLatch::default(),
            events: VecDeque::new(),
            applying: false,
        })
    }

    fn gpu_name(&self) -> String {
        self.gpu
            .as_ref()
            .map_or_else(|| "none".to_string(), ToString::to_string)
    }

    fn url(&self) -> String {
        match (self.lifecycle.url(), &self.mode) {
            (Some(url), _) => url.to_string(),
            (None, InstanceMode::Attach { url }) => url.clone(),
            (None, InstanceMode::Managed { .. }) => format!("instance {}", self.id),
        }
    }

    /// Feeds an event to the lifecycle and performs its effects in the order returned; events
    /// raised while performing are queued and handled in order.
    fn apply(&mut self, event: Event, ctx: &mut Context<Self>) {
        self.events.push_back(event);
        if self.applying {
            return;
        }
        self.applying = true;
        while let Some(event) = self.events.pop_front() {
            for effect in self.lifecycle.handle(event, Instant::now()) {
                self.perform(effect, ctx);
            }
        }
        self.applying = false;
    }

    fn perform(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        match effect {
            Effect::Launch { generation } => self.launch(generation, ctx),
            Effect::ProbeReadiness { generation } => self.probe_readiness(generation, ctx),
            Effect::CancelProbe => {
                if let Some(handle) = self.probe.take() {
                    ctx.cancel_future(handle);
                }
            }
            Effect::Ping { epoch } => self.ping(epoch, ctx),
            Effect::StopProcess { grace } => {
                if let Some(stopper) = self.stopper.clone() {
                    self.spawn_stop(stopper.stop(grace), ctx);
                }
            }
            Effect::AbortJobs { reason, interrupt } => self.abort_jobs(&reason, interrupt, ctx),
            Effect::Arm {
                timer,
                after,
                epoch,
            } => {
                ctx.run_later(after, move |act, ctx| {
                    act.apply(Event::TimerFired { timer, epoch }, ctx);
                });
            }
            Effect::Report(update) => self.reports.do_send(InstanceReport::Phase(update)),
            Effect::ShutdownComplete => self.stopped.shutdown_complete(),
        }
    }

    /// Runs a stop; a shutdown is confirmed only once it has finished, so the launcher's
    /// clean-up (ephemeral files, the on-disk record) is done before the program exits.
    fn spawn_stop(&mut self, stop: LocalBoxFuture<'static, ()>, ctx: &mut Context<Self>) {
        self.stopped.stop_started();
        let stopped = self.stopped.clone();
        ctx.spawn(
            async move {
                stop.await;
                stopped.stop_finished();
            }
            .into_actor(self),
        );
    }

    fn launch(&mut self, generation: u64, ctx: &mut Context<Self>) {
        match &self.mode {
            InstanceMode::Attach { url } => {
                let url = url.clone();
                self.backend = Some((self.backend_factory)(&url));
                self.events.push_back(Event::Launched { generation, url });
            }
            InstanceMode::Managed { spec, launcher } => {
                let launcher = Rc::clone(launcher);
                let spec = spec.clone();
                let fut = async move { launcher.launch(spec).await };
                ctx.spawn(
                    fut.into_actor(self)
                        .map(move |outcome, act, ctx| match outcome {
                            Ok(launched) => act.adopt(generation, launched, ctx),
                            Err(error) => act.apply(
                                Event::LaunchFailed {
                                    generation,
                                    reason: error.to_string(),
                                },
                                ctx,
                            ),
                        }),
                );
            }
        }
    }

    /// Takes over a launched process, or stops it when the start was given up meanwhile.
    fn adopt(&mut self, generation: u64, launched: Launched, ctx: &mut Context<Self>) {
        let Launched {
            pid,
            url,
            exited,
            stopper,
            ..
        } = launched;
        if !self.lifecycle.accepts_launch(generation) {
            tracing::warn!(
                instance = %self.id, gpu = %self.gpu_name(), pid, %url,
                "a launch completed after its start was given up; stopping that process"
            );
            self.spawn_stop(stopper.stop(self.config.stop_grace), ctx);
            ctx.spawn(
                async move {
                    exited.await;
                }
                .into_actor(self),
            );
            return;
        }
        tracing::info!(instance = %self.id, gpu = %self.gpu_name(), pid, %url, generation, "process launched");
        self.stopper = Some(Rc::from(stopper));
        self.backend = Some((self.backend_factory)(&url));
        ctx.spawn(exited.into_actor(self).map(move |exit, act, ctx| {
            tracing::info!(instance = %act.id, gpu = %act.gpu_name(), pid, %exit, generation, "process exited");
            if generation == act.lifecycle.generation() {
                act.stopper = None;
            }
            act.apply(
                Event::ProcessExited {
                    generation,
                    exit: exit.to_string(),
                },
                ctx,
            );
        }));
        self.apply(Event::Launched { generation, url }, ctx);
    }

    fn probe_readiness(&mut self, generation: u64, ctx: &mut Context<Self>) {
        let Some(backend) = self.backend.clone() else {
            self.events.push_back(Event::ReadinessFailed {
                generation,
                reason: "no backend to probe".into(),
            });
            return;
        };
        let poll = self.config.readiness_poll;
        let control = self.config.control_timeout;
        let warmup = self.config.warmup_prompt.clone();
        let id = self.id.clone();
        let probe = async move {
            wait_until_ok(poll, || async {
                flatten(timeout(control, backend.ping()).await, control)
            })
            .await;
            tracing::debug!(instance = %id, "HTTP up; loading object_info");
            wait_until_ok(poll, || backend.object_info()).await;
            if let Some(prompt) = warmup {
                tracing::info!(instance = %id, "running the warm-up prompt");
                let run = PromptRun {
                    prompt_id: Uuid::new_v4(),
                    prompt,
                    extra_data: serde_json::json!({}),
                };
                backend
                    .run(run, Box::new(|_| {}))
                    .await
                    .map_err(|e| format!("the warm-up prompt failed: {e}"))?;
            }
            Ok::<(), String>(())
        };
        let handle = ctx.spawn(probe.into_actor(self).map(move |outcome, act, ctx| {
            act.probe = None;
            let event = match outcome {
                Ok(()) => Event::ReadinessPassed { generation },
                Err(reason) => Event::ReadinessFailed { generation, reason },
            };
            act.apply(event, ctx);
        }));
        self.probe = Some(handle);
    }

    fn ping(&mut self, epoch: u64, ctx: &mut Context<Self>) {
        let Some(backend) = self.backend.clone() else {
            self.events.push_back(Event::HealthChecked {
                epoch,
                result: Err("no backend".into()),
            });
            return;
        };
        let control = self.config.control_timeout;
        let fut = async move { flatten(timeout(control, backend.ping()).await, control) };
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            act.apply(Event::HealthChecked { epoch, result }, ctx);
        }));
    }

    fn abort_jobs(&mut self, reason: &AbortReason, interrupt: bool, ctx: &mut Context<Self>) {
        let url = self.url();
        for entry in self.jobs.take_all() {
            if let Some(handle) = entry.handle {
                ctx.cancel_future(handle);
            }
            if interrupt && let Some(backend) = self.backend.clone() {
                let control = self.config.control_timeout;
                let prompt_id = entry.prompt_id;
                let fut = async move {
                    if let Err(e) =
                        flatten(timeout(control, backend.cancel(prompt_id)).await, control)
                    {
                        tracing::warn!(%prompt_id, error = %e, "could not cancel an abandoned prompt");
                    }
                };
                ctx.spawn(fut.into_actor(self));
            }
            let error = match reason {
                AbortReason::Crash(CrashCause::JobHung { job, silent_for })
                    if *job == entry.job =>
                {
                    BackendError::Silent {
                        silent_for: *silent_for,
                    }
                }
                AbortReason::Crash(cause) => BackendError::Unreachable {
                    url: url.clone(),
                    reason: format!("instance {} failed under the job: {cause}", self.id),
                },
                AbortReason::Shutdown => BackendError::Unreachable {
                    url: url.clone(),
                    reason: format!(
                        "instance {} is shutting down and cancelled the job before it finished",
                        self.id
                    ),
                },
            };
            tracing::warn!(
                instance = %self.id, gpu = %self.gpu_name(), job = %entry.job,
                attempt = entry.attempt, %error, "job given up, retriable"
            );
            self.report_finished(entry.job, entry.attempt, Err(error));
        }
    }

    fn report_finished(&self, job: JobId, attempt: u32, result: Result<RunResult, BackendError>) {
        self.reports.do_send(InstanceReport::Finished(JobFinished {
            instance: self.id.clone(),
            job,
            attempt,
            result,
        }));
    }

    fn refuse(&self, msg: &RunJob) {
        let error = BackendError::Unreachable {
            url: self.url(),
            reason: format!(
                "instance {} is {:?} and takes no jobs",
                self.id,
                self.lifecycle.phase()
            ),
        };
        tracing::info!(instance = %self.id, job = %msg.job, %error, "job refused");
        self.report_finished(msg.job, msg.attempt, Err(error));
    }

    fn on_job_result(
        &mut self,
        job: JobId,
        attempt: u32,
        result: Result<RunResult, BackendError>,
        ctx: &mut Context<Self>,
    ) {
        if self.jobs.finish(job, attempt).is_none() {
            return;
        }
        match &result {
            Ok(run) => tracing::info!(
                instance = %self.id, gpu = %self.gpu_name(), %job, attempt,
                outputs = run.outputs.len(), "job finished"
            ),
            Err(error) => tracing::info!(
                instance = %self.id, gpu = %self.gpu_name(), %job, attempt,
                %error, retriable = error.is_retriable(), "job failed"
            ),
        }
        self.report_finished(job, attempt, result);
        if self.jobs.is_empty() {
            self.apply(Event::JobsIdle, ctx);
        }
    }

    fn arm_watchdog(&self, job: JobId, attempt: u32, after: Duration, ctx: &mut Context<Self>) {
        ctx.run_later(after, move |act, ctx| act.check_silence(job, attempt, ctx));
    }

    fn check_silence(&mut self, job: JobId, attempt: u32, ctx: &mut Context<Self>) {
        let Some(backend) = self.backend.clone() else {
            return;
        };
        let Some(entry) = self.jobs.get_mut(job, attempt) else {
            return;
        };
        match self.watchdog.check(entry.activity.last(), Instant::now()) {
            Silence::Within { remaining } => self.arm_watchdog(job, attempt, remaining, ctx),
            Silence::Exceeded { silent_for } => {
                if entry.checking {
                    return;
                }
                entry.checking = true;
                let prompt_id = entry.prompt_id;
                tracing::warn!(
                    instance = %self.id, gpu = %self.gpu_name(), %job, attempt,
                    silent_for = %humantime::format_duration(silent_for),
                    "job silent; asking ComfyUI where it stands"
                );
                let control = self.config.control_timeout;
                let fut = async move {
                    flatten(
                        timeout(control, backend.prompt_status(prompt_id)).await,
                        control,
                    )
                };
                ctx.spawn(fut.into_actor(self).map(move |status, act, ctx| {
                    act.on_watchdog_status(job, attempt, silent_for, status, ctx);
                }));
            }
        }
    }

    fn on_watchdog_status(
        &mut self,
        job: JobId,
        attempt: u32,
        silent_for: Duration,
        status: Result<PromptStatus, String>,
        ctx: &mut Context<Self>,
    ) {
        let gpu = self.gpu_name();
        let Some(entry) = self.jobs.get_mut(job, attempt) else {
            return;
        };
        entry.checking = false;
        let action = self.watchdog.decide(status.clone(), entry.view());
        tracing::warn!(
            instance = %self.id, %gpu, %job, attempt,
            status = ?status, action = ?action, "watchdog decision"
        );
        match action {
            WatchdogAction::InterruptAndRestart => {
                let generation = entry.generation;
                let prompt_id = entry.prompt_id;
                let control = self.config.control_timeout;
                let backend = self.backend.clone();
                let fut = async move {
                    if let Some(backend) = backend
                        && let Err(e) =
                            flatten(timeout(control, backend.cancel(prompt_id)).await, control)
                    {
                        tracing::warn!(%prompt_id, error = %e, "could not interrupt the hung prompt");
                    }
                };
                ctx.spawn(fut.into_actor(self).map(move |(), act, ctx| {
                    act.apply(
                        Event::JobHung {
                            generation,
                            job,
                            silent_for,
                        },
                        ctx,
                    );
                }));
            }
            WatchdogAction::AwaitReconcile => {
                entry.reconciling = true;
                entry.activity.touch(Instant::now());
                let silence = self.watchdog.silence();
                self.arm_watchdog(job, attempt, silence, ctx);
            }
            WatchdogAction::GiveUp(error) => {
                if let Some(entry) = self.jobs.finish(job, attempt) {
                    if let Some(handle) = entry.handle {
                        ctx.cancel_future(handle);
                    }
                    self.report_finished(job, attempt, Err(error));
                    if self.jobs.is_empty() {
                        self.apply(Event::JobsIdle, ctx);
                    }
                }
            }
        }
    }
}

/// Calls `attempt` until it succeeds, pausing `poll` between tries (bounded by the caller).
async fn wait_until_ok<T, E, F, Fut>(poll: Duration, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    while attempt().await.is_err() {
        sleep(poll).await;
    }
}

/// A control call bounded by a timeout, reduced to its error text.
fn flatten<T, Elapsed>(
    outcome: Result<Result<T, BackendError>, Elapsed>,
    limit: Duration,
) -> Result<T, String> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "no answer within {}",
            humantime::format_duration(limit)
        )),
    }
}

impl Actor for Instance {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(
            instance = %self.id, gpu = %self.gpu_name(),
            mode = match self.mode { InstanceMode::Managed { .. } => "managed", InstanceMode::Attach { .. } => "attach" },
            "instance starting"
        );
        self.apply(Event::Start, ctx);
    }
}

impl Handler<RunJob> for Instance {
    type Result = ();

    fn handle(&mut self, msg: RunJob, ctx: &mut Context<Self>) {
        let backend = match (&self.backend, self.lifecycle.accepts_jobs()) {
            (Some(backend), true) => Rc::clone(backend),
            _ => return self.refuse(&msg),
        };
        let RunJob {
            job,
            attempt,
            run,
            inputs,
        } = msg;
        let now = Instant::now();
        let generation = self.lifecycle.generation();
        let activity = match self
            .jobs
            .accept(job, attempt, run.prompt_id, generation, now)
        {
            Ok(activity) => activity,
            Err(error) => {
                // The first RunJob's JobFinished answers for this job.
                tracing::error!(instance = %self.id, %job, attempt, %error, "duplicate RunJob ignored");
                return;
            }
        };
        tracing::info!(
            instance = %self.id, gpu = %self.gpu_name(), %job, attempt,
            inputs = inputs.len(), "job accepted"
        );
        let reports = self.reports.clone();
        let instance = self.id.clone();
        let fut = async move {
            for input in inputs {
                let wanted = if input.subfolder.is_empty() {
                    input.name.clone()
                } else {
                    format!("{}/{}", input.subfolder, input.name)
                };
                let stored = backend.upload(input).await?;
                if stored != wanted {
                    tracing::warn!(%instance, %job, %wanted, %stored, "ComfyUI stored the upload under another name");
                }
                activity.touch(Instant::now());
            }
            activity.mark_submitted();
            activity.touch(Instant::now());
            let sink_activity = Rc::clone(&activity);
            let sink = Box::new(move |event| {
                sink_activity.touch(Instant::now());
                reports.do_send(InstanceReport::Progress(JobProgress {
                    instance: instance.clone(),
                    job,
                    event,
                }));
            });
            backend.run(run, sink).await
        };
        let handle = ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            act.on_job_result(job, attempt, result, ctx);
        }));
        if let Some(entry) = self.jobs.get_mut(job, attempt) {
            entry.handle = Some(handle);
        }
        self.arm_watchdog(job, attempt, self.watchdog.silence(), ctx);
        if self.jobs.len() == 1 {
            self.apply(Event::JobsStarted, ctx);
        }
    }
}

impl Handler<CancelJob> for Instance {
    type Result = ();

    fn handle(&mut self, msg: CancelJob, ctx: &mut Context<Self>) {
        let Some(entry) = self.jobs.get(msg.job) else {
            tracing::debug!(instance = %self.id, job = %msg.job, "cancel for a job not running here");
            return;
        };
        let attempt = entry.attempt;
        if !entry.activity.submitted() {
            // Still uploading: nothing reached ComfyUI's queue yet.
            if let Some(entry) = self.jobs.finish(msg.job, attempt) {
                if let Some(handle) = entry.handle {
                    ctx.cancel_future(handle);
                }
                tracing::info!(instance = %self.id, job = %msg.job, "job cancelled before submission");
                self.report_finished(msg.job, attempt, Err(BackendError::Interrupted));
                if self.jobs.is_empty() {
                    self.apply(Event::JobsIdle, ctx);
                }
            }
            return;
        }
        let Some(backend) = self.backend.clone() else {
            return;
        };
        let prompt_id = entry.prompt_id;
        let control = self.config.control_timeout;
        let id = self.id.clone();
        let job = msg.job;
        let fut = async move {
            match flatten(timeout(control, backend.cancel(prompt_id)).await, control) {
                Ok(()) => tracing::info!(instance = %id, %job, "job interrupted on request"),
                Err(e) => {
                    tracing::warn!(instance = %id, %job, error = %e, "could not interrupt the job")
                }
            }
        };
        ctx.spawn(fut.into_actor(self));
    }
}

impl Handler<Shutdown> for Instance {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        tracing::info!(
            instance = %self.id, gpu = %self.gpu_name(),
            deadline = %humantime::format_duration(msg.deadline), jobs = self.jobs.len(),
            "shutdown requested"
        );
        let wait = self.stopped.wait();
        self.apply(
            Event::Shutdown {
                deadline: msg.deadline,
            },
            ctx,
        );
        Box::pin(wait)
    }
}
