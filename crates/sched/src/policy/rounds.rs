//! Gavel's round-based scheduling (Narayanan et al., OSDI'20, sections 4–5): an allocation from
//! the policy's optimisation problem, realised by time slicing in rounds.
//!
//! When the set of active jobs has changed (an arrival, a completion) and at least
//! `min_reset_interval_s` has passed since the allocation was last computed (Gavel's
//! `minimum_time_between_allocation_resets`, 1,920 s by default, which its simulator applies in
//! `_update_priorities`), the policy solves its LP (`lp.rs`) for `X[j][w]`, the fraction of time
//! job `j` should run on type `w`. Every round (`round_s`, Gavel's default 360 s) it computes each
//! job's priority on each type as `X[j][w] / (time received on w / time since the allocation was
//! computed)` (Gavel's `_update_priorities`; a job that has received nothing yet on a type it
//! should use ranks first) and hands out the round's accelerators in priority order, each job on
//! at most one type, a gang only where it fits. Jobs the allocation gives nothing on a type (or
//! that arrived after it was computed) have priority 0 there, as in Gavel, and take what is left
//! over, oldest first; Gavel orders those by deficit, which we do not track. A job kept on its
//! type keeps running (Gavel's lease renewal: no restart); a
//! job that is not chosen is preempted (it checkpoints, as Gavel assumes) and one that moves pays
//! the scheduler's restart delay. Between rounds nothing changes: a job that arrives mid-round
//! waits for the next round, and accelerators freed by a completion stay idle until then, as in
//! Gavel's simulator.
//!
//! Objectives (Gavel `scheduler/policies/`), all over the base constraints of `lp.rs`:
//! - max-min fairness (`max_min_fairness.py`, Gavel's "LAS"): maximise the smallest
//!   `scale_factor * throughput(X) / throughput(X_equal share)`; the heterogeneity-agnostic
//!   variant treats every type as throughput 1, the `-hetero` variant (`max_min_fairness_perf`)
//!   uses measured throughputs.
//! - finish-time fairness (`finish_time_fairness.py`, after Themis, NSDI'20): minimise the largest
//!   `rho_j = (elapsed_j + remaining_j / throughput_j(X)) / isolated_time_j`, solved by a
//!   fixed-point iteration on `rho` over max-min problems (`lp::FinishTimeProblem`).
//! - makespan (`min_total_duration.py`): minimise the largest `remaining_j / throughput_j(X)`,
//!   i.e. maximise the smallest `throughput_j(X) / remaining_j`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::job::JobId;
use crate::policy::Policy;
use crate::policy::lp::{FinishTimeProblem, MaxMinProblem, proportional_throughputs};
use crate::state::State;

/// What the allocation optimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    MaxMinFairness,
    MaxMinFairnessHetero,
    FinishTimeFairness,
    FinishTimeFairnessHetero,
    Makespan,
}

impl Objective {
    fn heterogeneity_aware(self) -> bool {
        !matches!(
            self,
            Objective::MaxMinFairness | Objective::FinishTimeFairness
        )
    }
}

/// Gavel-style round-based scheduling with an LP allocation.
#[derive(Clone, Debug)]
pub struct RoundBased {
    pub objective: Objective,
    pub round_s: u64,
    /// The allocation is recomputed at most this often (Gavel's default 1,920 s).
    pub min_reset_interval_s: u64,
    name: &'static str,
    next_round_s: u64,
    last_round_s: u64,
    reset_s: u64,
    /// Active job ids of the current allocation, ascending.
    active: Vec<u32>,
    /// Pools (accelerator types) per row of `share` and `received_s`.
    pools: usize,
    /// `X[j][w]` by position in `active`, then pool (row-major).
    share: Vec<f64>,
    /// Seconds each job of `active` ran on each pool since the last reset (row-major).
    received_s: Vec<f64>,
    /// `ln` of `share` (where positive) and of `received_s`, kept so that a round computes no
    /// logarithm for a (job, type) pair whose figures did not change.
    share_ln: Vec<f64>,
    received_ln: Vec<f64>,
    /// Scratch buffers reused by every round (no allocation per round once warm).
    scratch_active: Vec<u32>,
    scratch_keys: Vec<u128>,
    /// Per job id, `gang << 32 | mask of the pools it runs on` (0 = not yet seen), so a round
    /// reads each active job's figures from one dense array instead of its scheduler record;
    /// used on clusters of at most 32 pools.
    job_pools: Vec<u64>,
}

