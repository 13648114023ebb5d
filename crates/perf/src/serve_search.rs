//! Deployment search for serving: the cheapest accelerator type, replica shape (tp, pp), replica
//! count and batch cap that meet a time-to-first-token and a time-per-output-token target at a
//! request rate, with TTFT under load from a queueing model rather than from batch 1.
//!
//! Each replica receives lambda = rate / replicas requests per second, Poisson, and runs
//! continuous batching with chunked prefill under the spec's engine (its scheduler properties
//! and host time, `serve::scenario::ChosenEngine`; TensorRT-LLM by default); the targets are met on the 99th percentile of TTFT and TPOT
//! from the queueing model of `serve::queue`, which the tests check against the discrete-event
//! simulation of `serve::sim`.

use crate::serve::queue::{self, Latencies};
use crate::serve::scenario::{ChosenEngine, iteration_cost};
use crate::serve::{self, ServeError, ServeSetup};
use crate::serve_disagg::{Pools, size_pools};
use serde::Serialize;
use suanli_catalog::{Accelerator, Model, Precision};

/// Indicative on-demand prices in US dollars per accelerator-hour, 2025: Google Cloud list
/// prices for TPUs (v5e $1.20, v5p $4.20, v6e $2.70 per chip-hour); for GPUs the middle of the
/// public price pages of Lambda, RunPod and CoreWeave (H100 SXM $2.2-3.0, A100 80GB $1.3-1.8,
/// L40S $0.8-1.0, H200 $3.2-3.8, MI300X $2.0-2.5); Ascend and H20 from Chinese cloud listings
/// converted at 7.2 CNY/USD. They change monthly: override them with `--price id=dollars`.
pub const DEFAULT_PRICES: &[(&str, f64)] = &[
    ("a100-sxm4-40gb", 1.2),
    ("a100-sxm4-80gb", 1.5),
    ("a100-pcie-80gb", 1.4),
    ("h100-sxm5-80gb", 2.5),
    ("h100-pcie-80gb", 2.0),
    ("h100-nvl-94gb", 2.6),
    ("h200-sxm-141gb", 3.5),
    ("h20-96gb", 1.3),
    ("b200-sxm-180gb", 5.0),
    ("l40s", 0.9),
    ("l20", 0.6),
    ("mi300x", 2.2),
    ("mi325x", 2.8),
    ("ascend-910b", 1.2),
    ("gaudi2", 1.2),
    ("tpu-v5e", 1.2),
    ("tpu-v5p", 4.2),
    ("tpu-v6e", 2.7),
];

/// The default price of an accelerator, if documented.
pub fn default_price(accelerator_id: &str) -> Option<f64> {
    DEFAULT_PRICES
        .iter()
        .find(|(id, _)| *id == accelerator_id)
        .map(|(_, price)| *price)
}

/// One accelerator type to consider and its price.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub accelerator: Accelerator,
    pub price_per_hour: f64,
}

/// What to search for.
#[derive(Clone, Debug)]
pub struct SearchSpec {
    pub model: Model,
    pub candidates: Vec<Candidate>,
    pub input_len: u64,
    pub output_len: u64,
    pub weight_precision: Precision,
    pub kv_precision: Precision,
    /// Requests per second over the whole deployment.
    pub rate_per_s: f64,
    pub ttft_slo_s: f64,
    pub tpot_slo_s: f64,
    /// Largest tp x pp of one replica.
    pub max_devices_per_replica: u32,
    /// How many deployments to return.
    pub top: usize,
    /// The serving engine every replica runs.
    pub engine: ChosenEngine,
}

/// One deployment that meets both targets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deployment {
    pub accelerator: String,
    pub tp: u32,
    pub pp: u32,
    /// Expert-parallel size inside the tp group (1 for dense models).
    pub ep: u32,
    pub replicas: u32,
    pub devices: u64,
    /// Concurrent sequences a replica admits: the largest batch that fits in memory and keeps
    /// TPOT within the target.
    pub max_batch: u64,
    /// Mean sequences decoding at once per replica at the request rate.
    pub mean_batch: f64,
    /// 99th-percentile TTFT under load (`serve::queue`).
    pub ttft_s: f64,
    /// 99th-percentile TPOT under load.
    pub tpot_s: f64,
    /// Mean TTFT and TPOT under load.
    pub ttft_mean_s: f64,
    pub tpot_mean_s: f64,
    /// Share of a replica's time spent on prefill.
    pub prefill_share: f64,
    pub price_per_hour: f64,
    pub cost_per_million_output_tokens: f64,
    /// Separate prefill and decode pools, when this deployment is disaggregated (then `tp`,
    /// `max_batch` and `mean_batch` describe the decode replicas and `replicas` counts both).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pools: Option<Pools>,
}

