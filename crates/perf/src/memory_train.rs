//! Memory per device of a training layout: the sum of weights, gradients, optimizer states,
//! in-flight activations and runtime reserve on the most loaded pipeline stage.

use crate::layout::Layout;
use crate::lora::{self, Workload};
use crate::memory::{self, MemoryBreakdown};
use crate::train::TrainSetup;
use crate::xla;

/// Memory a runtime holds before the model allocates anything. CUDA and ROCm: the context
/// (0.5-1 GB with PyTorch's kernels loaded), NCCL/RCCL channel buffers (NCCL_BUFFSIZE 4 MiB per
/// channel and peer) and caching-allocator fragmentation; 2.5 GB is what Megatron-LM memory
/// reports leave unexplained on H100. XLA on TPU has no driver context or NCCL: its reserve is
/// the compiled program and collective scratch, taken here as 1 GB (an estimate, not measured).
pub fn runtime_reserve_bytes(vendor: &str) -> f64 {
    if vendor.eq_ignore_ascii_case("google") {
        1.0e9
    } else {
        2.5e9
    }
}

/// Micro-batch activations the first pipeline stage holds at its peak, in units of one
/// micro-batch through all of that device's layers. Plain 1F1B (PipeDream-Flush, Narayanan et
/// al. 2021, section 2.2.1): min(pp, m) micro-batches. Interleaved 1F1B: Megatron-Core's
/// `get_pipeline_model_parallel_schedule` starts rank 0 with (pp-1)*2 + (vpp-1)*pp warm-up
/// chunk forwards and holds one more before the first backward, each chunk being 1/vpp of the
/// device's layers, capped by the m*vpp chunks a step has; this equals Korthikanti et al.
/// 2022's pp * (1 + (pp-1)/(pp*vpp)) when m is large.
pub fn in_flight_micro_batches(layout: &Layout, micro_batches: u64) -> f64 {
    let pp = layout.pp as f64;
    let m = micro_batches.max(1) as f64;
    if layout.vpp <= 1 {
        return pp.min(m);
    }
    let vpp = layout.vpp as f64;
    let chunks = (2.0 * (pp - 1.0) + (vpp - 1.0) * pp + 1.0).min(m * vpp);
    chunks / vpp
}

/// Memory only, cheap enough to prune a search before timing a layout.
pub fn training_memory(setup: &TrainSetup, layout: &Layout) -> MemoryBreakdown {
    let model = &setup.model;
    let params = memory::device_params(model, layout);
    let dp_dense = (layout.dp * layout.cp) as f64;
    let dp_expert = dp_dense / layout.ep as f64;
    let weight_b = memory::weight_bytes(setup.precision);
    let grad_b = memory::gradient_bytes(setup.precision);
    // Sharded over the data-parallel group from the given ZeRO stage on (Rajbhandari et al.
    // 2020, section 5: Pos, Pos+g, Pos+g+p); Adam keeps an fp32 master copy, m and v = 12 bytes.
    // zero=1 is Megatron-Core's distributed optimizer: 16-bit weights and fp32 main gradients
    // whole, 12 bytes of state sharded, 6 + 12/d bytes per parameter (Megatron-Core docs,
    // "Distributed Optimizer" table).
    let shard = |stage: u8, bytes_per_param: f64| {
        let factor = |dp: f64| if layout.zero >= stage { 1.0 / dp } else { 1.0 };
        bytes_per_param * (params.dense * factor(dp_dense) + params.expert * factor(dp_expert))
    };
    let (weights_bytes, gradients_bytes, optimizer_bytes) = match setup.workload {
        Workload::Pretrain => (shard(3, weight_b), shard(2, grad_b), shard(1, 12.0)),
        Workload::Lora { rank } => {
            // Frozen base (sharded by ZeRO-3 like any weight) plus adapters that alone carry
            // gradients and Adam state; adapters are tiny, so kept unsharded.
            let adapters = lora::adapter_params_per_layer(model, rank)
                * layout.layers_per_device(model) as f64
                / layout.tp as f64;
            (
                shard(3, lora::frozen_weight_bytes(setup.precision)) + adapters * weight_b,
                adapters * grad_b,
                adapters * 12.0,
            )
        }
    };

    // Offloaded, the optimizer states sit in host memory (ZeRO-Offload, Ren et al. 2021).
    let optimizer_bytes = if layout.offload_optimizer {
        0.0
    } else {
        optimizer_bytes
    };
    let in_flight = in_flight_micro_batches(layout, layout.micro_batches(setup.global_batch));
    let layers_here = layout.layers_per_device(model) as f64;
    let per_layer = mean_layer_activation_bytes(setup, layout);
    // Offloaded, a device holds the layer computing and the one being copied (double
    // buffering); pipeline parallelism is excluded by the layout check.
    let resident_layers = if layout.offload_activations {
        layers_here.min(2.0)
    } else {
        layers_here
    };
    let mut activations_bytes = per_layer * resident_layers * in_flight;
    if layout.pp == 1 {
        // The logits of one micro-batch: 16-bit output plus fp32 softmax for the loss.
        let tokens = (layout.micro_batch as u64 * setup.seq_len) as f64 / layout.cp as f64;
        activations_bytes += tokens * model.vocab as f64 / layout.tp as f64 * 6.0;
    }
    let mut buffers_bytes = runtime_reserve_bytes(&setup.accelerator.vendor);
    if layout.zero >= 3 {
        // Two gathered layers (the current one and the prefetched next one); XLA gathers
        // matrix by matrix (see `xla::zero3_gathered_params`).
        buffers_bytes += 2.0
            * xla::zero3_gathered_params(setup, layout, params.total() / layers_here)
            * weight_b;
    }
    let total_bytes =
        weights_bytes + gradients_bytes + optimizer_bytes + activations_bytes + buffers_bytes;
    MemoryBreakdown {
        weights_bytes,
        gradients_bytes,
        optimizer_bytes,
        activations_bytes,
        buffers_bytes,
        total_bytes,
        capacity_bytes: setup.accelerator.memory_bytes(),
    }
}

