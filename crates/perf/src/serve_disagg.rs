//! Disaggregated serving: separate prefill and decode pools (DistServe, Zhong et al. 2024;
//! Mooncake, Qin et al. 2024; NVIDIA Dynamo), the KV cache of every prompt sent from the prefill
//! replica that computed it to a decode replica, sized for p99 TTFT and TPOT targets.
//!
//! - A prefill replica runs prompts one after another, an M/D/1 queue with service `s` = the
//!   prefill of one prompt; TTFT = wait + s + the KV transfer, with the wait's tail from
//!   [`crate::serve::queue`]'s exponential approximation.
//! - The KV transfer moves input_len x the model's KV bytes per token, over the scale-up links
//!   when both replicas fit in one scale-up domain (an NVL72 rack, an 8-GPU HGX board), else
//!   over the scale-out NICs of the prefill replica's devices.
//! - A decode replica runs continuous batching with no prompt work; its p99 TPOT comes from
//!   [`crate::serve::queue::latencies`] with a zero prompt cost.
//!
//! The pools are worth it when prompts are long against the TPOT target: in a colocated replica
//! every prompt chunk lengthens the iterations of every decoding sequence.

use crate::serve::queue::{self, IterationCost};
use crate::serve::scenario::{Engine, iteration_cost};
use crate::serve::{self, ServeSetup, kv_bytes_per_token};
use serde::Serialize;

/// z of the 99th percentile is not used here: the M/D/1 tail is exponential.
const P99_TAIL: f64 = 0.01;

/// The two pools of a disaggregated deployment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pools {
    pub prefill_tp: u32,
    pub prefill_replicas: u32,
    pub decode_tp: u32,
    pub decode_replicas: u32,
    /// KV bytes sent per request.
    pub kv_bytes_per_request: f64,
    /// KV bytes per second between the pools at the request rate.
    pub kv_bytes_per_s: f64,
    /// Seconds one request's KV transfer takes.
    pub kv_transfer_s: f64,
    /// "scale-up" or "scale-out".
    pub kv_link: &'static str,
    pub ttft_p99_s: f64,
    pub tpot_p99_s: f64,
    pub ttft_mean_s: f64,
    pub tpot_mean_s: f64,
    pub decode_mean_batch: f64,
    pub decode_max_batch: u64,
}

/// Seconds to move `bytes` from a prefill replica of `prefill_devices` devices to a decode
/// replica, over scale-up when the whole deployment of `total_devices` sits in one scale-up
/// domain, else over scale-out; and which network carries it.
pub fn kv_transfer_s(
    setup: &ServeSetup,
    bytes: f64,
    prefill_devices: u64,
    total_devices: u64,
) -> (f64, &'static str) {
    let accelerator = &setup.accelerator;
    let domain = accelerator.scaleup.domain_size as u64;
    let efficiency = crate::efficiency::Efficiency::for_accelerator(accelerator);
    if domain > 1 && total_devices <= domain {
        let per_device = accelerator.scaleup.bandwidth_gb_per_s_unidir() * 1e9 * efficiency.scaleup;
        let s = bytes / (per_device * prefill_devices as f64) + efficiency.scaleup_latency_s;
        (s, "scale-up")
    } else {
        let per_device = setup.scaleout_gb_per_s * 1e9 * efficiency.scaleout;
        let s = bytes / (per_device * prefill_devices as f64) + efficiency.scaleout_latency_s;
        (s, "scale-out")
    }
}

/// p99 TTFT of a prefill replica at `rate` prompts per second, service `service_s` each, plus
/// the transfer; `None` when it cannot keep up.
fn prefill_p99(service_s: f64, rate: f64, transfer_s: f64) -> Option<f64> {
    let rho = rate * service_s;
    if rho >= 1.0 {
        return None;
    }
    let wait_mean = rho * service_s / (2.0 * (1.0 - rho));
    let wait_p99 = if rho > P99_TAIL {
        wait_mean / rho * (rho / P99_TAIL).ln()
    } else {
        0.0
    };
    Some(wait_p99 + service_s + transfer_s)
}

