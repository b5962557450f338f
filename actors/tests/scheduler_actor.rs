//! The scheduler actor with two in-memory instance actors: submit, dispatch, completion, retry,
//! cancel, a full queue, progress forwarding, a shutdown drain, and the operators' orders (pause
//! and resume, drain and restart an instance). Every wait is on a message
//! (a timeout is only a safety net).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use actix::fut::ActorFuture;
use actix::prelude::*;
use serde_json::json;

use comfy_fleet_actors::job::{JobEvent, JobOutput, JobState};
use comfy_fleet_actors::messages::{
    Cancel, CancelError, CancelJob, GetSchedulerSnapshot, InstanceHandle, InstancePhase,
    InstanceReport, InstanceUpdate, JobFinished, JobProgress, JobSpec, RegisterInstance, RunJob,
    Shutdown, Submit, SubmitError,
};
use comfy_fleet_actors::ports::{BackendError, ExecutionEvent, RunResult};
use comfy_fleet_actors::scheduling::{
    InstanceOperation, InstanceOrder, JobTable, OperateInstance, OperationError, QueuePause,
    SHUTDOWN_QUEUED, SHUTDOWN_RUNNING, Scheduler, SchedulerConfig, SetQueuePaused,
};
use comfy_fleet_actors::{InstanceId, JobId, UserId};

const SAFETY_NET: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// A mailbox actor: collects messages and hands them out one by one, waiting when empty.
// ---------------------------------------------------------------------------------------------

/// An actor with an inbox of `T` that tests can wait on.
trait Inbox<T>: Actor<Context = Context<Self>> {
    fn inbox(&mut self) -> &mut (VecDeque<T>, Option<Waker>);
}

