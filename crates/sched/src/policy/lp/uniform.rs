//! The allocation problem in closed form when no job distinguishes between the types it can use.
//!
//! When every group's coefficient is one positive number `a_g` on each type it can run on (mask
//! `m_g`) and 0 elsewhere (the heterogeneity-agnostic policies, where every throughput counts as
//! 1, and any single-type cluster), only a group's total time share `T_g = sum_w X[g][w]` and
//! where it may run matter. By Gale's supply-demand theorem, the `T` that some `X` realises are
//! exactly those with `T_g <= 1` and, for every set `S` of types,
//! `load(S) = sum_{g: m_g within S} n_g s_g T_g <= cap(S)` (the accelerators of `S`); with k
//! types that is 2^k - 1 constraints (7 on a three-type cluster). The LP then has a closed form:
//!
//! - stage 1 (`max t`, every job at `a_g T_g >= t`):
//!   `t* = min(min_g a_g, min_S cap(S) / sum_{g: m_g within S} n_g s_g / a_g)`;
//! - stage 2 (every job kept at the floor, maximise `sum_g n_g a_g T_g`): the feasible `n_g s_g T_g`
//!   form a polymatroid (the rank of a set of groups is the capacity of the types they can use),
//!   over which the greedy is exact: groups in decreasing value per accelerator `a_g / s_g`, each
//!   raised as far as its own time and every set of types containing its mask allow. Groups of
//!   equal value per accelerator (all of them under agnostic max-min fairness, where `a_g` is
//!   proportional to `s_g`) rise together (water-filling on their value, each stopping when it
//!   has all its time or a set of types it needs is full), the lexicographically fair point of
//!   that optimal face, where a simplex stops at an arbitrary vertex;
//! - `X` from `T`: one group mask takes each type in proportion to its size; several route their
//!   accelerators through a max flow from masks to types (feasible by the theorem above), each
//!   group of a mask taking its mask's flow in proportion to its need.
//!
//! All of it is O(groups x 2^k) instead of an LP; `tests` checks both optima against `microlp`.

use super::{Allocation, Grouped};

/// Relative tolerance under which two values per accelerator are the same, and a set of types is
/// full.
const TIE: f64 = 1e-12;

/// Clusters with more types than this take the LP (2^k sets of types).
const MAX_TYPES: usize = 8;

/// The value and the mask of types of each group, when the closed form applies.
pub(super) struct Agnostic {
    pub(super) values: Vec<f64>,
    pub(super) masks: Vec<u32>,
}

/// `a_g` and `m_g` per group when every group's coefficients are one positive value on the types
/// of its mask and 0 on the others, and the cluster has accelerators; else `None` (the general LP
/// applies).
pub(super) fn uniform_values(problem: &Grouped) -> Option<Agnostic> {
    let types = problem.workers.len();
    if types == 0 || types > MAX_TYPES || problem.workers.iter().sum::<f64>() <= 0.0 {
        return None;
    }
    let mut values = Vec::with_capacity(problem.coefficients.len());
    let mut masks = Vec::with_capacity(problem.coefficients.len());
    for row in problem.coefficients {
        let a = row.iter().take(types).copied().fold(0.0, f64::max);
        let mut mask = 0u32;
        for w in 0..types {
            match row.get(w).copied().unwrap_or(0.0) {
                x if x == a => mask |= 1 << w,
                0.0 => {}
                _ => return None,
            }
        }
        if !(a > 0.0 && a.is_finite()) {
            return None;
        }
        values.push(a);
        masks.push(mask);
    }
    Some(Agnostic { values, masks })
}

/// The sets of types as bit masks with their accelerators (index = mask; 0 is the empty set).
fn capacities(workers: &[f64]) -> Vec<f64> {
    (0..1usize << workers.len())
        .map(|set| {
            (0..workers.len())
                .filter(|w| set & (1 << w) != 0)
                .map(|w| workers[w])
                .sum()
        })
        .collect()
}

