//! Layout search: enumerate every layout that divides the model, the cluster and the batch and
//! fits in memory, time each, and rank by throughput.

use crate::layout::{Layout, Recompute};
use crate::train::{self, EstimateError, TrainEstimate, TrainSetup};
use serde::Serialize;

/// Parts of the layout the user fixed; `None` = search over it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Constraints {
    pub tp: Option<u32>,
    pub pp: Option<u32>,
    pub dp: Option<u32>,
    pub cp: Option<u32>,
    pub ep: Option<u32>,
    pub zero: Option<u8>,
    pub micro_batch: Option<u32>,
    pub vpp: Option<u32>,
    pub recompute: Option<Recompute>,
    /// With full recompute, the layers per device that recompute (see [`Layout::recompute_layers`]).
    pub recompute_layers: Option<u32>,
    pub sequence_parallel: Option<bool>,
    /// Whether pipeline stages sit inside data replicas in rank order (see [`Layout::pp_inner`]).
    pub pp_inner: Option<bool>,
}

/// The ranked result of a search.
#[derive(Clone, Debug, Serialize)]
pub struct SearchResult {
    /// The best layouts, fastest first.
    pub top: Vec<TrainEstimate>,
    /// Layouts that divide everything.
    pub valid_layouts: usize,
    /// Valid layouts that fit in memory.
    pub fitting_layouts: usize,
}

/// Why nothing was found.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SearchError {
    #[error(transparent)]
    Estimate(#[from] EstimateError),
    #[error("no layout divides the model, the accelerator count and the batch: {0}")]
    NoValidLayout(String),
    #[error("no layout fits in memory: {0}")]
    NothingFits(String),
}

fn powers_of_two_up_to(limit: u64) -> impl Iterator<Item = u32> {
    (0..32)
        .map(|k| 1u32 << k)
        .take_while(move |&x| x as u64 <= limit)
}

/// The divisors of `n` that fit in a u32, ascending; trial division up to sqrt(n), so
/// O(sqrt n) even for n near u32::MAX (enumerating up to n hung on huge layer counts).
pub(crate) fn divisors(n: u64) -> Vec<u32> {
    let mut small = Vec::new();
    let mut large = Vec::new();
    let mut d = 1u64;
    while d * d <= n {
        if n.is_multiple_of(d) {
            small.push(d);
            if d * d != n {
                large.push(n / d);
            }
        }
        d += 1;
    }
    small
        .into_iter()
        .chain(large.into_iter().rev())
        .filter_map(|d| u32::try_from(d).ok())
        .collect()
}

/// Rank orders worth trying: with one stage there is nothing to place, and where the scale-up
/// domain is one server (HGX, MI300X, Gaudi boards) Megatron's order already fills it with the
/// tensor-parallel group, so only domains spanning servers (NVL72 racks, TPU slices,
/// CloudMatrix) also try pipelines inside the domain.
fn maps_for(pp: u32, multi_node_domain: bool) -> &'static [bool] {
    if pp > 1 && multi_node_domain {
        &[false, true]
    } else {
        &[false]
    }
}

fn choices<T: Copy>(fixed: Option<T>, all: &[T]) -> Vec<T> {
    match fixed {
        Some(value) => vec![value],
        None => all.to_vec(),
    }
}

