//! The scheduler: the fleet's one queue, placement of jobs on instances, retries, cancels, ETAs,
//! the job table, and the operators' orders (pause the queue, drain or restart an instance).
//!
//! The policy ([`SchedulerPolicy`]) is plain synchronous code with time passed in; the actor
//! ([`Scheduler`]) only receives messages, calls the policy and delivers what it decides.
//! Job states are read from the shared [`JobTable`] without asking the actor.

pub mod actor;
pub mod affinity;
pub mod config;
pub mod eta;
pub mod instance_slot;
pub mod job_table;
pub mod model_sets;
pub mod operations;
pub mod placement;
pub mod policy;
pub mod position_updates;
pub mod prompt_store;
pub mod queue;
pub mod queue_order;
pub mod recent_jobs;
pub mod snapshot;

pub use actor::Scheduler;
pub use config::{PRIORITY_BOOST, SchedulerConfig, SchedulerConfigError};
pub use job_table::{JobCounts, JobRecord, JobTable};
pub use operations::{
    InstanceOperation, InstanceOrder, OperateInstance, OperationError, QueuePause, SetQueuePaused,
};
pub use policy::{SHUTDOWN_QUEUED, SHUTDOWN_RUNNING, SchedulerAction, SchedulerPolicy};
pub use queue_order::QueuePositions;
pub use recent_jobs::LatencySummary;
pub use snapshot::{InstanceSnapshot, SchedulerSnapshot};
