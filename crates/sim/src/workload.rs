//! What the trace readers and the synthetic generator produce, and what the simulator consumes:
//! plain data, no behaviour.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How much work a job has and how fast each accelerator type does it.
///
/// A job of `total_units` finishes after `total_units / units_per_s[type]` seconds of running
/// on its full gang of that type. Gavel traces use steps and measured steps/s; duration-only
/// traces use seconds with rate 1.0 on the reference type; model-plus-token goals use tokens
/// and the tokens/s that `suanli-perf` predicts per type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Work {
    pub total_units: f64,
    /// Rate per accelerator type id when running on the whole gang; a type that is absent
    /// cannot run the job.
    pub units_per_s: BTreeMap<String, f64>,
}

/// One job as read from a trace or generated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceJob {
    pub id: String,
    pub arrival_s: u64,
    /// Accelerators the job needs at once (all of one type).
    pub gang_size: u32,
    pub tenant: String,
    /// Higher runs first where a policy uses priority.
    pub priority: i32,
    pub work: Work,
    /// What the user told the scheduler about run time (for backfill), seconds.
    pub runtime_estimate_s: Option<u64>,
    /// Seconds between checkpoints; `None` = no checkpoints (a restart loses everything).
    pub checkpoint_interval_s: Option<u64>,
}

/// A pool of identical nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub name: String,
    /// Accelerator type id (catalog id where one exists, e.g. `v100`, `h100-sxm5-80gb`).
    pub accelerator: String,
    pub nodes: u32,
    pub accelerators_per_node: u32,
    /// Nodes under one leaf switch.
    pub nodes_per_leaf: u32,
    /// Leaf switches under one pod (spine) switch.
    pub leaves_per_pod: u32,
}

/// A cluster: pools of nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub name: String,
    pub pools: Vec<PoolSpec>,
}
