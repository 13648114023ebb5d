//! Fitting a workload to a cluster: replaces "any type" ([`super::ANY_ACCELERATOR`]) by the
//! cluster's accelerator types, drops types the cluster lacks, and sets aside jobs that no pool
//! of an allowed type can ever hold, so that a simulation cannot wait forever on them.

use super::ANY_ACCELERATOR;
use crate::workload::{ClusterSpec, TraceJob};
use std::collections::BTreeMap;
use std::fmt;

/// What [`fit_to_cluster`] changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FitReport {
    /// Jobs whose "any type" rate was replaced by the cluster's types.
    pub any_type_expanded: usize,
    /// Jobs that lost at least one allowed type the cluster does not have.
    pub types_removed: usize,
    /// Jobs set aside, with the reason: `(job id, reason)`.
    pub unrunnable: Vec<(String, String)>,
}

impl fmt::Display for FitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} jobs may run on any type, {} lost types the cluster lacks, {} cannot run",
            self.any_type_expanded,
            self.types_removed,
            self.unrunnable.len()
        )?;
        for (id, reason) in self.unrunnable.iter().take(5) {
            write!(f, "\n  job {id}: {reason}")?;
        }
        if self.unrunnable.len() > 5 {
            write!(f, "\n  ... and {} more", self.unrunnable.len() - 5)?;
        }
        Ok(())
    }
}

/// Binds `jobs` to `cluster`'s accelerator types; returns the runnable jobs, in order, and a
/// report. A job is runnable when some single pool of an allowed type has at least
/// `gang_size` accelerators.
pub fn fit_to_cluster(jobs: Vec<TraceJob>, cluster: &ClusterSpec) -> (Vec<TraceJob>, FitReport) {
    let mut largest_pool_by_type: BTreeMap<&str, u64> = BTreeMap::new();
    for pool in &cluster.pools {
        let accelerators = u64::from(pool.nodes) * u64::from(pool.accelerators_per_node);
        let largest = largest_pool_by_type.entry(&pool.accelerator).or_default();
        *largest = (*largest).max(accelerators);
    }
    let mut report = FitReport::default();
    let mut runnable = Vec::with_capacity(jobs.len());
    for mut job in jobs {
        let rates = &mut job.spec.work.units_per_s;
        if let Some(any_rate) = rates.remove(ANY_ACCELERATOR) {
            report.any_type_expanded += 1;
            for accelerator in largest_pool_by_type.keys() {
                rates.insert_if_absent(accelerator.to_string(), any_rate);
            }
        }
        let before = rates.len();
        rates.retain(|accelerator, _| largest_pool_by_type.contains_key(accelerator.as_str()));
        if rates.len() < before {
            report.types_removed += 1;
        }
        let largest_allowed = rates
            .keys()
            .map(|accelerator| largest_pool_by_type[accelerator.as_str()])
            .max();
        match largest_allowed {
            None => report.unrunnable.push((
                job.id().to_string(),
                format!(
                    "the cluster {} has none of its accelerator types",
                    cluster.name
                ),
            )),
            Some(largest) if largest < u64::from(job.spec.gang_size) => report.unrunnable.push((
                job.id().to_string(),
                format!(
                    "needs {} accelerators of one type, the largest pool it may use has {largest}",
                    job.spec.gang_size
                ),
            )),
            Some(_) => runnable.push(job),
        }
    }
    (runnable, report)
}
