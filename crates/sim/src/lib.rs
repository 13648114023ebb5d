//! The suanli simulator: replays a workload on a cluster under a scheduling policy, on a virtual
//! clock, with injected node failures, and reports what happened.
//!
//! ```
//! use suanli_sim::workload::{ClusterSpec, JobSpec, PoolSpec, TraceJob, Work};
//! use suanli_sim::{simulate, SimConfig, Summary};
//!
//! let cluster = ClusterSpec { name: "tiny".into(), pools: vec![PoolSpec {
//!     name: "a".into(), accelerator: "a100".into(), nodes: 2, accelerators_per_node: 8,
//!     nodes_per_leaf: 2, leaves_per_pod: 1 }] };
//! let job = |id: &str, arrival_s| TraceJob { arrival_s, spec: JobSpec {
//!     name: id.into(), gang_size: 16, tenant: "t".into(), priority: 0,
//!     work: Work { total_units: 600.0, units_per_s: [("a100".into(), 1.0)].into() },
//!     runtime_estimate_s: None, checkpoint_interval_s: None, checkpoint_cost_s: 0 } };
//! let run = simulate(&cluster, &[job("a", 0), job("b", 0)], &SimConfig::default(), None).unwrap();
//! let summary = Summary::of(&run);
//! assert_eq!((summary.jct_s.mean, summary.makespan_s), (900.0, 1200));
//! ```

pub mod presets;
pub mod synthetic;
pub mod trace;
pub mod workload;

pub mod convert;
pub mod engine;
pub mod failures;
pub mod label;
pub mod limits;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod tenants;

pub use engine::{SimConfig, SimError, simulate};
pub use failures::{CheckpointPolicy, FailureModel, SpecError};
pub use label::Label;
pub use metrics::{JobRecord, RunResult, Summary, TenantSummary};