/// Stored activation bytes of one micro-batch through one layer, averaged over the model's
/// dense and MoE layers, and over the recomputed and storing layers when only a block of
/// layers recomputes (`recompute_layers`).
fn mean_layer_activation_bytes(setup: &TrainSetup, layout: &Layout) -> f64 {
    let model = &setup.model;
    let moe_share = model.moe_layers() as f64 / model.layers as f64;
    let layer = |layout: &Layout, moe| {
        memory::layer_activation_bytes_at(
            model,
            layout,
            setup.seq_len,
            setup.attention,
            moe,
            setup.precision,
        )
    };
    let mean = |layout: &Layout| {
        (1.0 - moe_share) * layer(layout, false) + moe_share * layer(layout, true)
    };
    let full_share = layout.full_recompute_share(model);
    if layout.recompute_layers.is_none() || full_share >= 1.0 {
        return mean(layout);
    }
    let storing = Layout {
        recompute: crate::layout::Recompute::None,
        recompute_layers: None,
        ..*layout
    };
    full_share * mean(layout) + (1.0 - full_share) * mean(&storing)
}

/// Activation bytes of one micro-batch that go to the host and back under
/// `offload=activations`: every stored layer but the two kept resident.
pub fn offloaded_activation_bytes(setup: &TrainSetup, layout: &Layout) -> f64 {
    if !layout.offload_activations {
        return 0.0;
    }
    let model = &setup.model;
    let per_layer = mean_layer_activation_bytes(setup, layout);
    per_layer * (layout.layers_per_device(model) as f64 - 2.0).max(0.0)
}

/// Host link (GB/s per direction) and host-memory bandwidth share (GB/s) of one accelerator:
/// NVLink-C2C on Grace superchips (450 GB/s per direction; LPDDR5X ~500 GB/s per Grace, taken
/// here at 250 for the two GPUs a GB200 Grace serves), PCIe Gen4 x16 for A100 (32 GB/s raw,
/// ~25 achieved) and Gen5 x16 elsewhere (64 raw, ~50 achieved); host DRAM of a DGX H100 (two
/// Xeon 8480C, 8 DDR5-4800 channels each = 614 GB/s) shared by 8 GPUs, ~75 GB/s. Estimates from
/// the vendors' specifications, not measurements.
pub fn host_bandwidths_gb_per_s(accelerator_id: &str) -> (f64, f64) {
    let id = accelerator_id.to_ascii_lowercase();
    if ["gh200", "gb200", "gb300"].iter().any(|g| id.contains(g)) {
        (450.0, 250.0)
    } else if id.starts_with("a100") {
        (25.0, 75.0)
    } else {
        (50.0, 75.0)
    }
}

/// Seconds per step an offloaded optimizer adds: the fp32 gradient shard goes to the host and
/// the updated 16-bit weights come back over the host link (4 + 2 bytes per parameter), and
/// the CPU Adam streams the fp32 master weight, m, v and gradient in and the first three out
/// (~28 bytes per parameter) at the host-memory share (ZeRO-Offload, Ren et al. 2021,
/// section 4: a memory-bound CPU update, not overlapped with the next step's forward here).
pub fn optimizer_offload_s(accelerator_id: &str, params_on_device: f64) -> f64 {
    let (link, host) = host_bandwidths_gb_per_s(accelerator_id);
    params_on_device * (6.0 / (link * 1e9) + 28.0 / (host * 1e9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_holds_what_korthikanti_says_when_micro_batches_are_many() {
        let layout = Layout {
            pp: 8,
            vpp: 3,
            ..Layout::default()
        };
        // pp (1 + (pp-1)/(pp vpp)) = 8 * (1 + 7/24) = 10.33 micro-batches' worth.
        let held = in_flight_micro_batches(&layout, 64);
        assert!((held - 8.0 * (1.0 + 7.0 / 24.0)).abs() < 1e-9, "{held}");
        // Four micro-batches: the warm-up cannot exceed the 12 chunks of the step.
        assert!((in_flight_micro_batches(&layout, 4) - 4.0).abs() < 1e-9);
        let plain = Layout { vpp: 1, ..layout };
        assert_eq!(in_flight_micro_batches(&plain, 64), 8.0);
        assert_eq!(in_flight_micro_batches(&plain, 3), 3.0);
    }
}
