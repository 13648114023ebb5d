//! The allocation LP by Dantzig-Wolfe decomposition on its few coupling rows.
//!
//! Only `k` rows of the max-min problem couple the jobs: one capacity row per accelerator type,
//! `sum_g n_g s_g X[g][w] <= workers[w]`. Everything else is per job (`sum_w X[g][w] <= 1`,
//! `sum_w A[g][w] X[g][w] >= t`), tied together in stage 1 only by the scalar `t`. So the set
//! `Z` of points `(t, X)` that satisfy every row but the capacities is a polytope whose linear
//! optimisation is nearly free, and the LP is `max` over convex combinations of points of `Z`
//! that respect the capacities (Dantzig and Wolfe, "Decomposition principle for linear
//! programs", Operations Research 8(1), 1960). The master LP has `k + 1` rows (capacities and
//! `sum lambda = 1`), solved by a revised simplex with an explicit `(k+1) x (k+1)` inverse;
//! its duals, the prices `p` of the types, go to the pricing problem, which returns the point of
//! `Z` that maximises the objective minus `p . usage`. When no point improves on the master's
//! dual bound the master is optimal for the LP (column generation is exact on a polytope: the
//! pricing returns vertices, of which there are finitely many).
//!
//! Pricing (`pricing.rs`):
//! - stage 1, `max t - sum_g p . n_g s_g X[g]`: at prices `p`, the cheapest way for group `g` to
//!   reach throughput `t` with at most all its time is the lower convex hull, from the origin,
//!   of the points (throughput `A[g][w]`, cost `n_g s_g p_w`) of its types; `t - sum_g cost_g(t)`
//!   is concave and piecewise linear, maximised by a sweep over the hulls' breakpoints;
//! - stage 2 (every job at least `floor`, `max sum_g n_g A[g] . X[g] - p . usage`): per group a
//!   k-variable LP with two rows, whose vertices have at most two positive entries and are
//!   enumerated.
//!
//! It costs a few dozen pricing sweeps of O(groups x k log) each instead of a simplex over
//! `groups x k` variables and `2 x groups + k` rows; `tests` checks both stages' optima against
//! `microlp` on random instances.

mod master;
mod pricing;
#[cfg(test)]
mod tests;

use super::{Allocation, Grouped};
use master::Master;
use pricing::Pricing;

/// Column generation stops after this many columns (and the caller falls back to the LP).
const MAX_COLUMNS: usize = 2_000;

impl Grouped<'_> {
    /// One stage by column generation: with `floor = None` the max-min problem, otherwise the
    /// weighted sum with every job at least `floor` (as `Grouped::solve_stage_lp`). `None` when
    /// it does not converge within `MAX_COLUMNS` or the problem is outside its scope (then the
    /// caller solves the LP).
    pub(super) fn solve_stage_decomposed(
        &self,
        floor: Option<f64>,
        start: Option<&[Vec<f64>]>,
    ) -> Option<(Allocation, f64)> {
        let scale = self
            .coefficients
            .iter()
            .flatten()
            .copied()
            .filter(|a| a.is_finite())
            .fold(0.0, f64::max);
        let types = self.workers.len();
        if scale <= 0.0 || self.coefficients.is_empty() || types > pricing::MAX_TYPES {
            return None;
        }
        let mut pricing = Pricing::new(self, scale, floor.map(|f| f / scale))?;
        let mut master = Master::new(self.workers);
        // Stage 1 starts from the origin (t = 0, nothing runs); stage 2 from the caller's
        // allocation, which meets the floor and the capacities (stage 1's optimum).
        let first = match (floor, start) {
            (None, _) => vec![0.0; types * self.coefficients.len()],
            (Some(_), Some(start)) => start.iter().flat_map(|row| row.iter().copied()).collect(),
            (Some(_), None) => return None,
        };
        let (value, usage) = pricing.evaluate(&first);
        master.add_column(value, &usage);
        let mut points = vec![first];
        generate(&mut master, &mut pricing, &mut points)?;
        let mut share = combine(&points, &master.weights(), types);
        self.fit_capacities(&mut share);
        Some(self.stage_result(share))
    }
}

impl Grouped<'_> {
    /// Scales each type's shares down where they use more than its accelerators. The master
    /// keeps its basic values above `-1e-9` (Harris's ratio test) and `combine` drops negative
    /// weights, so a type may be over by about 1e-9 relative; this makes the allocation
    /// feasible exactly at a cost of that order in the objective.
    fn fit_capacities(&self, share: &mut [Vec<f64>]) {
        for (w, &capacity) in self.workers.iter().enumerate() {
            let used = self.used(share, w);
            if used > capacity {
                let factor = capacity.max(0.0) / used;
                share.iter_mut().for_each(|x| x[w] *= factor);
            }
        }
    }
}

/// Column generation from the master's columns so far (`points`, in order): alternately
/// optimises the master and adds the point its prices favour, until no point improves the
/// master (`Master::would_enter`). `None` when the master fails or `MAX_COLUMNS` is reached.
fn generate(master: &mut Master, pricing: &mut Pricing, points: &mut Vec<Vec<f64>>) -> Option<()> {
    loop {
        master.optimise()?;
        let point = pricing.best(&master.prices());
        let (value, usage) = pricing.evaluate(&point);
        // The master's value is within the point's reduced cost of the optimum (one convexity
        // row); it stops on the simplex's own entering test (so every column added is one the
        // master takes) or on a column it already has.
        if !master.would_enter(value, &usage) || master.has(value, &usage) {
            return Some(());
        }
        if points.len() >= MAX_COLUMNS {
            return None;
        }
        master.add_column(value, &usage);
        points.push(point);
    }
}

/// `sum_i weight_i x^(i)` (row-major points, `types` shares per group), clamped to `[0, 1]`.
fn combine(points: &[Vec<f64>], weights: &[f64], types: usize) -> Vec<Vec<f64>> {
    let len = points.first().map_or(0, Vec::len);
    let mut share = vec![0.0; len];
    for (point, &weight) in points.iter().zip(weights) {
        if weight > 0.0 {
            for (s, x) in share.iter_mut().zip(point) {
                *s += weight * x;
            }
        }
    }
    share
        .chunks(types.max(1))
        .map(|row| row.iter().map(|s| s.clamp(0.0, 1.0)).collect())
        .collect()
}
