//! The master LP of the decomposition: `max sum_i c_i lambda_i` subject to
//! `sum_i lambda_i usage_i + slack = workers` and `sum_i lambda_i = 1`, `lambda, slack >= 0`,
//! by a revised simplex that keeps the basis inverse explicitly (`k + 1` rows: a few types).

/// Pivots of one `optimise` at most (it returns `None` beyond: cycling or numerical trouble).
const MAX_PIVOTS: usize = 10_000;

/// After this many pivots in one `optimise`, Bland's rule (smallest index) replaces the
/// largest-reduced-cost rule, which cannot cycle.
const BLAND_AFTER: usize = 64;

/// Pivots in a row without progress after which the master is optimal to rounding (twice the
/// pivots after which Bland's rule takes over).
const STALL: usize = 2 * BLAND_AFTER;

/// A relative reduced cost smaller than this is zero.
const ZERO: f64 = 1e-9;

/// A basic value may fall this far below zero in a step (Harris's ratio test).
const FEASIBLE: f64 = 1e-9;

/// A basic value further below 0 than this is numerical trouble, not Harris's tolerance: the
/// master gives up (and the caller solves the LP).
const SHIFT_LIMIT: f64 = 1e-6;

/// Two columns whose entries and costs agree to this, relative, are the same column.
const TWIN: f64 = 1e-12;

/// A direction entry must exceed this to block (and be pivoted on).
const PIVOT: f64 = 1e-9;

pub(super) struct Master {
    /// Rows: one per type, then the convexity row.
    rows: usize,
    rhs: Vec<f64>,
    /// Columns: the `rows - 1` slacks, then the generated columns; each its cost and entries.
    costs: Vec<f64>,
    entries: Vec<Vec<f64>>,
    basis: Vec<usize>,
    /// The basis inverse, row-major, and the basic values and duals it gives.
    inverse: Vec<f64>,
    values: Vec<f64>,
    duals: Vec<f64>,
}

impl Master {
    pub(super) fn new(workers: &[f64]) -> Self {
        let types = workers.len();
        let rows = types + 1;
        let mut rhs = workers.to_vec();
        rhs.push(1.0);
        let entries = (0..types)
            .map(|w| (0..rows).map(|r| if r == w { 1.0 } else { 0.0 }).collect())
            .collect();
        Master {
            rows,
            rhs,
            costs: vec![0.0; types],
            entries,
            basis: Vec::new(),
            inverse: Vec::new(),
            values: Vec::new(),
            duals: Vec::new(),
        }
    }

    /// Adds a column of objective `cost` using `usage` accelerators of each type. The first one
    /// must satisfy the capacities: with the slacks it forms the starting basis.
    pub(super) fn add_column(&mut self, cost: f64, usage: &[f64]) {
        let mut column = usage.to_vec();
        column.push(1.0);
        self.costs.push(cost);
        self.entries.push(column);
        if self.basis.is_empty() {
            self.basis = (0..self.rows).collect();
        }
    }

    /// Runs the primal simplex to optimality over the columns so far. `None` on a singular basis,
    /// an unbounded direction (impossible for a bounded master) or too many pivots.
    pub(super) fn optimise(&mut self) -> Option<()> {
        let scale = self.scale();
        let mut best = f64::NEG_INFINITY;
        let mut stalled = 0;
        for pivot in 0..MAX_PIVOTS {
            self.refresh()?;
            // Pivots that move no value up by more than rounding: Bland's rule ends a degenerate
            // run in exact arithmetic, but two columns whose reduced costs are positive only by
            // rounding can take turns forever; after `STALL` of them the basis is optimal to
            // rounding.
            let value = self.value();
            if value > best + ZERO * scale.max(best.abs()) {
                (best, stalled) = (value, 0);
            } else {
                stalled += 1;
                if stalled > STALL {
                    return Some(());
                }
            }
            let bland = pivot >= BLAND_AFTER;
            let Some(entering) = self.entering(bland, scale) else {
                return Some(());
            };
            let direction = self.times_inverse(&self.entries[entering]);
            let leaving = self.leaving(&direction, bland)?;
            self.basis[leaving] = entering;
        }
        None
    }