/// Why an accelerator type has no deployment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rejection {
    pub accelerator: String,
    pub reason: String,
}

/// The cheapest deployments and the rejected accelerator types.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchResult {
    pub deployments: Vec<Deployment>,
    pub rejected: Vec<Rejection>,
}

/// Why a search cannot run at all.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SearchError {
    #[error("invalid search: {0}")]
    Invalid(String),
}

/// Why one accelerator type has no deployment; [`Rejection::reason`] is its text.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RejectReason {
    #[error("no replica of up to {max_devices} devices holds it: {}", fit_text(.why))]
    NoReplicaHolds {
        max_devices: u32,
        why: Option<ServeError>,
    },
    #[error("TPOT at batch 1 is {best_ms:.1} ms at best, above the {target_ms:.1} ms target")]
    Tpot { best_ms: f64, target_ms: f64 },
    #[error(
        "TTFT of a lone request is {best_ms:.0} ms at best, above the {target_ms:.0} ms target"
    )]
    Ttft { best_ms: f64, target_ms: f64 },
    #[error("no replica count meets both targets at this rate")]
    NoReplicaCount,
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The last reason a replica shape did not hold the model, or that the KV cache had no room.
fn fit_text(why: &Option<ServeError>) -> String {
    match why {
        Some(error) => error.to_string(),
        None => "no room for the KV cache of one sequence".into(),
    }
}

/// Searches every candidate, tp in powers of two up to its scale-up domain, pp in powers of two,
/// and the fewest replicas that meet both targets; returns the cheapest deployment of each
/// accelerator type, the `top` cheapest types first.
pub fn search(spec: &SearchSpec) -> Result<SearchResult, SearchError> {
    if !(spec.rate_per_s > 0.0 && spec.ttft_slo_s > 0.0 && spec.tpot_slo_s > 0.0) {
        return Err(SearchError::Invalid(
            "the rate and both targets must be positive".into(),
        ));
    }
    if spec.input_len == 0 || spec.output_len == 0 {
        return Err(SearchError::Invalid(
            "input and output lengths must be at least 1".into(),
        ));
    }
    let mut deployments = Vec::new();
    let mut rejected = Vec::new();
    for candidate in &spec.candidates {
        match search_one(spec, candidate) {
            Ok(mut found) if !found.is_empty() => deployments.append(&mut found),
            Ok(_) => {}
            Err(reason) => rejected.push(Rejection {
                accelerator: candidate.accelerator.id.clone(),
                reason: reason.to_string(),
            }),
        }
    }
    let cheaper = |a: &Deployment, b: &Deployment| {
        a.price_per_hour
            .total_cmp(&b.price_per_hour)
            .then(a.ttft_s.total_cmp(&b.ttft_s))
    };
    deployments.sort_by(cheaper);
    // The cheapest deployment of each accelerator type, side by side.
    let mut seen = Vec::new();
    deployments.retain(|d| {
        let first = !seen.contains(&d.accelerator);
        seen.push(d.accelerator.clone());
        first
    });
    deployments.truncate(spec.top.max(1));
    Ok(SearchResult {
        deployments,
        rejected,
    })
}

