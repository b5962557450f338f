//! The scheduler's decisions, as plain synchronous code: what to run where, when to retry, what
//! to tell submitters. Time is passed in (`now`), so every decision is deterministic and tested
//! without actors.
//!
//! Each operation returns the [`SchedulerAction`]s the actor must carry out, in order.
//!
//! Choices made here:
//! - **Cancel of a running job** marks it cancelled at once (the submitter gets `Cancelled`
//!   immediately) and asks its instance to interrupt it. Its pipeline slot stays taken until the
//!   instance reports the attempt finished (or stops), so a GPU is never given more work than
//!   the pipeline depth; whatever the instance reports for it is ignored.
//! - **Instances that stop or go away** (`Stopped` phase, deregistered, re-registered, or whose
//!   mailbox is closed) cannot report their jobs any more: the scheduler requeues those jobs itself
//!   as retriable failures (counting as an attempt). Instances that crash, restart or are
//!   quarantined do report each job (`JobFinished` with a retriable error), so the scheduler waits
//!   for those reports.
//! - **Retries** go to the front of their priority class, on another instance when one can take
//!   them, and are never refused for a full queue.
//! - **Shutdown** stops taking jobs and dispatches nothing more; queued jobs are failed at once
//!   (they could not run any more), running jobs may finish until the deadline, then they are
//!   failed and their instances asked to interrupt them.
//! - **Attempts** after the first run under a fresh ComfyUI `prompt_id`; the first uses the job id.
//! - **Placement with look-ahead**: the head of the queue goes where placement puts it (its
//!   models loaded first, then idle, then least loaded). When no free instance has the head's
//!   models, a free instance may instead take the first job of the look-ahead window
//!   (`affinity_lookahead` jobs of the head's priority class and fair-share round, see
//!   `queue.rs`) whose models it has loaded; the head stays first in line and is passed over at
//!   most `max_overtakes` times. When no job in the window suits a free instance, the head goes.
//! - **Position updates** are throttled (`position_updates.rs`): a queued job is told its
//!   position when it first queues, at every change among the first `position_updates_first`
//!   positions, and further back only when it moved by `position_update_change` of its last told
//!   position. Everyone queued is told again (new ETA) when the fleet's pace changed by
//!   `eta_update_change` since everyone was last told. The job table always shows the exact
//!   position (read from the queue).
//! - **Operators** may pause the queue (submissions are still queued and told their position,
//!   nothing new is dispatched, running jobs go on; resuming dispatches at once), drain an
//!   instance (no new job is placed on it from then on; it finishes its jobs and stops) or
//!   restart one (it counts as restarting at once, so no job is placed on the process about to
//!   stop; the jobs it hands back are retried as after a crash). The instance carries the order
//!   out and reports its phases as usual.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use uuid::Uuid;

use crate::ids::{GpuId, InstanceId, JobId, UserId};
use crate::job::{JobEvent, JobState};
use crate::messages::{
    CancelError, InstancePhase, JobFailure, JobSpec, RunJob, SubmitError, SubmitReceipt,
};
use crate::ports::{BackendError, ExecutionEvent, GpuInfo, PromptRun, RunResult};

use super::config::SchedulerConfig;
use super::eta::EtaModel;
use super::instance_slot::InstanceSlot;
use super::job_table::{JobRecord, JobTable};
use super::model_sets::ModelSets;
use super::operations::{InstanceOperation, OperationError, QueuePause};
use super::placement::{JobNeeds, PlacementRules};
use super::position_updates::PositionUpdates;
use super::prompt_store::{PromptStore, StoredPrompt};
use super::queue::{FairQueue, QueueError};
use super::recent_jobs::RecentJobs;
use super::snapshot::{InstanceSnapshot, SchedulerSnapshot};

