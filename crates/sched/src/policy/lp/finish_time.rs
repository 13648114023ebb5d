//! Finish-time fairness (Gavel's `finish_time_fairness`, after Themis) as a short sequence of
//! max-min problems: a fixed-point iteration on its ratio.

use super::{Allocation, Grouped, MaxMinProblem, uniform};

/// LPs per finish-time-fairness allocation at most, besides the final one.
const FINISH_TIME_ITERATIONS: usize = 8;

/// Finish-time fairness (Gavel's `finish_time_fairness`, after Themis): minimise the largest
/// `rho_j(X) = (elapsed_j + remaining_j / throughput_j(X)) / isolated_j` over the base
/// constraints, where `throughput_j(X) = sum_w rates[j][w] X[j][w]`.
#[derive(Clone, Debug)]
pub struct FinishTimeProblem<'a> {
    /// Units/s of each job's gang on each type (0 where it cannot run).
    pub rates: &'a [Vec<f64>],
    pub scale_factors: &'a [u32],
    pub workers: &'a [f64],
    /// Seconds since each job was submitted.
    pub elapsed_s: &'a [f64],
    /// Each job's run time with its isolated (equal) share.
    pub isolated_s: &'a [f64],
    /// Units of work each job has left (positive).
    pub remaining: &'a [f64],
}

