//! The suanli simulator: replays a workload on a cluster under a scheduling policy, on a virtual
//! clock.

pub mod workload;