/// The feasible deployments of one accelerator type, one per replica shape, or why there is none.
fn search_one(spec: &SearchSpec, candidate: &Candidate) -> Result<Vec<Deployment>, RejectReason> {
    let accelerator = &candidate.accelerator;
    let mut setup = ServeSetup::new(
        spec.model.clone(),
        accelerator.clone(),
        spec.input_len,
        spec.output_len,
    );
    setup.weight_precision = spec.weight_precision;
    setup.kv_precision = spec.kv_precision;
    setup.continuous_batching = true;
    spec.engine.apply(&mut setup);
    let max_tp = accelerator
        .scaleup
        .domain_size
        .clamp(1, setup.per_node.max(1))
        .min(spec.max_devices_per_replica.max(1));
    let mut found = Vec::new();
    let mut fits_somewhere = false;
    let mut best_tpot = f64::INFINITY;
    let mut best_ttft = f64::INFINITY;
    let mut last_fit_error = None;
    for tp in powers_of_two(max_tp) {
        for pp in powers_of_two(spec.max_devices_per_replica / tp) {
            if pp > spec.model.layers {
                continue;
            }
            setup.tp = tp;
            setup.pp = pp;
            setup.ep = 1;
            if let Err(error) = serve::check(&setup) {
                last_fit_error = Some(error);
                continue;
            }
            let memory = match serve::memory(&setup, 1) {
                Ok(memory) if memory.max_sequences >= 1 => memory,
                Ok(_) => continue,
                Err(error) => {
                    last_fit_error = Some(error);
                    continue;
                }
            };
            fits_somewhere = true;
            // Mixture-of-experts models also try experts spread over the whole tp group.
            let expert_parallel = match &spec.model.moe {
                Some(moe) if tp > 1 && moe.experts.is_multiple_of(tp) => vec![1, tp],
                _ => vec![1],
            };
            for ep in expert_parallel {
                setup.ep = ep;
                let prefill_s = serve::prefill(&setup, 1, spec.input_len)?.total_s;
                let context = spec.input_len as f64 + (spec.output_len as f64 + 1.0) / 2.0;
                let alone = serve::decode_step(&setup, 1, context)?;
                best_tpot = best_tpot.min(alone.total_s);
                best_ttft = best_ttft.min(prefill_s + alone.total_s / 2.0);
                if alone.total_s > spec.tpot_slo_s || prefill_s > spec.ttft_slo_s {
                    continue;
                }
                let max_batch = batch_cap(&setup, memory.max_sequences, context, spec.tpot_slo_s)?;
                if let Some(deployment) =
                    fewest_replicas(spec, candidate, &setup, prefill_s, max_batch)?
                {
                    found.push(deployment);
                }
            }
            setup.ep = 1;
        }
    }
    if fits_somewhere && spec.model.moe.is_none() {
        found.extend(disaggregated(spec, candidate, &setup, max_tp)?);
    }
    if !fits_somewhere {
        return Err(RejectReason::NoReplicaHolds {
            max_devices: spec.max_devices_per_replica,
            why: last_fit_error,
        });
    }
    if found.is_empty() {
        let reason = if best_tpot > spec.tpot_slo_s {
            RejectReason::Tpot {
                best_ms: best_tpot * 1e3,
                target_ms: spec.tpot_slo_s * 1e3,
            }
        } else if best_ttft > spec.ttft_slo_s {
            RejectReason::Ttft {
                best_ms: best_ttft * 1e3,
                target_ms: spec.ttft_slo_s * 1e3,
            }
        } else {
            RejectReason::NoReplicaCount
        };
        return Err(reason);
    }
    Ok(found)
}

fn powers_of_two(limit: u32) -> impl Iterator<Item = u32> {
    (0..16)
        .map(|shift| 1u32 << shift)
        .take_while(move |&p| p <= limit.max(1))
}

