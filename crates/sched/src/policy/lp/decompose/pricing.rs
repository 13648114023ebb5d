//! The pricing problems of the decomposition: at prices `p` of the types, the point of `Z` (every
//! row of the allocation LP but the capacities) that maximises the objective minus `p . usage`.

use super::super::Grouped;

pub(super) struct Pricing {
    types: usize,
    /// Per group, its usable types and their coefficients, scaled to at most 1.
    rows: Vec<Vec<(usize, f64)>>,
    /// Accelerators a group holds per unit of time share on a type: `n_g s_g`.
    usage: Vec<f64>,
    counts: Vec<f64>,
    /// Stage 2's floor on every job's value (scaled); `None` in stage 1.
    floor: Option<f64>,
    /// Stage 1's largest `t`: the smallest over groups of their best coefficient.
    t_max: f64,
}

/// A vertex of a group's cheapest-throughput curve: throughput, cost and the type (`None`: the
/// origin, nothing runs).
#[derive(Clone, Copy)]
struct Vertex {
    throughput: f64,
    cost: f64,
    kind: Option<usize>,
}

impl Pricing {
    /// The pricing problems of `problem` with coefficients divided by `scale`; `None` when some
    /// group cannot reach `floor`.
    pub(super) fn new(problem: &Grouped, scale: f64, floor: Option<f64>) -> Option<Self> {
        let types = problem.workers.len();
        let rows: Vec<Vec<(usize, f64)>> = problem
            .coefficients
            .iter()
            .map(|row| {
                (0..types)
                    .filter_map(|w| {
                        let a = row.get(w).copied().unwrap_or(0.0);
                        (a > 0.0 && a.is_finite()).then_some((w, a / scale))
                    })
                    .collect()
            })
            .collect();
        let best = |row: &Vec<(usize, f64)>| row.iter().map(|&(_, a)| a).fold(0.0, f64::max);
        let t_max = rows.iter().map(best).fold(f64::INFINITY, f64::min);
        if floor.is_some_and(|f| f > t_max) {
            return None;
        }
        let usage = problem
            .scale_factors
            .iter()
            .zip(problem.counts)
            .map(|(&s, &n)| f64::from(s) * n)
            .collect();
        Some(Pricing {
            types,
            rows,
            usage,
            counts: problem.counts.to_vec(),
            floor,
            t_max,
        })
    }

    /// A point's objective (stage 1: the smallest job value, i.e. the largest `t` it supports;
    /// stage 2: the weighted sum of values) and its accelerators per type.
    pub(super) fn evaluate(&self, point: &[Vec<f64>]) -> (f64, Vec<f64>) {
        let mut usage = vec![0.0; self.types];
        let mut smallest = f64::INFINITY;
        let mut total = 0.0;
        for (g, x) in point.iter().enumerate() {
            let value: f64 = self.rows[g].iter().map(|&(w, a)| a * x[w]).sum();
            smallest = smallest.min(value);
            total += self.counts[g] * value;
            for (u, x) in usage.iter_mut().zip(x) {
                *u += self.usage[g] * x;
            }
        }
        match self.floor {
            None => (smallest, usage),
            Some(_) => (total, usage),
        }
    }

    /// The point of `Z` best at `prices`.
    pub(super) fn best(&self, prices: &[f64]) -> Vec<Vec<f64>> {
        match self.floor {
            None => self.best_max_min(prices),
            Some(floor) => (0..self.rows.len())
                .map(|g| self.best_above_floor(g, prices, floor))
                .collect(),
        }
    }

