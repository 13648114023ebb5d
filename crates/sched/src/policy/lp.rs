//! Gavel's allocation problems (Narayanan et al., OSDI'20, section 4) as linear programs, solved
//! in closed form when no job distinguishes between its types (`uniform.rs`), else by
//! Dantzig-Wolfe decomposition on the capacity rows (`decompose.rs`), with `microlp` (pure Rust
//! simplex) as the reference the tests compare against and the fallback.
//!
//! An allocation `X[j][w]` is the fraction of time job `j` should spend on worker type (pool) `w`.
//! Every policy here shares Gavel's base constraints (`policies/policy.py`,
//! `get_base_constraints`): `X >= 0`, `sum_w X[j][w] <= 1` (a job runs on one type at a time) and
//! `sum_j scale_factor[j] * X[j][w] <= workers[w]` (a type's accelerators are not oversubscribed).
//! The objectives are of one shape, `maximize min_j sum_w A[j][w] * X[j][w]`, with a coefficient
//! matrix `A` that each policy builds (see `rounds.rs`); finish-time fairness is solved as a
//! short sequence of such problems by a fixed-point iteration on its ratio (`FinishTimeProblem`).

use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOptions, SolveOutcome, Variable};

mod decompose;
mod finish_time;
mod uniform;

pub use finish_time::FinishTimeProblem;

/// The allocation problem's data.
#[derive(Clone, Debug)]
pub struct MaxMinProblem<'a> {
    /// `A[j][w]`: the value of one unit of time share of job `j` on type `w` in the objective;
    /// 0 where the job cannot run.
    pub coefficients: &'a [Vec<f64>],
    /// Accelerators each job's gang holds.
    pub scale_factors: &'a [u32],
    /// Accelerators of each type.
    pub workers: &'a [f64],
}

/// The optimal allocation (`X[j][w]`) and the objective (the smallest weighted throughput).
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    pub share: Vec<Vec<f64>>,
    pub objective: f64,
}

impl MaxMinProblem<'_> {
    /// `maximize t` subject to `sum_w A[j][w] X[j][w] >= t` for every job and the base
    /// constraints. A simplex vertex leaves capacity idle whenever the bottleneck jobs are
    /// satisfied (an interior-point solver such as Gavel's ECOS spreads it instead), so a second
    /// problem keeps every job at the optimum `t*` and hands out what is left to maximise total
    /// weighted throughput. `None` when there are no jobs or the solver fails.
    ///
    /// Jobs with identical coefficients and gang size are interchangeable, and both problems are
    /// convex and symmetric in them, so averaging an optimum over such a group is still optimal:
    /// the LP is solved over groups (one variable per group and type, capacity counted with the
    /// group's size) and every job gets its group's share. A trace of a few dozen job types then
    /// solves in a few dozen variables whatever the queue length.
    pub fn solve(&self) -> Option<Allocation> {
        let groups = self.groups()?;
        let allocation = groups.problem(self.workers).solve()?;
        Some(Allocation {
            share: groups
                .group_of
                .iter()
                .map(|&g| allocation.share[g].clone())
                .collect(),
            objective: allocation.objective,
        })
    }

    /// The max-min value alone (the first stage of [`MaxMinProblem::solve`]); its allocation is a
    /// simplex vertex that may leave capacity idle.
    pub fn max_min_value(&self) -> Option<f64> {
        let groups = self.groups()?;
        let problem = groups.problem(self.workers);
        problem.solve_stage(None).map(|(a, _)| a.objective)
    }

    /// The groups of interchangeable jobs: each group's row, gang and size, and each job's group.
    fn groups(&self) -> Option<Groups> {
        if self.coefficients.is_empty() {
            return None;
        }
        // Groups by (row, gang): a fingerprint of the row's bits and the gang finds the candidate
        // groups, and an exact comparison decides, so no key is allocated per job.
        let mut group_of: Vec<usize> = Vec::with_capacity(self.coefficients.len());
        // The first group of each (fingerprint, gang); further ones chain through `next`.
        let mut groups: std::collections::HashMap<(u64, u32), usize, Fingerprinted> =
            std::collections::HashMap::default();
        let mut next: Vec<usize> = Vec::new();
        let mut rows: Vec<&[f64]> = Vec::new();
        let mut scale: Vec<u32> = Vec::new();
        let mut count: Vec<f64> = Vec::new();
        for (row, &gang) in self.coefficients.iter().zip(self.scale_factors) {
            let fingerprint = row.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, a| {
                (h ^ a.to_bits()).wrapping_mul(0x0100_0000_01b3)
            });
            let new = rows.len();
            let head = *groups.entry((fingerprint, gang)).or_insert(new);
            let mut candidate = (head < new).then_some(head);
            while let Some(g) = candidate.filter(|&g| rows[g] != row.as_slice()) {
                candidate = (next[g] != usize::MAX).then_some(next[g]);
            }
            let g = match candidate {
                Some(g) => g,
                None => {
                    if head < new {
                        // Chain behind the head: the new group becomes the head's successor.
                        next.push(next[head]);
                        next[head] = new;
                    } else {
                        next.push(usize::MAX);
                    }
                    rows.push(row);
                    scale.push(gang);
                    count.push(0.0);
                    new
                }
            };
            count[g] += 1.0;
            group_of.push(g);
        }
        Some(Groups {
            rows: rows.into_iter().map(<[f64]>::to_vec).collect(),
            scale,
            count,
            group_of,
        })
    }
}