/// What a queued job is told when the fleet shuts down before it ran.
pub const SHUTDOWN_QUEUED: &str = "the fleet shut down before this job ran; submit it again";
/// What a running job is told when the fleet shuts down before it finished.
pub const SHUTDOWN_RUNNING: &str = "the fleet shut down before this job finished; submit it again";

/// When a full queue is expected to take one more job: the fleet's time per job (whole
/// seconds, at least one), or a minute before any job has finished.
fn queue_full_retry_after(pace: Option<f64>) -> Duration {
    match pace {
        Some(secs) if secs.is_finite() => Duration::from_secs((secs.ceil() as u64).max(1)),
        _ => Duration::from_secs(60),
    }
}

/// Something the actor must do on the policy's behalf.
#[derive(Debug, Clone)]
pub enum SchedulerAction {
    /// Send `run` to `instance`.
    Dispatch { instance: InstanceId, run: RunJob },
    /// Ask `instance` to stop working on `job`.
    CancelOnInstance { instance: InstanceId, job: JobId },
    /// Tell the job's submitter.
    Notify(JobEvent),
    /// Pass an operator's order on to `instance`.
    Operate {
        instance: InstanceId,
        operation: InstanceOperation,
    },
}

#[derive(Debug, Clone)]
enum Stage {
    /// Waiting in the queue.
    Queued,
    Running {
        instance: InstanceId,
        started_at: Instant,
    },
}

/// A job the scheduler still owns (queued or running).
#[derive(Debug, Clone)]
struct LiveJob {
    /// The job as submitted, but for its prompt and models (kept in `prompt` and `models`).
    spec: JobSpec,
    prompt: StoredPrompt,
    models: Arc<[String]>,
    /// Attempts started so far.
    attempt: u32,
    failed_on: Vec<InstanceId>,
    submitted_at: Instant,
    stage: Stage,
}

/// The scheduler's state and decisions.
#[derive(Debug)]
pub struct SchedulerPolicy {
    config: SchedulerConfig,
    rules: PlacementRules,
    queue: FairQueue,
    updates: PositionUpdates,
    /// The fleet's pace (seconds per job) when every queued job was last told its ETA.
    told_pace: Option<f64>,
    jobs: HashMap<JobId, LiveJob>,
    instances: BTreeMap<InstanceId, InstanceSlot>,
    gpus: HashMap<GpuId, GpuInfo>,
    eta: EtaModel,
    /// What waiting jobs hold of their prompts and model lists.
    prompts: PromptStore,
    model_sets: ModelSets,
    recent: RecentJobs,
    table: JobTable,
    started_instant: Instant,
    started_wall: SystemTime,
    shutting_down: bool,
    /// An operator paused dispatching.
    paused: bool,
    actions: Vec<SchedulerAction>,
}

impl SchedulerPolicy {
    /// A scheduler starting at `now`, which is `wall` on the wall clock (for the job table's
    /// timestamps).
    pub fn new(config: SchedulerConfig, now: Instant, wall: SystemTime) -> Self {
        let queue = FairQueue::new(config.queue_capacity);
        let table = JobTable::with_positions(config.job_retention, queue.positions());
        Self {
            rules: PlacementRules {
                pipeline_depth: config.pipeline_depth,
                vram_headroom_bytes: config.vram_headroom_bytes(),
            },
            queue,
            updates: PositionUpdates {
                first: config.position_updates_first,
                change: config.position_update_change,
            },
            told_pace: None,
            jobs: HashMap::new(),
            instances: BTreeMap::new(),
            gpus: HashMap::new(),
            eta: EtaModel::new(config.eta_smoothing),
            prompts: PromptStore::default(),
            model_sets: ModelSets::default(),
            recent: RecentJobs::new(config.stats_window, config.stats_samples, now),
            table,
            started_instant: now,
            started_wall: wall,
            shutting_down: false,
            paused: false,
            actions: Vec::new(),
            config,
        }
    }