impl RoundBased {
    /// A policy named `name` optimising `objective`, with Gavel's 6-minute rounds.
    pub fn new(name: &'static str, objective: Objective) -> Self {
        RoundBased {
            objective,
            round_s: 360,
            min_reset_interval_s: 1920,
            name,
            next_round_s: 0,
            last_round_s: 0,
            reset_s: 0,
            active: Vec::new(),
            pools: 0,
            share: Vec::new(),
            received_s: Vec::new(),
            share_ln: Vec::new(),
            received_ln: Vec::new(),
            scratch_active: Vec::new(),
            scratch_keys: Vec::new(),
            job_pools: Vec::new(),
        }
    }

    /// Throughput of each active job on each pool (units/s of the whole gang; 1 on every runnable
    /// pool for a heterogeneity-agnostic objective, as Gavel's agnostic policies do).
    fn rates(&self, state: &State, active: &[u32]) -> Vec<Vec<f64>> {
        let pools = state.cluster.pools.len();
        active
            .iter()
            .map(|&id| {
                let mut row = vec![0.0; pools];
                for &(p, rate) in state.pools_for(JobId(id)) {
                    row[p.0 as usize] = if self.objective.heterogeneity_aware() {
                        rate
                    } else {
                        1.0
                    };
                }
                row
            })
            .collect()
    }

    /// Solves the objective's allocation for `active` at `now_s`.
    fn allocate(&self, state: &State, active: &[u32], now_s: u64) -> Vec<Vec<f64>> {
        let rates = self.rates(state, active);
        let workers: Vec<f64> = state
            .cluster
            .pools
            .iter()
            .map(|p| f64::from(p.up_capacity))
            .collect();
        let scale: Vec<u32> = active
            .iter()
            .map(|&id| state.job(JobId(id)).spec.gang_size)
            .collect();
        let equal = proportional_throughputs(&rates, &workers);
        let remaining: Vec<f64> = active
            .iter()
            .map(|&id| remaining_units(state, id, now_s).max(1e-9))
            .collect();
        let solve = |coefficients: &[Vec<f64>]| {
            MaxMinProblem {
                coefficients,
                scale_factors: &scale,
                workers: &workers,
            }
            .solve()
        };
        let scaled = |f: &dyn Fn(usize) -> f64| -> Vec<Vec<f64>> {
            rates
                .iter()
                .enumerate()
                .map(|(j, row)| row.iter().map(|r| r * f(j)).collect())
                .collect()
        };
        let allocation = match self.objective {
            Objective::MaxMinFairness | Objective::MaxMinFairnessHetero => {
                solve(&scaled(&|j| f64::from(scale[j]) / equal[j].max(1e-12)))
            }
            Objective::Makespan => solve(&scaled(&|j| 1.0 / remaining[j])),
            Objective::FinishTimeFairness | Objective::FinishTimeFairnessHetero => {
                // Isolated time: the whole job at its equal-share throughput (Themis's
                // "independent" share); elapsed: since submission.
                let isolated_s: Vec<f64> = active
                    .iter()
                    .enumerate()
                    .map(|(j, &id)| {
                        state.job(JobId(id)).spec.work.total_units / equal[j].max(1e-12)
                    })
                    .collect();
                let elapsed_s: Vec<f64> = active
                    .iter()
                    .map(|&id| now_s.saturating_sub(state.job(JobId(id)).submitted_s) as f64)
                    .collect();
                FinishTimeProblem {
                    rates: &rates,
                    scale_factors: &scale,
                    workers: &workers,
                    elapsed_s: &elapsed_s,
                    isolated_s: &isolated_s,
                    remaining: &remaining,
                }
                .solve()
                .map(|(_, allocation)| allocation)
            }
        };
        let allocation = allocation.map(|a| {
            if self.objective.heterogeneity_aware() {
                a.share
            } else {
                spread_by_capacity(a.share, &rates, &workers)
            }
        });
        // Shares to 1e-4: solver noise (and the second stage's 1e-6 slack) must not decide
        // between jobs the objective treats alike.
        allocation.map_or_else(
            || vec![vec![0.0; workers.len()]; active.len()],
            |share| {
                share
                    .into_iter()
                    .map(|row| row.into_iter().map(|x| (x * 1e4).round() / 1e4).collect())
                    .collect()
            },
        )
    }

    /// The row of job `id` in the current allocation, if it has one.
    fn row_of(&self, id: u32) -> Option<usize> {
        self.active.binary_search(&id).ok()
    }

    /// Adds the time each running job held its pool since the last round.
    fn account(&mut self, state: &State, now_s: u64) {
        for &id in &state.running {
            let run = state.job(JobId(id)).run().expect("running");
            let held_s = now_s.saturating_sub(run.started_s.max(self.last_round_s)) as f64;
            if let Some(row) = self.row_of(id) {
                let i = row * self.pools + run.pool.0 as usize;
                self.received_s[i] += held_s;
                self.received_ln[i] = self.received_s[i].ln();
            }
        }
    }

