//! The Instance actor: one per managed (or attached) ComfyUI server.
//!
//! A thin shell around its policies: it receives messages and the results of its own futures,
//! hands them to [`Lifecycle`] and [`JobBook`] with the current time, and performs the effects
//! they return, in the order returned, through the [`Launcher`] and [`Backend`] ports.
//! Everything it has to say goes to one recipient as [`InstanceReport`]s, in the order it
//! happened. Every `RunJob` it receives is answered by exactly one `JobFinished` report.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use uuid::Uuid;

use crate::ids::{GpuId, InstanceId, JobId};
use crate::instance::config::{InstanceConfig, InstanceConfigError};
use crate::instance::jobs::{JobBook, JobEffect};
use crate::instance::lifecycle::{Effect, Event, Lifecycle};
use crate::instance::server_calls::{ProbeSettings, bounded, probe_readiness, upload_and_run};
use crate::instance::stop_latch::StopLatch;
use crate::instance::watchdog::Watchdog;
use crate::messages::{CancelJob, InstanceReport, JobProgress, RunJob, Shutdown};
use crate::ports::{Backend, LaunchSpec, Launched, Launcher, ProcessStopper};
use crate::scheduling::operations::{InstanceOperation, InstanceOrder};

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
    /// Receives every report — phase changes, job progress, finished jobs — in the order they
    /// happened: the scheduler.
    pub reports: Recipient<InstanceReport>,
}