/// The largest batch (up to what fits) whose decode step stays within the TPOT target.
fn batch_cap(
    setup: &ServeSetup,
    fits: u64,
    context: f64,
    tpot_slo_s: f64,
) -> Result<u64, ServeError> {
    let within = |batch: u64| -> Result<bool, ServeError> {
        Ok(serve::decode_step(setup, batch, context)?.total_s <= tpot_slo_s)
    };
    if within(fits)? {
        return Ok(fits);
    }
    // The step time grows with the batch: bisect between 1 (within) and `fits` (not).
    let (mut low, mut high) = (1u64, fits);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if within(middle)? {
            low = middle;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

/// The fewest replicas of `setup` that meet both targets at the spec's rate.
fn fewest_replicas(
    spec: &SearchSpec,
    candidate: &Candidate,
    setup: &ServeSetup,
    prefill_s: f64,
    max_batch: u64,
) -> Result<Option<Deployment>, ServeError> {
    let _ = prefill_s;
    let cost = iteration_cost(setup, &spec.engine.engine, max_batch)?;
    let (input, output) = (spec.input_len as f64, spec.output_len as f64);
    let capacity = queue::capacity_rate(&cost, input, output);
    let meets = |replicas: u32| -> Result<Option<Latencies>, ServeError> {
        let rate = spec.rate_per_s / replicas as f64;
        let (ttft, tpot) = (spec.ttft_slo_s, spec.tpot_slo_s);
        Ok(queue::meets(
            &cost, capacity, input, output, rate, ttft, tpot,
        ))
    };
    // More replicas never hurt: grow until the targets hold, then bisect.
    let limit = 1u32 << 20;
    let mut high = 1u32;
    while meets(high)?.is_none() {
        if high >= limit {
            return Ok(None);
        }
        high *= 2;
    }
    let mut low = high / 2;
    while high - low > 1 && low >= 1 {
        let middle = low + (high - low) / 2;
        if meets(middle)?.is_some() {
            high = middle;
        } else {
            low = middle;
        }
    }
    let replicas = high;
    let load = meets(replicas)?.expect("checked above");
    let devices = setup.devices_per_replica() * replicas as u64;
    let price_per_hour = devices as f64 * candidate.price_per_hour;
    let output_tokens_per_hour = spec.rate_per_s * spec.output_len as f64 * 3600.0;
    Ok(Some(Deployment {
        accelerator: candidate.accelerator.id.clone(),
        tp: setup.tp,
        pp: setup.pp,
        ep: setup.ep,
        replicas,
        devices,
        max_batch,
        mean_batch: load.mean_batch,
        ttft_s: load.ttft_p99_s,
        tpot_s: load.tpot_p99_s,
        ttft_mean_s: load.ttft_mean_s,
        tpot_mean_s: load.tpot_mean_s,
        prefill_share: load.prefill_share,
        price_per_hour,
        cost_per_million_output_tokens: price_per_hour / output_tokens_per_hour * 1e6,
        pools: None,
    }))
}

/// The cheapest disaggregated deployment of one accelerator type: every pair of prefill and
/// decode tensor-parallel sizes (pp 1) whose replicas hold the model, each pool sized for the
/// targets (`crate::serve_disagg`).
fn disaggregated(
    spec: &SearchSpec,
    candidate: &Candidate,
    base: &ServeSetup,
    max_tp: u32,
) -> Result<Option<Deployment>, ServeError> {
    let shaped = |tp: u32| -> Option<ServeSetup> {
        let mut setup = base.clone();
        setup.tp = tp;
        setup.pp = 1;
        setup.ep = 1;
        serve::check(&setup).ok()?;
        serve::memory(&setup, 1)
            .ok()
            .filter(|m| m.max_sequences >= 1)
            .map(|_| setup)
    };
    let context = spec.input_len as f64 + (spec.output_len as f64 + 1.0) / 2.0;
    let mut best: Option<Deployment> = None;
    for prefill_tp in powers_of_two(max_tp) {
        let Some(prefill) = shaped(prefill_tp) else {
            continue;
        };
        for decode_tp in powers_of_two(max_tp) {
            let Some(decode) = shaped(decode_tp) else {
                continue;
            };
            let fits = serve::memory(&decode, 1)?.max_sequences;
            let cap = batch_cap(&decode, fits, context, spec.tpot_slo_s)?;
            let sized = size_pools(
                &prefill,
                &decode,
                &spec.engine.engine,
                cap,
                spec.rate_per_s,
                spec.ttft_slo_s,
                spec.tpot_slo_s,
            )?;
            let Some(pools) = sized else { continue };
            let devices = prefill_tp as u64 * pools.prefill_replicas as u64
                + decode_tp as u64 * pools.decode_replicas as u64;
            let price_per_hour = devices as f64 * candidate.price_per_hour;
            if best
                .as_ref()
                .is_some_and(|b| b.price_per_hour <= price_per_hour)
            {
                continue;
            }
            let output_tokens_per_hour = spec.rate_per_s * spec.output_len as f64 * 3600.0;
            best = Some(Deployment {
                accelerator: candidate.accelerator.id.clone(),
                tp: decode_tp,
                pp: 1,
                ep: 1,
                replicas: pools.prefill_replicas + pools.decode_replicas,
                devices,
                max_batch: cap,
                mean_batch: pools.decode_mean_batch,
                ttft_s: pools.ttft_p99_s,
                tpot_s: pools.tpot_p99_s,
                ttft_mean_s: pools.ttft_mean_s,
                tpot_mean_s: pools.tpot_mean_s,
                prefill_share: 0.0,
                price_per_hour,
                cost_per_million_output_tokens: price_per_hour / output_tokens_per_hour * 1e6,
                pools: Some(pools),
            });
        }
    }
    Ok(best)
}
