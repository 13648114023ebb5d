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

mod hand_out;
mod received;

use crate::cluster::PoolId;
use crate::job::JobId;
use crate::policy::Policy;
use crate::policy::lp::{FinishTimeProblem, MaxMinProblem, proportional_throughputs};
use crate::state::State;
use hand_out::{everything_fits, fill_active};

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
    fn uses_work_left(self) -> bool {
        matches!(
            self,
            Objective::Makespan
                | Objective::FinishTimeFairness
                | Objective::FinishTimeFairnessHetero
        )
    }

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
    /// Pools (accelerator types) per row of `share` and `received`.
    pools: usize,
    /// `X[j][w]` by position in `active`, then pool (row-major).
    share: Vec<f64>,
    /// `ln` of `share` where positive, so that a round computes no logarithm of it.
    share_ln: Vec<f64>,
    /// The accelerators per pool at the last reset, and whether `share` is still to be computed
    /// for them (`reset`: solved when a round first ranks jobs by priority).
    reset_workers: Vec<f64>,
    /// Units of work each job of `active` had left at the reset (makespan and finish-time
    /// fairness only).
    reset_remaining: Vec<f64>,
    allocation_due: bool,
    /// Seconds each job of `active` ran on each pool since the last reset.
    received: received::Received,
    /// Whether a round in which every waiting job fits hands them accelerators directly
    /// (`everything_fits`); off only to check that shortcut against the full hand-out.
    pub shortcut: bool,
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
            share_ln: Vec::new(),
            reset_workers: Vec::new(),
            reset_remaining: Vec::new(),
            allocation_due: false,
            received: received::Received::default(),
            shortcut: true,
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

    /// Solves the objective's allocation for `active` at `now_s` on `workers` accelerators per
    /// pool, with `remaining` units of work per job (used by makespan and finish-time fairness).
    fn allocate(
        &self,
        state: &State,
        active: &[u32],
        now_s: u64,
        workers: &[f64],
        remaining: &[f64],
    ) -> Vec<Vec<f64>> {
        let rates = self.rates(state, active);
        let scale: Vec<u32> = active
            .iter()
            .map(|&id| state.job(JobId(id)).spec.gang_size)
            .collect();
        let equal = proportional_throughputs(&rates, workers);
        let solve = |coefficients: &[Vec<f64>]| {
            MaxMinProblem {
                coefficients,
                scale_factors: &scale,
                workers,
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
                    workers,
                    elapsed_s: &elapsed_s,
                    isolated_s: &isolated_s,
                    remaining,
                }
                .solve()
                .map(|(_, allocation)| allocation)
            }
        };
        let allocation = allocation.map(|a| {
            if self.objective.heterogeneity_aware() {
                a.share
            } else {
                spread_by_capacity(a.share, &rates, workers)
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

    fn round(&mut self, state: &mut State, now_s: u64) {
        self.sync_log(state);
        let first = self.active.is_empty();
        let interval_passed = now_s.saturating_sub(self.reset_s) >= self.min_reset_interval_s;
        if (first || interval_passed) && self.active_changed(state) {
            self.reset(state, now_s);
        }
        if self.shortcut && everything_fits(state) {
            self.start_waiting(state, now_s);
        } else {
            self.received.catch_up(now_s);
            self.ensure_allocation(state);
            let mut active = std::mem::take(&mut self.scratch_active);
            fill_active(state, &mut active);
            let plan = self.plan(state, &active, now_s);
            self.apply(state, &plan, now_s);
            self.scratch_active = active;
        }
        // The starts and stops of this round are accounted already.
        if let Some(log) = state.running_log.as_mut() {
            log.clear();
        }
        self.last_round_s = now_s;
    }

    /// Accounts the runs the simulation ended since the last round (completions, failures,
    /// cancellations), read from the state's log of starts and stops (switched on here).
    fn sync_log(&mut self, state: &mut State) {
        let Some(log) = state.running_log.as_mut() else {
            state.running_log = Some(Vec::new());
            return;
        };
        let changed = std::mem::take(log);
        for &id in &changed {
            if state.job(JobId(id)).run().is_none()
                && let Some(row) = self.row_of(id)
            {
                self.received.stopped(row, self.last_round_s);
            }
        }
        let mut changed = changed;
        changed.clear();
        state.running_log = Some(changed);
    }

    /// Whether the jobs running or waiting now (`fill_active`) differ from those of the
    /// allocation, without listing them: they are the same exactly when they are as many and
    /// each has a row (running rows are counted as runs start and stop; the waiting prefix is
    /// short).
    fn active_changed(&self, state: &State) -> bool {
        let mut count = state.running.len();
        let mut with_row = self.received.running_rows();
        for &(_, _, id) in state.pending.iter().take(state.config.max_scan_jobs) {
            count += 1;
            with_row += usize::from(self.row_of(id).is_some());
        }
        let changed = !(count == self.active.len() && with_row == count);
        #[cfg(debug_assertions)]
        {
            let mut active = Vec::new();
            fill_active(state, &mut active);
            debug_assert_eq!(changed, active != self.active, "running rows miscounted");
        }
        changed
    }

    /// A new allocation for the jobs running or waiting now, with the time received reset. The
    /// allocation depends only on the jobs, the accelerators up and (makespan, finish-time
    /// fairness) the work each job has left, all taken now; it is solved when a round first
    /// ranks jobs by priority, so resets whose rounds never rank (`everything_fits`) solve
    /// nothing.
    fn reset(&mut self, state: &State, now_s: u64) {
        let mut active = std::mem::take(&mut self.scratch_active);
        fill_active(state, &mut active);
        self.scratch_active = std::mem::replace(&mut self.active, active);
        self.pools = state.cluster.pools.len();
        self.reset_workers.clear();
        self.reset_workers
            .extend(state.cluster.pools.iter().map(|p| f64::from(p.up_capacity)));
        self.reset_s = now_s;
        self.allocation_due = true;
        self.share.clear();
        self.share_ln.clear();
        // Gavel's `_reset_time_run_so_far`: every job starts at half a round on each type.
        let half_round_s = self.round_s as f64 / 2.0;
        self.received
            .reset(state, &self.active, self.pools, half_round_s, now_s);
        self.reset_remaining.clear();
        if self.objective.uses_work_left() {
            self.reset_remaining.extend(
                self.active
                    .iter()
                    .map(|&id| remaining_units(state, id, now_s).max(1e-9)),
            );
        }
    }

    /// Solves the allocation of the last reset if it is still due.
    fn ensure_allocation(&mut self, state: &State) {
        if !self.allocation_due {
            return;
        }
        let shares = self.allocate(
            state,
            &self.active,
            self.reset_s,
            &self.reset_workers,
            &self.reset_remaining,
        );
        self.share.clear();
        self.share.extend(shares.into_iter().flatten());
        self.share_ln.clear();
        self.share_ln.extend(
            self.share
                .iter()
                .map(|&x| if x > 1e-9 { x.ln() } else { 0.0 }),
        );
        self.allocation_due = false;
    }

    /// The round's hand-out when every waiting job fits (`everything_fits`): the full hand-out
    /// would keep every running job and start every waiting one, in job order, so do just that.
    fn start_waiting(&mut self, state: &mut State, now_s: u64) {
        let mut waiting = std::mem::take(&mut self.scratch_active);
        waiting.clear();
        waiting.extend(
            state
                .pending
                .iter()
                .take(state.config.max_scan_jobs)
                .map(|&(_, _, id)| id),
        );
        waiting.sort_unstable();
        for &id in &waiting {
            let Some(&(pool, _)) = state.pools_for(JobId(id)).first() else {
                continue;
            };
            if state.start(JobId(id), pool, now_s)
                && let Some(row) = self.row_of(id)
            {
                self.received.started(row, pool.0, now_s);
            }
        }
        self.scratch_active = waiting;
    }

    /// Preempts running jobs not planned on their pool, then starts the planned ones (`plan` is
    /// in job order), accounting the runs that end and start.
    fn apply(&mut self, state: &mut State, plan: &[(u32, usize)], now_s: u64) {
        for id in state.running_jobs() {
            let pool = state.job(id).run().expect("running").pool.0 as usize;
            let planned = plan
                .binary_search_by_key(&id.0, |&(job, _)| job)
                .ok()
                .map(|i| plan[i].1);
            if planned != Some(pool) {
                if let Some(row) = self.row_of(id.0) {
                    self.received.stopped(row, now_s);
                }
                state.preempt(id, now_s);
            }
        }
        for &(id, pool) in plan {
            let job = JobId(id);
            if state.job(job).run().is_none()
                && state.start(job, PoolId(pool as u32), now_s)
                && let Some(row) = self.row_of(id)
            {
                self.received.started(row, pool as u32, now_s);
            }
        }
    }
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