    fn round(&mut self, state: &mut State, now_s: u64) {
        self.account(state, now_s);
        let mut active = std::mem::take(&mut self.scratch_active);
        active.clear();
        active.extend(state.running.iter().copied());
        active.extend(
            state
                .pending
                .iter()
                .take(state.config.max_scan_jobs)
                .map(|&(_, _, id)| id),
        );
        active.sort_unstable();
        let first = self.active.is_empty();
        let interval_passed = now_s.saturating_sub(self.reset_s) >= self.min_reset_interval_s;
        if active != self.active && (first || interval_passed) {
            let shares = self.allocate(state, &active, now_s);
            self.pools = state.cluster.pools.len();
            self.share = shares.into_iter().flatten().collect();
            // Gavel's `_reset_time_run_so_far`: every job starts at half a round on each type.
            self.received_s = vec![self.round_s as f64 / 2.0; self.share.len()];
            self.received_ln = vec![(self.round_s as f64 / 2.0).ln(); self.share.len()];
            self.share_ln = self
                .share
                .iter()
                .map(|&x| if x > 1e-9 { x.ln() } else { 0.0 })
                .collect();
            self.active.clone_from(&active);
            self.reset_s = now_s;
        }
        let plan = self.plan(state, &active, now_s);
        apply(state, &plan, now_s);
        self.scratch_active = active;
        self.last_round_s = now_s;
    }

    /// Which pool each job runs on this round: (job, pool) in job order. `active` holds the jobs
    /// that are running or waiting now (the allocation may be older).
    fn plan(&mut self, state: &State, active: &[u32], now_s: u64) -> Vec<(u32, usize)> {
        let elapsed_s = (now_s.saturating_sub(self.reset_s) as f64).max(self.round_s as f64);
        let elapsed_ln = elapsed_s.ln();
        // (priority class, -ln priority, job, pool), packed into one integer in that order:
        // class 0 are the (job, type) pairs the allocation gives time, by priority; class 1 the
        // pairs at priority 0, oldest job first. Priorities within 1e-5 of each other (solver
        // noise) tie, and ties go to the older job (`active` is in id order, so its index orders
        // jobs as their ids do).
        let mut keys = std::mem::take(&mut self.scratch_keys);
        keys.clear();
        let mut min_gang = u32::MAX;
        let mut job_pools = std::mem::take(&mut self.job_pools);
        let mut gangs = Vec::with_capacity(active.len());
        let mut usable: Vec<usize> = Vec::new();
        // `active` and `self.active` are both ascending: walk them together for the rows.
        let mut cursor = 0;
        for (index, &id) in active.iter().enumerate() {
            while cursor < self.active.len() && self.active[cursor] < id {
                cursor += 1;
            }
            let row = self
                .active
                .get(cursor)
                .is_some_and(|&a| a == id)
                .then_some(cursor);
            let gang = pools_of(&mut job_pools, state, id, &mut usable);
            gangs.push(gang);
            min_gang = min_gang.min(gang);
            for &w in &usable {
                let x = row.map_or(0.0, |r| self.share[r * self.pools + w]);
                let key = match row {
                    Some(r) if x > 1e-9 => {
                        // ln(x / (received / elapsed)); received >= half a round, so the
                        // fraction is positive.
                        let i = r * self.pools + w;
                        let ln_priority = self.share_ln[i] - self.received_ln[i] + elapsed_ln;
                        pack(0, -(ln_priority * 1e5).round() as i64, index, w)
                    }
                    _ => pack(1, 0, index, w),
                };
                keys.push(key);
            }
        }
        // Only the head of the order is handed accelerators: heapify (linear) and pop until every
        // job is placed or no type has room for the smallest gang, instead of sorting every pair.
        let mut order: BinaryHeap<Reverse<u128>> =
            std::mem::take(&mut keys).into_iter().map(Reverse).collect();
        let mut room: Vec<u32> = state.cluster.pools.iter().map(|p| p.up_capacity).collect();
        let mut placed = vec![false; active.len()];
        let mut plan = Vec::new();
        while let Some(Reverse(key)) = order.pop() {
            let (index, w) = unpack(key);
            let id = active[index];
            let gang = gangs[index];
            if placed[index] || room[w] < gang {
                continue;
            }
            room[w] -= gang;
            placed[index] = true;
            plan.push((id, w));
            if plan.len() == active.len() || room.iter().all(|&r| r < min_gang) {
                break;
            }
        }
        self.scratch_keys = order.into_vec().into_iter().map(|Reverse(k)| k).collect();
        self.job_pools = job_pools;
        plan.sort_unstable();
        plan
    }
}

