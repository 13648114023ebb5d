//! Training step time, memory and what follows from them (MFU, tokens/s, days, energy, cost)
//! for one model, cluster and layout.

use crate::collective::Collective;
use crate::efficiency::Efficiency;
use crate::flops;
use crate::kernels::{AttentionImpl, Device, LayerShape, LayerTime};
use crate::layout::{Layout, Recompute};
use crate::lora::{self, Workload};
use crate::memory::{self, MemoryBreakdown};
use crate::train_comm::{Network, data_parallel_time, precision_efficiency};
use crate::xla;
use serde::Serialize;
use suanli_catalog::{Accelerator, Model, Precision};

/// Exponent of the smooth maximum that combines overlapped compute and communication:
/// (c^p + m^p)^(1/p) equals the larger when one dominates and exceeds it by 26% when the two are
/// equal, as they contend for SMs and HBM bandwidth (Rashidi et al. 2021 report 10-30%
/// slowdowns of overlapped collectives). Fitted once on the ZeRO-3 rows of Narayanan et al. 2021,
/// Table 2, where compute and traffic are of the same size.
const OVERLAP_P: f64 = 3.0;

/// Seconds that `comm_s` adds to `compute_s` when run overlapped with it.
pub(crate) fn exposed_s(compute_s: f64, comm_s: f64) -> f64 {
    if comm_s <= 0.0 {
        return 0.0;
    }
    (compute_s.powf(OVERLAP_P) + comm_s.powf(OVERLAP_P)).powf(1.0 / OVERLAP_P) - compute_s
}

/// Everything the training model needs besides the layout.
#[derive(Clone, Debug, Serialize)]
pub struct TrainSetup {
    pub model: Model,
    pub accelerator: Accelerator,
    /// Accelerators in the job.
    pub count: u64,
    /// Accelerators per node (one scale-up domain at most this large).
    pub per_node: u32,
    /// Scale-out bandwidth per accelerator, one direction, GB/s.
    pub scaleout_gb_per_s: f64,
    /// Oversubscription of the scale-out fabric's upper tier (1 = non-blocking fat tree, 2 =
    /// half the leaf uplinks); divides the bandwidth between scale-up domains.
    pub oversubscription: f64,
    pub precision: Precision,
    /// Devices per ICI slice when a torus job spans several slices joined by the data-centre
    /// network (MaxText's `dcn_data_parallelism`, PaLM's two pods); None = one slice as large as
    /// the job, up to the catalog's `max_slice`.
    pub slice_size: Option<u32>,
    /// Pre-training (every weight trains) or LoRA fine-tuning (frozen base, adapters train).
    pub workload: Workload,
    pub seq_len: u64,
    /// Sequences per optimizer step.
    pub global_batch: u64,
    pub attention: AttentionImpl,
    /// Tensor-parallel collectives overlap the GEMMs next to them (Megatron-Core with Transformer
    /// Engine, 2024); off for earlier Megatron-LM.
    pub tp_overlap: bool,
    /// Token budget for the time, energy and cost figures.
    pub tokens_total: Option<f64>,
    /// Price per accelerator-hour, for the cost figure.
    pub price_per_hour: Option<f64>,
    /// The family's fitted constants (crates/perf/data/fitted.toml), or conservative ones for a
    /// family without published runs; see [`crate::fit`].
    pub efficiency: Efficiency,
}

impl TrainSetup {
    /// A setup with the catalog's defaults for node size and network.
    pub fn new(model: Model, accelerator: Accelerator, count: u64) -> TrainSetup {
        TrainSetup {
            efficiency: crate::fit::training_efficiency(&accelerator),
            per_node: accelerator.default_per_node.max(1),
            scaleout_gb_per_s: accelerator.scaleout_gb_per_s,
            oversubscription: 1.0,
            slice_size: None,
            model,
            accelerator,
            count,
            precision: Precision::Bf16,
            workload: Workload::Pretrain,
            seq_len: 4096,
            global_batch: 1024,
            attention: AttentionImpl::Flash,
            tp_overlap: true,
            tokens_total: None,
            price_per_hour: None,
        }
    }
}

/// Seconds of one optimizer step by where they go. The parts add up to `step_time_s`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TimeBreakdown {
    /// Forward and backward kernels of all micro-batches (GEMMs, attention, element-wise).
    pub compute_s: f64,
    /// Forward kernels repeated by activation recomputation.
    pub recompute_s: f64,
    /// Tensor- and sequence-parallel all-reduce / all-gather / reduce-scatter.
    pub tp_comm_s: f64,
    /// Context-parallel key/value exchange not hidden behind attention.
    pub cp_comm_s: f64,
    /// Expert-parallel all-to-all.
    pub ep_comm_s: f64,
    /// Pipeline sends and receives between stages.
    pub pp_p2p_s: f64,
    /// Pipeline fill and drain.
    pub pp_bubble_s: f64,
    /// Data-parallel gradient and ZeRO parameter traffic not hidden behind compute.
    pub dp_comm_exposed_s: f64,
    /// Optimizer update.
    pub optimizer_s: f64,
    /// Activation copies to and from host memory not hidden behind compute (offload).
    pub offload_s: f64,
    /// All data-parallel traffic, hidden or not (for reference; not part of the sum).
    pub dp_comm_total_s: f64,
}

