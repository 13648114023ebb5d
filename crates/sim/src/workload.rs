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

/// What the scheduler is given for a job: its own type. In a [`TraceJob`] its `name` is the
/// trace's job id.
pub use suanli_sched::JobSpec;

/// One job as read from a trace or generated: the scheduler's [`JobSpec`] and what only a trace
/// has, the arrival time.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceJob {
    /// Seconds from the start of the trace.
    pub arrival_s: u64,
    /// The job as the trace gives it, its id in `name`. The readers and the generator leave
    /// `checkpoint_cost_s` at 0: what a checkpoint costs is the run's choice
    /// (`SimConfig::checkpoint_cost_s`), which [`crate::convert::unnamed_job_spec`] sets.
    pub spec: JobSpec,
}

impl TraceJob {
    /// The trace's id of the job (`spec.name`).
    pub fn id(&self) -> &str {
        &self.spec.name
    }
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