/// Why an instance cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InstanceSetupError {
    #[error("instance {instance}: setting `{}` {source}", source.key())]
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
    jobs: JobBook<SpawnHandle>,
    backend: Option<Rc<dyn Backend>>,
    stopper: Option<Rc<dyn ProcessStopper>>,
    probe: Option<SpawnHandle>,
    stopped: StopLatch,
    /// Events raised while effects are being performed, handled next in order.
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
            jobs: JobBook::new(setup.id.clone(), Watchdog::new(setup.config.job_silence)),
            id: setup.id,
            gpu: setup.gpu,
            config: setup.config,
            mode: setup.mode,
            backend_factory: setup.backend_factory,
            reports: setup.reports,
            lifecycle,
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
            Effect::AbortJobs { reason, interrupt } => {
                let fx = self.jobs.abort_all(&reason, interrupt);
                self.perform_jobs(fx, ctx);
            }
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

    /// Performs the job book's effects in the order returned.
    fn perform_jobs(&mut self, fx: Vec<JobEffect<SpawnHandle>>, ctx: &mut Context<Self>) {
        for effect in fx {
            match effect {
                JobEffect::StopRun(handle) => {
                    ctx.cancel_future(handle);
                }
                JobEffect::Interrupt { job, prompt_id } => {
                    self.interrupt(job, prompt_id, None, ctx)
                }
                JobEffect::Watch {
                    job,
                    attempt,
                    after,
                } => {
                    ctx.run_later(after, move |act, ctx| {
                        let fx = act.jobs.check_silence(job, attempt, Instant::now());
                        act.perform_jobs(fx, ctx);
                    });
                }
                JobEffect::AskStatus {
                    job,
                    attempt,
                    prompt_id,
                    silent_for,
                } => {
                    let backend = self.backend.clone();
                    let control = self.config.control_timeout;
                    let ask = async move {
                        match backend {
                            Some(backend) => {
                                bounded(control, backend.prompt_status(prompt_id)).await
                            }
                            None => Err("no server to ask".to_string()),
                        }
                    };
                    ctx.spawn(ask.into_actor(self).map(move |status, act, ctx| {
                        let fx = act.jobs.status_answered(
                            job,
                            attempt,
                            silent_for,
                            status,
                            Instant::now(),
                        );
                        act.perform_jobs(fx, ctx);
                    }));
                }
                JobEffect::InterruptHung {
                    job,
                    prompt_id,
                    generation,
                    silent_for,
                } => {
                    let hung = Event::JobHung {
                        generation,
                        job,
                        silent_for,
                    };
                    self.interrupt(job, prompt_id, Some(hung), ctx);
                }
                JobEffect::Report(finished) => {
                    self.reports.do_send(InstanceReport::Finished(finished));
                }
                JobEffect::Busy => self.apply(Event::JobsStarted, ctx),
                JobEffect::Idle => self.apply(Event::JobsIdle, ctx),
            }
        }
    }

    /// Asks ComfyUI to interrupt `prompt_id`, then applies `then`, if any.
    fn interrupt(
        &mut self,
        job: JobId,
        prompt_id: Uuid,
        then: Option<Event>,
        ctx: &mut Context<Self>,
    ) {
        let backend = self.backend.clone();
        let control = self.config.control_timeout;
        let id = self.id.clone();
        let call = async move {
            let Some(backend) = backend else { return };
            match bounded(control, backend.cancel(prompt_id)).await {
                Ok(()) => tracing::info!(instance = %id, %job, %prompt_id, "prompt interrupted"),
                Err(e) => {
                    tracing::warn!(instance = %id, %job, %prompt_id, error = %e, "could not interrupt the prompt")
                }
            }
        };
        ctx.spawn(call.into_actor(self).map(move |(), act, ctx| {
            if let Some(event) = then {
                act.apply(event, ctx);
            }
        }));
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
        let settings = ProbeSettings {
            poll: self.config.readiness_poll,
            control: self.config.control_timeout,
            warmup: self.config.warmup_prompt.clone(),
        };
        let probe = probe_readiness(backend, self.id.clone(), settings);
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
        let ping = async move { bounded(control, backend.ping()).await };
        ctx.spawn(ping.into_actor(self).map(move |result, act, ctx| {
            act.apply(Event::HealthChecked { epoch, result }, ctx);
        }));
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
        let RunJob {
            job,
            attempt,
            run,
            inputs,
        } = msg;
        let backend = match &self.backend {
            Some(backend) if self.lifecycle.accepts_jobs() => Rc::clone(backend),
            _ => {
                let fx = self.jobs.refuse(job, attempt, self.lifecycle.phase());
                return self.perform_jobs(fx, ctx);
            }
        };
        let generation = self.lifecycle.generation();
        let accepted = self
            .jobs
            .accept(job, attempt, run.prompt_id, generation, Instant::now());
        let (activity, fx) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // The first RunJob's report answers for this job.
                tracing::error!(instance = %self.id, %job, attempt, %error, "duplicate RunJob ignored");
                return;
            }
        };
        tracing::info!(
            instance = %self.id, gpu = %self.gpu_name(), %job, attempt,
            inputs = inputs.len(), "job accepted"
        );
        let (reports, instance) = (self.reports.clone(), self.id.clone());
        let events = Box::new(move |event| {
            reports.do_send(InstanceReport::Progress(JobProgress {
                instance: instance.clone(),
                job,
                event,
            }));
        });
        let run = upload_and_run(backend, self.id.clone(), job, run, inputs, activity, events);
        let handle = ctx.spawn(run.into_actor(self).map(move |result, act, ctx| {
            let fx = act.jobs.finished(job, attempt, result);
            act.perform_jobs(fx, ctx);
        }));
        self.jobs.attach(job, attempt, handle);
        self.perform_jobs(fx, ctx);
    }
}

impl Handler<CancelJob> for Instance {
    type Result = ();

    fn handle(&mut self, msg: CancelJob, ctx: &mut Context<Self>) {
        let fx = self.jobs.cancel(msg.job);
        self.perform_jobs(fx, ctx);
    }
}

impl Handler<InstanceOrder> for Instance {
    type Result = ();

    fn handle(&mut self, msg: InstanceOrder, ctx: &mut Context<Self>) {
        tracing::info!(
            instance = %self.id, gpu = %self.gpu_name(), operation = msg.operation.name(),
            state = self.lifecycle.state().name(), jobs = self.jobs.len(), "operator order"
        );
        let event = match msg.operation {
            InstanceOperation::Drain => Event::Drain,
            InstanceOperation::Restart => Event::Restart,
        };
        self.apply(event, ctx);
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
