//! The pricing problems of the decomposition: at prices `p` of the types, the point of `Z` (every
//! row of the allocation LP but the capacities) that maximises the objective minus `p . usage`.

use super::super::Grouped;

/// Clusters with more types than this take the LP (a group's row positions are kept as `u8`).
pub(super) const MAX_TYPES: usize = 8;

pub(super) struct Pricing {
    types: usize,
    /// Per group `g`, its usable types (a positive coefficient and some accelerators) and their
    /// coefficients scaled to at most 1:
    /// `entries[offsets[g]..offsets[g + 1]]`.
    entries: Vec<(usize, f64)>,
    offsets: Vec<usize>,
    /// Per group, the positions of its entries in its row by throughput (stable: equal
    /// throughputs in row order), fixed across prices: `by_throughput[offsets[g]..offsets[g + 1]]`.
    by_throughput: Vec<u8>,
    /// Accelerators a group holds per unit of time share on a type: `n_g s_g`.
    usage: Vec<f64>,
    counts: Vec<f64>,
    /// Stage 2's floor on every job's value (scaled); `None` in stage 1.
    floor: Option<f64>,
    /// Stage 1's largest `t`: the smallest over groups of their best coefficient.
    t_max: f64,
    /// Scratch: every group's cheapest-throughput curve (`hull_offsets` as `offsets`) and the
    /// sweep's breakpoints.
    hulls: Vec<Vertex>,
    hull_offsets: Vec<usize>,
    events: Vec<(f64, f64)>,
}

/// A vertex of a group's cheapest-throughput curve: throughput, cost and the type (`usize::MAX`:
/// the origin, nothing runs).
#[derive(Clone, Copy)]
struct Vertex {
    throughput: f64,
    cost: f64,
    kind: usize,
}

const ORIGIN: Vertex = Vertex {
    throughput: 0.0,
    cost: 0.0,
    kind: usize::MAX,
};

impl Pricing {
    /// The pricing problems of `problem` with coefficients divided by `scale`; `None` when some
    /// group cannot reach `floor`.
    pub(super) fn new(problem: &Grouped, scale: f64, floor: Option<f64>) -> Option<Self> {
        let types = problem.workers.len();
        let mut entries = Vec::with_capacity(problem.coefficients.len() * types);
        let mut offsets = Vec::with_capacity(problem.coefficients.len() + 1);
        offsets.push(0);
        let mut t_max = f64::INFINITY;
        for row in problem.coefficients {
            let mut best = 0.0_f64;
            for w in 0..types {
                let a = row.get(w).copied().unwrap_or(0.0);
                // A type without accelerators is unusable: its capacity row forces every share
                // on it to 0, and a point using it would be in the master only by tolerance.
                if a > 0.0 && a.is_finite() && problem.workers[w] > 0.0 {
                    entries.push((w, a / scale));
                    best = best.max(a / scale);
                }
            }
            t_max = t_max.min(best);
            offsets.push(entries.len());
        }
        if floor.is_some_and(|f| f > t_max) {
            return None;
        }
        let mut by_throughput = Vec::with_capacity(entries.len());
        for g in 0..offsets.len() - 1 {
            let row = &entries[offsets[g]..offsets[g + 1]];
            let start = by_throughput.len();
            by_throughput.extend((0..row.len()).map(|i| i as u8));
            by_throughput[start..]
                .sort_by(|&i, &j| row[i as usize].1.total_cmp(&row[j as usize].1));
        }
        let usage = problem
            .scale_factors
            .iter()
            .zip(problem.counts)
            .map(|(&s, &n)| f64::from(s) * n)
            .collect();
        Some(Pricing {
            types,
            entries,
            offsets,
            by_throughput,
            usage,
            counts: problem.counts.to_vec(),
            floor,
            t_max,
            hulls: Vec::new(),
            hull_offsets: Vec::new(),
            events: Vec::new(),
        })
    }

    fn groups(&self) -> usize {
        self.offsets.len() - 1
    }

    fn row(&self, g: usize) -> &[(usize, f64)] {
        &self.entries[self.offsets[g]..self.offsets[g + 1]]
    }

    /// A point's objective (stage 1: the smallest job value, i.e. the largest `t` it supports;
    /// stage 2: the weighted sum of values) and its accelerators per type. `point` is row-major,
    /// `types` shares per group.
    pub(super) fn evaluate(&self, point: &[f64]) -> (f64, Vec<f64>) {
        let mut usage = vec![0.0; self.types];
        let mut smallest = f64::INFINITY;
        let mut total = 0.0;
        for g in 0..self.groups() {
            let x = &point[g * self.types..(g + 1) * self.types];
            let value: f64 = self.row(g).iter().map(|&(w, a)| a * x[w]).sum();
            smallest = smallest.min(value);
            total += self.counts[g] * value;
            for (&(w, _), u) in self.row(g).iter().zip(std::iter::repeat(self.usage[g])) {
                usage[w] += u * x[w];
            }
        }
        match self.floor {
            None => (smallest, usage),
            Some(_) => (total, usage),
        }
    }

    /// The point of `Z` best at `prices`, row-major.
    pub(super) fn best(&mut self, prices: &[f64]) -> Vec<f64> {
        let mut point = vec![0.0; self.groups() * self.types];
        match self.floor {
            None => self.best_max_min(prices, &mut point),
            Some(floor) => {
                for g in 0..self.groups() {
                    let x = &mut point[g * self.types..(g + 1) * self.types];
                    self.best_above_floor(g, prices, floor, x);
                }
            }
        }
        point
    }

