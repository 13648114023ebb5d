//! `las`: least attained service with discretised priority queues, preemptive (Tiresias,
//! Gu et al., NSDI'19, "2D-LAS" with the discretised multi-level queue of section 4.2).
//!
//! A job's attained service is the accelerator-seconds it has held. Queue `k` holds jobs whose
//! service has crossed `k` of the thresholds (default 1 and 10 accelerator-hours); lower queues
//! go first, and within a queue the earlier submission. On each pass the policy walks jobs in that
//! order, counting accelerators per pool, to find the set that should run; running jobs outside
//! it are preempted, but only as many as the waiting jobs in the set need, so fragmentation does
//! not cause preemptions that start nothing. A job inside its tenant's guarantee is never
//! preempted. Tiresias's starvation guard (promotion after long waits) is not modelled.

use crate::cluster::PoolId;
use crate::job::JobId;
use crate::policy::Policy;
use crate::state::State;

/// Tiresias-style discretised LAS.
#[derive(Clone, Debug)]
pub struct Las {
    /// Attained-service thresholds between queues, accelerator-seconds, ascending.
    pub thresholds_acc_s: Vec<u64>,
}

impl Default for Las {
    fn default() -> Self {
        Las {
            thresholds_acc_s: vec![3_600, 36_000],
        }
    }
}

impl Las {
    /// The queue a job with this much service is in.
    pub fn queue_of(&self, attained_acc_s: u64) -> usize {
        self.thresholds_acc_s
            .iter()
            .filter(|&&t| attained_acc_s >= t)
            .count()
    }
}

impl Policy for Las {
    fn name(&self) -> &'static str {
        "las"
    }

    fn queue_key(&self, _job: &crate::Job, _pools: &[(PoolId, f64)]) -> i64 {
        0
    }

    fn schedule(&mut self, state: &mut State, now_s: u64) {
        let order = |state: &State, id: JobId| {
            let job = state.job(id);
            (self.queue_of(job.attained_at(now_s)), job.submitted_s, id.0)
        };
        preemptive_pass(state, now_s, order, roomiest_pool);
    }

    fn next_wakeup_s(&self, state: &State, now_s: u64) -> Option<u64> {
        if state.pending_count() == 0 {
            return None;
        }
        // The next demotion of a running job can change the order.
        crate::policy::las_indexed::next_demotion_s(self, state, now_s)
    }
}

/// Type-agnostic pool choice of every LAS pass: the job's allowed pool with the most
/// accelerators still unclaimed in this pass (`capacity`), the first in configuration order on a
/// tie; `None` if none holds the gang.
pub(crate) fn roomiest_pool(state: &State, id: JobId, capacity: &[u32]) -> Option<PoolId> {
    let gang = state.job(id).spec.gang_size;
    state
        .pools_for(id)
        .iter()
        .map(|&(p, _)| p)
        .filter(|p| capacity[p.0 as usize] >= gang)
        .max_by_key(|p| (capacity[p.0 as usize], std::cmp::Reverse(p.0)))
}

/// One pass of a preemptive priority policy. `order` ranks jobs (smaller first); `choose_pool`
/// picks a pool for a waiting job given the accelerators per pool still unclaimed in this pass.
pub(crate) fn preemptive_pass<K: Ord>(
    state: &mut State,
    now_s: u64,
    order: impl Fn(&State, JobId) -> K,
    choose_pool: impl Fn(&State, JobId, &[u32]) -> Option<PoolId>,
) {
    let mut active: Vec<JobId> = state.running_jobs();
    active.extend(state.pending_prefix(state.config.max_scan_jobs));
    let mut ranked: Vec<(K, JobId)> = active
        .into_iter()
        .map(|id| (order(state, id), id))
        .collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0));
    let mut capacity: Vec<u32> = state.cluster.pools.iter().map(|p| p.up_capacity).collect();
    // Jobs inside their guarantee keep running whatever their rank.
    for (_, id) in &ranked {
        if state.is_guaranteed(*id) {
            let run = state.job(*id).run().expect("guaranteed jobs run");
            capacity[run.pool.0 as usize] -= state.job(*id).spec.gang_size;
        }
    }
    let mut to_start: Vec<(JobId, PoolId)> = Vec::new();
    let mut victims: Vec<Vec<JobId>> = vec![Vec::new(); capacity.len()];
    for (_, id) in &ranked {
        let gang = state.job(*id).spec.gang_size;
        if let Some(run) = state.job(*id).run() {
            if state.is_guaranteed(*id) {
                continue;
            }
            let pool = run.pool.0 as usize;
            if capacity[pool] >= gang {
                capacity[pool] -= gang;
            } else {
                victims[pool].push(*id);
            }
        } else if let Some(pool) = choose_pool(state, *id, &capacity) {
            capacity[pool.0 as usize] -= gang;
            to_start.push((*id, pool));
        }
    }
    start_with_victims(state, to_start, &mut victims, now_s);
}

/// Starts each chosen job on its pool, preempting that pool's victims (lowest-ranked first,
/// i.e. from the back of `victims[pool]`) only until the gang fits; a job that still cannot be
/// placed there (fragmentation) starts anywhere it fits. Shared by every LAS pass.
pub(crate) fn start_with_victims(
    state: &mut State,
    to_start: Vec<(JobId, PoolId)>,
    victims: &mut [Vec<JobId>],
    now_s: u64,
) {
    for (id, pool) in to_start {
        let gang = state.job(id).spec.gang_size;
        while state.cluster.pools[pool.0 as usize].free < gang {
            let Some(victim) = victims[pool.0 as usize].pop() else {
                break;
            };
            state.preempt(victim, now_s);
        }
        if !state.start(id, pool, now_s) {
            state.start_anywhere(id, now_s);
        }
    }
}
