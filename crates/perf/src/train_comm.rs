//! The communication side of a training step: the groups a layout's parallel axes form on the
//! network, the precision-dependent constants, and data-parallel (ZeRO/FSDP) traffic.

use crate::collective::{Collective, Fabric, Group};
use crate::efficiency::Efficiency;
use crate::layout::Layout;
use crate::lora::{self, Workload};
use crate::memory::{self, DeviceParams};
use crate::train::{TrainSetup, exposed_s};
use suanli_catalog::Precision;

/// The setup's constants at its precision: 8- and 4-bit runs take their GEMM fraction of the
/// 8-bit peak from `matmul_8bit`, and their attention core stays in 16 bits (Transformer
/// Engine's fp8 recipe and AQT quantise the weight GEMMs only), so its rate is rescaled from the
/// low-precision peak back to the 16-bit one.
pub(crate) fn precision_efficiency(setup: &TrainSetup) -> Efficiency {
    let mut e = setup.efficiency;
    let low = matches!(
        setup.precision,
        Precision::Fp8 | Precision::Int8 | Precision::Fp4 | Precision::Int4
    );
    let a = &setup.accelerator;
    if let (true, Some(peak_low), Some(peak_16)) = (
        low,
        a.peak_flops_per_s(setup.precision),
        a.peak_flops_per_s(Precision::Bf16),
    ) {
        let rate_16 = peak_16 * e.matmul * e.attention;
        e.matmul = e.matmul_8bit;
        e.attention = rate_16 / (peak_low * e.matmul);
    }
    e
}

/// The communication groups of a layout on this cluster. Ranks are ordered tp fastest, then
/// cp, then dp, then pp (Megatron-Core's default order), so tp groups are packed into nodes.
pub(crate) struct Network {
    pub(crate) tp: Group,
    pub(crate) cp: Group,
    pub(crate) ep: Group,
    pub(crate) dp: Group,
    pub(crate) dp_expert: Group,
    pub(crate) pp: Group,
    pub(crate) pp_crosses_nodes: bool,
    /// TPU-style FSDP on a torus whose data axis spans several slices: ZeRO-3 shards and
    /// gathers inside each slice over ICI (`dp_slice`), and gradients are all-reduced once per
    /// step across slices over the DCN (`dp_across`), as MaxText's `ici_fsdp_parallelism` x
    /// `dcn_data_parallelism` mesh does (and PaLM's two pods, Chowdhery et al. 2022, sec. 4).
    pub(crate) hybrid_fsdp: Option<(Group, Group)>,
}

impl Network {
    pub(crate) fn new(setup: &TrainSetup, layout: &Layout, efficiency: &Efficiency) -> Network {
        let fabric = Fabric::new(
            &setup.accelerator,
            setup.per_node,
            setup.scaleout_gb_per_s,
            efficiency,
        )
        .for_job(setup.count, setup.oversubscription)
        .with_slice_size(setup.slice_size);
        let group = |size: u32, stride: u32| fabric.group(size, stride);
        let domain = fabric.domain;
        let tp = layout.tp;
        let cp = layout.cp;
        let model_ranks = tp * cp * layout.dp;
        // Stride between pipeline neighbours and the extra stride of data-parallel peers.
        let (pp_stride, dp_extra) = if layout.pp_inner {
            (tp * cp, layout.pp)
        } else {
            (model_ranks, 1)
        };
        let dp = group(layout.dp * cp, tp * dp_extra);
        let hybrid_fsdp = (fabric.torus_dims > 0 && layout.zero >= 3 && dp.crosses_scaleout())
            .then(|| {
                let local = dp.ranks_per_domain.max(1);
                let slices = dp.size.div_ceil(local);
                (
                    group(local, tp * dp_extra),
                    group(slices, tp * dp_extra * local),
                )
            });
        Network {
            tp: group(tp, 1),
            cp: group(cp, tp),
            ep: group(layout.ep, tp),
            dp,
            hybrid_fsdp,
            dp_expert: group(
                (layout.dp * cp / layout.ep).max(1),
                tp * layout.ep * dp_extra,
            ),
            pp: group(layout.pp, pp_stride),
            pp_crosses_nodes: pp_stride >= domain,
        }
    }
}

