//! Training step time, memory and what follows from them (MFU, tokens/s, days, energy, cost)
//! for one model, cluster and layout.

use crate::efficiency::Efficiency;
use crate::flops;
use crate::kernels::{AttentionImpl, Device};
use crate::layout::{Layout, Recompute};
use crate::lora::{self, Workload};
use crate::memory::{self, MemoryBreakdown};
use crate::train_comm::{Network, data_parallel_time, precision_efficiency};
use crate::train_micro::MicroBatch;
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

impl TimeBreakdown {
    /// The step: every part but `dp_comm_total_s`.
    pub fn step_s(&self) -> f64 {
        self.compute_s
            + self.recompute_s
            + self.tp_comm_s
            + self.cp_comm_s
            + self.ep_comm_s
            + self.pp_p2p_s
            + self.pp_bubble_s
            + self.dp_comm_exposed_s
            + self.optimizer_s
            + self.offload_s
    }
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
    let peak = peak_flops_per_s(setup)?;
    if let Err(reason) = layout.check(model, setup.count, setup.seq_len, setup.global_batch) {
        return Err(EstimateError::Invalid {
            layout: layout.to_string(),
            reason,
        });
    }
    let efficiency = precision_efficiency(setup);
    let device = Device {
        peak_flops_per_s: peak,
        memory_bytes_per_s: setup.accelerator.memory_bandwidth_bytes_per_s(),
        activation_bytes: 2.0,
        efficiency,
    };
    let net = Network::new(setup, layout, &efficiency);
    let micro_batches = layout.micro_batches(setup.global_batch);
    let micro = MicroBatch::time(setup, layout, &device, &net);
    let m = micro_batches as f64;

    // Data parallel (and ZeRO) traffic, over dp x cp ranks for dense weights.
    let params = memory::device_params(model, layout);
    let (dp_total_s, dp_comm_exposed_s) = data_parallel_time(
        setup,
        layout,
        &net,
        &params,
        m,
        micro.forward_s,
        micro.backward_s + micro.recompute_s,
    );
    let time = TimeBreakdown {
        compute_s: m * (micro.forward_s + micro.backward_s + micro.logits_s),
        recompute_s: m * micro.recompute_s,
        tp_comm_s: m * micro.tp_comm_s,
        cp_comm_s: m * micro.cp_comm_s,
        ep_comm_s: m * micro.ep_comm_s,
        pp_p2p_s: m * micro.p2p_s,
        // Fill and drain: pp - 1 micro-batch slots, shortened by interleaving.
        pp_bubble_s: (layout.pp as f64 - 1.0) / layout.vpp as f64 * micro.total_s(),
        dp_comm_exposed_s,
        optimizer_s: optimizer_s(setup, layout, &device, &params),
        offload_s: m * micro.offload_s,
        dp_comm_total_s: dp_total_s,
    };
    let step_time_s = time.step_s();
    let (model_flops, hardware_flops) = flops_per_step(setup, layout);
    let devices = setup.count as f64;
    let tokens_per_s = (setup.seq_len * setup.global_batch) as f64 / step_time_s;
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
        budget: budget(setup, tokens_per_s),
    })
}

/// The accelerator's dense peak at the run's precision, or which precisions it has.
fn peak_flops_per_s(setup: &TrainSetup) -> Result<f64, EstimateError> {
    let accelerator = &setup.accelerator;
    accelerator
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
        })
}

/// Adam: read gradient, master weight, m, v; write master, m, v and the 16-bit weight (~30 bytes
/// per parameter), on this device's shard of what trains.
fn optimizer_s(
    setup: &TrainSetup,
    layout: &Layout,
    device: &Device,
    params: &memory::DeviceParams,
) -> f64 {
    let shard = if layout.zero >= 1 {
        (layout.dp * layout.cp) as f64
    } else {
        1.0
    };
    let trained = match setup.workload {
        Workload::Pretrain => params.total(),
        Workload::Lora { rank } => {
            let layers_here = layout.layers_per_device(&setup.model) as f64;
            lora::adapter_params_per_layer(&setup.model, rank) * layers_here / layout.tp as f64
        }
    };
    if layout.offload_optimizer {
        crate::memory_train::optimizer_offload_s(&setup.accelerator.id, trained / shard)
    } else {
        device.stream_s(trained / shard * 30.0, 4.0)
    }
}

/// Model and hardware FLOPs of one step (hardware: recomputation counted).
fn flops_per_step(setup: &TrainSetup, layout: &Layout) -> (f64, f64) {
    let model = &setup.model;
    let mut model_flops = flops::model_flops_per_step(model, setup.seq_len, setup.global_batch);
    let mut hardware_flops =
        flops::hardware_flops_per_step(model, setup.seq_len, setup.global_batch, layout.recompute);
    if layout.recompute == Recompute::Full {
        // A block of recomputed layers repeats only its share of the forward FLOPs.
        let full_share = layout.full_recompute_share(model);
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
    (model_flops, hardware_flops)
}

/// Days, accelerator-hours, energy and cost to the setup's token budget, if it has one.
fn budget(setup: &TrainSetup, tokens_per_s: f64) -> Option<Budget> {
    setup.tokens_total.map(|tokens| {
        let seconds = tokens / tokens_per_s;
        let accelerator_hours = seconds / 3600.0 * setup.count as f64;
        Budget {
            tokens,
            days: seconds / 86400.0,
            accelerator_hours,
            energy_kwh: setup
                .accelerator
                .tdp_w
                .map(|w| w * accelerator_hours / 1000.0),
            cost: setup.price_per_hour.map(|price| price * accelerator_hours),
        }
    })
}
