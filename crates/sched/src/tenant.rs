//! Tenants and quotas. A tenant is guaranteed a number of accelerators of each type; beyond that
//! it may borrow idle capacity, and a borrowed run is preempted (reason `QuotaReclaim`) when a
//! tenant still inside its guarantee has a job waiting for that type. Tenants without a
//! guarantee only ever borrow. Reclaim runs before the policy on every scheduling pass, whatever
//! the policy, when any tenant has a guarantee.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::job::JobId;
use crate::state::{Interruption, PreemptReason, State};

/// A tenant as configured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantConfig {
    pub name: String,
    /// Accelerators guaranteed per accelerator type.
    #[serde(default)]
    pub guaranteed: BTreeMap<String, u32>,
    /// Fair-share weight (the `fair` policy gives each tenant capacity in proportion).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// A tenant with its current usage.
#[derive(Clone, Debug, PartialEq)]
pub struct Tenant {
    pub name: String,
    pub guaranteed: BTreeMap<String, u32>,
    pub weight: f64,
    /// Accelerators held now, per type.
    pub used: BTreeMap<String, u32>,
    /// Accelerators held now, all types.
    pub used_total: u32,
}

impl Tenant {
    /// A tenant from its configuration, holding nothing.
    pub fn new(config: &TenantConfig) -> Self {
        Tenant {
            name: config.name.clone(),
            guaranteed: config.guaranteed.clone(),
            weight: if config.weight > 0.0 {
                config.weight
            } else {
                1.0
            },
            used: BTreeMap::new(),
            used_total: 0,
        }
    }

    /// Guaranteed accelerators of a type.
    pub fn guaranteed_of(&self, accelerator: &str) -> u32 {
        self.guaranteed.get(accelerator).copied().unwrap_or(0)
    }

    /// Accelerators of a type held now.
    pub fn used_of(&self, accelerator: &str) -> u32 {
        self.used.get(accelerator).copied().unwrap_or(0)
    }

    pub(crate) fn add_usage(&mut self, accelerator: &str, count: u32) {
        match self.used.get_mut(accelerator) {
            Some(used) => *used += count,
            None => {
                self.used.insert(accelerator.to_string(), count);
            }
        }
        self.used_total += count;
    }

    pub(crate) fn remove_usage(&mut self, accelerator: &str, count: u32) {
        let used = self
            .used
            .get_mut(accelerator)
            .expect("usage recorded at start");
        *used -= count;
        self.used_total -= count;
    }
}

impl State {
    /// True when some tenant has a guarantee.
    pub fn has_quotas(&self) -> bool {
        self.tenants.iter().any(|t| !t.guaranteed.is_empty())
    }

    /// True when the running job's tenant is within its guarantee for the job's type, so policies
    /// should not preempt it.
    pub fn is_guaranteed(&self, id: JobId) -> bool {
        let job = self.job(id);
        let Some(run) = job.run() else { return false };
        let tenant = &self.tenants[job.tenant];
        if tenant.guaranteed.is_empty() {
            // Its usage includes this job's gang (at least 1) and its guarantee is 0.
            return false;
        }
        let accelerator = &self.cluster.pools[run.pool.0 as usize].accelerator;
        tenant.used_of(accelerator) <= tenant.guaranteed_of(accelerator)
    }

    /// Starts waiting jobs of tenants inside their guarantee, preempting borrowers if needed.
    pub(crate) fn reclaim_guarantees(&mut self, now_s: u64) {
        self.keep_tenant_queues();
        for tenant in 0..self.tenants.len() {
            if self.tenants[tenant].guaranteed.is_empty() {
                continue;
            }
            let waiting: Vec<JobId> = self.pending_by_tenant[tenant]
                .iter()
                .take(self.config.max_scan_jobs)
                .map(|&(_, id)| JobId(id))
                .collect();
            for id in waiting {
                if !self.start_within_guarantee(id, now_s) {
                    // Keep the tenant's own jobs in order: a later job does not jump an earlier one.
                    break;
                }
            }
        }
    }

    fn start_within_guarantee(&mut self, id: JobId, now_s: u64) -> bool {
        let tenant = self.job(id).tenant;
        let gang = self.job(id).spec.gang_size;
        for (pool, _) in self.pools_for(id).to_vec() {
            let accelerator = self.cluster.pools[pool.0 as usize].accelerator.clone();
            let owner = &self.tenants[tenant];
            if owner.used_of(&accelerator) + gang > owner.guaranteed_of(&accelerator) {
                continue;
            }
            if self.start(id, pool, now_s) {
                return true;
            }
            let Some(victims) = self.borrowers_to_evict(pool, &accelerator, gang) else {
                continue;
            };
            for victim in victims {
                self.interrupt(
                    victim,
                    now_s,
                    Interruption::Preempted(PreemptReason::QuotaReclaim),
                );
            }
            if self.start(id, pool, now_s) {
                return true;
            }
        }
        false
    }

    /// Running jobs on `pool` of tenants over their guarantee for its type, newest first, whose
    /// preemption frees `gang` accelerators; `None` if there are not enough.
    fn borrowers_to_evict(
        &self,
        pool: crate::PoolId,
        accelerator: &str,
        gang: u32,
    ) -> Option<Vec<JobId>> {
        let mut on_pool: Vec<(u64, JobId)> = self
            .running_by_estimated_end(pool)
            .map(|(_, id)| (self.job(id).run().expect("running").started_s, id))
            .collect();
        on_pool.sort_by(|a, b| b.cmp(a));
        let mut excess: BTreeMap<usize, u32> = BTreeMap::new();
        let mut free = self.cluster.pools[pool.0 as usize].free;
        let mut victims = Vec::new();
        for (_, id) in on_pool {
            if free >= gang {
                break;
            }
            let job = self.job(id);
            let tenant = &self.tenants[job.tenant];
            let over = excess.entry(job.tenant).or_insert_with(|| {
                tenant
                    .used_of(accelerator)
                    .saturating_sub(tenant.guaranteed_of(accelerator))
            });
            if *over == 0 {
                continue;
            }
            *over = over.saturating_sub(job.spec.gang_size);
            free += job.spec.gang_size;
            victims.push(id);
        }
        (free >= gang).then_some(victims)
    }
}
