//! The job event hub: keeps each job's events for late subscribers and streams new ones live.
//!
//! The scheduler sends every [`JobEvent`] of every job here (the hub is the submitters'
//! `Recipient<JobEvent>`); HTTP server-sent-event streams and chat sessions subscribe per job and
//! get the events so far followed by the live ones. The log is the plain [`EventLog`]; the actor
//! only receives messages and calls it. Every event also goes to [`JobClocks`], which counts and
//! times the jobs for `/metrics`.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use actix::{Actor, Context, Handler, Message, Recipient};
use comfy_fleet_actors::rate_limit::Release;
use comfy_fleet_actors::{JobEvent, JobId, UserId};
use tokio::sync::mpsc;

use crate::fleet::job_metrics::{JobClocks, JobMetrics};

/// Live events of one job for one subscriber.
pub type EventReceiver = mpsc::UnboundedReceiver<JobEvent>;

/// What a subscriber gets: the events so far, then the live stream (closed after the final event).
pub struct Subscription {
    pub past: Vec<JobEvent>,
    pub live: EventReceiver,
}

struct JobLog {
    events: Vec<JobEvent>,
    /// Only the latest preview is kept: they are large and stale quickly.
    last_preview: Option<JobEvent>,
    subscribers: Vec<mpsc::UnboundedSender<JobEvent>>,
    finished: bool,
}

/// Per-job event logs with a retention limit on finished jobs.
pub struct EventLog {
    jobs: HashMap<JobId, JobLog>,
    finished_order: VecDeque<JobId>,
    retention: usize,
}

impl EventLog {
    /// Keeps the logs of at most `retention` finished jobs (oldest dropped first).
    pub fn new(retention: usize) -> Self {
        Self {
            jobs: HashMap::new(),
            finished_order: VecDeque::new(),
            retention: retention.max(1),
        }
    }

    /// Records an event and forwards it to the job's live subscribers.
    pub fn record(&mut self, event: JobEvent) {
        let job = event.job();
        let log = self.jobs.entry(job).or_insert_with(|| JobLog {
            events: Vec::new(),
            last_preview: None,
            subscribers: Vec::new(),
            finished: false,
        });
        if log.finished {
            return;
        }
        log.subscribers.retain(|s| s.send(event.clone()).is_ok());
        let is_final = event.is_final();
        match event {
            JobEvent::Preview { .. } => log.last_preview = Some(event),
            // Queue moves come once per dispatch: only the latest position is worth keeping.
            JobEvent::Queued { .. }
                if matches!(log.events.last(), Some(JobEvent::Queued { .. })) =>
            {
                if let Some(last) = log.events.last_mut() {
                    *last = event;
                }
            }
            other => log.events.push(other),
        }
        if is_final {
            log.finished = true;
            log.subscribers.clear();
            self.finished_order.push_back(job);
            while self.finished_order.len() > self.retention {
                if let Some(old) = self.finished_order.pop_front() {
                    self.jobs.remove(&old);
                }
            }
        }
    }

    /// The events so far and, unless the job has finished, a live stream; `None` for an
    /// unknown job.
    pub fn subscribe(&mut self, job: JobId) -> Option<Subscription> {
        let log = self.jobs.get_mut(&job)?;
        let mut past = log.events.clone();
        if let Some(preview) = &log.last_preview
            && !log.finished
        {
            // Keep the final event last: insert the preview before it.
            past.push(preview.clone());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        if !log.finished {
            log.subscribers.push(tx);
        }
        Some(Subscription { past, live: rx })
    }

    /// Number of jobs whose logs are held.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

/// The actor around [`EventLog`] and [`JobClocks`]. It also gives each watched job's rate-limit
/// slot back when the job ends.
pub struct JobEventHub {
    log: EventLog,
    clocks: JobClocks,
    owners: HashMap<JobId, UserId>,
    release: Option<Recipient<Release>>,
}

impl JobEventHub {
    /// Keeps the events of `retention` finished jobs, and records every job in `metrics`.
    pub fn new(retention: usize, release: Option<Recipient<Release>>, metrics: JobMetrics) -> Self {
        Self {
            log: EventLog::new(retention),
            clocks: JobClocks::new(metrics),
            owners: HashMap::new(),
            release,
        }
    }
}

/// Tie a job to the user whose concurrent-job slot it holds.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    pub job: JobId,
    pub user: UserId,
}

impl Handler<Watch> for JobEventHub {
    type Result = ();