    /// The objective at the current basis.
    fn value(&self) -> f64 {
        self.basis
            .iter()
            .zip(&self.values)
            .map(|(&j, v)| self.costs[j] * v)
            .sum()
    }

    /// The row that leaves when a column of `direction` (`B^-1 a`) enters. Harris's two-pass
    /// ratio test: the longest step that leaves no basic value below `-FEASIBLE`, then among the
    /// rows that block within it the largest pivot (a tiny one would leave a nearly singular
    /// basis); with `bland`, the smallest ratio and then the smallest column index (no cycling).
    fn leaving(&self, direction: &[f64], bland: bool) -> Option<usize> {
        let candidates = (0..self.rows).filter(|&r| direction[r] > PIVOT);
        let ratio = |r: usize| self.values[r].max(0.0) / direction[r];
        if bland {
            return candidates.min_by(|&a, &b| {
                ratio(a)
                    .total_cmp(&ratio(b))
                    .then(self.basis[a].cmp(&self.basis[b]))
            });
        }
        let step = candidates
            .clone()
            .map(|r| (self.values[r] + FEASIBLE).max(0.0) / direction[r])
            .min_by(f64::total_cmp)?;
        candidates.filter(|&r| ratio(r) <= step).max_by(|&a, &b| {
            direction[a]
                .total_cmp(&direction[b])
                .then(self.basis[b].cmp(&self.basis[a]))
        })
    }

