//! The scheduler actor: a thin shell that receives messages, asks [`SchedulerPolicy`] what to
//! do, and delivers the result (runs and cancels to instances, events to submitters).
//!
//! Delivery: events go with `do_send` (never refused for a full mailbox; a submitter that went
//! away is simply not told). `RunJob` goes with `try_send`; if the instance's mailbox is closed
//! the instance is treated as gone and its jobs are retried elsewhere.
//!
//! Operators' orders for an instance (`OperateInstance`) are answered once the policy took them,
//! and passed on to the instance with `do_send`, after every `RunJob` sent to it before.
//!
//! Instances report on one channel ([`InstanceReport`]), so their phase changes, progress and
//! finished jobs are applied in the order they happened. Each phase change applied is also told
//! to the [`PhaseObserver`], if any, so readers outside the actor system see what the scheduler
//! sees, in the same order.
//!
//! `Shutdown` answers once no job is left waiting for a result: at once if idle, when the last
//! running job reports, or at the deadline (remaining jobs are then failed and interrupted).

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Instant, SystemTime};

use actix::dev::SendError;
use actix::fut::ActorFuture;
use actix::prelude::*;

use crate::ids::{InstanceId, JobId};
use crate::job::JobEvent;
use crate::messages::{
    Cancel, CancelError, CancelJob, DeregisterInstance, FirstEndOf, GetSchedulerSnapshot,
    GpuSample, InstanceHandle, InstanceReport, ModelsRemoved, RegisterInstance, Shutdown, Submit,
    SubmitError, SubmitReceipt,
};
use crate::ports::PhaseObserver;

use super::config::SchedulerConfig;
use super::job_table::JobTable;
use super::operations::{InstanceOrder, OperateInstance, OperationError, SetQueuePaused};
use super::policy::{SchedulerAction, SchedulerPolicy};

/// The fleet's scheduler actor.
pub struct Scheduler {
    policy: SchedulerPolicy,
    instances: HashMap<InstanceId, InstanceHandle>,
    submitters: HashMap<JobId, Recipient<JobEvent>>,
    drain_waiters: Vec<Waker>,
    /// When the drain ends, and the timer that ends it.
    deadline: Option<(Instant, SpawnHandle)>,
    phases: Option<Box<dyn PhaseObserver>>,
}

impl Scheduler {
    /// A scheduler with `config` (validate it first with [`SchedulerConfig::validate`]).
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            policy: SchedulerPolicy::new(config, Instant::now(), SystemTime::now()),
            instances: HashMap::new(),
            submitters: HashMap::new(),
            drain_waiters: Vec::new(),
            deadline: None,
            phases: None,
        }
    }

    /// Tells `observer` every instance phase change applied from now on, in order.
    pub fn observe_phases(mut self, observer: impl PhaseObserver + 'static) -> Self {
        self.phases = Some(Box::new(observer));
        self
    }

    /// The job table, readable without asking the actor. Take it before starting the actor.
    pub fn table(&self) -> JobTable {
        self.policy.table().clone()
    }

    /// Carries out the policy's decisions; instances found gone are deregistered and their jobs
    /// handled in turn.
    fn apply(&mut self, actions: Vec<SchedulerAction>) {
        let mut pending: VecDeque<SchedulerAction> = actions.into();
        loop {
            let mut lost: Vec<InstanceId> = Vec::new();
            while let Some(action) = pending.pop_front() {
                match action {
                    SchedulerAction::Dispatch { instance, run } => {
                        let Some(handle) = self.instances.get(&instance) else {
                            lost.push(instance);
                            continue;
                        };
                        tracing::info!(job = %run.job, %instance, attempt = run.attempt, "job dispatched");
                        match handle.run.try_send(run) {
                            Ok(()) => {}
                            Err(SendError::Full(run)) => handle.run.do_send(run),
                            Err(SendError::Closed(run)) => {
                                tracing::warn!(job = %run.job, %instance, "instance is gone; its jobs go elsewhere");
                                lost.push(instance);
                            }
                        }
                    }
                    SchedulerAction::CancelOnInstance { instance, job } => {
                        if let Some(handle) = self.instances.get(&instance) {
                            handle.cancel.do_send(CancelJob { job });
                        }
                    }
                    SchedulerAction::Notify(event) => self.notify(event),
                    SchedulerAction::Operate {
                        instance,
                        operation,
                    } => match self.instances.get(&instance) {
                        Some(handle) => handle.operate.do_send(InstanceOrder { operation }),
                        None => lost.push(instance),
                    },
                }
            }
            if lost.is_empty() {
                break;
            }
            lost.sort();
            lost.dedup();
            for instance in lost {
                self.instances.remove(&instance);
                pending.extend(self.policy.deregister_instance(&instance, Instant::now()));
            }
        }
        if self.policy.is_drained() {
            for waker in self.drain_waiters.drain(..) {
                waker.wake();
            }
        }
    }

    fn notify(&mut self, event: JobEvent) {
        let job = event.job();
        if event.is_final() {
            tracing::info!(%job, event = ?event_name(&event), "job ended");
            if let Some(submitter) = self.submitters.remove(&job) {
                submitter.do_send(event);
            }
        } else if let Some(submitter) = self.submitters.get(&job) {
            submitter.do_send(event);
        }
    }
}