    /// Stage 1: `max_t t - sum_g cost_g(t)`, where `cost_g(t)` (the cheapest way for group `g` to
    /// reach throughput `t` with at most all its time) is the lower convex hull from the origin
    /// of the points (throughput, price) of its types. The objective is concave, its slope
    /// `1 - sum_g cost_g'(t)` falls at the hulls' breakpoints: a sweep finds where it turns
    /// negative.
    fn best_max_min(&self, prices: &[f64]) -> Vec<Vec<f64>> {
        let hulls: Vec<Vec<Vertex>> = (0..self.rows.len())
            .map(|g| self.cheapest_curve(g, prices))
            .collect();
        let mut slope = 0.0;
        let mut events: Vec<(f64, f64)> = Vec::new();
        for hull in &hulls {
            let slopes: Vec<f64> = hull
                .windows(2)
                .map(|s| (s[1].cost - s[0].cost) / (s[1].throughput - s[0].throughput))
                .collect();
            slope += slopes.first().copied().unwrap_or(0.0);
            for (i, pair) in slopes.windows(2).enumerate() {
                events.push((hull[i + 1].throughput, pair[1] - pair[0]));
            }
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut t = if hulls.iter().any(|h| h.len() < 2) {
            0.0
        } else {
            self.t_max
        };
        if slope >= 1.0 {
            t = 0.0;
        } else {
            let end = t;
            for &(at, increase) in events.iter().take_while(|e| e.0 < end) {
                slope += increase;
                if slope >= 1.0 {
                    t = at;
                    break;
                }
            }
        }
        hulls.iter().map(|hull| self.point_on(hull, t)).collect()
    }

    /// Group `g`'s cheapest-throughput curve at `prices`: the lower convex hull, from the origin
    /// to its fastest type, of the points (coefficient, accelerators x price) of its types.
    fn cheapest_curve(&self, g: usize, prices: &[f64]) -> Vec<Vertex> {
        let mut points: Vec<Vertex> = self.rows[g]
            .iter()
            .map(|&(w, a)| Vertex {
                throughput: a,
                cost: self.usage[g] * prices[w],
                kind: Some(w),
            })
            .collect();
        points.sort_by(|a, b| {
            a.throughput
                .total_cmp(&b.throughput)
                .then(a.cost.total_cmp(&b.cost))
        });
        let mut hull = vec![Vertex {
            throughput: 0.0,
            cost: 0.0,
            kind: None,
        }];
        for p in points {
            if hull.last().is_some_and(|l| l.throughput == p.throughput) {
                continue; // same throughput at a higher (or equal) cost
            }
            while hull.len() >= 2 {
                let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
                let turn = (b.throughput - a.throughput) * (p.cost - a.cost)
                    - (b.cost - a.cost) * (p.throughput - a.throughput);
                if turn > 0.0 {
                    break;
                }
                hull.pop();
            }
            hull.push(p);
        }
        hull
    }

    /// The time shares that put a group at throughput `t` on its curve.
    fn point_on(&self, hull: &[Vertex], t: f64) -> Vec<f64> {
        let mut x = vec![0.0; self.types];
        let Some(i) = (1..hull.len()).find(|&i| hull[i].throughput >= t) else {
            return x;
        };
        let (low, high) = (hull[i - 1], hull[i]);
        let theta = ((t - low.throughput) / (high.throughput - low.throughput)).clamp(0.0, 1.0);
        if let Some(w) = high.kind {
            x[w] += theta;
        }
        if let Some(w) = low.kind {
            x[w] += 1.0 - theta;
        }
        x
    }

    /// Stage 2 for group `g`: `max sum_w (n_g a_w - n_g s_g p_w) x_w` over `x >= 0`,
    /// `sum_w x_w <= 1`, `sum_w a_w x_w >= floor`. A vertex has at most two positive entries
    /// (two rows besides the bounds), so the candidates are: one type at the floor or at all the
    /// time, and two types at all the time together exactly at the floor.
    fn best_above_floor(&self, g: usize, prices: &[f64], floor: f64) -> Vec<f64> {
        let row = &self.rows[g];
        let gain = |w: usize, a: f64| self.counts[g] * a - self.usage[g] * prices[w];
        let mut best: (f64, Vec<(usize, f64)>) = (f64::NEG_INFINITY, Vec::new());
        let mut consider = |value: f64, x: Vec<(usize, f64)>| {
            if value > best.0 {
                best = (value, x);
            }
        };
        if floor <= 0.0 {
            consider(0.0, Vec::new());
        }
        for (i, &(w, a)) in row.iter().enumerate() {
            if a >= floor {
                consider(gain(w, a), vec![(w, 1.0)]);
            }
            if floor > 0.0 && floor <= a {
                consider(gain(w, a) * floor / a, vec![(w, floor / a)]);
            }
            for &(v, b) in &row[i + 1..] {
                if a == b {
                    continue;
                }
                // x_w + x_v = 1 and a x_w + b x_v = floor.
                let x_v = (floor - a) / (b - a);
                if (0.0..=1.0).contains(&x_v) {
                    let value = gain(w, a) * (1.0 - x_v) + gain(v, b) * x_v;
                    consider(value, vec![(w, 1.0 - x_v), (v, x_v)]);
                }
            }
        }
        let mut x = vec![0.0; self.types];
        for (w, share) in best.1 {
            x[w] += share;
        }
        x
    }
}