    fn handle(&mut self, msg: Watch, _: &mut Context<Self>) {
        self.owners.insert(msg.job, msg.user);
    }
}

impl Actor for JobEventHub {
    type Context = Context<Self>;
}

impl Handler<JobEvent> for JobEventHub {
    type Result = ();

    fn handle(&mut self, event: JobEvent, _: &mut Context<Self>) {
        if event.is_final()
            && let Some(user) = self.owners.remove(&event.job())
            && let Some(release) = &self.release
        {
            release.do_send(Release { user });
        }
        // Before the subscribers hear of it, so whoever saw a job end finds it counted.
        self.clocks.observe(&event, Instant::now());
        self.log.record(event);
    }
}

/// Subscribe to one job's events.
#[derive(Message)]
#[rtype(result = "Option<Subscription>")]
pub struct Subscribe(pub JobId);

impl Handler<Subscribe> for JobEventHub {
    type Result = Option<Subscription>;

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) -> Option<Subscription> {
        self.log.subscribe(msg.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(job: JobId, position: usize) -> JobEvent {
        JobEvent::Queued {
            job,
            position,
            eta: None,
        }
    }

    #[test]
    fn late_subscriber_gets_the_past_then_live_events_then_the_end() {
        let mut log = EventLog::new(10);
        let job = JobId::new();
        log.record(queued(job, 3));
        let mut sub = log.subscribe(job).unwrap();
        assert_eq!(sub.past, vec![queued(job, 3)]);
        log.record(queued(job, 2));
        log.record(JobEvent::Done {
            job,
            outputs: vec![],
        });
        assert_eq!(sub.live.try_recv().unwrap(), queued(job, 2));
        assert!(sub.live.try_recv().unwrap().is_final());
        // The stream closes after the final event.
        assert!(matches!(
            sub.live.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        // Nothing is recorded after the end.
        log.record(queued(job, 9));
        let after = log.subscribe(job).unwrap();
        assert_eq!(
            after.past,
            vec![
                queued(job, 2),
                JobEvent::Done {
                    job,
                    outputs: vec![]
                }
            ]
        );
    }

    #[test]
    fn queue_moves_collapse_to_the_latest_position() {
        let mut log = EventLog::new(10);
        let job = JobId::new();
        for position in (0..100).rev() {
            log.record(queued(job, position));
        }
        let sub = log.subscribe(job).unwrap();
        assert_eq!(sub.past, vec![queued(job, 0)]);
    }

    #[test]
    fn only_the_latest_preview_is_kept() {
        let mut log = EventLog::new(10);
        let job = JobId::new();
        for i in 0..5u8 {
            log.record(JobEvent::Preview {
                job,
                mime: "image/png".into(),
                bytes: vec![i],
            });
        }
        let sub = log.subscribe(job).unwrap();
        assert_eq!(sub.past.len(), 1);
        assert!(matches!(&sub.past[0], JobEvent::Preview { bytes, .. } if bytes == &vec![4]));
    }

    #[test]
    fn finished_jobs_beyond_retention_are_forgotten_oldest_first() {
        let mut log = EventLog::new(2);
        let jobs: Vec<JobId> = (0..3).map(|_| JobId::new()).collect();
        let running = JobId::new();
        log.record(queued(running, 0));
        for &job in &jobs {
            log.record(JobEvent::Cancelled { job });
        }
        assert!(log.subscribe(jobs[0]).is_none());
        assert!(log.subscribe(jobs[2]).is_some());
        assert!(
            log.subscribe(running).is_some(),
            "unfinished jobs are never dropped"
        );
    }
}
