//! The suanli simulator: replays a workload on a cluster under a scheduling policy, on a virtual
//! clock.

pub mod presets;
pub mod synthetic;
pub mod trace;
pub mod workload;
