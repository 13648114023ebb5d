//! Turning what the readers produce into what the scheduler takes: a `ClusterSpec`'s pools, and
//! a `TraceJob`'s spec with the run's choices applied (any-type rates, checkpoint policy and cost).

use suanli_perf::reliability::young_daly_interval_s;
use suanli_sched::checkpoint::gang_mtbf_s;
use suanli_sched::{JobSpec, PoolConfig, Work};

use crate::failures::{CheckpointPolicy, FailureModel};
use crate::trace::ANY_ACCELERATOR;
use crate::workload::{ClusterSpec, TraceJob};

/// The scheduler's pools for a cluster (the same type: a copy).
pub fn pools(cluster: &ClusterSpec) -> Vec<PoolConfig> {
    cluster.pools.clone()
}

/// The scheduler's job for a trace job: the trace's spec with the run's choices applied. A rate
/// under `*` applies to every type in the cluster; the checkpoint interval follows `checkpoint`,
/// and a job that checkpoints pays `checkpoint_cost_s` per checkpoint. The name and tenant are
/// left empty (nothing allocated) for `Scheduler::submit_borrowed`, which borrows them from the
/// trace job.
pub fn unnamed_job_spec(
    job: &TraceJob,
    cluster: &ClusterSpec,
    checkpoint: &CheckpointPolicy,
    checkpoint_cost_s: u64,
    failures: &FailureModel,
) -> JobSpec {
    let spec = &job.spec;
    let mut units_per_s = spec.work.units_per_s.clone();
    if let Some(rate) = units_per_s.remove(ANY_ACCELERATOR) {
        for pool in &cluster.pools {
            units_per_s.insert_if_absent(pool.accelerator.clone(), rate);
        }
    }
    let checkpoint_interval_s = match checkpoint {
        CheckpointPolicy::AsTrace => spec.checkpoint_interval_s,
        CheckpointPolicy::Every { interval_s } => Some(*interval_s),
        CheckpointPolicy::YoungDaly => failures.mtbf_per_accelerator_h.map(|h| {
            let mtbf_s = gang_mtbf_s(h * 3600.0, spec.gang_size);
            young_daly_interval_s(checkpoint_cost_s.max(1) as f64, mtbf_s)
                .round()
                .max(1.0) as u64
        }),
    };
    JobSpec {
        name: String::new(),
        tenant: String::new(),
        work: Work {
            total_units: spec.work.total_units,
            units_per_s,
        },
        checkpoint_interval_s,
        checkpoint_cost_s: if checkpoint_interval_s.is_some() {
            checkpoint_cost_s
        } else {
            0
        },
        // The rest (gang size, priority, runtime estimate) as the trace gives it.
        ..*spec
    }
}