/// Whether mask `m` lies within set `set`.
fn within(m: u32, set: usize) -> bool {
    (m as usize) & !set == 0
}

/// The optimum of stage 1 (`floor = None`) or stage 2 (every job at least `floor`), with the
/// min-job value, as [`Grouped::solve_stage`] returns it.
pub(super) fn solve_stage(
    problem: &Grouped,
    agnostic: &Agnostic,
    floor: Option<f64>,
) -> (Allocation, f64) {
    let cap = capacities(problem.workers);
    let values = &agnostic.values;
    let time_share: Vec<f64> = match floor {
        None => {
            let t = max_min_level(problem, values, &agnostic.masks, &cap);
            values.iter().map(|a| (t / a).min(1.0)).collect()
        }
        Some(floor) => greedy(problem, agnostic, &cap, floor),
    };
    let share = realise(problem, agnostic, &cap, &time_share);
    let min_value = time_share
        .iter()
        .zip(values)
        .map(|(t, a)| t * a)
        .fold(f64::INFINITY, f64::min);
    (
        Allocation {
            share,
            objective: min_value,
        },
        min_value,
    )
}

/// Accelerators group `g` holds per unit of time share (`n_g s_g`).
fn demand(problem: &Grouped, g: usize) -> f64 {
    problem.counts[g] * f64::from(problem.scale_factors[g])
}

/// Stage 1's value, as [`solve_stage`] reports it, for `values` (all positive) and `masks` of
/// `problem`'s groups (its coefficients are not read), without building the allocation.
pub(super) fn max_min_value(problem: &Grouped, values: &[f64], masks: &[u32]) -> f64 {
    let t = max_min_level(problem, values, masks, &capacities(problem.workers));
    values
        .iter()
        .map(|a| (t / a).min(1.0) * a)
        .fold(f64::INFINITY, f64::min)
}

/// Stage 1: the largest `t` with `t <= a_g` and `sum_{m_g within S} n_g s_g t / a_g <= cap(S)`.
fn max_min_level(problem: &Grouped, values: &[f64], masks: &[u32], cap: &[f64]) -> f64 {
    let smallest = values.iter().copied().fold(f64::INFINITY, f64::min);
    (1..cap.len())
        .filter_map(|set| {
            let per_level: f64 = (0..values.len())
                .filter(|&g| within(masks[g], set))
                .map(|g| demand(problem, g) / values[g])
                .sum();
            (per_level > 0.0).then(|| cap[set] / per_level)
        })
        .fold(smallest, f64::min)
}

/// Stage 2: time shares from `floor / a_g` up, the highest value per accelerator first, each
/// class of equal value per accelerator water-filled.
fn greedy(problem: &Grouped, agnostic: &Agnostic, cap: &[f64], floor: f64) -> Vec<f64> {
    let values = &agnostic.values;
    let mut time_share: Vec<f64> = values.iter().map(|a| (floor / a).min(1.0)).collect();
    let mut load: Vec<f64> = (0..cap.len())
        .map(|set| {
            (0..values.len())
                .filter(|&g| within(agnostic.masks[g], set))
                .map(|g| demand(problem, g) * time_share[g])
                .sum()
        })
        .collect();
    let ratio = |g: usize| values[g] / f64::from(problem.scale_factors[g]);
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&g, &h| ratio(h).total_cmp(&ratio(g)).then(g.cmp(&h)));
    let mut start = 0;
    while start < order.len() {
        let head = ratio(order[start]);
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&g| ratio(g) >= head * (1.0 - TIE))
                .count();
        let fill = WaterFill {
            problem,
            agnostic,
            cap,
        };
        fill.run(&order[start..end], floor, &mut time_share, &mut load);
        start = end;
    }
    time_share
}

/// Raises a class of groups together on their value.
struct WaterFill<'a> {
    problem: &'a Grouped<'a>,
    agnostic: &'a Agnostic,
    cap: &'a [f64],
}

