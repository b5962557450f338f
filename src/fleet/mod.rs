//! The running fleet: boot and shutdown of all actors, and the shared pieces submitters use.

pub mod events;
