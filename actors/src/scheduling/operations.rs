//! Operator operations on the fleet (the Discord bot's `/fleet` command, …): pause and resume
//! the queue, drain or restart one instance. The messages an operator's front end sends the
//! scheduler, what it answers, and the order the scheduler passes on to the instance.
//!
//! Instance operations go through the scheduler, so no job is placed on an instance an operator
//! is draining or restarting once the scheduler has taken the order, and the order reaches the
//! instance after every job the scheduler gave it before.

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::ids::InstanceId;

/// Operator → scheduler: stop (`paused: true`) or resume dispatching queued jobs. While paused,
/// submissions are still accepted and told their position; running jobs go on.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "QueuePause")]
pub struct SetQueuePaused {
    pub paused: bool,
}

/// What pausing or resuming did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePause {
    /// Whether the queue is paused now.
    pub paused: bool,
    /// False when it already was in that state.
    pub changed: bool,
    /// Jobs waiting.
    pub queue_depth: usize,
}

/// What an operator may do to one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceOperation {
    /// Take no new jobs, finish the running ones, then stop the process and stay stopped until
    /// restarted.
    Drain,
    /// Stop the process (running jobs are retried elsewhere, as after a crash) and start afresh;
    /// also what brings a drained instance back.
    Restart,
}

impl InstanceOperation {
    pub fn name(self) -> &'static str {
        match self {
            Self::Drain => "drain",
            Self::Restart => "restart",
        }
    }
}

/// Operator → scheduler: drain or restart one instance. Answers once the scheduler has taken
/// the order (the instance carries it out after that; its phases tell how it goes).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "Result<(), OperationError>")]
pub struct OperateInstance {
    pub instance: InstanceId,
    pub operation: InstanceOperation,
}

/// Scheduler → instance: carry out an operator's order.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct InstanceOrder {
    pub operation: InstanceOperation,
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    #[error("no instance `{given}`; the fleet's instances are: {}", known_list(.known))]
    UnknownInstance {
        given: InstanceId,
        known: Vec<InstanceId>,
    },
    #[error("the fleet is shutting down; its instances are being stopped")]
    ShuttingDown,
}

fn known_list(known: &[InstanceId]) -> String {
    if known.is_empty() {
        return "none".into();
    }
    known
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