/// Job `id`'s gang, with the pools it can run on (rate > 0) in `usable`, from the dense cache
/// where the cluster has at most 32 pools (a job's gang and rates do not change).
fn pools_of(cache: &mut Vec<u64>, state: &State, id: u32, usable: &mut Vec<usize>) -> u32 {
    usable.clear();
    let lookup = |usable: &mut Vec<usize>| {
        usable.extend(
            state
                .pools_for(JobId(id))
                .iter()
                .filter(|&&(_, rate)| rate > 0.0)
                .map(|&(pool, _)| pool.0 as usize),
        );
        state.job(JobId(id)).spec.gang_size
    };
    if state.cluster.pools.len() > 32 {
        return lookup(usable);
    }
    let slot = id as usize;
    if cache.len() <= slot {
        cache.resize(slot + 1, 0);
    }
    if cache[slot] == 0 {
        let gang = lookup(usable);
        let mask = usable.iter().fold(0u64, |m, &w| m | 1 << w);
        cache[slot] = u64::from(gang) << 32 | mask;
        return gang;
    }
    let (gang, mask) = ((cache[slot] >> 32) as u32, cache[slot] & 0xffff_ffff);
    usable.extend((0..32).filter(|w| mask & 1 << w != 0));
    gang
}

/// A (class, priority key, job index, pool) candidate as one integer with the same order.
fn pack(class: u8, priority_key: i64, index: usize, pool: usize) -> u128 {
    (u128::from(class) << 112)
        | (u128::from((priority_key as u64) ^ (1 << 63)) << 48)
        | ((index as u128) << 16)
        | pool as u128
}

/// The job index and pool of a packed candidate.
fn unpack(key: u128) -> (usize, usize) {
    (
        ((key >> 16) & 0xffff_ffff) as usize,
        (key & 0xffff) as usize,
    )
}

/// A heterogeneity-agnostic allocation says only how much time each job gets; which type is
/// arbitrary (the simplex returns some vertex; Gavel's interior-point solver a central point).
/// Spread each job's time over the types it can run on in proportion to their size, which keeps
/// every type within capacity when a job can run everywhere (the per-type sums are the
/// cluster-wide sum scaled by the type's share) and models a scheduler blind to the types.
fn spread_by_capacity(share: Vec<Vec<f64>>, rates: &[Vec<f64>], workers: &[f64]) -> Vec<Vec<f64>> {
    share
        .into_iter()
        .zip(rates)
        .map(|(row, rate)| {
            if rate.iter().any(|&r| r <= 0.0) {
                return row;
            }
            let total: f64 = row.iter().sum();
            let capacity: f64 = workers.iter().sum();
            workers.iter().map(|n| total * n / capacity).collect()
        })
        .collect()
}

/// Preempts running jobs not planned on their pool, then starts the planned ones (`plan` is in
/// job order).
fn apply(state: &mut State, plan: &[(u32, usize)], now_s: u64) {
    for id in state.running_jobs() {
        let pool = state.job(id).run().expect("running").pool.0 as usize;
        let planned = plan
            .binary_search_by_key(&id.0, |&(job, _)| job)
            .ok()
            .map(|i| plan[i].1);
        if planned != Some(pool) {
            state.preempt(id, now_s);
        }
    }
    for &(id, pool) in plan {
        let id = JobId(id);
        if state.job(id).run().is_none() {
            state.start(id, crate::cluster::PoolId(pool as u32), now_s);
        }
    }
}

/// Units of work left, counting the current run's progress up to `now_s`.
fn remaining_units(state: &State, id: u32, now_s: u64) -> f64 {
    let job = state.job(JobId(id));
    let mut done = job.done_units;
    if let Some(run) = job.run() {
        let (computed_s, _) = job.compute_after_wall_s(now_s.saturating_sub(run.compute_start_s));
        done += computed_s as f64 * run.units_per_s;
    }
    (job.spec.work.total_units - done).max(0.0)
}

impl Policy for RoundBased {
    fn name(&self) -> &'static str {
        self.name
    }

    fn queue_key(&self, _job: &crate::Job, _pools: &[(crate::PoolId, f64)]) -> i64 {
        0
    }

    fn schedule(&mut self, state: &mut State, now_s: u64) {
        // A round starts only when there is work: an instant with nothing running or waiting
        // leaves the round clock alone, so the next arrival starts a round at once.
        let busy = state.pending_count() > 0 || state.running_count() > 0;
        if now_s >= self.next_round_s && busy {
            self.next_round_s = now_s + self.round_s;
            self.round(state, now_s);
        }
    }

    fn acts_only_at_wakeups(&self) -> bool {
        true
    }

    fn next_wakeup_s(&self, state: &State, _now_s: u64) -> Option<u64> {
        (state.pending_count() > 0 || state.running_count() > 0).then_some(self.next_round_s)
    }
}
