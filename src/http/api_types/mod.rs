//! The public HTTP API's wire types: what clients send and receive, kept stable on purpose.
//!
//! Answers and server-sent events are built only from these types, converted from the actors'
//! internal ones (`JobRecord`, `JobEvent`, `SchedulerSnapshot`) at the boundary, so a change
//! inside the fleet does not change the API. Every type derives `Serialize` and `Deserialize`,
//! so clients (and the tests) parse answers into the same types the server writes. Durations
//! and instants are numbers of seconds (`eta_seconds: 0.41`; timestamps in seconds since the
//! Unix epoch).

pub mod error;
pub mod event;
pub mod job;
pub mod models;
pub mod status;

pub use error::{ErrorBody, ErrorDetail};
pub use event::StreamEvent;
pub use job::{CreatedJob, JobStateView, JobView, NewJob, OutputView};
pub use models::{ModelFileView, ModelList};
pub use status::{
    GpuProcessStatus, GpuSourceView, GpuStatus, HealthView, InstanceStatus, JobsByState, Latencies,
    PhaseView, QueueStatus, ReadinessView, StatusSources, StatusView,
};