/// Mean wait plus service of the M/D/1 prefill queue (Pollaczek-Khinchine).
fn prefill_mean(service_s: f64, rate: f64) -> f64 {
    let rho = (rate * service_s).min(0.999);
    rho * service_s / (2.0 * (1.0 - rho)) + service_s
}

/// The fewest replicas (up to 2^20) for which `meets(replicas)` holds; it must be monotone.
fn fewest(meets: impl Fn(u32) -> bool) -> Option<u32> {
    let mut high = 1u32;
    while !meets(high) {
        if high >= 1 << 20 {
            return None;
        }
        high *= 2;
    }
    let mut low = high / 2;
    while low >= 1 && high - low > 1 {
        let middle = low + (high - low) / 2;
        if meets(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    Some(high)
}

/// Sizes both pools for `rate` requests per second, a prefill replica shaped like `prefill`
/// and a decode replica like `decode` (same model, accelerator and lengths) running `engine`.
pub fn size_pools(
    prefill: &ServeSetup,
    decode: &ServeSetup,
    engine: &Engine,
    decode_max_batch: u64,
    rate: f64,
    ttft_p99_s: f64,
    tpot_p99_s: f64,
) -> Result<Option<Pools>, serve::ServeError> {
    let input = prefill.input_len;
    let service_s = serve::prefill(prefill, 1, input)?.total_s;
    let bytes = input as f64 * kv_bytes_per_token(&prefill.model, prefill.kv_precision);
    let prefill_devices = prefill.devices_per_replica();
    let prefill_pool = |transfer_s: f64| {
        fewest(|replicas| {
            prefill_p99(service_s, rate / replicas as f64, transfer_s)
                .is_some_and(|ttft| ttft <= ttft_p99_s)
        })
    };
    // Size over scale-out first; if the whole deployment then fits one scale-up domain, the
    // transfer runs over scale-up instead.
    let (mut transfer_s, mut link) = kv_transfer_s(prefill, bytes, prefill_devices, u64::MAX);
    let Some(mut prefill_replicas) = prefill_pool(transfer_s) else {
        return Ok(None);
    };
    let mut cost: IterationCost = iteration_cost(decode, engine, decode_max_batch)?;
    cost.prefill_token_s = 0.0;
    let (input_f, output_f) = (decode.input_len as f64, decode.output_len as f64);
    // Bursts that outrun the decode pool delay admission like prompts queueing in a colocated
    // replica; they must drain within the TTFT target too (`queue::meets`).
    let capacity = queue::capacity_rate(&cost, input_f, output_f);
    let decode_at = |replicas: u32| {
        let rate = rate / replicas as f64;
        queue::meets(
            &cost, capacity, input_f, output_f, rate, ttft_p99_s, tpot_p99_s,
        )
    };
    let Some(decode_replicas) = fewest(|replicas| decode_at(replicas).is_some()) else {
        return Ok(None);
    };
    let load = decode_at(decode_replicas).expect("checked by fewest");
    let total = prefill_devices * prefill_replicas as u64
        + decode.devices_per_replica() * decode_replicas as u64;
    let (inside, inside_link) = kv_transfer_s(prefill, bytes, prefill_devices, total);
    if inside_link == "scale-up" {
        (transfer_s, link) = (inside, inside_link);
        prefill_replicas = prefill_pool(transfer_s).unwrap_or(prefill_replicas);
    }
    let ttft = prefill_p99(service_s, rate / prefill_replicas as f64, transfer_s)
        .expect("checked by fewest");
    Ok(Some(Pools {
        prefill_tp: prefill.tp,
        prefill_replicas,
        decode_tp: decode.tp,
        decode_replicas,
        kv_bytes_per_request: bytes,
        kv_bytes_per_s: bytes * rate,
        kv_transfer_s: transfer_s,
        kv_link: link,
        ttft_p99_s: ttft,
        tpot_p99_s: load.tpot_p99_s,
        ttft_mean_s: prefill_mean(service_s, rate / prefill_replicas as f64) + transfer_s,
        tpot_mean_s: load.tpot_mean_s,
        decode_mean_batch: load.mean_batch,
        decode_max_batch,
    }))
}
