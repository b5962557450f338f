//! The scheduler: the fleet's one queue, placement of jobs on instances, retries, cancels, ETAs
//! and the job table.
//!
//! The policy ([`SchedulerPolicy`]) is plain synchronous code with time passed in; the actor
//! ([`Scheduler`]) only receives messages, calls the policy and delivers what it decides.

pub mod affinity;
pub mod config;
pub mod eta;
pub mod instance_slot;
pub mod job_table;
pub mod placement;
pub mod policy;
pub mod queue;
pub mod recent_jobs;
pub mod snapshot;