/// Interchangeable jobs grouped: each group's row, gang and size, and each job's group.
struct Groups {
    rows: Vec<Vec<f64>>,
    scale: Vec<u32>,
    count: Vec<f64>,
    group_of: Vec<usize>,
}

impl Groups {
    fn problem<'a>(&'a self, workers: &'a [f64]) -> Grouped<'a> {
        Grouped {
            coefficients: &self.rows,
            scale_factors: &self.scale,
            counts: &self.count,
            workers,
        }
    }
}

/// Hashes the grouping key, already a fingerprint, by one multiply instead of SipHash.
#[derive(Clone, Copy, Default)]
struct Fingerprinted;

impl std::hash::BuildHasher for Fingerprinted {
    type Hasher = FingerprintHasher;
    fn build_hasher(&self) -> FingerprintHasher {
        FingerprintHasher(0)
    }
}

#[derive(Default)]
struct FingerprintHasher(u64);

impl std::hash::Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

/// The problem over groups of interchangeable jobs: `counts[g]` jobs share row `g`.
struct Grouped<'a> {
    coefficients: &'a [Vec<f64>],
    scale_factors: &'a [u32],
    counts: &'a [f64],
    workers: &'a [f64],
}

impl Grouped<'_> {
    /// Accelerators of type `w` that `share` holds: `sum_g n_g s_g X[g][w]`.
    fn used(&self, share: &[Vec<f64>], w: usize) -> f64 {
        share
            .iter()
            .enumerate()
            .map(|(g, x)| x[w] * f64::from(self.scale_factors[g]) * self.counts[g])
            .sum()
    }

    /// The smallest job value, `min_g A[g] . X[g]` (stage 1's objective).
    fn smallest_value(&self, share: &[Vec<f64>]) -> f64 {
        share
            .iter()
            .zip(self.coefficients)
            .map(|(x, a)| x.iter().zip(a).map(|(x, a)| x * a).sum::<f64>())
            .fold(f64::INFINITY, f64::min)
    }

    /// Stage 2's objective, `sum_g n_g A[g] . X[g]`.
    #[cfg(test)]
    fn total_value(&self, share: &[Vec<f64>]) -> f64 {
        share
            .iter()
            .zip(self.coefficients)
            .zip(self.counts)
            .map(|((x, a), n)| n * x.iter().zip(a).map(|(x, a)| x * a).sum::<f64>())
            .sum()
    }

    fn solve(&self) -> Option<Allocation> {
        if let Some(agnostic) = uniform::uniform_values(self) {
            // In closed form stage 2 needs stage 1's value alone, not its allocation.
            let t_star = uniform::max_min_value(self, &agnostic.values, &agnostic.masks);
            let floor = (t_star > 0.0).then_some(t_star * (1.0 - 1e-6));
            let (allocation, _) = uniform::solve_stage(self, &agnostic, floor);
            return Some(Allocation {
                share: allocation.share,
                objective: t_star,
            });
        }
        let (first, t_star) = self.solve_stage(None)?;
        if t_star <= 0.0 {
            return Some(first);
        }
        // Stage 2: the same feasible set with every job kept at (nearly) t*, starting from stage
        // 1's optimum.
        self.solve_stage_from(Some(t_star * (1.0 - 1e-6)), Some(&first.share))
            .map(|(a, _)| Allocation {
                share: a.share,
                objective: t_star,
            })
            .or(Some(first))
    }

    /// One stage: with `floor = None` the max-min problem, otherwise maximise the weighted sum
    /// with every job at least `floor`. Returns the allocation and the min-job value. In closed
    /// form when no group distinguishes between the types (`uniform.rs`), else as an LP.
    fn solve_stage(&self, floor: Option<f64>) -> Option<(Allocation, f64)> {
        self.solve_stage_from(floor, None)
    }

    /// [`Grouped::solve_stage`], where stage 2 (`floor`) may start from a feasible allocation
    /// that meets the floor (stage 1's). In closed form when no group distinguishes between the
    /// types (`uniform.rs`), else by decomposition on the capacity rows (`decompose.rs`), and as
    /// a plain LP only where that does not apply or converge.
    fn solve_stage_from(
        &self,
        floor: Option<f64>,
        start: Option<&[Vec<f64>]>,
    ) -> Option<(Allocation, f64)> {
        if let Some(values) = uniform::uniform_values(self) {
            return Some(uniform::solve_stage(self, &values, floor));
        }
        self.solve_stage_decomposed(floor, start)
            .or_else(|| self.solve_stage_lp(floor))
    }

    /// [`Grouped::solve_stage`] as an LP solved by `microlp`.
    fn solve_stage_lp(&self, floor: Option<f64>) -> Option<(Allocation, f64)> {
        let types = self.workers.len();
        let mut problem = Problem::new(OptimizationDirection::Maximize);
        let t = match floor {
            None => Some(problem.add_var(1.0, (0.0, f64::INFINITY))),
            Some(_) => None,
        };
        let mut vars: Vec<Vec<Option<Variable>>> = Vec::with_capacity(self.coefficients.len());
        for (row, &count) in self.coefficients.iter().zip(self.counts) {
            let vars_row = (0..types)
                .map(|w| {
                    let a = row.get(w).copied().unwrap_or(0.0);
                    // The second stage maximises total weighted throughput.
                    let objective = if floor.is_some() { a * count } else { 0.0 };
                    (a > 0.0 && a.is_finite()).then(|| problem.add_var(objective, (0.0, 1.0)))
                })
                .collect();
            vars.push(vars_row);
        }
        for (j, row) in vars.iter().enumerate() {
            let terms: Vec<(Variable, f64)> = row.iter().flatten().map(|&v| (v, 1.0)).collect();
            if !terms.is_empty() {
                problem.add_constraint(terms.as_slice(), ComparisonOp::Le, 1.0);
            }
            let mut value: Vec<(Variable, f64)> = row
                .iter()
                .enumerate()
                .filter_map(|(w, v)| v.map(|v| (v, self.coefficients[j][w])))
                .collect();
            match (t, floor) {
                (Some(t), _) => {
                    value.push((t, -1.0));
                    problem.add_constraint(value.as_slice(), ComparisonOp::Ge, 0.0);
                }
                (None, Some(floor)) => {
                    problem.add_constraint(value.as_slice(), ComparisonOp::Ge, floor);
                }
                (None, None) => unreachable!("stage one has t"),
            }
        }
        for w in 0..types {
            let terms: Vec<(Variable, f64)> = vars
                .iter()
                .enumerate()
                .filter_map(|(j, row)| {
                    row[w].map(|v| (v, f64::from(self.scale_factors[j]) * self.counts[j]))
                })
                .collect();
            if !terms.is_empty() {
                problem.add_constraint(terms.as_slice(), ComparisonOp::Le, self.workers[w]);
            }
        }
        // Presolve only drops redundant rows here (no integer variables), which these small,
        // dense problems do not have; skipping it saves a pass over the matrix per solve.
        let mut options = SolveOptions::default();
        options.presolve = false;
        let SolveOutcome::Solution(solution) = problem.solve_with(options).ok()? else {
            return None;
        };
        let share: Vec<Vec<f64>> = vars
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| v.map_or(0.0, |v| solution.var_value(v).clamp(0.0, 1.0)))
                    .collect()
            })
            .collect();
        Some(self.stage_result(share))
    }

    /// A stage's allocation with its smallest job value as the objective, and that value.
    fn stage_result(&self, share: Vec<Vec<f64>>) -> (Allocation, f64) {
        let min_value = self.smallest_value(&share);
        let allocation = Allocation {
            share,
            objective: min_value,
        };
        (allocation, min_value)
    }
}

