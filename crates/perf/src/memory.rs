//! Memory per device for training: weights, gradients, optimizer states per ZeRO stage,
//! activations per recompute mode, and buffers.

use crate::kernels::AttentionImpl;
use crate::layout::{Layout, Recompute};
use serde::Serialize;
use suanli_catalog::{Model, Precision};

/// Bytes per device by category (the most loaded pipeline stage).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MemoryBreakdown {
    pub weights_bytes: f64,
    pub gradients_bytes: f64,
    pub optimizer_bytes: f64,
    pub activations_bytes: f64,
    /// CUDA/ROCm context, communication buffers, allocator fragmentation, gathered ZeRO-3
    /// parameters.
    pub buffers_bytes: f64,
    pub total_bytes: f64,
    /// Device memory.
    pub capacity_bytes: f64,
}

impl MemoryBreakdown {
    /// Whether it fits in the device.
    pub fn fits(&self) -> bool {
        self.total_bytes <= self.capacity_bytes
    }
}

/// Parameters held by one device of the most loaded stage before ZeRO sharding, split into
/// dense (replicated over dp x cp) and expert (replicated over dp x cp / ep) parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct DeviceParams {
    pub dense: f64,
    pub expert: f64,
}

impl DeviceParams {
    /// Dense plus expert.
    pub fn total(&self) -> f64 {
        self.dense + self.expert
    }
}

/// Parameters on one device of the first (or, with one stage, only) pipeline stage, which holds
/// the embedding; the output head sits on the last stage and is counted there too when untied.
pub fn device_params(model: &Model, layout: &Layout) -> DeviceParams {
    let tp = layout.tp as f64;
    let layers = model.layers as f64;
    // The share of the layers the most loaded stage holds.
    let stage_share = layout.layers_per_device(model) as f64 / layers;
    let moe_layers = model.moe_layers() as f64;
    let attention_and_norms = model.attention_params() as f64 + 2.0 * model.hidden as f64;
    let dense_mlp_layers = layers - moe_layers;
    let mut dense =
        layers * attention_and_norms + dense_mlp_layers * model.dense_mlp_params() as f64;
    let mut expert = 0.0;
    if let Some(moe) = &model.moe {
        dense += moe_layers
            * (moe.shared_experts as f64 * model.expert_params() as f64
                + (model.hidden * moe.experts as u64) as f64);
        expert = moe_layers * moe.experts as f64 * model.expert_params() as f64 / layout.ep as f64;
    }
    let embedding = (model.vocab * model.hidden) as f64;
    // One stage holds 1/pp of the layers plus the input embedding; with a single stage it also
    // holds the untied output head.
    let heads_here = if layout.pp == 1 && !model.tied_embeddings {
        2.0
    } else {
        1.0
    };
    DeviceParams {
        dense: (dense * stage_share + heads_here * embedding) / tp,
        expert: expert * stage_share / tp,
    }
}

/// Bytes per gradient element: Megatron-LM keeps fp32 main gradients for bf16 and fp8 training
/// (`accumulate_allreduce_grads_in_fp32`), 16-bit gradients for fp16.
pub fn gradient_bytes(precision: Precision) -> f64 {
    match precision {
        Precision::Fp16 => 2.0,
        _ => 4.0,
    }
}

/// Bytes per stored weight element: 16-bit for bf16/fp16/fp8 training (fp8 casts on the fly).
pub fn weight_bytes(precision: Precision) -> f64 {
    match precision {
        Precision::Fp32 => 4.0,
        _ => 2.0,
    }
}

/// Activation bytes of one layer for one micro-batch on one device (Korthikanti et al. 2022,
/// section 4, Table 2), generalised to GQA and SwiGLU:
/// none: s b h (34 + 5 a s / h) / t with sequence parallelism (the 10 of the h-sized terms
/// stay unsplit without it), selective: the 5 a s^2 b term dropped, full: only the 2 s b h
/// layer input.
pub fn layer_activation_bytes(
    model: &Model,
    layout: &Layout,
    seq_len: u64,
    attention: AttentionImpl,
    moe_layer: bool,
) -> f64 {
    let tp = layout.tp as f64;
    let sbh = (layout.micro_batch as u64 * seq_len) as f64 / layout.cp as f64 * model.hidden as f64;
    let sp = if layout.sequence_parallel { tp } else { 1.0 };
    if layout.recompute == Recompute::Full {
        return 2.0 * sbh / sp;
    }
    let hidden = model.hidden as f64;
    let kv_ratio = model.kv_heads as f64 / model.heads as f64;
    let ffn = match (&model.moe, moe_layer) {
        (Some(moe), true) => ((moe.top_k + moe.shared_experts) as u64 * moe.expert_ffn) as f64,
        _ => model.ffn as f64,
    };
    // Split over tp: q (2), k and v (2 each, scaled for GQA), the out-projection input (2) =
    // 8 for MHA; the MLP activations, 2 bytes per element of each stored ffn-wide tensor (GeLU
    // input and output = 16 for ffn = 4h; SwiGLU gate, up and product).
    // Replicated unless sequence parallel: the QKV input (2), attention dropout mask (1), MLP
    // input (2), MLP dropout mask (1), the two norm inputs (4) = 10.
    let attention_split = 2.0 + 4.0 * kv_ratio + 2.0;
    let mlp_inner = match model.mlp {
        suanli_catalog::Mlp::Gelu => 4.0 * ffn / hidden,
        suanli_catalog::Mlp::Swiglu => 6.0 * ffn / hidden,
    };
    let replicated = 10.0;
    let per_sbh = (attention_split + mlp_inner) / tp + replicated / sp;
    let mut bytes = sbh * per_sbh;
    if layout.recompute == Recompute::None && attention == AttentionImpl::Unfused {
        let scores = (layout.micro_batch as u64 * seq_len) as f64 / layout.cp as f64
            * seq_len as f64
            * model.heads as f64
            / tp;
        bytes += 5.0 * scores;
    }
    bytes
}
