//! The suanli scheduling core: cluster and topology state, queues and tenant quotas, scheduling
//! policies, topology-aware placement, and failure and checkpoint logic.
//!
//! Pure and deterministic: no I/O, no clock (every call takes `now_s`, whole seconds), no hash
//! iteration order in decisions. The simulator drives it on a virtual clock and the server on the
//! wall clock, through the same calls.
//!
//! ```
//! use suanli_sched::{policy, JobSpec, PoolConfig, SchedConfig, Scheduler, Work};
//!
//! let pools = [PoolConfig {
//!     name: "a".into(), accelerator: "h100".into(), nodes: 2,
//!     accelerators_per_node: 8, nodes_per_leaf: 2, leaves_per_pod: 1,
//! }];
//! let mut scheduler =
//!     Scheduler::new(&pools, &[], policy::by_name("fifo").unwrap(), SchedConfig::default()).unwrap();
//! let job = scheduler.submit(JobSpec {
//!     name: "train".into(), gang_size: 16, tenant: "research".into(), priority: 0,
//!     work: Work::duration_on("h100", 3600.0), runtime_estimate_s: None,
//!     checkpoint_interval_s: None, checkpoint_cost_s: 0,
//! }, 0).unwrap();
//! let decisions = scheduler.schedule(0);
//! assert_eq!(decisions[0].to_string(), "start j0 on pool0 [n0x8 n1x8] until 3600s");
//! scheduler.on_finish(job, 3600).unwrap();
//! ```

pub mod checkpoint;
pub mod cluster;
mod free_index;
pub mod job;
mod placement;
pub mod policy;
mod rates;
mod scheduler;
pub mod state;
pub mod tenant;

pub use cluster::{Cluster, NodeId, PoolConfig, PoolId};
pub use job::{Job, JobId, JobSpec, Run, Status, Work};
pub use placement::Allocation;
pub use policy::Policy;
pub use rates::Rates;
pub use scheduler::Scheduler;
pub use state::{Decision, PreemptReason, SchedConfig, State};
pub use tenant::{Tenant, TenantConfig};

/// What the scheduler refuses, each message saying what would be right.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SchedError {
    #[error("invalid cluster: {0}")]
    InvalidCluster(String),
    #[error("invalid tenant: {0}")]
    InvalidTenant(String),
    #[error("invalid job: {0}")]
    InvalidJob(String),
    #[error("job can never run: {0}")]
    Unplaceable(String),
    #[error("unknown job id {0}")]
    UnknownJob(u32),
    #[error("job {0} is not running")]
    NotRunning(u32),
    #[error(
        "job {0} has already ended (finished or cancelled); only a pending or running job can be cancelled"
    )]
    AlreadyEnded(u32),
    #[error("unknown node {node}; nodes are numbered 0 to {}", nodes.saturating_sub(1))]
    UnknownNode { node: u32, nodes: u32 },
    #[error("unknown policy `{given}`; choose one of {known}")]
    UnknownPolicy { given: String, known: String },
}