    /// Stage 1: `max_t t - sum_g cost_g(t)`, where `cost_g(t)` (the cheapest way for group `g` to
    /// reach throughput `t` with at most all its time) is the lower convex hull from the origin
    /// of the points (throughput, price) of its types. The objective is concave, its slope
    /// `1 - sum_g cost_g'(t)` falls at the hulls' breakpoints: a sweep finds where it turns
    /// negative.
    fn best_max_min(&mut self, prices: &[f64], point: &mut [f64]) {
        let mut hulls = std::mem::take(&mut self.hulls);
        let mut events = std::mem::take(&mut self.events);
        hulls.clear();
        events.clear();
        self.hull_offsets.clear();
        self.hull_offsets.push(0);
        let mut slope = 0.0;
        for g in 0..self.groups() {
            let start = hulls.len();
            self.cheapest_curve(g, prices, &mut hulls);
            self.hull_offsets.push(hulls.len());
            let hull = &hulls[start..];
            let gradient = |i: usize| {
                (hull[i + 1].cost - hull[i].cost) / (hull[i + 1].throughput - hull[i].throughput)
            };
            if hull.len() >= 2 {
                slope += gradient(0);
            }
            // At each inner vertex the slope grows by the difference of its segments' slopes.
            // Breakpoints at or beyond `t_max` are never reached by the sweep.
            for (i, vertex) in hull
                .iter()
                .enumerate()
                .skip(1)
                .take(hull.len().saturating_sub(2))
                .take_while(|(_, v)| v.throughput < self.t_max)
            {
                events.push((vertex.throughput, gradient(i) - gradient(i - 1)));
            }
        }
        events.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut t = self.t_max;
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
        for g in 0..self.groups() {
            let hull = &hulls[self.hull_offsets[g]..self.hull_offsets[g + 1]];
            point_on(hull, t, &mut point[g * self.types..(g + 1) * self.types]);
        }
        self.hulls = hulls;
        self.events = events;
    }

    /// Appends group `g`'s cheapest-throughput curve at `prices` to `hull`: the lower convex
    /// hull, from the origin to its fastest type, of the points (coefficient, accelerators x
    /// price) of its types.
    fn cheapest_curve(&self, g: usize, prices: &[f64], hull: &mut Vec<Vertex>) {
        let start = hull.len();
        hull.push(ORIGIN);
        let row = self.row(g);
        let order = &self.by_throughput[self.offsets[g]..self.offsets[g + 1]];
        let mut next = 0;
        while next < order.len() {
            // Of the types with this throughput, the cheapest (the first in row order on ties).
            let (mut w, a) = row[order[next] as usize];
            next += 1;
            while let Some(&i) = order.get(next).filter(|&&i| row[i as usize].1 == a) {
                if prices[row[i as usize].0] < prices[w] {
                    w = row[i as usize].0;
                }
                next += 1;
            }
            let p = Vertex {
                throughput: a,
                cost: self.usage[g] * prices[w],
                kind: w,
            };
            while hull.len() - start >= 2 {
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
    }

    /// Stage 2 for group `g`: `max sum_w (n_g a_w - n_g s_g p_w) x_w` over `x >= 0`,
    /// `sum_w x_w <= 1`, `sum_w a_w x_w >= floor`, written to `x`. A vertex has at most two
    /// positive entries (two rows besides the bounds), so the candidates are: one type at the
    /// floor or at all the time, and two types at all the time together exactly at the floor.
    fn best_above_floor(&self, g: usize, prices: &[f64], floor: f64, x: &mut [f64]) {
        let row = self.row(g);
        let gain = |w: usize, a: f64| self.counts[g] * a - self.usage[g] * prices[w];
        // The best value and its (type, share) pairs (usize::MAX: unused).
        let mut best = (f64::NEG_INFINITY, [(usize::MAX, 0.0); 2]);
        let mut consider = |value: f64, x: [(usize, f64); 2]| {
            if value > best.0 {
                best = (value, x);
            }
        };
        const NONE: (usize, f64) = (usize::MAX, 0.0);
        if floor <= 0.0 {
            consider(0.0, [NONE; 2]);
        }
        for (i, &(w, a)) in row.iter().enumerate() {
            if a >= floor {
                consider(gain(w, a), [(w, 1.0), NONE]);
            }
            if floor > 0.0 && floor <= a {
                consider(gain(w, a) * floor / a, [(w, floor / a), NONE]);
            }
            for &(v, b) in &row[i + 1..] {
                if a == b {
                    continue;
                }
                // x_w + x_v = 1 and a x_w + b x_v = floor.
                let x_v = (floor - a) / (b - a);
                if (0.0..=1.0).contains(&x_v) {
                    let value = gain(w, a) * (1.0 - x_v) + gain(v, b) * x_v;
                    consider(value, [(w, 1.0 - x_v), (v, x_v)]);
                }
            }
        }
        for (w, share) in best.1 {
            if w != usize::MAX {
                x[w] += share;
            }
        }
    }
}

/// Writes to `x` the time shares that put a group at throughput `t` on its curve `hull`.
fn point_on(hull: &[Vertex], t: f64, x: &mut [f64]) {
    let Some(i) = (1..hull.len()).find(|&i| hull[i].throughput >= t) else {
        return;
    };
    let (low, high) = (hull[i - 1], hull[i]);
    let theta = ((t - low.throughput) / (high.throughput - low.throughput)).clamp(0.0, 1.0);
    if high.kind != usize::MAX {
        x[high.kind] += theta;
    }
    if low.kind != usize::MAX {
        x[low.kind] += 1.0 - theta;
    }
}