/// Time, energy and money to a token budget.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Budget {
    pub tokens: f64,
    pub days: f64,
    pub accelerator_hours: f64,
    /// Energy at TDP for every accelerator, kWh (accelerators only: no host, network, cooling).
    pub energy_kwh: Option<f64>,
    pub cost: Option<f64>,
}

/// What the training model predicts for one layout.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainEstimate {
    pub layout: Layout,
    pub step_time_s: f64,
    pub time: TimeBreakdown,
    pub memory: MemoryBreakdown,
    pub micro_batches: u64,
    pub model_flops_per_step: f64,
    pub hardware_flops_per_step: f64,
    /// Model FLOPs utilisation against the dense peak at the training precision.
    pub mfu: f64,
    /// Hardware FLOPs utilisation (recomputation counted).
    pub hfu: f64,
    pub tflops_per_device_model: f64,
    pub tflops_per_device_hardware: f64,
    pub tokens_per_s: f64,
    pub tokens_per_s_per_device: f64,
    pub budget: Option<Budget>,
}

/// Why a setup cannot be estimated at all.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EstimateError {
    #[error("{accelerator} has no dense {precision} peak in the catalog; use {supported}")]
    PrecisionUnsupported {
        accelerator: String,
        precision: Precision,
        supported: String,
    },
    #[error("layout {layout} does not fit: {reason}")]
    Invalid {
        layout: String,
        reason: crate::layout::LayoutError,
    },
}

/// Memory only, cheap enough to prune a search before timing a layout.
pub fn memory(setup: &TrainSetup, layout: &Layout) -> MemoryBreakdown {
    crate::memory_train::training_memory(setup, layout)
}

