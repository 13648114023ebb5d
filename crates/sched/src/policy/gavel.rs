//! `gavel`: heterogeneity-aware scheduling after Gavel (Narayanan et al., OSDI'20), as a greedy,
//! round-based approximation of its LP.
//!
//! Gavel expresses each policy over *normalised* throughput: a job's rate on a type divided by its
//! best rate. Here, jobs are ranked as in `las` but on normalised attained service (work done,
//! expressed as accelerator-seconds on the job's fastest type), which is Gavel's
//! heterogeneity-aware LAS. Every `round_s` (Gavel uses 360 s) the policy recomputes the whole
//! allocation: it takes jobs in rank order while the pools' capacity allows, then assigns the
//! chosen jobs to types to maximise total normalised progress with a regret-ordered greedy: jobs
//! that lose most on their second-best type choose first and take the fastest type with room. A
//! running job stays on its current type unless another is at least `migration_gain` times
//! faster for it (a move costs a restart). Between rounds, free accelerators go to waiting jobs
//! in rank order, each on its fastest type with room; nothing is preempted.

use crate::cluster::PoolId;
use crate::job::JobId;
use crate::policy::las::preemptive_pass;
use crate::policy::{Las, Policy};
use crate::state::State;

/// Heterogeneity-aware LAS with rounds.
#[derive(Clone, Debug)]
pub struct Gavel {
    pub round_s: u64,
    /// Minimum speed-up for moving a running job to another type.
    pub migration_gain: f64,
    pub queues: Las,
    next_round_s: u64,
}

impl Default for Gavel {
    fn default() -> Self {
        Gavel {
            round_s: 360,
            migration_gain: 1.5,
            queues: Las::default(),
            next_round_s: 0,
        }
    }
}

impl Gavel {
    /// Normalised attained service: work done as accelerator-seconds on the fastest type.
    fn normalised_service_acc_s(state: &State, id: JobId, now_s: u64) -> u64 {
        let job = state.job(id);
        let best_rate = state
            .pools_for(id)
            .iter()
            .map(|(_, r)| *r)
            .fold(0.0, f64::max);
        let mut done = job.done_units;
        if let Some(run) = job.run() {
            let (computed_s, _) =
                job.compute_after_wall_s(now_s.saturating_sub(run.compute_start_s));
            done += computed_s as f64 * run.units_per_s;
        }
        (done / best_rate * f64::from(job.spec.gang_size)) as u64
    }

    /// The job's rate on each pool relative to its best rate, best first.
    fn normalised_rates(state: &State, id: JobId) -> Vec<(PoolId, f64)> {
        let pools = state.pools_for(id);
        let best_rate = pools.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        let mut rates: Vec<(PoolId, f64)> =
            pools.iter().map(|&(p, r)| (p, r / best_rate)).collect();
        rates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        rates
    }

    /// How much the job loses if it cannot have its best type (1 minus its second-best rate).
    fn regret(state: &State, id: JobId) -> f64 {
        let rates = Self::normalised_rates(state, id);
        1.0 - rates.get(1).map_or(0.0, |r| r.1)
    }

    fn rank(&self, state: &State, id: JobId, now_s: u64) -> (usize, u64, u32) {
        let service = Self::normalised_service_acc_s(state, id, now_s);
        (
            self.queues.queue_of(service),
            state.job(id).submitted_s,
            id.0,
        )
    }

    /// The fastest allowed pool with `room` accelerators for the job.
    fn fastest_with_room(state: &State, id: JobId, room: &[u32]) -> Option<PoolId> {
        let gang = state.job(id).spec.gang_size;
        Self::normalised_rates(state, id)
            .into_iter()
            .map(|(p, _)| p)
            .find(|p| room[p.0 as usize] >= gang)
    }

