//! What training through XLA on TPU (MaxText, PAX, PaLM's Pathways) does differently from
//! PyTorch/Megatron stacks: per-weight ZeRO-3 gathers, MaxText's `minimal` remat policy and
//! AQT int8 quantisation.

use crate::layout::Layout;
use crate::train::TrainSetup;
use suanli_catalog::Accelerator;

/// Parameters of one ZeRO-3 gather unit on one device; two are resident (the one in use and
/// the prefetched next). PyTorch FSDP and DeepSpeed gather a whole layer (one flat parameter
/// per transformer block). XLA on TPU gathers each weight separately: every einsum's operand is
/// its own all-gather in the partitioned HLO, which the latency-hiding scheduler issues one
/// ahead (MaxText/PAX FSDP on `ici_fsdp_parallelism`), so the unit is the largest weight
/// matrix of a layer (the fused QKV projection or one feed-forward matrix; a stacked expert
/// weight in MoE layers).
pub(crate) fn zero3_gathered_params(setup: &TrainSetup, layout: &Layout, layer_params: f64) -> f64 {
    if !xla_runtime(&setup.accelerator) {
        return layer_params;
    }
    let model = &setup.model;
    let ffn_matrix = match &model.moe {
        Some(moe) => {
            (moe.experts as f64 / layout.ep as f64) * (model.hidden * moe.expert_ffn) as f64
        }
        None => (model.hidden * model.ffn) as f64,
    };
    let qkv = model.attention_params() as f64 * 0.75;
    (qkv.max(ffn_matrix) / layout.tp as f64).min(layer_params)
}

/// Whether the accelerator's training stack compiles through XLA with GSPMD sharding (Google
/// TPU: MaxText, PAX, PaLM's Pathways) rather than PyTorch/Megatron eager kernels.
pub(crate) fn xla_runtime(accelerator: &Accelerator) -> bool {
    accelerator.vendor.eq_ignore_ascii_case("google")
}

/// Bytes of memory traffic per operand element of an int8 GEMM's on-the-fly quantisation:
/// AQT (Accurate Quantized Training, google/aqt, MaxText and PAX `quantization=int8`) scales
/// each operand per channel from its current absolute maximum, a reduction that reads the
/// 16-bit tensor (2 bytes) and must finish before the int8 copy the MXU consumes is written
/// (1 byte). Transformer Engine's fp8 recipe instead takes its scales from the amax history of
/// earlier steps (delayed scaling) and casts inside the producing kernels, so fp8 pays no pass.
pub(crate) const AQT_BYTES_PER_OPERAND_ELEMENT: f64 = 3.0;