impl FinishTimeProblem<'_> {
    /// The max-min coefficients whose value reaches 1 exactly when every job can finish within
    /// `rho` times its isolated time: `rates[j][w] * (rho * isolated_j - elapsed_j) / remaining_j`.
    pub fn coefficients(&self, rho: f64) -> Vec<Vec<f64>> {
        self.rates
            .iter()
            .enumerate()
            .map(|(j, row)| {
                let budget_s = self.budget_s(j, rho);
                row.iter()
                    .map(|r| r * budget_s / self.remaining[j])
                    .collect()
            })
            .collect()
    }

    /// Seconds job `j` may still take to finish within `rho` times its isolated time.
    fn budget_s(&self, j: usize, rho: f64) -> f64 {
        (rho * self.isolated_s[j] - self.elapsed_s[j]).max(0.0)
    }

    /// The largest `rho_j` an allocation gives (infinite when some job gets no throughput).
    pub fn worst_ratio(&self, share: &[Vec<f64>]) -> f64 {
        share
            .iter()
            .enumerate()
            .map(|(j, x)| {
                let throughput: f64 = x.iter().zip(&self.rates[j]).map(|(x, r)| x * r).sum();
                (self.elapsed_s[j] + self.remaining[j] / throughput) / self.isolated_s[j]
            })
            .fold(0.0, f64::max)
    }

    /// The optimal ratio and its allocation, by the fixed-point iteration of generalised
    /// fractional programming (Crouzeix, Ferland and Schaible, 1985). For a candidate `rho` the
    /// max-min LP over `coefficients(rho)` gives `t*` and an allocation, which achieves the ratio
    /// `rho' = max_j rho_j(X)` (at most `max_j (c_j + (rho - c_j) / t*)` with
    /// `c_j = elapsed_j / isolated_j`, every job meeting at least `t*` of its demand). `rho'`
    /// bounds the optimum from above, is below `rho` when `t* > 1` and equals it exactly when
    /// `t* = 1`, i.e. at the optimum; from above the iterates fall monotonically. Taking each
    /// job's own value rather than `t*` for all is Dinkelbach's step on the ratio that binds,
    /// in a handful of LPs where bisection needs a dozen or more. (The closed form of the
    /// agnostic policy gives `t*` alone and takes the bound from it.)
    pub fn solve(&self) -> Option<(f64, Allocation)> {
        let ratio = |j: usize| self.elapsed_s[j] / self.isolated_s[j];
        let floor = (0..self.rates.len()).map(ratio).fold(0.0, f64::max);
        // Each job its own group: jobs almost never share a budget, so grouping would only cost.
        let ones = vec![1.0; self.rates.len()];
        let by_job = Grouped {
            coefficients: self.rates,
            scale_factors: self.scale_factors,
            counts: &ones,
            workers: self.workers,
        };
        // When the rates do not distinguish the types a job can use (the agnostic policy), so
        // do the coefficients at every rho: the closed form's value straight from the rates.
        let agnostic = uniform::uniform_values(&by_job);
        if let Some(agnostic) = &agnostic {
            // `t*` alone, and the fixed-point iteration takes the bound from it.
            let value = |rho: f64| {
                let values: Vec<f64> = (0..self.rates.len())
                    .map(|j| agnostic.values[j] * self.budget_s(j, rho) / self.remaining[j])
                    .collect();
                values
                    .iter()
                    .all(|&a| a > 0.0 && a.is_finite())
                    .then(|| uniform::max_min_value(&by_job, &values, &agnostic.masks))
            };
            // Each job its own group here too: the closed form raises jobs of equal value per
            // accelerator together, so equal jobs get equal shares without grouping them.
            let rho = self.fixed_point(floor, value);
            let at_rho = Grouped {
                coefficients: &self.coefficients(rho),
                ..by_job
            };
            return at_rho.solve().map(|allocation| (rho, allocation));
        }
        let value = |rho: f64| {
            let (allocation, t) = Grouped {
                coefficients: &self.coefficients(rho),
                ..by_job
            }
            .solve_stage(None)?;
            Some((t, allocation.share))
        };
        let (rho, best) = self.bracketed(floor, value);
        let Some(best) = best else {
            return self.max_min_at(rho);
        };
        // Every job within `rho` of its isolated time is every value at `coefficients(rho)` at
        // least 1, which `best` meets: the second stage keeps that (to rounding) and hands out
        // what is left to maximise the total, as `MaxMinProblem::solve` does after its first.
        let at_rho = Grouped {
            coefficients: &self.coefficients(rho),
            ..by_job
        };
        let share = at_rho
            .solve_stage_from(Some(1.0 - 1e-6), Some(&best))
            .map_or(best, |(a, _)| a.share);
        let objective = at_rho.smallest_value(&share);
        Some((rho, Allocation { share, objective }))
    }

    /// The two-stage max-min allocation at `coefficients(rho)`.
    fn max_min_at(&self, rho: f64) -> Option<(f64, Allocation)> {
        let allocation = MaxMinProblem {
            coefficients: &self.coefficients(rho),
            scale_factors: self.scale_factors,
            workers: self.workers,
        }
        .solve()?;
        Some((rho, allocation))
    }

    /// The fixed-point iteration from `floor + 1`: each step to the ratio bound by `t*` at the
    /// last `rho` (`value(rho)`).
    fn fixed_point(&self, floor: f64, value: impl Fn(f64) -> Option<f64>) -> f64 {
        let mut rho = floor + 1.0;
        for _ in 0..FINISH_TIME_ITERATIONS {
            let Some(t) = value(rho).filter(|&t| t > 0.0) else {
                break;
            };
            let better = self.achieved_bound(rho, t);
            let converged = (better - rho).abs() <= 1e-4 * rho;
            rho = better;
            if converged {
                break;
            }
        }
        rho
    }

    /// `max_j (c_j + (rho - c_j) / t)`: the ratio an allocation whose jobs all meet `t` of their
    /// demand at `rho` achieves at most.
    fn achieved_bound(&self, rho: f64, t: f64) -> f64 {
        (0..self.rates.len())
            .map(|j| {
                let c = self.elapsed_s[j] / self.isolated_s[j];
                c + (rho - c) / t
            })
            .fold(0.0, f64::max)
    }

    /// The fixed point, found faster. No job finishes sooner than alone on its fastest type,
    /// so `rho_alone = max_j (elapsed_j + remaining_j / best_rate_j) / isolated_j` bounds the
    /// optimum from below, and it is the optimum whenever `t*(rho_alone) >= 1` (the bottleneck
    /// is one job's speed, not capacity): often one LP. Else every solve gives an upper bound
    /// (the ratio its allocation achieves) and, when `t* < 1`, a point below the optimum; the
    /// next candidate is the regula falsi step (Illinois-weighted) to `t* = 1` between the
    /// closest points on either side, or the secant through the two last points above, taken when strictly inside the
    /// bounds, else the fixed-point step (which alone shrinks the error only by a constant
    /// factor, about 0.4 on Gavel's traces). `value(rho)` gives `t*` and its allocation; returns
    /// the best upper bound and the allocation that achieves it (`None` when no solve gave one).
    fn bracketed(
        &self,
        floor: f64,
        value: impl Fn(f64) -> Option<(f64, Vec<Vec<f64>>)>,
    ) -> (f64, Option<Vec<Vec<f64>>>) {
        let alone = (0..self.rates.len())
            .map(|j| {
                let best = self.rates[j].iter().copied().fold(0.0, f64::max);
                (self.elapsed_s[j] + self.remaining[j] / best) / self.isolated_s[j]
            })
            .fold(floor, f64::max);
        let mut lower_bound = floor;
        let mut rho = floor + 1.0;
        if alone.is_finite() {
            (lower_bound, rho) = (alone, alone);
        }
        let mut upper = f64::INFINITY;
        let mut best = None;
        let mut below: Option<(f64, f64)> = None;
        let mut above: Vec<(f64, f64)> = Vec::new();
        // Points in a row on the side of the last one (Illinois: the far end's weight halves).
        let mut last_above = None;
        let mut repeats = 0;
        for _ in 0..FINISH_TIME_ITERATIONS {
            let Some((t, share)) = value(rho).filter(|&(t, _)| t > 0.0) else {
                break;
            };
            // Each job at its own value: the ratio the allocation achieves, at most the bound
            // from `t*` alone.
            let bound = self.achieved_bound(rho, t).min(self.worst_ratio(&share));
            if bound < upper {
                (upper, best) = (bound, Some(share));
            }
            if t < 1.0 {
                lower_bound = lower_bound.max(rho);
                below = below.filter(|b| b.0 > rho).or(Some((rho, t)));
            } else {
                above.push((rho, t));
            }
            repeats = if last_above == Some(t >= 1.0) {
                repeats + 1
            } else {
                0
            };
            last_above = Some(t >= 1.0);
            if upper - lower_bound <= 1e-4 * upper || (bound - rho).abs() <= 1e-4 * rho {
                break;
            }
            let through = |(r0, t0): (f64, f64), (r1, t1): (f64, f64)| {
                let slope = (t1 - t0) / (r1 - r0);
                (slope > 0.0 && slope.is_finite()).then(|| r1 + (1.0 - t1) / slope)
            };
            // Regula falsi keeps the end on the side not taken, and on a concave `t*` that is
            // every step below: linear convergence. The Illinois variant (Dowell and Jarratt,
            // BIT 11, 1971) halves that end's distance from 1 for each repeat.
            let weight = 0.5_f64.powi(repeats);
            let step = match (below, above.as_slice()) {
                (Some((r, t)), [.., last]) if t < 1.0 && last_above == Some(true) => {
                    through((r, 1.0 - (1.0 - t) * weight), *last)
                }
                (Some(below), [.., (r, t)]) => through(below, (*r, 1.0 + (t - 1.0) * weight)),
                (None, [.., previous, last]) => through(*previous, *last),
                _ => None,
            };
            rho = step
                .filter(|&r| r > lower_bound && r < upper)
                .unwrap_or(upper);
        }
        if upper.is_finite() {
            (upper, best)
        } else {
            (rho, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_time_fairness_matches_bisection_on_its_feasibility_problem() {
        // Four jobs on two types (fast: 2 accelerators, slow: 3), different speed-ups, ages and
        // work left. The reference is the textbook method the iteration replaces: bisection on
        // rho until the max-min LP over coefficients(rho) just reaches 1 (60 halvings).
        let rates = vec![
            vec![4.0, 1.0],
            vec![1.5, 1.0],
            vec![3.0, 2.0],
            vec![2.0, 0.0],
        ];
        finish_time_matches_bisection(&rates);
        // The agnostic policy's rates (1 wherever a job can run): the closed form's path.
        let agnostic: Vec<Vec<f64>> = rates
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&r| if r > 0.0 { 1.0 } else { 0.0 })
                    .collect()
            })
            .collect();
        finish_time_matches_bisection(&agnostic);
    }

    fn finish_time_matches_bisection(rates: &[Vec<f64>]) {
        let problem = FinishTimeProblem {
            rates,
            scale_factors: &[1, 1, 2, 1],
            workers: &[2.0, 3.0],
            elapsed_s: &[0.0, 500.0, 200.0, 1000.0],
            isolated_s: &[1000.0, 800.0, 2000.0, 1500.0],
            remaining: &[3000.0, 600.0, 4000.0, 900.0],
        };
        let feasible = |rho: f64| {
            MaxMinProblem {
                coefficients: &problem.coefficients(rho),
                scale_factors: problem.scale_factors,
                workers: problem.workers,
            }
            .max_min_value()
            .is_some_and(|t| t >= 1.0)
        };
        let (mut low, mut high) = (0.0, 1e3);
        for _ in 0..60 {
            let mid = 0.5 * (low + high);
            if feasible(mid) {
                high = mid;
            } else {
                low = mid;
            }
        }
        let (rho, allocation) = problem.solve().unwrap();
        assert!(
            (rho - high).abs() <= 1e-3 * high,
            "{rho} vs bisection {high}"
        );
        // The allocation achieves the ratio it reports.
        let achieved = problem.worst_ratio(&allocation.share);
        assert!(achieved <= rho * (1.0 + 1e-3), "{achieved} > {rho}");
        // And hands out what the ratio leaves: as much total throughput (each job's weighted by
        // its coefficients at rho) as microlp's LP with every job within rho.
        let ones = vec![1.0; rates.len()];
        let coefficients = problem.coefficients(rho);
        let at_rho = Grouped {
            coefficients: &coefficients,
            scale_factors: problem.scale_factors,
            counts: &ones,
            workers: problem.workers,
        };
        let (lp, _) = at_rho.solve_stage_lp(Some(1.0 - 1e-6)).unwrap();
        let (ours, best) = (
            at_rho.total_value(&allocation.share),
            at_rho.total_value(&lp.share),
        );
        assert!(ours >= best * (1.0 - 1e-6), "total {ours} < lp {best}");
    }
}