fn event_name(event: &JobEvent) -> &'static str {
    match event {
        JobEvent::Done { .. } => "done",
        JobEvent::Failed { .. } => "failed",
        JobEvent::Cancelled { .. } => "cancelled",
        _ => "update",
    }
}

impl Actor for Scheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Submitters await their answer; let bursts queue rather than wait for room.
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<Submit> for Scheduler {
    type Result = Result<SubmitReceipt, SubmitError>;

    fn handle(&mut self, msg: Submit, _ctx: &mut Self::Context) -> Self::Result {
        let job = msg.job.id;
        let (receipt, actions) = self.policy.submit(msg.job, Instant::now())?;
        self.submitters.insert(job, msg.events);
        self.apply(actions);
        Ok(receipt)
    }
}

impl Handler<Cancel> for Scheduler {
    type Result = Result<(), CancelError>;

    fn handle(&mut self, msg: Cancel, _ctx: &mut Self::Context) -> Self::Result {
        let actions = self.policy.cancel(msg.job, Instant::now())?;
        self.apply(actions);
        Ok(())
    }
}

impl Handler<FirstEndOf> for Scheduler {
    type Result = Option<std::time::Duration>;

    fn handle(&mut self, msg: FirstEndOf, _ctx: &mut Self::Context) -> Self::Result {
        self.policy.first_end_of(&msg.user, Instant::now())
    }
}

impl Handler<RegisterInstance> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: RegisterInstance, _ctx: &mut Self::Context) {
        let handle = msg.0;
        let actions =
            self.policy
                .register_instance(handle.id.clone(), handle.gpu.clone(), Instant::now());
        self.instances.insert(handle.id.clone(), handle);
        self.apply(actions);
    }
}

impl Handler<DeregisterInstance> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: DeregisterInstance, _ctx: &mut Self::Context) {
        let actions = self
            .policy
            .deregister_instance(&msg.instance, Instant::now());
        self.apply(actions);
        self.instances.remove(&msg.instance);
    }
}

impl Handler<InstanceReport> for Scheduler {
    type Result = ();