impl<A, T> ActorFuture<A> for NextItemOf<T>
where
    A: Inbox<T>,
{
    type Output = T;

    fn poll(
        self: Pin<&mut Self>,
        act: &mut A,
        _ctx: &mut Context<A>,
        task: &mut TaskContext<'_>,
    ) -> Poll<T> {
        let (items, waiter) = act.inbox();
        match items.pop_front() {
            Some(item) => Poll::Ready(item),
            None => {
                *waiter = Some(task.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Resolves with the next item of an actor's inbox, waiting for one to arrive.
struct NextItemOf<T>(std::marker::PhantomData<T>);

impl<T> NextItemOf<T> {
    fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

fn deliver<T>(inbox: &mut (VecDeque<T>, Option<Waker>), item: T) {
    inbox.0.push_back(item);
    if let Some(waker) = inbox.1.take() {
        waker.wake();
    }
}

/// The submitter: records the job events it is sent.
#[derive(Default)]
struct Submitter {
    events: (VecDeque<JobEvent>, Option<Waker>),
}

impl Actor for Submitter {
    type Context = Context<Self>;
}

impl Inbox<JobEvent> for Submitter {
    fn inbox(&mut self) -> &mut (VecDeque<JobEvent>, Option<Waker>) {
        &mut self.events
    }
}

impl Handler<JobEvent> for Submitter {
    type Result = ();
    fn handle(&mut self, event: JobEvent, _ctx: &mut Self::Context) {
        deliver(&mut self.events, event);
    }
}

#[derive(Message)]
#[rtype(result = "JobEvent")]
struct NextEvent;

impl Handler<NextEvent> for Submitter {
    type Result = ResponseActFuture<Self, JobEvent>;
    fn handle(&mut self, _msg: NextEvent, _ctx: &mut Self::Context) -> Self::Result {
        Box::pin(NextItemOf::new())
    }
}

/// What an instance was asked to do.
#[derive(Debug)]
enum Order {
    Run(Box<RunJob>),
    Cancel(JobId),
    Operate(InstanceOperation),
}

/// An in-memory instance: records runs and cancels; reports to the scheduler when told to.
struct FakeInstance {
    id: InstanceId,
    scheduler: Addr<Scheduler>,
    orders: (VecDeque<Order>, Option<Waker>),
}

impl Actor for FakeInstance {
    type Context = Context<Self>;
}

impl Inbox<Order> for FakeInstance {
    fn inbox(&mut self) -> &mut (VecDeque<Order>, Option<Waker>) {
        &mut self.orders
    }
}

impl Handler<RunJob> for FakeInstance {
    type Result = ();
    fn handle(&mut self, run: RunJob, _ctx: &mut Self::Context) {
        deliver(&mut self.orders, Order::Run(Box::new(run)));
    }
}

impl Handler<CancelJob> for FakeInstance {
    type Result = ();
    fn handle(&mut self, msg: CancelJob, _ctx: &mut Self::Context) {
        deliver(&mut self.orders, Order::Cancel(msg.job));
    }
}

impl Handler<InstanceOrder> for FakeInstance {
    type Result = ();
    fn handle(&mut self, msg: InstanceOrder, _ctx: &mut Self::Context) {
        deliver(&mut self.orders, Order::Operate(msg.operation));
    }
}

#[derive(Message)]
#[rtype(result = "Order")]
struct NextOrder;

impl Handler<NextOrder> for FakeInstance {
    type Result = ResponseActFuture<Self, Order>;
    fn handle(&mut self, _msg: NextOrder, _ctx: &mut Self::Context) -> Self::Result {
        Box::pin(NextItemOf::new())
    }
}

/// Test → fake instance: report this attempt finished.
#[derive(Message)]
#[rtype(result = "()")]
struct Finish {
    job: JobId,
    attempt: u32,
    result: Result<RunResult, BackendError>,
}

impl Handler<Finish> for FakeInstance {
    type Result = ();
    fn handle(&mut self, msg: Finish, _ctx: &mut Self::Context) {
        self.scheduler
            .do_send(InstanceReport::Finished(JobFinished {
                instance: self.id.clone(),
                job: msg.job,
                attempt: msg.attempt,
                result: msg.result.map_err(Into::into),
            }));
    }
}

/// Test → fake instance: report an execution event.
#[derive(Message)]
#[rtype(result = "()")]
struct Report(JobId, ExecutionEvent);

impl Handler<Report> for FakeInstance {
    type Result = ();
    fn handle(&mut self, msg: Report, _ctx: &mut Self::Context) {
        self.scheduler
            .do_send(InstanceReport::Progress(JobProgress {
                instance: self.id.clone(),
                job: msg.0,
                event: msg.1,
            }));
    }
}

// ---------------------------------------------------------------------------------------------
// The fleet under test
// ---------------------------------------------------------------------------------------------

struct Fleet {
    scheduler: Addr<Scheduler>,
    table: JobTable,
    gpu0: Addr<FakeInstance>,
    gpu1: Addr<FakeInstance>,
    submitter: Addr<Submitter>,
}

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    match actix_rt::time::timeout(SAFETY_NET, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

impl Fleet {
    async fn start(config: SchedulerConfig) -> Self {
        let scheduler = Scheduler::new(config);
        let table = scheduler.table();
        let scheduler = scheduler.start();
        let mut instances = Vec::new();
        for name in ["gpu0", "gpu1"] {
            let id = InstanceId::new(name);
            let addr = FakeInstance {
                id: id.clone(),
                scheduler: scheduler.clone(),
                orders: Default::default(),
            }
            .start();
            scheduler
                .send(RegisterInstance(InstanceHandle {
                    id: id.clone(),
                    gpu: None,
                    run: addr.clone().recipient(),
                    cancel: addr.clone().recipient(),
                    operate: addr.clone().recipient(),
                }))
                .await
                .unwrap();
            scheduler
                .send(InstanceReport::Phase(InstanceUpdate {
                    instance: id,
                    phase: InstancePhase::Ready,
                    url: Some(format!("http://127.0.0.1:0/{name}")),
                    detail: None,
                }))
                .await
                .unwrap();
            instances.push(addr);
        }
        let gpu1 = instances.pop().unwrap();
        let gpu0 = instances.pop().unwrap();
        Self {
            scheduler,
            table,
            gpu0,
            gpu1,
            submitter: Submitter::default().start(),
        }
    }

    async fn submit(&self, user: &str) -> Result<JobId, SubmitError> {
        let job = JobSpec {
            id: JobId::new(),
            user: UserId::new(user),
            priority: 0,
            template: "txt2img".into(),
            prompt: json!({"3": {"class_type": "KSampler", "inputs": {}, "_meta": {"title": "KSampler"}}}),
            extra_data: json!({}),
            inputs: Vec::new(),
            models: vec!["sdxl.safetensors".into()],
        };
        let id = job.id;
        let receipt = self
            .scheduler
            .send(Submit {
                job,
                events: self.submitter.clone().recipient(),
            })
            .await
            .unwrap()?;
        assert_eq!(receipt.job, id);
        Ok(id)
    }

    async fn event(&self) -> JobEvent {
        within("a job event", self.submitter.send(NextEvent))
            .await
            .unwrap()
    }

    async fn run_on(&self, instance: &Addr<FakeInstance>) -> RunJob {
        match within("a RunJob", instance.send(NextOrder)).await.unwrap() {
            Order::Run(run) => *run,
            other => panic!("expected a run, got {other:?}"),
        }
    }

    /// Reports `phase` for `instance`, as the instance actor would.
    async fn phase(&self, instance: &str, phase: InstancePhase) {
        self.scheduler
            .send(InstanceReport::Phase(InstanceUpdate {
                instance: InstanceId::new(instance),
                phase,
                url: None,
                detail: None,
            }))
            .await
            .unwrap();
    }
}

fn done() -> Result<RunResult, BackendError> {
    Ok(RunResult {
        outputs: vec![JobOutput {
            node_id: "9".into(),
            filename: "ComfyUI_00001_.png".into(),
            subfolder: String::new(),
            kind: "output".into(),
        }],
        ..Default::default()
    })
}

fn depth_one() -> SchedulerConfig {
    SchedulerConfig {
        pipeline_depth: 1,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn a_submitted_job_is_dispatched_run_and_reported_done() {
    let fleet = Fleet::start(depth_one()).await;
    let job = fleet.submit("alice").await.unwrap();
    assert_eq!(
        fleet.event().await,
        JobEvent::Queued {
            job,
            position: 0,
            eta: None
        }
    );
    match fleet.event().await {
        JobEvent::Started {
            job: started,
            instance,
            attempt: 1,
        } => {
            assert_eq!(started, job);
            assert_eq!(instance, InstanceId::new("gpu0"));
        }
        other => panic!("{other:?}"),
    }
    let run = fleet.run_on(&fleet.gpu0).await;
    assert_eq!(run.job, job);
    assert_eq!(run.run.prompt_id, job.0);
    assert_eq!(fleet.table.state(job), Some(JobState::Running));

    // Progress from the instance reaches the submitter.
    fleet
        .gpu0
        .send(Report(job, ExecutionEvent::Executing { node: "3".into() }))
        .await
        .unwrap();
    assert_eq!(
        fleet.event().await,
        JobEvent::Executing {
            job,
            node: "3".into(),
            title: Some("KSampler".into())
        }
    );

    fleet
        .gpu0
        .send(Finish {
            job,
            attempt: 1,
            result: done(),
        })
        .await
        .unwrap();
    match fleet.event().await {
        JobEvent::Done { outputs, .. } => assert_eq!(outputs[0].filename, "ComfyUI_00001_.png"),
        other => panic!("{other:?}"),
    }
    let record = fleet.table.get(job).unwrap();
    assert_eq!(record.state, JobState::Done);
    assert_eq!(record.instance, Some(InstanceId::new("gpu0")));
    assert!(record.finished_at.is_some());
    let snapshot = fleet.scheduler.send(GetSchedulerSnapshot).await.unwrap();
    assert_eq!(snapshot.jobs.done, 1);
    assert_eq!(snapshot.latency.samples, 1);
}

#[actix_rt::test]
async fn a_job_whose_instance_fails_is_retried_on_the_other_one() {
    let fleet = Fleet::start(depth_one()).await;
    let job = fleet.submit("alice").await.unwrap();
    let first = fleet.run_on(&fleet.gpu0).await;
    assert!(matches!(fleet.event().await, JobEvent::Queued { .. }));
    assert!(matches!(fleet.event().await, JobEvent::Started { .. }));
    fleet
        .gpu0
        .send(Finish {
            job,
            attempt: first.attempt,
            result: Err(BackendError::Unreachable {
                url: "http://127.0.0.1:8188".into(),
                reason: "connection refused".into(),
            }),
        })
        .await
        .unwrap();
    match fleet.event().await {
        JobEvent::Retrying {
            attempt, reason, ..
        } => {
            assert_eq!(attempt, 2);
            assert!(reason.contains("connection refused"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // gpu1 is free, so the retry starts at once (no Queued in between).
    assert!(matches!(
        fleet.event().await,
        JobEvent::Started { attempt: 2, instance, .. } if instance == InstanceId::new("gpu1")
    ));
    let second = fleet.run_on(&fleet.gpu1).await;
    assert_eq!((second.job, second.attempt), (job, 2));
    fleet
        .gpu1
        .send(Finish {
            job,
            attempt: 2,
            result: done(),
        })
        .await
        .unwrap();
    assert!(matches!(fleet.event().await, JobEvent::Done { .. }));
    assert_eq!(fleet.table.get(job).unwrap().attempt, 2);
}

#[actix_rt::test]
async fn queued_and_running_jobs_can_be_cancelled() {
    let fleet = Fleet::start(depth_one()).await;
    let on_gpu0 = fleet.submit("alice").await.unwrap();
    let on_gpu1 = fleet.submit("bob").await.unwrap();
    let queued = fleet.submit("carol").await.unwrap();
    fleet.run_on(&fleet.gpu0).await;
    fleet.run_on(&fleet.gpu1).await;
    // Queued, Started for both running jobs, then Queued for the third.
    for _ in 0..5 {
        fleet.event().await;
    }
    assert_eq!(fleet.table.get(queued).unwrap().position, Some(0));

    fleet
        .scheduler
        .send(Cancel { job: queued })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fleet.event().await, JobEvent::Cancelled { job: queued });
    assert_eq!(fleet.table.state(queued), Some(JobState::Cancelled));

    fleet
        .scheduler
        .send(Cancel { job: on_gpu0 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fleet.event().await, JobEvent::Cancelled { job: on_gpu0 });
    match within("a CancelJob", fleet.gpu0.send(NextOrder))
        .await
        .unwrap()
    {
        Order::Cancel(job) => assert_eq!(job, on_gpu0),
        other => panic!("{other:?}"),
    }
    // The instance reports the interrupt; nothing more reaches the submitter about it, and a
    // new job can use gpu0 again.
    fleet
        .gpu0
        .send(Finish {
            job: on_gpu0,
            attempt: 1,
            result: Err(BackendError::Interrupted),
        })
        .await
        .unwrap();
    let next = fleet.submit("dave").await.unwrap();
    assert!(matches!(fleet.event().await, JobEvent::Queued { job, .. } if job == next));
    assert!(matches!(
        fleet.event().await,
        JobEvent::Started { job, instance, .. } if job == next && instance == InstanceId::new("gpu0")
    ));
    assert_eq!(
        fleet.scheduler.send(Cancel { job: queued }).await.unwrap(),
        Err(CancelError::AlreadyFinished(queued))
    );
    let _ = on_gpu1;
}

#[actix_rt::test]
async fn a_full_queue_refuses_the_submission() {
    let fleet = Fleet::start(SchedulerConfig {
        pipeline_depth: 1,
        queue_capacity: 1,
        ..Default::default()
    })
    .await;
    fleet.submit("a").await.unwrap(); // gpu0
    fleet.submit("b").await.unwrap(); // gpu1
    fleet.submit("c").await.unwrap(); // queued
    let refused = fleet.submit("d").await.unwrap_err();
    // No job has finished yet: the fleet's pace is unknown, so a minute.
    assert_eq!(
        refused,
        SubmitError::QueueFull {
            capacity: 1,
            retry_after: std::time::Duration::from_secs(60)
        }
    );
    assert!(refused.to_string().contains("try again"));
}

#[actix_rt::test]
async fn shutdown_waits_for_running_jobs_and_fails_the_queued_ones() {
    let fleet = Fleet::start(depth_one()).await;
    let a = fleet.submit("a").await.unwrap();
    let b = fleet.submit("b").await.unwrap();
    let queued = fleet.submit("c").await.unwrap();
    let run_a = fleet.run_on(&fleet.gpu0).await;
    let run_b = fleet.run_on(&fleet.gpu1).await;
    for _ in 0..5 {
        fleet.event().await;
    }
    let drained = fleet.scheduler.send(Shutdown {
        deadline: Duration::from_secs(600),
    });
    assert_eq!(
        fleet.event().await,
        JobEvent::Failed {
            job: queued,
            message: SHUTDOWN_QUEUED.into(),
            retriable: true
        }
    );
    assert_eq!(
        fleet.submit("late").await.unwrap_err(),
        SubmitError::ShuttingDown
    );
    fleet
        .gpu0
        .send(Finish {
            job: a,
            attempt: run_a.attempt,
            result: done(),
        })
        .await
        .unwrap();
    assert!(matches!(fleet.event().await, JobEvent::Done { job, .. } if job == a));
    fleet
        .gpu1
        .send(Finish {
            job: b,
            attempt: run_b.attempt,
            result: done(),
        })
        .await
        .unwrap();
    assert!(matches!(fleet.event().await, JobEvent::Done { job, .. } if job == b));
    within("the shutdown answer", drained).await.unwrap();
}

#[actix_rt::test]
async fn shutdown_fails_and_interrupts_jobs_still_running_at_the_deadline() {
    let fleet = Fleet::start(depth_one()).await;
    let job = fleet.submit("a").await.unwrap();
    fleet.run_on(&fleet.gpu0).await;
    fleet.event().await;
    fleet.event().await;
    within(
        "the shutdown answer",
        fleet.scheduler.send(Shutdown {
            deadline: Duration::from_millis(50),
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        fleet.event().await,
        JobEvent::Failed {
            job,
            message: SHUTDOWN_RUNNING.into(),
            retriable: true
        }
    );
    match within("a CancelJob", fleet.gpu0.send(NextOrder))
        .await
        .unwrap()
    {
        Order::Cancel(cancelled) => assert_eq!(cancelled, job),
        other => panic!("{other:?}"),
    }
    assert_eq!(fleet.table.state(job), Some(JobState::Failed));
}

#[actix_rt::test]
async fn an_instance_whose_actor_stopped_has_its_job_retried_elsewhere() {
    let fleet = Fleet::start(depth_one()).await;
    // gpu0's actor goes away before any job is dispatched to it.
    fleet.gpu0.send(StopNow).await.unwrap();
    within("gpu0's mailbox to close", async {
        while fleet.gpu0.connected() {
            actix_rt::task::yield_now().await;
        }
    })
    .await;
    let job = fleet.submit("a").await.unwrap();
    let run = fleet.run_on(&fleet.gpu1).await;
    assert_eq!((run.job, run.attempt), (job, 2));
    let snapshot = fleet.scheduler.send(GetSchedulerSnapshot).await.unwrap();
    assert_eq!(snapshot.instances.len(), 1);
}

#[derive(Message)]
#[rtype(result = "()")]
struct StopNow;

impl Handler<StopNow> for FakeInstance {
    type Result = ();
    fn handle(&mut self, _msg: StopNow, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[actix_rt::test]
async fn a_paused_queue_holds_new_jobs_until_resumed_then_dispatches_them_in_order() {
    let fleet = Fleet::start(depth_one()).await;
    let pause = fleet
        .scheduler
        .send(SetQueuePaused { paused: true })
        .await
        .unwrap();
    assert_eq!(
        pause,
        QueuePause {
            paused: true,
            changed: true,
            queue_depth: 0
        }
    );
    let first = fleet.submit("alice").await.unwrap();
    let second = fleet.submit("bob").await.unwrap();
    assert!(
        matches!(fleet.event().await, JobEvent::Queued { job, position: 0, .. } if job == first)
    );
    assert!(
        matches!(fleet.event().await, JobEvent::Queued { job, position: 1, .. } if job == second)
    );
    let snapshot = fleet.scheduler.send(GetSchedulerSnapshot).await.unwrap();
    assert!(snapshot.paused);
    assert_eq!(snapshot.queue_depth, 2);
    assert!(snapshot.instances.iter().all(|i| i.running.is_empty()));

    let pause = fleet
        .scheduler
        .send(SetQueuePaused { paused: false })
        .await
        .unwrap();
    assert!(pause.changed && !pause.paused && pause.queue_depth == 0);
    // Both start at once, in queue order.
    assert_eq!(fleet.run_on(&fleet.gpu0).await.job, first);
    assert_eq!(fleet.run_on(&fleet.gpu1).await.job, second);
}

#[actix_rt::test]
async fn a_drain_order_reaches_the_instance_after_its_jobs_and_no_job_follows_it() {
    let fleet = Fleet::start(SchedulerConfig {
        pipeline_depth: 2,
        ..Default::default()
    })
    .await;
    let on_gpu0 = fleet.submit("alice").await.unwrap();
    assert_eq!(fleet.run_on(&fleet.gpu0).await.job, on_gpu0);
    let unknown = fleet
        .scheduler
        .send(OperateInstance {
            instance: InstanceId::new("gpu9"),
            operation: InstanceOperation::Drain,
        })
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(unknown, OperationError::UnknownInstance { ref known, .. } if known.len() == 2)
    );
    fleet
        .scheduler
        .send(OperateInstance {
            instance: InstanceId::new("gpu0"),
            operation: InstanceOperation::Drain,
        })
        .await
        .unwrap()
        .unwrap();
    match within("the drain order", fleet.gpu0.send(NextOrder))
        .await
        .unwrap()
    {
        Order::Operate(InstanceOperation::Drain) => {}
        other => panic!("expected the drain order, got {other:?}"),
    }
    // gpu0 has a free pipeline slot and is still reported ready, but the next jobs go to gpu1.
    let next = fleet.submit("bob").await.unwrap();
    let after = fleet.submit("carol").await.unwrap();
    assert_eq!(fleet.run_on(&fleet.gpu1).await.job, next);
    assert_eq!(fleet.run_on(&fleet.gpu1).await.job, after);
    // Its own job finishes, then it stops.
    fleet.phase("gpu0", InstancePhase::Draining).await;
    fleet
        .gpu0
        .send(Finish {
            job: on_gpu0,
            attempt: 1,
            result: done(),
        })
        .await
        .unwrap();
    fleet.phase("gpu0", InstancePhase::Stopped).await;
    assert_eq!(fleet.table.state(on_gpu0), Some(JobState::Done));

    // Restarted, it counts as restarting until it reports ready, then takes jobs again.
    fleet
        .scheduler
        .send(OperateInstance {
            instance: InstanceId::new("gpu0"),
            operation: InstanceOperation::Restart,
        })
        .await
        .unwrap()
        .unwrap();
    match within("the restart order", fleet.gpu0.send(NextOrder))
        .await
        .unwrap()
    {
        Order::Operate(InstanceOperation::Restart) => {}
        other => panic!("expected the restart order, got {other:?}"),
    }
    let snapshot = fleet.scheduler.send(GetSchedulerSnapshot).await.unwrap();
    assert_eq!(snapshot.instances[0].phase, InstancePhase::Restarting);
    let waiting = fleet.submit("dave").await.unwrap();
    fleet.phase("gpu0", InstancePhase::Ready).await;
    assert_eq!(fleet.run_on(&fleet.gpu0).await.job, waiting);
}