impl WaterFill<'_> {
    /// Raises the value `v` of the groups in `class` from `floor` (`T_g = min(v, a_g) / a_g`),
    /// freezing a group when it has all its time or a set of types it needs is full.
    fn run(&self, class: &[usize], floor: f64, time_share: &mut [f64], load: &mut [f64]) {
        let (values, masks) = (&self.agnostic.values, &self.agnostic.masks);
        let full =
            |set: usize, load: &[f64]| load[set] >= self.cap[set] - TIE * self.cap[set].max(1.0);
        let mut rising: Vec<usize> = class
            .iter()
            .copied()
            .filter(|&g| time_share[g] < 1.0)
            .collect();
        let mut level = floor;
        let mut rate = vec![0.0; self.cap.len()];
        while !rising.is_empty() {
            // Groups inside a full set cannot rise.
            rising.retain(|&g| !(1..self.cap.len()).any(|s| within(masks[g], s) && full(s, load)));
            if rising.is_empty() {
                break;
            }
            for (set, r) in rate.iter_mut().enumerate() {
                *r = rising
                    .iter()
                    .filter(|&&g| within(masks[g], set))
                    .map(|&g| demand(self.problem, g) / values[g])
                    .sum();
            }
            let to_saturation = rising
                .iter()
                .map(|&g| values[g] - level)
                .fold(f64::INFINITY, f64::min);
            let to_full = (1..self.cap.len())
                .filter(|&s| rate[s] > 0.0)
                .map(|s| (self.cap[s] - load[s]).max(0.0) / rate[s])
                .fold(f64::INFINITY, f64::min);
            let step = to_saturation.min(to_full).max(0.0);
            level += step;
            for (l, r) in load.iter_mut().zip(&rate) {
                *l += r * step;
            }
            for &g in &rising {
                time_share[g] = (level.min(values[g]) / values[g]).max(time_share[g]);
            }
            if step == to_saturation {
                rising.retain(|&g| values[g] > level);
            }
            if step == to_full {
                // Make the full set exactly full so the next pass freezes its groups.
                for s in 1..self.cap.len() {
                    if rate[s] > 0.0
                        && (self.cap[s] - load[s]).max(0.0) / rate[s] <= TIE * level.max(1.0)
                    {
                        load[s] = load[s].max(self.cap[s]);
                    }
                }
            }
        }
    }
}

/// `X[g][w]` realising the time shares: each group's accelerators spread over its mask's types,
/// in proportion to their size when there is one mask, else along a max flow from masks to types.
fn realise(
    problem: &Grouped,
    agnostic: &Agnostic,
    cap: &[f64],
    time_share: &[f64],
) -> Vec<Vec<f64>> {
    let types = problem.workers.len();
    let mut distinct: Vec<u32> = agnostic.masks.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let need: Vec<f64> = distinct
        .iter()
        .map(|&m| {
            (0..time_share.len())
                .filter(|&g| agnostic.masks[g] == m)
                .map(|g| demand(problem, g) * time_share[g])
                .sum()
        })
        .collect();
    // Fraction of each mask's accelerators on each type.
    let split: Vec<Vec<f64>> = if distinct.len() == 1 {
        let m = distinct[0] as usize;
        vec![
            (0..types)
                .map(|w| {
                    if m & (1 << w) != 0 && cap[m] > 0.0 {
                        problem.workers[w] / cap[m]
                    } else {
                        0.0
                    }
                })
                .collect(),
        ]
    } else {
        let flow = max_flow(&distinct, &need, problem.workers);
        flow.iter()
            .zip(&need)
            .map(|(row, &n)| {
                row.iter()
                    .map(|f| if n > 0.0 { f / n } else { 0.0 })
                    .collect()
            })
            .collect()
    };
    (0..time_share.len())
        .map(|g| {
            let i = distinct
                .binary_search(&agnostic.masks[g])
                .expect("mask listed");
            split[i].iter().map(|f| time_share[g] * f).collect()
        })
        .collect()
}