/// Estimates one layout. The layout must already pass [`Layout::check`].
pub fn estimate(setup: &TrainSetup, layout: &Layout) -> Result<TrainEstimate, EstimateError> {
    let model = &setup.model;
    let accelerator = &setup.accelerator;
    let efficiency = precision_efficiency(setup);
    let peak = accelerator
        .peak_flops_per_s(setup.precision)
        .ok_or_else(|| EstimateError::PrecisionUnsupported {
            accelerator: accelerator.id.clone(),
            precision: setup.precision,
            supported: Precision::ALL
                .into_iter()
                .filter(|p| accelerator.peak_flops_per_s(*p).is_some())
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    if let Err(reason) = layout.check(model, setup.count, setup.seq_len, setup.global_batch) {
        return Err(EstimateError::Invalid {
            layout: layout.to_string(),
            reason,
        });
    }
    let device = Device {
        peak_flops_per_s: peak,
        memory_bytes_per_s: accelerator.memory_bandwidth_bytes_per_s(),
        activation_bytes: 2.0,
        efficiency,
    };
    let net = Network::new(setup, layout, &efficiency);
    let micro_batches = layout.micro_batches(setup.global_batch);
    let pp = layout.pp as f64;
    let layers_here = layout.layers_per_device(model) as f64;
    let moe_share = model.moe_layers() as f64 / model.layers as f64;

    let shape = |moe| LayerShape {
        model,
        layout,
        seq_len: setup.seq_len,
        attention: setup.attention,
        moe,
    };
    let dense_layer = shape(false).time(&device);
    let moe_layer = if model.moe.is_some() {
        shape(true).time(&device)
    } else {
        dense_layer
    };
    let mix = |f: fn(&LayerTime) -> f64| {
        layers_here * ((1.0 - moe_share) * f(&dense_layer) + moe_share * f(&moe_layer))
    };
    let tokens = shape(false).tokens();
    let hidden = model.hidden as f64;

    // Logit layer on the last stage: a (tokens x h) by (h x V/tp) GEMM forward, two backward,
    // plus the fp32 softmax cross-entropy over the logits.
    let logit_passes = match setup.workload {
        Workload::Pretrain => 3.0,
        Workload::Lora { .. } => 2.0,
    };
    let logits_s = logit_passes
        * device.gemm_s(tokens, model.vocab as f64 / layout.tp as f64, hidden)
        + device.stream_s(tokens * model.vocab as f64 / layout.tp as f64 * 12.0, 3.0);
    let mut forward_s = mix(LayerTime::forward_s);
    let mut backward_s = mix(LayerTime::backward_s);
    if let Workload::Lora { rank } = setup.workload {
        // Frozen GEMMs skip their weight gradient; adapters run forward and two backward GEMMs.
        let adapters_s =
            layers_here * lora::adapter_forward_s(&device, model, rank, tokens, layout.tp as f64);
        backward_s += 2.0 * adapters_s - mix(|l| l.matmul_fwd_s);
        forward_s += adapters_s;
    }
    if setup.precision == Precision::Int8 {
        // The quantisation pass of both operands of every weight GEMM, forward; the backward's
        // data- and weight-gradient GEMMs quantise twice as many operands (the gradient dY
        // along two axes, the weight transposed, the input again), the same 2x rule as the
        // GEMMs themselves.
        let elements = layers_here
            * ((1.0 - moe_share) * shape(false).weight_gemm_operand_elements()
                + moe_share * shape(true).weight_gemm_operand_elements());
        let quantise_s = device.stream_s(
            elements * xla::AQT_BYTES_PER_OPERAND_ELEMENT,
            4.0 * layers_here,
        );
        forward_s += quantise_s;
        backward_s += 2.0 * quantise_s;
    }
    // Full recompute repeats the forward of the recomputed share of the layers (all, or the
    // block of `recompute_layers`, whose remaining layers store everything).
    let full_share = layout.full_recompute_share(model);
    let recompute_s = match layout.recompute {
        Recompute::None => 0.0,
        Recompute::Selective => mix(|l| l.attention_fwd_s),
        Recompute::Full => full_share * forward_s,
    };

    // Tensor parallel: two all-reduces per layer forward and two backward (Shoeybi et al. 2019,
    // Figure 4), or the same bytes as all-gather + reduce-scatter pairs with sequence
    // parallelism (Korthikanti et al. 2022, section 4.2.2); full recompute repeats the forward
    // pair.
    let tp_bytes = tokens * hidden * 2.0;
    let tp_calls = 4.0 + 2.0 * full_share;
    let tp_comm_total_s = layers_here * tp_calls * net.tp.time_s(Collective::AllReduce, tp_bytes);
    // With sequence parallelism, Transformer Engine splits the all-gather/reduce-scatter into
    // chunks pipelined with the neighbouring GEMMs (userbuffers, `--tp-comm-overlap`).
    let tp_comm_s = if setup.tp_overlap && layout.sequence_parallel {
        exposed_s(mix(|l| l.matmul_fwd_s * 3.0), tp_comm_total_s)
    } else {
        tp_comm_total_s
    };

    // Context parallel: a ring passes each rank's K and V blocks to the other cp-1 ranks,
    // overlapped block by block with the attention core (see `context_parallel_exposed_s`).
    let kv_width = match &model.mla {
        Some(mla) => (mla.kv_lora_rank + mla.qk_rope_head_dim) as f64,
        None => 2.0 * (model.kv_heads as f64 * model.head_dim() as f64) / layout.tp as f64,
    };
    let cp_comm_s = crate::train_comm::context_parallel_exposed_s(
        &net.cp,
        layout.cp,
        tokens * kv_width * 2.0,
        mix(|l| l.attention_fwd_s),
        mix(|l| l.attention_bwd_s),
        layers_here,
    );

    // Expert parallel: dispatch and combine all-to-all per MoE layer forward, again backward
    // (Lepikhin et al. 2020, GShard, section 2.2).
    let ep_comm_s = match &model.moe {
        Some(moe) if layout.ep > 1 => {
            let bytes = tokens * moe.top_k as f64 * hidden * 2.0 * crate::train_comm::EP_IMBALANCE;
            layers_here * moe_share * 4.0 * net.ep.time_s(Collective::AllToAll, bytes)
        }
        _ => 0.0,
    };

    // Pipeline: each micro-batch sends its activations forward and its gradients back at every
    // chunk boundary; with sequence parallelism only 1/tp of them crosses (the scatter/gather
    // optimisation of Narayanan et al. 2021, section 4.1).
    let p2p_bytes = tokens * hidden * 2.0 / layout.tp as f64;
    let p2p_per_micro_s = if layout.pp > 1 {
        2.0 * layout.vpp as f64 * net.pp.point_to_point_s(p2p_bytes, net.pp_crosses_nodes)
    } else {
        0.0
    };

    // Activation offload: the stored activations go to the host during the forward and come
    // back during the backward, each copy overlapped with that pass (Megatron-Core
    // `--cpu-offloading`).
    let offload_per_micro_s = if layout.offload_activations {
        let (link_gb_per_s, _) = crate::memory_train::host_bandwidths_gb_per_s(&accelerator.id);
        let copy_s =
            crate::memory_train::offloaded_activation_bytes(setup, layout) / (link_gb_per_s * 1e9);
        exposed_s(forward_s, copy_s) + exposed_s(backward_s + recompute_s, copy_s)
    } else {
        0.0
    };
    let per_micro_s = forward_s
        + backward_s
        + recompute_s
        + (tp_comm_s + cp_comm_s + ep_comm_s)
        + p2p_per_micro_s
        + if layout.pp == 1 {
            logits_s
        } else {
            logits_s / pp
        };
    // The last stage also runs the logit layer; with pp > 1 the stage imbalance shows in the
    // whole pipeline (Narayanan et al. 2021, section 3.2), spread here as an average.
    let m = micro_batches as f64;
    let bubble_s = (pp - 1.0) / layout.vpp as f64 * per_micro_s;

    // Data parallel (and ZeRO) traffic, over dp x cp ranks for dense weights.
    let params = memory::device_params(model, layout);
    let (dp_total_s, dp_comm_exposed_s) = data_parallel_time(
        setup,
        layout,
        &net,
        &params,
        m,
        forward_s,
        backward_s + recompute_s,
    );

    // Adam: read gradient, master weight, m, v; write master, m, v and the 16-bit weight
    // (~30 bytes per parameter), on this device's shard.
    let shard = if layout.zero >= 1 {
        (layout.dp * layout.cp) as f64
    } else {
        1.0
    };
    let trained = match setup.workload {
        Workload::Pretrain => params.total(),
        Workload::Lora { rank } => {
            lora::adapter_params_per_layer(model, rank) * layers_here / layout.tp as f64
        }
    };
    let optimizer_s = if layout.offload_optimizer {
        crate::memory_train::optimizer_offload_s(&accelerator.id, trained / shard)
    } else {
        device.stream_s(trained / shard * 30.0, 4.0)
    };

    let time = TimeBreakdown {
        compute_s: m
            * (forward_s
                + backward_s
                + if layout.pp == 1 {
                    logits_s
                } else {
                    logits_s / pp
                }),
        recompute_s: m * recompute_s,
        tp_comm_s: m * tp_comm_s,
        cp_comm_s: m * cp_comm_s,
        ep_comm_s: m * ep_comm_s,
        pp_p2p_s: m * p2p_per_micro_s,
        pp_bubble_s: bubble_s,
        dp_comm_exposed_s,
        optimizer_s,
        offload_s: m * offload_per_micro_s,
        dp_comm_total_s: dp_total_s,
    };
    let step_time_s = time.compute_s
        + time.recompute_s
        + time.tp_comm_s
        + time.cp_comm_s
        + time.ep_comm_s
        + time.pp_p2p_s
        + time.pp_bubble_s
        + time.dp_comm_exposed_s
        + time.optimizer_s
        + time.offload_s;

    let mut model_flops = flops::model_flops_per_step(model, setup.seq_len, setup.global_batch);
    let mut hardware_flops =
        flops::hardware_flops_per_step(model, setup.seq_len, setup.global_batch, layout.recompute);
    if layout.recompute == Recompute::Full {
        // A block of recomputed layers repeats only its share of the forward FLOPs.
        hardware_flops = model_flops + full_share * (hardware_flops - model_flops);
    }
    if let Workload::Lora { rank } = setup.workload {
        // No weight-gradient GEMMs for the frozen base (a third of the matmul FLOPs, taken here
        // from the whole model count); the adapters add 6 FLOPs per parameter and token.
        let tokens = (setup.seq_len * setup.global_batch) as f64;
        let saved = model_flops / 3.0;
        let adapters =
            6.0 * tokens * lora::adapter_params_per_layer(model, rank) * model.layers as f64;
        model_flops += adapters - saved;
        hardware_flops += adapters - saved;
    }
    let devices = setup.count as f64;
    let tokens_per_s = (setup.seq_len * setup.global_batch) as f64 / step_time_s;
    let budget = setup.tokens_total.map(|tokens| {
        let seconds = tokens / tokens_per_s;
        let accelerator_hours = seconds / 3600.0 * devices;
        Budget {
            tokens,
            days: seconds / 86400.0,
            accelerator_hours,
            energy_kwh: accelerator.tdp_w.map(|w| w * accelerator_hours / 1000.0),
            cost: setup.price_per_hour.map(|price| price * accelerator_hours),
        }
    });
    Ok(TrainEstimate {
        layout: *layout,
        step_time_s,
        time,
        memory: memory(setup, layout),
        micro_batches,
        model_flops_per_step: model_flops,
        hardware_flops_per_step: hardware_flops,
        mfu: model_flops / (step_time_s * devices * peak),
        hfu: hardware_flops / (step_time_s * devices * peak),
        tflops_per_device_model: model_flops / (step_time_s * devices) / 1e12,
        tflops_per_device_hardware: hardware_flops / (step_time_s * devices) / 1e12,
        tokens_per_s,
        tokens_per_s_per_device: tokens_per_s / devices,
        budget,
    })
}
