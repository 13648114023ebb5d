//! What the trace readers and the synthetic generator produce, and what the simulator consumes:
//! plain data, no behaviour.

use serde::{Deserialize, Serialize};

/// How much work a job has and how fast each accelerator type does it: the scheduler's own type.
/// Gavel traces use steps and measured steps/s; duration-only traces use seconds with rate 1.0 on
/// the reference type; model-plus-token goals use tokens and the tokens/s that `suanli-perf`
/// predicts per type. A rate under [`crate::convert::ANY_ACCELERATOR`] applies to every type.
pub use suanli_sched::Work;

/// Units/s per accelerator type (a small sorted vector with a map's interface).
pub use suanli_sched::Rates;

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

/// A pool of identical nodes: the scheduler's own pool configuration (accelerator type id, nodes,
/// accelerators per node, nodes per leaf switch, leaves per pod).
pub type PoolSpec = suanli_sched::PoolConfig;

/// A cluster: pools of nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub name: String,
    pub pools: Vec<PoolSpec>,
}