/// Accelerators each mask sends to each type: a max flow (Edmonds-Karp) from a source through the
/// masks (capacity `need`) to the types they contain and on to a sink (capacity `workers`).
fn max_flow(masks: &[u32], need: &[f64], workers: &[f64]) -> Vec<Vec<f64>> {
    let (m, k) = (masks.len(), workers.len());
    let nodes = m + k + 2;
    let (source, sink) = (0, nodes - 1);
    let mut residual = vec![vec![0.0; nodes]; nodes];
    for (i, (&mask, &n)) in masks.iter().zip(need).enumerate() {
        residual[source][1 + i] = n;
        for w in 0..k {
            if mask & (1 << w) != 0 {
                residual[1 + i][1 + m + w] = f64::INFINITY;
            }
        }
    }
    for (w, &n) in workers.iter().enumerate() {
        residual[1 + m + w][sink] = n;
    }
    let tolerance = TIE * need.iter().sum::<f64>().max(1.0);
    loop {
        // Breadth-first search for a shortest augmenting path.
        let mut parent = vec![usize::MAX; nodes];
        parent[source] = source;
        let mut queue = std::collections::VecDeque::from([source]);
        while let Some(u) = queue.pop_front() {
            for v in 0..nodes {
                if parent[v] == usize::MAX && residual[u][v] > tolerance {
                    parent[v] = u;
                    queue.push_back(v);
                }
            }
        }
        if parent[sink] == usize::MAX {
            break;
        }
        let mut bottleneck = f64::INFINITY;
        let mut v = sink;
        while v != source {
            bottleneck = bottleneck.min(residual[parent[v]][v]);
            v = parent[v];
        }
        let mut v = sink;
        while v != source {
            let u = parent[v];
            residual[u][v] -= bottleneck;
            residual[v][u] += bottleneck;
            v = u;
        }
    }
    // The flow on a mask-to-type edge is what came back on its reverse edge.
    (0..m)
        .map(|i| (0..k).map(|w| residual[1 + m + w][1 + i]).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn assert_feasible(problem: &Grouped, share: &[Vec<f64>]) {
        for row in share {
            assert!(row.iter().all(|&x| x >= -1e-12), "{share:?}");
            assert!(row.iter().sum::<f64>() <= 1.0 + 1e-9, "{share:?}");
        }
        for (w, &cap) in problem.workers.iter().enumerate() {
            let used = problem.used(share, w);
            assert!(
                used <= cap * (1.0 + 1e-9) + 1e-9,
                "type {w}: {used} > {cap}"
            );
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

        /// Both stages' optima equal the general LP's (`microlp`) on random instances: a few
        /// groups of random value, gang, size and set of usable types on one to four types, with
        /// some groups of equal value per accelerator (the agnostic max-min case).
        #[test]
        fn closed_form_matches_the_lp(
            groups in proptest::collection::vec(
                (1u32..40, prop_oneof![Just(1u32), Just(2), Just(4), Just(8)], 1u32..6, any::<bool>(), 1u32..16),
                1..9,
            ),
            workers in proptest::collection::vec(0u32..24, 1..5),
        ) {
            prop_assume!(workers.iter().sum::<u32>() > 0);
            let types = workers.len();
            let workers: Vec<f64> = workers.into_iter().map(f64::from).collect();
            // A proportional group's value is its gang (agnostic max-min fairness).
            let values: Vec<f64> = groups
                .iter()
                .map(|&(v, s, _, proportional, _)| if proportional { f64::from(s) } else { f64::from(v) / 4.0 })
                .collect();
            // Each group runs on the types of a random non-empty mask.
            let coefficients: Vec<Vec<f64>> = groups
                .iter()
                .zip(&values)
                .map(|(g, &a)| {
                    let mask = match g.4 & ((1 << types) - 1) { 0 => 1, m => m };
                    (0..types).map(|w| if mask & (1 << w) != 0 { a } else { 0.0 }).collect()
                })
                .collect();
            let scale: Vec<u32> = groups.iter().map(|g| g.1).collect();
            let counts: Vec<f64> = groups.iter().map(|g| f64::from(g.2)).collect();
            let problem = Grouped { coefficients: &coefficients, scale_factors: &scale, counts: &counts, workers: &workers };
            let values = uniform_values(&problem).expect("uniform");
            let (lp_first, lp_t) = problem.solve_stage_lp(None).expect("lp stage 1");
            let (first, t) = solve_stage(&problem, &values, None);
            prop_assert!(close(t, lp_t), "stage 1: {t} vs lp {lp_t}");
            assert_feasible(&problem, &first.share);
            assert_feasible(&problem, &lp_first.share);
            let floor = t * (1.0 - 1e-6);
            let (lp_second, _) = problem.solve_stage_lp(Some(floor)).expect("lp stage 2");
            let (second, min_value) = solve_stage(&problem, &values, Some(floor));
            assert_feasible(&problem, &second.share);
            prop_assert!(min_value >= floor * (1.0 - 1e-9), "{min_value} < {floor}");
            let (ours, lp) = (problem.total_value(&second.share), problem.total_value(&lp_second.share));
            prop_assert!(close(ours, lp), "stage 2: {ours} vs lp {lp}");
        }
    }

    /// Two single jobs (groups of one) with these rows and gangs on these types.
    fn two_jobs<'a>(rows: &'a [Vec<f64>], gangs: &'a [u32], workers: &'a [f64]) -> Grouped<'a> {
        Grouped {
            coefficients: rows,
            scale_factors: gangs,
            counts: &[1.0, 1.0],
            workers,
        }
    }

    #[test]
    fn equal_value_per_accelerator_is_water_filled() {
        // Agnostic max-min on 10 accelerators: a single-GPU job (value 1) and a 4-GPU gang (value
        // 4) have the same value per accelerator; stage 1 gives both time 1 (the single job's
        // whole time binds, t* = 1, the gang uses 0.25 x 4 = 1), leaving 8 accelerators; the
        // gang alone can still grow, to all its time (4 accelerators), and 5 stay idle.
        let coefficients = vec![vec![1.0, 1.0], vec![4.0, 4.0]];
        let problem = two_jobs(&coefficients, &[1, 4], &[5.0, 5.0]);
        let agnostic = uniform_values(&problem).unwrap();
        let allocation = problem.solve().unwrap();
        assert!((allocation.objective - 1.0).abs() < 1e-9, "{allocation:?}");
        let time: Vec<f64> = allocation.share.iter().map(|r| r.iter().sum()).collect();
        assert!(
            (time[0] - 1.0).abs() < 1e-9 && (time[1] - 1.0).abs() < 1e-9,
            "{time:?}"
        );
        assert_eq!(agnostic.values, vec![1.0, 4.0]);
        assert_eq!(agnostic.masks, vec![0b11, 0b11]);
    }

    #[test]
    fn a_job_limited_to_one_type_gets_it_and_the_other_takes_the_rest() {
        // One V100 and one K80; job 0 can only use the V100, job 1 either. By hand: max-min
        // gives both all their time (t* = 1), job 0 on the V100 and job 1 on the K80.
        let coefficients = vec![vec![1.0, 0.0], vec![1.0, 1.0]];
        let problem = two_jobs(&coefficients, &[1, 1], &[1.0, 1.0]);
        let allocation = problem.solve().unwrap();
        assert!((allocation.objective - 1.0).abs() < 1e-9, "{allocation:?}");
        assert!(
            (allocation.share[0][0] - 1.0).abs() < 1e-9,
            "{allocation:?}"
        );
        assert!(
            (allocation.share[1][1] - 1.0).abs() < 1e-9,
            "{allocation:?}"
        );
    }
}