/// Every layout that satisfies `constraints` and divides model, cluster and batch.
pub fn candidates(setup: &TrainSetup, constraints: &Constraints) -> Vec<Layout> {
    let model = &setup.model;
    let count = setup.count;
    let axes = Axes::new(setup, constraints);
    let mut layouts = Vec::new();
    for &tp in &axes.tps {
        for &pp in &axes.pps {
            for &cp in &axes.cps {
                let model_parallel = tp as u64 * pp as u64 * cp as u64;
                if !count.is_multiple_of(model_parallel) {
                    continue;
                }
                let dp = (count / model_parallel) as u32;
                if constraints.dp.is_some_and(|fixed| fixed != dp) {
                    continue;
                }
                let vpps = match constraints.vpp {
                    Some(v) => vec![v],
                    None if pp == 1 => vec![1],
                    None => divisors(model.layers.div_ceil(pp) as u64),
                };
                for &ep in &axes.eps {
                    for &zero in &axes.zeros {
                        for &micro_batch in &axes.micro {
                            for &vpp in &vpps {
                                for (&recompute, &pp_inner) in axes
                                    .recomputes
                                    .iter()
                                    .flat_map(|r| {
                                        maps_for(pp, axes.multi_node_domain)
                                            .iter()
                                            .map(move |m| (r, m))
                                    })
                                    .filter(|(_, m)| constraints.pp_inner.is_none_or(|c| c == **m))
                                {
                                    let layout = Layout {
                                        tp,
                                        pp,
                                        dp,
                                        cp,
                                        ep,
                                        zero,
                                        micro_batch,
                                        vpp,
                                        recompute,
                                        recompute_layers: constraints
                                            .recompute_layers
                                            .filter(|_| recompute == Recompute::Full),
                                        sequence_parallel: constraints
                                            .sequence_parallel
                                            .unwrap_or(tp > 1),
                                        pp_inner,
                                        offload_optimizer: false,
                                        offload_activations: false,
                                    };
                                    if layout
                                        .check(model, count, setup.seq_len, setup.global_batch)
                                        .is_ok()
                                    {
                                        layouts.push(layout);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    layouts
}

/// The values each layout axis may take for a setup: the constraint where one is given, else
/// the range worth searching.
struct Axes {
    tps: Vec<u32>,
    pps: Vec<u32>,
    cps: Vec<u32>,
    eps: Vec<u32>,
    zeros: Vec<u8>,
    micro: Vec<u32>,
    recomputes: Vec<Recompute>,
    /// The scale-up domain spans nodes (NVL72, a TPU slice): pipeline stages may map inside it.
    multi_node_domain: bool,
}

impl Axes {
    fn new(setup: &TrainSetup, constraints: &Constraints) -> Axes {
        let model = &setup.model;
        let count = setup.count;
        // Tensor parallelism stays inside a scale-up domain: a server, an NVL72 rack, a TPU slice.
        let domain = crate::collective::Fabric::new(
            &setup.accelerator,
            setup.per_node,
            setup.scaleout_gb_per_s,
            &setup.efficiency,
        )
        .for_job(count, setup.oversubscription)
        .domain;
        let multi_node_domain = domain > setup.per_node;
        let max_tp = (domain.max(setup.per_node) as u64)
            .max(1)
            .min(model.heads as u64);
        let tps = choices(
            constraints.tp,
            &powers_of_two_up_to(max_tp).collect::<Vec<_>>(),
        );
        // Every divisor of the layer count, plus powers of two (uneven stages).
        let mut stage_counts = divisors(model.layers as u64);
        stage_counts.extend(powers_of_two_up_to(model.layers as u64));
        stage_counts.sort_unstable();
        stage_counts.dedup();
        let pps = choices(constraints.pp, &stage_counts);
        let cps = choices(
            constraints.cp,
            &powers_of_two_up_to((setup.seq_len / 2048).clamp(1, 32)).collect::<Vec<_>>(),
        );
        let eps: Vec<u32> = match &model.moe {
            Some(moe) => choices(
                constraints.ep,
                &powers_of_two_up_to(moe.experts as u64).collect::<Vec<_>>(),
            ),
            None => vec![constraints.ep.unwrap_or(1)],
        };
        let zeros = choices(constraints.zero, &[1, 2, 3]);
        let micro = choices(
            constraints.micro_batch,
            &powers_of_two_up_to(16).collect::<Vec<_>>(),
        );
        let recomputes = choices(constraints.recompute, &Recompute::ALL);
        Axes {
            tps,
            pps,
            cps,
            eps,
            zeros,
            micro,
            recomputes,
            multi_node_domain,
        }
    }
}

/// The global batch nearest `setup.global_batch` that some layout under `constraints` divides,
/// as Megatron-LM requires (global batch = dp x micro-batch x micro-batches): every data-parallel
/// size divides the accelerator count, so the candidates are the multiples of each divisor of
/// the count next to the request, tried nearest first (the larger on a tie). `None` when none
/// within a factor of two works.
pub fn nearest_valid_global_batch(setup: &TrainSetup, constraints: &Constraints) -> Option<u64> {
    let wanted = setup.global_batch.max(1);
    let mut tries: Vec<u64> = divisors(setup.count)
        .into_iter()
        .flat_map(|d| {
            let d = d as u64;
            let below = wanted / d * d;
            [below, below + d]
        })
        .filter(|&g| g >= 1 && g >= wanted / 2 && g <= wanted.saturating_mul(2))
        .collect();
    tries.sort_by_key(|&g| (g.abs_diff(wanted), std::cmp::Reverse(g)));
    tries.dedup();
    let mut probe = setup.clone();
    tries.into_iter().take(64).find(|&g| {
        probe.global_batch = g;
        !candidates(&probe, constraints).is_empty()
    })
}

/// Sequence length from which the search weighs context parallelism when cp=1 fits.
pub const CP_MIN_SEQ_LEN: u64 = 16_384;

/// Searches and returns the `top_k` fastest layouts that fit.
pub fn search(
    setup: &TrainSetup,
    constraints: &Constraints,
    top_k: usize,
) -> Result<SearchResult, SearchError> {
    let layouts = candidates(setup, constraints);
    if layouts.is_empty() {
        return Err(SearchError::NoValidLayout(explain_no_valid(
            setup,
            constraints,
        )));
    }
    let mut fitting: Vec<&Layout> = layouts
        .iter()
        .filter(|l| train::memory(setup, l).fits())
        .collect();
    // Context parallelism only where the sequence or memory needs it: the published runs at
    // 4k-8k tokens trained without it (Llama 3 405B at 8192, Dubey et al. 2024, Table 4, turned
    // CP on for its 128k stage only; DeepSeek-V3 at 4096), since a rank's block of a short
    // sequence is too small to hide the ring (Liu et al. 2023, section 3.1: block compute must
    // exceed the block transfer) and the split attention kernels run below their peak.
    if constraints.cp.is_none()
        && setup.seq_len < CP_MIN_SEQ_LEN
        && fitting.iter().any(|l| l.cp == 1)
    {
        fitting.retain(|l| l.cp == 1);
    }
    if fitting.is_empty() {
        return Err(SearchError::NothingFits(explain_nothing_fits(
            setup, &layouts,
        )));
    }
    let mut estimates = Vec::with_capacity(fitting.len());
    for layout in &fitting {
        estimates.push(train::estimate(setup, layout)?);
    }
    // Fastest first; among equally fast layouts the simpler one (fewer model-parallel ranks,
    // less interleaving, lower ZeRO stage) first.
    estimates.sort_by(|a, b| {
        let simplicity = |e: &TrainEstimate| {
            let l = &e.layout;
            (l.cp, l.pp, l.tp, l.vpp, l.zero, l.ep)
        };
        let rounded = |e: &TrainEstimate| (e.step_time_s * 1e4).round() as u64;
        rounded(a)
            .cmp(&rounded(b))
            .then_with(|| simplicity(a).cmp(&simplicity(b)))
    });
    collapse_near_identical(&mut estimates, top_k.max(1));
    Ok(SearchResult {
        top: estimates,
        valid_layouts: layouts.len(),
        fitting_layouts: fitting.len(),
    })
}

/// Drops layouts within 0.5% of the step time of a faster (or equally fast and simpler) one
/// with the same split (tp, pp, dp, cp, ep, micro-batch, interleaving, recompute), differing
/// only in the ZeRO stage or the rank order: a ranking of five copies of one plan tells a user
/// nothing, and the kept one is the lower ZeRO stage, the sort's tie-break.
/// Keeps at most `top_k`.
fn collapse_near_identical(estimates: &mut Vec<TrainEstimate>, top_k: usize) {
    let mut kept: Vec<TrainEstimate> = Vec::with_capacity(top_k);
    for e in estimates.drain(..) {
        if kept.len() == top_k {
            break;
        }
        let same = kept.iter().any(|k| {
            let (a, b) = (&k.layout, &e.layout);
            let split = |l: &Layout| {
                (
                    l.tp,
                    l.pp,
                    l.dp,
                    l.cp,
                    l.ep,
                    l.micro_batch,
                    l.vpp,
                    l.recompute,
                )
            };
            split(a) == split(b) && (k.step_time_s - e.step_time_s).abs() <= 0.005 * k.step_time_s
        });
        if !same {
            kept.push(e);
        }
    }
    *estimates = kept;
}

fn explain_no_valid(setup: &TrainSetup, constraints: &Constraints) -> String {
    // Re-check the fixed parts alone to name the first that cannot work.
    let layout = Layout {
        tp: constraints.tp.unwrap_or(1),
        pp: constraints.pp.unwrap_or(1),
        dp: constraints.dp.unwrap_or(1),
        cp: constraints.cp.unwrap_or(1),
        ep: constraints.ep.unwrap_or(1),
        zero: constraints.zero.unwrap_or(1),
        micro_batch: constraints.micro_batch.unwrap_or(1),
        vpp: constraints.vpp.unwrap_or(1),
        recompute: constraints.recompute.unwrap_or(Recompute::Full),
        recompute_layers: None,
        sequence_parallel: false,
        pp_inner: false,
        offload_optimizer: false,
        offload_activations: false,
    };
    let devices = layout.devices();
    match layout.check(&setup.model, devices, setup.seq_len, setup.global_batch) {
        Err(reason) => reason.to_string(),
        Ok(()) => format!(
            "{} accelerators with global batch {} leave no tp*pp*dp*cp split; try a count that \
             is a multiple of 8 and a global batch divisible by the data-parallel size",
            setup.count, setup.global_batch
        ),
    }
}

fn explain_nothing_fits(setup: &TrainSetup, layouts: &[Layout]) -> String {
    // The layout that comes closest, and how far it is.
    let best = layouts
        .iter()
        .map(|l| (l, train::memory(setup, l)))
        .min_by(|a, b| a.1.total_bytes.total_cmp(&b.1.total_bytes))
        .expect("layouts is not empty");
    let (layout, memory) = best;
    let gb = |bytes: f64| bytes / 1e9;
    let mut hint = String::new();
    if layout.pp < setup.model.layers {
        hint.push_str("more pipeline stages (pp), ");
    }
    if layout.zero < 3 {
        hint.push_str("zero=3, ");
    }
    hint.push_str("more accelerators, or an accelerator with more memory");
    format!(
        "the smallest layout ({layout}) needs {:.1} GB per device (weights {:.1}, gradients {:.1}, \
         optimizer {:.1}, activations {:.1}, buffers {:.1}) but a {} has {:.0} GB; try {hint}",
        gb(memory.total_bytes),
        gb(memory.weights_bytes),
        gb(memory.gradients_bytes),
        gb(memory.optimizer_bytes),
        gb(memory.activations_bytes),
        gb(memory.buffers_bytes),
        setup.accelerator.id,
        gb(memory.capacity_bytes),
    )
}

#[cfg(test)]
mod divisor_tests {
    use super::divisors;

    #[test]
    fn divisors_match_trial_division_and_stay_fast_near_u32_max() {
        for n in 1..2000u64 {
            let naive: Vec<u32> = (1..=n)
                .filter(|d| n.is_multiple_of(*d))
                .map(|d| d as u32)
                .collect();
            assert_eq!(divisors(n), naive, "n = {n}");
        }
        // 4294967291 is prime; enumerating to n took minutes, sqrt(n) is 65536 steps.
        let started = std::time::Instant::now();
        assert_eq!(divisors(4_294_967_291), vec![1, 4_294_967_291]);
        assert_eq!(divisors(u32::MAX as u64).len(), 32);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