    /// The shared job table (clone it for readers).
    pub fn table(&self) -> &JobTable {
        &self.table
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Jobs waiting.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Jobs handed to instances whose submitters still wait for them.
    pub fn running_len(&self) -> usize {
        self.jobs.len() - self.queue.len()
    }

    /// Whether an operator paused dispatching.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Shutting down and no job is left waiting for a result.
    pub fn is_drained(&self) -> bool {
        self.shutting_down && self.jobs.is_empty()
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.started_wall + now.saturating_duration_since(self.started_instant)
    }

    // -----------------------------------------------------------------------------------------
    // Submitters
    // -----------------------------------------------------------------------------------------

    /// Queues a job; the submitter is told its position at once.
    pub fn submit(
        &mut self,
        mut spec: JobSpec,
        now: Instant,
    ) -> Result<(SubmitReceipt, Vec<SchedulerAction>), SubmitError> {
        if self.shutting_down {
            return Err(SubmitError::ShuttingDown);
        }
        let id = spec.id;
        if self.jobs.contains_key(&id) || self.table.contains(id) {
            return Err(SubmitError::Duplicate(id));
        }
        let pace = self.eta.pace(self.accepting());
        self.queue
            .push(id, spec.user.clone(), spec.priority)
            .map_err(|e| match e {
                QueueError::Full { capacity } => SubmitError::QueueFull {
                    capacity,
                    retry_after: queue_full_retry_after(pace),
                },
                QueueError::Duplicate(job) => SubmitError::Duplicate(job),
            })?;
        let position = self.queue.position(id).unwrap_or(0);
        let eta = self.estimate(position, &spec.template);
        self.table.insert(JobRecord {
            id,
            user: spec.user.clone(),
            template: spec.template.clone(),
            priority: spec.priority,
            state: JobState::Queued,
            instance: None,
            attempt: 0,
            position: Some(position),
            eta,
            queued_at: self.wall(now),
            started_at: None,
            finished_at: None,
            outputs: Vec::new(),
            error: None,
        });
        self.jobs.insert(
            id,
            LiveJob {
                prompt: self.prompts.keep(std::mem::take(&mut spec.prompt)),
                models: self.model_sets.share(std::mem::take(&mut spec.models)),
                spec,
                attempt: 0,
                failed_on: Vec::new(),
                submitted_at: now,
                stage: Stage::Queued,
            },
        );
        self.queue.mark_told(id, position, &self.updates);
        self.actions.push(SchedulerAction::Notify(JobEvent::Queued {
            job: id,
            position,
            eta,
        }));
        let actions = self.settle(now);
        let position = self.queue.position(id).unwrap_or(0);
        Ok((SubmitReceipt { job: id, position }, actions))
    }

    /// Cancels a queued job (removed) or a running one (interrupted on its instance).
    pub fn cancel(
        &mut self,
        job: JobId,
        now: Instant,
    ) -> Result<Vec<SchedulerAction>, CancelError> {
        let Some(live) = self.jobs.remove(&job) else {
            return Err(match self.table.state(job) {
                Some(state) if state.is_terminal() => CancelError::AlreadyFinished(job),
                _ => CancelError::NotFound(job),
            });
        };
        match live.stage {
            Stage::Queued => {
                self.queue.remove(job);
            }
            Stage::Running { instance, .. } => {
                // The slot stays held until the instance lets go of the job.
                self.actions
                    .push(SchedulerAction::CancelOnInstance { instance, job });
            }
        }
        self.table
            .finish(job, JobState::Cancelled, self.wall(now), |_| {});
        self.actions
            .push(SchedulerAction::Notify(JobEvent::Cancelled { job }));
        Ok(self.settle(now))
    }

    // -----------------------------------------------------------------------------------------
    // Instances
    // -----------------------------------------------------------------------------------------

    /// An instance exists (phase `Starting` until it says otherwise). Registering an id again
    /// replaces the old instance; jobs it held are requeued.
    pub fn register_instance(
        &mut self,
        id: InstanceId,
        gpu: Option<GpuId>,
        now: Instant,
    ) -> Vec<SchedulerAction> {
        if self.instances.contains_key(&id) {
            self.requeue_held(&id, "was replaced", now);
        }
        let slot = InstanceSlot::new(id.clone(), gpu, self.config.loaded_models_per_instance);
        self.instances.insert(id, slot);
        self.settle(now)
    }

    /// An instance is gone; jobs it held are requeued (it cannot report them any more).
    pub fn deregister_instance(&mut self, id: &InstanceId, now: Instant) -> Vec<SchedulerAction> {
        self.requeue_held(id, "went away", now);
        self.instances.remove(id);
        self.settle(now)
    }

    /// An instance's phase changed.
    pub fn instance_update(
        &mut self,
        id: &InstanceId,
        phase: InstancePhase,
        url: Option<String>,
        detail: Option<String>,
        now: Instant,
    ) -> Vec<SchedulerAction> {
        let Some(slot) = self.instances.get_mut(id) else {
            tracing::warn!(instance = %id, ?phase, "phase update from an unregistered instance");
            return Vec::new();
        };
        slot.phase = phase;
        if url.is_some() {
            slot.url = url;
        }
        slot.detail = detail;
        if matches!(
            phase,
            InstancePhase::Starting
                | InstancePhase::Crashed
                | InstancePhase::Restarting
                | InstancePhase::Stopped
        ) {
            // A new process has nothing loaded.
            slot.loaded.clear();
        }
        if phase == InstancePhase::Stopped {
            self.requeue_held(id, "stopped", now);
        }
        self.settle(now)
    }

    /// Model files were removed or replaced: no instance has them loaded any more.
    pub fn forget_models(&mut self, names: &[String]) {
        for slot in self.instances.values_mut() {
            for name in names {
                slot.loaded.forget(name);
            }
        }
    }

    /// A fresh GPU sample (VRAM headroom may open or close instances).
    pub fn gpu_sample(&mut self, gpus: Vec<GpuInfo>, now: Instant) -> Vec<SchedulerAction> {
        self.gpus = gpus.into_iter().map(|g| (g.id.clone(), g)).collect();
        self.settle(now)
    }

    /// What the submitter should see of an execution event, if anything.
    pub fn job_progress(
        &self,
        instance: &InstanceId,
        job: JobId,
        event: ExecutionEvent,
    ) -> Option<JobEvent> {
        let live = self.jobs.get(&job)?;
        match &live.stage {
            Stage::Running { instance: on, .. } if on == instance => {}
            _ => return None,
        }
        match event {
            ExecutionEvent::Executing { node } => {
                // The node's name as its author sees it: its title, else its class.
                let described = live.prompt.node(&node);
                let title = described
                    .and_then(|n| n.get("_meta"))
                    .and_then(|m| m.get("title"))
                    .or_else(|| described.and_then(|n| n.get("class_type")))
                    .and_then(|t| t.as_str())
                    .map(str::to_string);
                Some(JobEvent::Executing { job, node, title })
            }
            ExecutionEvent::Progress { node, value, max } => Some(JobEvent::Progress {
                job,
                node,
                value,
                max,
            }),
            ExecutionEvent::Preview { mime, bytes } => Some(JobEvent::Preview { job, mime, bytes }),
            ExecutionEvent::Started
            | ExecutionEvent::Cached { .. }
            | ExecutionEvent::Executed { .. } => None,
        }
    }

    /// An attempt ended on an instance.
    pub fn job_finished(
        &mut self,
        instance: &InstanceId,
        job: JobId,
        attempt: u32,
        result: Result<RunResult, JobFailure>,
        now: Instant,
    ) -> Vec<SchedulerAction> {
        let Some(slot) = self.instances.get_mut(instance) else {
            tracing::debug!(%job, %instance, "finish report from an unknown instance ignored");
            return Vec::new();
        };
        if !slot.holding.contains(&job) {
            tracing::debug!(%job, %instance, "finish report for a job the instance does not hold");
            return Vec::new();
        }
        let current = match self.jobs.get(&job) {
            None => {
                // Cancelled while running: the instance let go of it, the slot is free.
                slot.holding.remove(&job);
                return self.settle(now);
            }
            Some(live) => match &live.stage {
                Stage::Running {
                    instance: on,
                    started_at,
                } if on == instance && live.attempt == attempt => Some(*started_at),
                _ => None,
            },
        };
        let Some(started_at) = current else {
            tracing::debug!(%job, %instance, attempt, "stale finish report ignored");
            return Vec::new();
        };
        slot.holding.remove(&job);
        match result {
            Ok(run) => self.complete(job, run, started_at, now),
            Err(error) if error.is_retriable() => {
                self.retry_or_fail(job, instance, error.to_string(), now)
            }
            // The instance gave the job up because the fleet is stopping it.
            Err(JobFailure::Aborted { .. }) if self.shutting_down => {
                self.fail(job, SHUTDOWN_RUNNING.to_string(), true, now)
            }
            Err(JobFailure::Backend(BackendError::Interrupted)) => self.fail(
                job,
                format!(
                    "the prompt was interrupted on {instance} before it finished; submit it again"
                ),
                false,
                now,
            ),
            Err(error) => self.fail(job, error.to_string(), false, now),
        }
        self.settle(now)
    }

    // -----------------------------------------------------------------------------------------
    // Operators
    // -----------------------------------------------------------------------------------------

    /// Pauses (nothing new is dispatched) or resumes (queued jobs are dispatched at once, in
    /// queue order) the queue.
    pub fn set_paused(&mut self, paused: bool, now: Instant) -> (QueuePause, Vec<SchedulerAction>) {
        let changed = self.paused != paused;
        self.paused = paused;
        let actions = self.settle(now);
        let pause = QueuePause {
            paused,
            changed,
            queue_depth: self.queue.len(),
        };
        (pause, actions)
    }

    /// Drains or restarts an instance: the order goes to the instance, and from now on no job
    /// is placed on it until it is ready again (restart) or restarted (drain).
    pub fn operate_instance(
        &mut self,
        id: &InstanceId,
        operation: InstanceOperation,
        now: Instant,
    ) -> Result<Vec<SchedulerAction>, OperationError> {
        if self.shutting_down {
            return Err(OperationError::ShuttingDown);
        }
        let Some(slot) = self.instances.get_mut(id) else {
            return Err(OperationError::UnknownInstance {
                given: id.clone(),
                known: self.instances.keys().cloned().collect(),
            });
        };
        match operation {
            InstanceOperation::Drain => slot.drained = true,
            InstanceOperation::Restart => {
                slot.drained = false;
                // What it will report next; until then nothing is placed on the old process.
                slot.phase = InstancePhase::Restarting;
                slot.loaded.clear();
            }
        }
        self.actions.push(SchedulerAction::Operate {
            instance: id.clone(),
            operation,
        });
        Ok(self.settle(now))
    }

    // -----------------------------------------------------------------------------------------
    // Shutdown
    // -----------------------------------------------------------------------------------------

    /// Stops taking jobs; queued jobs are failed at once, running ones may finish.
    pub fn begin_shutdown(&mut self, now: Instant) -> Vec<SchedulerAction> {
        self.shutting_down = true;
        while let Some(next) = self.queue.pop() {
            self.fail(next.job, SHUTDOWN_QUEUED.to_string(), true, now);
        }
        self.settle(now)
    }

    /// The shutdown deadline passed: jobs still running are failed and interrupted.
    pub fn finish_shutdown(&mut self, now: Instant) -> Vec<SchedulerAction> {
        self.shutting_down = true;
        while let Some(next) = self.queue.pop() {
            self.fail(next.job, SHUTDOWN_QUEUED.to_string(), true, now);
        }
        let mut running: Vec<(JobId, InstanceId)> = self
            .jobs
            .iter()
            .filter_map(|(id, live)| match &live.stage {
                Stage::Running { instance, .. } => Some((*id, instance.clone())),
                Stage::Queued => None,
            })
            .collect();
        running.sort();
        for (job, instance) in running {
            self.actions
                .push(SchedulerAction::CancelOnInstance { instance, job });
            self.fail(job, SHUTDOWN_RUNNING.to_string(), true, now);
        }
        self.settle(now)
    }

    // -----------------------------------------------------------------------------------------
    // Status
    // -----------------------------------------------------------------------------------------

    /// The scheduler at `now`, for `/v1/status` and metrics.
    pub fn snapshot(&self, now: Instant) -> SchedulerSnapshot {
        SchedulerSnapshot {
            queue_depth: self.queue.len(),
            queue_capacity: self.queue.capacity(),
            jobs: self.table.counts(),
            instances: self
                .instances
                .values()
                .map(|slot| InstanceSnapshot {
                    id: slot.id.clone(),
                    gpu: slot.gpu.clone(),
                    phase: slot.phase,
                    url: slot.url.clone(),
                    detail: slot.detail.clone(),
                    running: slot.holding.iter().copied().collect(),
                    loaded_models: slot.loaded.iter().map(str::to_string).collect(),
                })
                .collect(),
            latency: self.recent.summary(now),
            shutting_down: self.shutting_down,
            paused: self.paused,
        }
    }

    /// How long until the first of `user`'s unfinished jobs is expected to end: a running one's
    /// expected run time less what it has run so far, a queued one's ETA. `None` before any job
    /// of the fleet has finished (nothing to estimate from) or when the user has no job. What a
    /// user at the cap on jobs in progress is told to wait.
    pub fn first_end_of(&self, user: &UserId, now: Instant) -> Option<Duration> {
        self.jobs
            .values()
            .filter(|live| live.spec.user == *user)
            .filter_map(|live| match &live.stage {
                Stage::Running { started_at, .. } => {
                    let run = self.eta.run_time(&live.spec.template)?;
                    Some(run.saturating_sub(now.saturating_duration_since(*started_at)))
                }
                Stage::Queued => {
                    let position = self.queue.position(live.spec.id)?;
                    self.estimate(position, &live.spec.template)
                }
            })
            .min()
    }

    // -----------------------------------------------------------------------------------------
    // Internals
    // -----------------------------------------------------------------------------------------

    fn complete(&mut self, job: JobId, run: RunResult, started_at: Instant, now: Instant) {
        let Some(live) = self.jobs.remove(&job) else {
            return;
        };
        let ran_for = now.saturating_duration_since(started_at);
        let waited = started_at.saturating_duration_since(live.submitted_at);
        self.eta.record_run(&live.spec.template, ran_for);
        self.eta.record_completion(now, !self.queue.is_empty());
        self.recent.record(now, waited, ran_for);
        let outputs = run.outputs;
        let recorded = outputs.clone();
        self.table
            .finish(job, JobState::Done, self.wall(now), move |r| {
                r.outputs = recorded
            });
        self.actions
            .push(SchedulerAction::Notify(JobEvent::Done { job, outputs }));
        // Estimates changed; positions did not. Queued jobs hear of it at their next move.
    }

    fn fail(&mut self, job: JobId, message: String, retriable: bool, now: Instant) {
        if let Some(live) = self.jobs.remove(&job)
            && matches!(live.stage, Stage::Queued)
        {
            self.queue.remove(job);
        }
        let recorded = message.clone();
        self.table
            .finish(job, JobState::Failed, self.wall(now), move |r| {
                r.error = Some(recorded)
            });
        self.actions.push(SchedulerAction::Notify(JobEvent::Failed {
            job,
            message,
            retriable,
        }));
    }

    /// A retriable failure of `job` on `instance` (already released from its slot).
    fn retry_or_fail(&mut self, job: JobId, instance: &InstanceId, reason: String, now: Instant) {
        let Some(live) = self.jobs.get_mut(&job) else {
            return;
        };
        live.failed_on.push(instance.clone());
        let attempts = live.attempt;
        if self.shutting_down {
            self.fail(job, SHUTDOWN_RUNNING.to_string(), true, now);
            return;
        }
        if attempts > self.config.max_retries {
            self.fail(
                job,
                format!(
                    "the job failed {attempts} times because the instance running it failed \
                     (last: {reason}); try again later"
                ),
                true,
                now,
            );
            return;
        }
        let Some(live) = self.jobs.get_mut(&job) else {
            return;
        };
        live.stage = Stage::Queued;
        let next_attempt = live.attempt + 1;
        let (user, priority) = (live.spec.user.clone(), live.spec.priority);
        if let Err(error) = self.queue.push_front(job, user, priority) {
            tracing::error!(%job, %error, "retry could not be queued");
        }
        self.table.update(job, |r| {
            r.state = JobState::Queued;
            r.instance = None;
        });
        self.actions
            .push(SchedulerAction::Notify(JobEvent::Retrying {
                job,
                attempt: next_attempt,
                reason,
            }));
    }

    /// Jobs held by an instance that cannot report them any more: retry them elsewhere.
    fn requeue_held(&mut self, id: &InstanceId, what_happened: &str, now: Instant) {
        let Some(slot) = self.instances.get_mut(id) else {
            return;
        };
        let held = std::mem::take(&mut slot.holding);
        for job in held {
            let running_here = matches!(
                self.jobs.get(&job).map(|j| &j.stage),
                Some(Stage::Running { instance, .. }) if instance == id
            );
            if running_here {
                let reason = format!("instance {id} {what_happened} while running the job");
                self.retry_or_fail(job, id, reason, now);
            }
        }
    }

    /// Dispatches what can be dispatched, then tells queued jobs whose position changed.
    fn settle(&mut self, now: Instant) -> Vec<SchedulerAction> {
        if !self.shutting_down && !self.paused {
            self.dispatch(now);
        }
        self.push_positions();
        std::mem::take(&mut self.actions)
    }

    fn dispatch(&mut self, now: Instant) {
        while self.rules.any_free(&self.instances, &self.gpus) {
            let window = self.queue.window(
                self.config.affinity_lookahead,
                self.config.max_overtakes,
                self.config.affinity_rounds_ahead,
            );
            if window.is_empty() {
                return;
            }
            let Some((job, instance)) = self.pick(&window) else {
                return;
            };
            self.queue.take(job);
            self.start(job, instance, now);
        }
    }

    /// Which job of the look-ahead `window` goes where now (see the module doc):
    /// 1. the first job whose models a free instance has loaded, there;
    /// 2. else the first job that cannot wait for a busy instance with its models (it names
    ///    none, none has them, each that has them is already awaited by an earlier job of the
    ///    window, or it reached `max_overtakes`), where placement puts it;
    /// 3. else nothing: every job in the window waits for its instance's next free slot.
    fn pick(&self, window: &[(JobId, bool)]) -> Option<(JobId, InstanceId)> {
        let needs_of = |job: &JobId| {
            self.jobs.get(job).map(|live| JobNeeds {
                models: &live.models,
                avoid: &live.failed_on,
            })
        };
        let suited = window.iter().find_map(|(job, _)| {
            let instance = self
                .rules
                .choose_loaded(&self.instances, &self.gpus, needs_of(job)?)?;
            Some((*job, instance))
        });
        if suited.is_some() {
            return suited;
        }
        // Waiting never leaves a GPU idle: only when every instance that could take a job is
        // already busy with one.
        let may_wait = self.config.affinity_wait
            && !self
                .instances
                .values()
                .any(|slot| slot.load() == 0 && self.rules.can_take(slot, &self.gpus));
        let mut awaited: Vec<&InstanceId> = Vec::new();
        for (job, at_limit) in window {
            let Some(needs) = needs_of(job) else {
                continue;
            };
            if may_wait && !at_limit {
                let busy = self.instances.values().find(|slot| {
                    slot.accepts_jobs()
                        && slot.load() >= self.config.pipeline_depth
                        && slot.loaded.has_all(needs.models)
                        && !needs.avoid.contains(&slot.id)
                        && !awaited.contains(&&slot.id)
                });
                if let Some(busy) = busy {
                    awaited.push(&busy.id);
                    continue;
                }
            }
            let instance = self.rules.choose(&self.instances, &self.gpus, needs)?;
            return Some((*job, instance));
        }
        None
    }

    fn start(&mut self, job: JobId, instance: InstanceId, now: Instant) {
        let wall = self.wall(now);
        let (Some(live), Some(slot)) = (self.jobs.get_mut(&job), self.instances.get_mut(&instance))
        else {
            return;
        };
        live.attempt += 1;
        live.stage = Stage::Running {
            instance: instance.clone(),
            started_at: now,
        };
        slot.holding.insert(job);
        slot.loaded.record(&live.models);
        let attempt = live.attempt;
        let prompt_id = if attempt == 1 { job.0 } else { Uuid::new_v4() };
        let run = RunJob {
            job,
            attempt,
            run: PromptRun {
                job: Some(job),
                prompt_id,
                prompt: live.prompt.expand(),
                extra_data: live.spec.extra_data.clone(),
            },
            inputs: live.spec.inputs.clone(),
        };
        let on = instance.clone();
        self.table.update(job, move |r| {
            r.state = JobState::Running;
            r.instance = Some(on);
            r.attempt = attempt;
            r.position = None;
            r.eta = None;
            r.started_at = Some(wall);
        });
        self.actions.push(SchedulerAction::Dispatch {
            instance: instance.clone(),
            run,
        });
        self.actions
            .push(SchedulerAction::Notify(JobEvent::Started {
                job,
                instance,
                attempt,
            }));
    }

    fn in_flight(&self) -> usize {
        self.instances.values().map(InstanceSlot::load).sum()
    }

    fn accepting(&self) -> usize {
        self.instances.values().filter(|s| s.accepts_jobs()).count()
    }

    fn estimate(&self, position: usize, template: &str) -> Option<Duration> {
        self.eta
            .estimate(position, self.in_flight(), template, self.accepting())
    }

    /// Tells the queued jobs due a position update (see `position_updates.rs`); all of them
    /// when the fleet's pace changed a lot since they were all last told.
    fn push_positions(&mut self) {
        let in_flight = self.in_flight();
        let accepting = self.accepting();
        let pace = self.eta.pace(accepting);
        let pace_changed = match (self.told_pace, pace) {
            (None, Some(_)) => true,
            (Some(told), Some(now)) => {
                let ratio = now.max(told) / now.min(told).max(f64::MIN_POSITIVE);
                ratio >= 1.0 + self.config.eta_update_change
            }
            (_, None) => false,
        };
        if pace_changed {
            self.told_pace = pace;
            self.queue.mark_all_due();
        }
        for (position, job) in self.queue.take_due(&self.updates) {
            let Some(live) = self.jobs.get(&job) else {
                continue;
            };
            let eta = self
                .eta
                .estimate(position, in_flight, &live.spec.template, accepting);
            self.table.update(job, |r| {
                r.position = Some(position);
                r.eta = eta;
            });
            self.actions.push(SchedulerAction::Notify(JobEvent::Queued {
                job,
                position,
                eta,
            }));
        }
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