    fn full_round(&mut self, state: &mut State, now_s: u64) {
        // Choose the set to run in rank order, then give types in regret order.
        let mut active: Vec<JobId> = state.running_jobs();
        active.extend(state.pending_prefix(state.config.max_scan_jobs));
        let mut ranked: Vec<((usize, u64, u32), JobId)> = active
            .into_iter()
            .map(|id| (self.rank(state, id, now_s), id))
            .collect();
        ranked.sort();
        let mut room: Vec<u32> = state.cluster.pools.iter().map(|p| p.up_capacity).collect();
        let mut total_room: u64 = room.iter().map(|&r| u64::from(r)).sum();
        let mut chosen: Vec<JobId> = Vec::new();
        for (_, id) in ranked {
            let gang = state.job(id).spec.gang_size;
            if u64::from(gang) <= total_room
                && state
                    .pools_for(id)
                    .iter()
                    .any(|(p, _)| room[p.0 as usize] >= gang)
            {
                total_room -= u64::from(gang);
                chosen.push(id);
            }
        }
        let regrets: Vec<(f64, JobId)> = chosen
            .iter()
            .map(|&id| (Self::regret(state, id), id))
            .collect();
        let mut by_regret = regrets;
        by_regret.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut assignment: Vec<(JobId, PoolId)> = Vec::new();
        for (_, id) in by_regret {
            let gang = state.job(id).spec.gang_size;
            let fastest = Self::fastest_with_room(state, id, &room);
            let pool = match state.job(id).run().map(|r| r.pool) {
                Some(current) if room[current.0 as usize] >= gang => {
                    let rate = |p: PoolId| {
                        state
                            .pools_for(id)
                            .iter()
                            .find(|(q, _)| *q == p)
                            .map_or(0.0, |(_, r)| *r)
                    };
                    match fastest {
                        Some(f) if rate(f) >= self.migration_gain * rate(current) => Some(f),
                        _ => Some(current),
                    }
                }
                _ => fastest,
            };
            if let Some(pool) = pool {
                room[pool.0 as usize] -= gang;
                assignment.push((id, pool));
            }
        }
        // Apply: keep, move or start; everything else running is preempted as needed.
        let target: std::collections::BTreeMap<JobId, PoolId> = assignment.into_iter().collect();
        preemptive_pass(
            state,
            now_s,
            |state, id| {
                let run_here = state.job(id).run().map(|r| r.pool) == target.get(&id).copied();
                (!target.contains_key(&id), !run_here, id.0)
            },
            |state, id, capacity| {
                let gang = state.job(id).spec.gang_size;
                target
                    .get(&id)
                    .copied()
                    .filter(|p| capacity[p.0 as usize] >= gang)
            },
        );
        // Running jobs assigned to another type move there.
        for (&id, &pool) in &target {
            let moved = state.job(id).run().is_some_and(|r| r.pool != pool);
            if moved && state.cluster.pools[pool.0 as usize].free >= state.job(id).spec.gang_size {
                state.preempt(id, now_s);
                state.start(id, pool, now_s);
            }
        }
    }
}

impl Policy for Gavel {
    fn name(&self) -> &'static str {
        "gavel-greedy"
    }

    fn queue_key(&self, _job: &crate::Job, _pools: &[(PoolId, f64)]) -> i64 {
        0
    }

    fn schedule(&mut self, state: &mut State, now_s: u64) {
        if now_s >= self.next_round_s {
            self.next_round_s = now_s + self.round_s;
            self.full_round(state, now_s);
        }
        // Between rounds (and after one): fill free accelerators in rank order.
        let mut waiting: Vec<((usize, u64, u32), JobId)> = state
            .pending_prefix(state.config.max_scan_jobs)
            .into_iter()
            .map(|id| (self.rank(state, id, now_s), id))
            .collect();
        waiting.sort();
        for (_, id) in waiting {
            if state.cluster_full() {
                break;
            }
            let free: Vec<u32> = state.cluster.pools.iter().map(|p| p.free).collect();
            if let Some(pool) = Self::fastest_with_room(state, id, &free) {
                state.start(id, pool, now_s);
            }
        }
    }

    fn next_wakeup_s(&self, state: &State, _now_s: u64) -> Option<u64> {
        (state.pending_count() > 0 || state.running_count() > 0).then_some(self.next_round_s)
    }
}