/// Gavel's proportional (equal-share) allocation (`policies/proportional.py`): every job gets
/// `workers[w] / jobs` of each type, scaled so no job's shares sum above 1. Returns each job's
/// throughput under it, `sum_w rate[j][w] * X_prop[w]`.
pub fn proportional_throughputs(rates: &[Vec<f64>], workers: &[f64]) -> Vec<f64> {
    let jobs = rates.len().max(1) as f64;
    let row: Vec<f64> = workers.iter().map(|&n| n / jobs).collect();
    let row_sum: f64 = row.iter().sum();
    let scale = if row_sum > 1.0 { 1.0 / row_sum } else { 1.0 };
    rates
        .iter()
        .map(|r| r.iter().zip(&row).map(|(t, x)| t * x * scale).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_jobs_one_type_share_equally() {
        // Two single-GPU jobs, one GPU: max-min gives each half the time.
        let a = vec![vec![1.0], vec![1.0]];
        let alloc = MaxMinProblem {
            coefficients: &a,
            scale_factors: &[1, 1],
            workers: &[1.0],
        }
        .solve()
        .unwrap();
        assert!((alloc.share[0][0] - 0.5).abs() < 1e-6, "{alloc:?}");
        assert!((alloc.objective - 0.5).abs() < 1e-6);
    }

    #[test]
    fn heterogeneity_aware_max_min_matches_the_hand_solution() {
        // Job 0 is 4x faster on the V100 (type 0) than on the K80, job 1 only 1.2x; one GPU
        // of each type.
        let a = vec![vec![4.0, 1.0], vec![1.2, 1.0]];
        let alloc = MaxMinProblem {
            coefficients: &a,
            scale_factors: &[1, 1],
            workers: &[1.0, 1.0],
        }
        .solve()
        .unwrap();
        // By hand: job 0 takes x of the V100 and 1 - x of the K80, job 1 the rest of the V100
        // and whatever K80 is left; both equal at 1 + 3x = 1.2 - 0.2x, so x = 1/16 and the
        // optimum is 1.1875 (max-min favours the job with the worse minimum, not efficiency).
        assert!((alloc.objective - 1.1875).abs() < 1e-6, "{alloc:?}");
        for w in 0..2 {
            assert!(alloc.share[0][w] + alloc.share[1][w] <= 1.0 + 1e-6);
        }
        for j in 0..2 {
            assert!(alloc.share[j][0] + alloc.share[j][1] <= 1.0 + 1e-6);
        }
    }

    #[test]
    fn gangs_count_against_capacity() {
        // A 4-GPU job and a 1-GPU job on 4 GPUs: the gang can have at most the time the small job
        // leaves, and max-min (weights 1) equalises their time shares at 4/5 each would
        // oversubscribe; the optimum is x such that 4x + x <= 4 -> x = 0.8.
        let a = vec![vec![1.0], vec![1.0]];
        let alloc = MaxMinProblem {
            coefficients: &a,
            scale_factors: &[4, 1],
            workers: &[4.0],
        }
        .solve()
        .unwrap();
        assert!((alloc.objective - 0.8).abs() < 1e-6, "{alloc:?}");
    }

    #[test]
    fn interchangeable_jobs_are_solved_as_one_group_and_share_equally() {
        // Three identical single-GPU jobs and a gang of two on 3 GPUs, weights 1: time shares
        // x (each single) and y (the gang) with 3x + 2y <= 3 and max-min x = y = 3/5.
        let a = vec![vec![1.0], vec![1.0], vec![1.0], vec![1.0]];
        let alloc = MaxMinProblem {
            coefficients: &a,
            scale_factors: &[1, 1, 2, 1],
            workers: &[3.0],
        }
        .solve()
        .unwrap();
        assert!((alloc.objective - 0.6).abs() < 1e-6, "{alloc:?}");
        for row in &alloc.share {
            assert!((row[0] - 0.6).abs() < 1e-5, "{alloc:?}");
        }
    }

    #[test]
    fn proportional_share_is_capped_at_one() {
        // 3 jobs on 36+36+36 GPUs: 12 of each type per job sums to 36 > 1, scaled to 1/3 each.
        let rates = vec![vec![3.0, 2.0, 1.0]; 3];
        let thr = proportional_throughputs(&rates, &[36.0, 36.0, 36.0]);
        assert!((thr[0] - 2.0).abs() < 1e-9, "{thr:?}");
    }
}