    /// The column with the largest positive reduced cost, or with `bland` the first one
    /// (`scale`: the objective's, [`Master::scale`]).
    fn entering(&self, bland: bool, scale: f64) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (j, (&cost, column)) in self.costs.iter().zip(&self.entries).enumerate() {
            if self.basis.contains(&j) {
                continue;
            }
            let Some(reduced) = self.reduced_cost(cost, column, scale) else {
                continue;
            };
            if best.is_none_or(|(_, b)| reduced > b) {
                best = Some((j, reduced));
                if bland {
                    break;
                }
            }
        }
        best.map(|(j, _)| j)
    }

    /// Whether a column of this cost and usage would enter at the current duals: the loop that
    /// generates columns stops on the same test as the simplex, so every column it adds is one
    /// the master takes.
    pub(super) fn would_enter(&self, cost: f64, usage: &[f64]) -> bool {
        let mut column = usage.to_vec();
        column.push(1.0);
        self.reduced_cost(cost, &column, self.scale()).is_some()
    }

    /// The objective's scale, the largest column value: reduced costs are compared with it, so
    /// that the rounding in a dual of the order of 1e-17 does not let a slack enter.
    fn scale(&self) -> f64 {
        self.costs.iter().fold(0.0, |m: f64, c| m.max(c.abs()))
    }

    /// A column's reduced cost at the current duals when it is positive beyond rounding.
    fn reduced_cost(&self, cost: f64, column: &[f64], scale: f64) -> Option<f64> {
        let priced = dot(&self.duals, column);
        let reduced = cost - priced;
        let reference = cost.abs().max(priced.abs()).max(scale);
        (reduced > ZERO * reference).then_some(reduced)
    }

    /// Inverts the basis and computes the basic values and the duals.
    fn refresh(&mut self) -> Option<()> {
        let m = self.rows;
        let mut matrix = vec![0.0; m * m];
        for (c, &j) in self.basis.iter().enumerate() {
            for r in 0..m {
                matrix[r * m + c] = self.entries[j][r];
            }
        }
        self.inverse = invert(matrix, m)?;
        self.values = self.times_inverse(&self.rhs);
        // A basic value Harris's test left below 0 (by at most `FEASIBLE` per step) becomes 0 by
        // shifting the right-hand side by as much of its column: a later pivot on a small entry
        // in its row would otherwise carry it into the entering value divided by that entry
        // (one such pivot turned -1e-9 into -2.5e-4 and cut a job under stage 2's floor). The
        // shift moves each row by about `FEASIBLE` times a column's usage, which
        // `fit_capacities` takes back.
        for r in 0..m {
            let value = self.values[r];
            if value < 0.0 {
                if value < -SHIFT_LIMIT {
                    return None;
                }
                let column = &self.entries[self.basis[r]];
                for (rhs, a) in self.rhs.iter_mut().zip(column) {
                    *rhs -= value * a;
                }
                self.values[r] = 0.0;
            }
        }
        self.duals = (0..m)
            .map(|c| {
                (0..m)
                    .map(|r| self.costs[self.basis[r]] * self.inverse[r * m + c])
                    .sum()
            })
            .collect();
        Some(())
    }

    /// `B^-1 v`.
    fn times_inverse(&self, v: &[f64]) -> Vec<f64> {
        let m = self.rows;
        (0..m)
            .map(|r| dot(&self.inverse[r * m..(r + 1) * m], v))
            .collect()
    }

    /// The prices of the types: the duals of the capacity rows, at least 0.
    pub(super) fn prices(&self) -> Vec<f64> {
        let types = self.rows - 1;
        self.duals[..types].iter().map(|&p| p.max(0.0)).collect()
    }

    /// Whether a column of (nearly, to rounding) this cost and usage is already present: the
    /// simplex would otherwise swap two twins forever on rounding in their reduced costs.
    pub(super) fn has(&self, cost: f64, usage: &[f64]) -> bool {
        let types = self.rows - 1;
        let same = |a: f64, b: f64| (a - b).abs() <= TWIN * a.abs().max(b.abs());
        self.costs[types..]
            .iter()
            .zip(&self.entries[types..])
            .any(|(&c, column)| {
                same(c, cost) && column.iter().zip(usage).all(|(&a, &b)| same(a, b))
            })
    }

    /// The weight of each generated column in the optimum, in the order they were added.
    pub(super) fn weights(&self) -> Vec<f64> {
        let types = self.rows - 1;
        let mut weights = vec![0.0; self.costs.len() - types];
        for (r, &j) in self.basis.iter().enumerate() {
            if j >= types {
                weights[j - types] = self.values[r].max(0.0);
            }
        }
        let total: f64 = weights.iter().sum();
        if total > 0.0 {
            weights.iter_mut().for_each(|w| *w /= total);
        }
        weights
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// The inverse of the `m x m` row-major `matrix` by Gauss-Jordan elimination with partial
/// pivoting; `None` when singular.
fn invert(mut matrix: Vec<f64>, m: usize) -> Option<Vec<f64>> {
    let mut inverse: Vec<f64> = (0..m * m)
        .map(|i| if i / m == i % m { 1.0 } else { 0.0 })
        .collect();
    for c in 0..m {
        let pivot =
            (c..m).max_by(|&a, &b| matrix[a * m + c].abs().total_cmp(&matrix[b * m + c].abs()))?;
        if matrix[pivot * m + c].abs() < 1e-14 {
            return None;
        }
        for k in 0..m {
            matrix.swap(c * m + k, pivot * m + k);
            inverse.swap(c * m + k, pivot * m + k);
        }
        let scale = 1.0 / matrix[c * m + c];
        for k in 0..m {
            matrix[c * m + k] *= scale;
            inverse[c * m + k] *= scale;
        }
        for r in (0..m).filter(|&r| r != c) {
            let factor = matrix[r * m + c];
            if factor != 0.0 {
                for k in 0..m {
                    matrix[r * m + k] -= factor * matrix[c * m + k];
                    inverse[r * m + k] -= factor * inverse[c * m + k];
                }
            }
        }
    }
    Some(inverse)
}