    fn handle(&mut self, report: InstanceReport, _ctx: &mut Self::Context) {
        match report {
            InstanceReport::Phase(update) => {
                tracing::info!(instance = %update.instance, phase = ?update.phase, detail = ?update.detail, "instance phase");
                let actions = self.policy.instance_update(
                    &update.instance,
                    update.phase,
                    update.url.clone(),
                    update.detail.clone(),
                    Instant::now(),
                );
                if let Some(phases) = &self.phases
                    && self.instances.contains_key(&update.instance)
                {
                    phases.phase_applied(&update);
                }
                self.apply(actions);
            }
            InstanceReport::Progress(progress) => {
                let event =
                    self.policy
                        .job_progress(&progress.instance, progress.job, progress.event);
                if let Some(event) = event {
                    self.notify(event);
                }
            }
            InstanceReport::Finished(finished) => {
                let actions = self.policy.job_finished(
                    &finished.instance,
                    finished.job,
                    finished.attempt,
                    finished.result,
                    Instant::now(),
                );
                self.apply(actions);
            }
        }
    }
}

impl Handler<GpuSample> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: GpuSample, _ctx: &mut Self::Context) {
        let actions = self.policy.gpu_sample(msg.gpus, Instant::now());
        self.apply(actions);
    }
}

impl Handler<ModelsRemoved> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: ModelsRemoved, _ctx: &mut Self::Context) {
        self.policy.forget_models(&msg.names);
    }
}

impl Handler<GetSchedulerSnapshot> for Scheduler {
    type Result = MessageResult<GetSchedulerSnapshot>;

    fn handle(&mut self, _msg: GetSchedulerSnapshot, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.policy.snapshot(Instant::now()))
    }
}

impl Handler<SetQueuePaused> for Scheduler {
    type Result = MessageResult<SetQueuePaused>;

    fn handle(&mut self, msg: SetQueuePaused, _ctx: &mut Self::Context) -> Self::Result {
        let (pause, actions) = self.policy.set_paused(msg.paused, Instant::now());
        tracing::info!(
            paused = pause.paused,
            changed = pause.changed,
            queue_depth = pause.queue_depth,
            "operator: queue {}",
            if msg.paused { "paused" } else { "resumed" }
        );
        self.apply(actions);
        MessageResult(pause)
    }
}

impl Handler<OperateInstance> for Scheduler {
    type Result = Result<(), OperationError>;

    fn handle(&mut self, msg: OperateInstance, _ctx: &mut Self::Context) -> Self::Result {
        let actions = self
            .policy
            .operate_instance(&msg.instance, msg.operation, Instant::now())
            .inspect_err(|e| {
                tracing::warn!(instance = %msg.instance, operation = msg.operation.name(), "operator order refused: {e}")
            })?;
        tracing::info!(instance = %msg.instance, operation = msg.operation.name(), "operator order taken");
        self.apply(actions);
        Ok(())
    }
}

impl Handler<Shutdown> for Scheduler {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        tracing::info!(deadline = %humantime::format_duration(msg.deadline), "scheduler shutting down");
        let actions = self.policy.begin_shutdown(Instant::now());
        self.apply(actions);
        // A later stop request may only bring the deadline forward (a second signal: now).
        let due = Instant::now() + msg.deadline;
        let sooner = self.deadline.as_ref().is_none_or(|(at, _)| due < *at);
        if !self.policy.is_drained() && sooner {
            if let Some((_, timer)) = self.deadline.take() {
                ctx.cancel_future(timer);
            }
            let timer = ctx.run_later(msg.deadline, |act, _ctx| {
                tracing::warn!(
                    running = act.policy.running_len(),
                    "shutdown deadline reached; failing the jobs still running"
                );
                let actions = act.policy.finish_shutdown(Instant::now());
                act.apply(actions);
            });
            self.deadline = Some((due, timer));
        }
        Box::pin(Drained)
    }
}

/// Resolves once the scheduler has no job left waiting for a result.
struct Drained;

impl ActorFuture<Scheduler> for Drained {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut Scheduler,
        _ctx: &mut Context<Scheduler>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        if act.policy.is_drained() {
            Poll::Ready(())
        } else {
            if !act.drain_waiters.iter().any(|w| w.will_wake(task.waker())) {
                act.drain_waiters.push(task.waker().clone());
            }
            Poll::Pending
        }
    }
}