/// Seconds of data-parallel traffic per step, and the seconds of it not hidden behind compute.
///
/// ZeRO-0 all-reduces the gradients; ZeRO-1/2 reduce-scatter them and all-gather the updated
/// 16-bit weights (the same bytes as one all-reduce); ZeRO-3 also all-gathers each layer's
/// weights before its forward and its backward in every micro-batch (Rajbhandari et al. 2020,
/// section 7: 1.5x the traffic of data parallelism). Gradient reduction overlaps the backward
/// pass of the last micro-batch (PyTorch DDP bucketing, Li et al. 2020); ZeRO-3 gathers are
/// prefetched behind the whole forward and backward pass; the once-per-step all-reduce of the
/// gradients across slices can start only as the last micro-batch's backward produces them, so
/// it hides behind that backward pass alone.
#[allow(clippy::too_many_arguments)]
pub(crate) fn data_parallel_time(
    setup: &TrainSetup,
    layout: &Layout,
    net: &Network,
    params: &DeviceParams,
    micro_batches: f64,
    forward_s: f64,
    backward_s: f64,
) -> (f64, f64) {
    let (weight_b, trained) = match setup.workload {
        Workload::Pretrain => (memory::weight_bytes(setup.precision), 1.0),
        // Frozen weights are gathered (ZeRO-3) but never reduced; adapter gradients are a
        // negligible all-reduce, counted at their size.
        Workload::Lora { rank } => (
            lora::frozen_weight_bytes(setup.precision),
            lora::adapter_params_per_layer(&setup.model, rank) * setup.model.layers as f64
                / setup.model.total_params() as f64,
        ),
    };
    // Bytes per parameter of the model of what is reduced and re-gathered each step.
    let grad_b = memory::gradient_bytes(setup.precision) * trained;
    let updated_b = memory::weight_bytes(setup.precision) * trained;
    let sync = |group: &Group, count: f64| match layout.zero {
        0 => group.time_s(Collective::AllReduce, count * grad_b),
        _ => {
            group.time_s(Collective::ReduceScatter, count * grad_b)
                + group.time_s(Collective::AllGather, count * updated_b)
        }
    };
    if layout.zero >= 3 {
        // Per micro-batch: gather the weights for the forward and again for the backward, and
        // reduce-scatter the gradients.
        let flat = |group: &Group, collective, count: f64, bytes: f64| {
            group.flat_time_s(collective, count * bytes)
        };
        let (fsdp, across_s) = match &net.hybrid_fsdp {
            Some((slice, across)) => (
                slice,
                across.time_s(
                    Collective::AllReduce,
                    params.dense * grad_b / slice.size as f64,
                ),
            ),
            None => (&net.dp, 0.0),
        };
        let per_micro = flat(fsdp, Collective::AllGather, params.dense, weight_b) * 2.0
            + flat(fsdp, Collective::ReduceScatter, params.dense, grad_b)
            + flat(
                &net.dp_expert,
                Collective::AllGather,
                params.expert,
                weight_b,
            ) * 2.0
            + flat(
                &net.dp_expert,
                Collective::ReduceScatter,
                params.expert,
                grad_b,
            );
        let within_s = micro_batches * per_micro;
        let exposed = exposed_s(micro_batches * (forward_s + backward_s), within_s)
            + exposed_s(backward_s, across_s);
        return (within_s + across_s, exposed);
    }
    let total_s = sync(&net.dp, params.dense) + sync(&net.dp_expert, params.expert);
    (total_s, exposed_s(backward_s + forward_s, total_s))
}

/// The slowest expert-parallel rank's share of the all-to-all against the average: tokens are
/// routed unevenly, and the dispatch waits for the most loaded rank. Taken as GShard's expert
/// capacity factor of 1.25 (Lepikhin et al. 2020, section 2.2; Switch Transformer trains at
/// 1.0-1.25, Fedus et al. 2021, section 2.2), the bound a balanced router stays under.
pub(crate) const EP_IMBALANCE: f64 = 1.25;

/// Seconds of context-parallel exchange per micro-batch not hidden behind attention, on this
/// device's `layers` layers. Megatron-Core's ring (Transformer Engine's
/// `AttnFuncWithCPAndKVP2P`, after Liu et al. 2023, Ring Attention, section 3) splits each
/// layer's attention into `cp` block steps and sends the next K/V block during the current
/// one: cp-1 transfers of `block_bytes` forward, and in backward K/V again plus their
/// gradients (twice the bytes). A step costs the larger of its transfer and its 1/cp share of
/// the attention core, plus the contention of running both at once (the smooth maximum of
/// [`crate::train`], after Rashidi et al. 2021); at short sequences a block's attention is too
/// small to hide its transfer and the exchange shows.
pub(crate) fn context_parallel_exposed_s(
    cp_group: &Group,
    cp: u32,
    block_bytes: f64,
    attention_fwd_s: f64,
    attention_bwd_s: f64,
    layers: f64,
) -> f64 {
    if cp <= 1 || layers <= 0.0 {
        return 0.0;
    }
    let crosses = cp_group.ranks_per_domain < cp;
    let transfer_s = cp_group.point_to_point_s(block_bytes, crosses);
    let steps = (cp - 1) as f64;
    let blocks = cp as f64;
    let fwd_step_s = attention_fwd_s / layers / blocks;
    let bwd_step_s = attention_bwd_s / layers / blocks;
    let exposed = |compute_s: f64, comm_s: f64| crate::train::exposed_s(compute_s, comm_s);
    layers * steps * (exposed(fwd_step_s, transfer_s) + exposed(bwd_step_s, 2.0 * transfer_s))
}
