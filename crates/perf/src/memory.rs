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

/// Activation bytes of one layer for one micro-batch on one device at 16-bit storage; see
/// [`layer_activation_bytes_at`].
pub fn layer_activation_bytes(
    model: &Model,
    layout: &Layout,
    seq_len: u64,
    attention: AttentionImpl,
    moe_layer: bool,
) -> f64 {
    layer_activation_bytes_at(
        model,
        layout,
        seq_len,
        attention,
        moe_layer,
        Precision::Bf16,
    )
}

/// Activation bytes of one layer for one micro-batch on one device. Unfused attention (the
/// 2021-22 Megatron-LM stacks) follows Korthikanti et al. 2022 exactly; fused/flash attention
/// follows what Megatron-Core with Transformer Engine and torchtitan store today (see
/// [`fused_layer_activation_bytes`]).
pub fn layer_activation_bytes_at(
    model: &Model,
    layout: &Layout,
    seq_len: u64,
    attention: AttentionImpl,
    moe_layer: bool,
    precision: Precision,
) -> f64 {
    match attention {
        AttentionImpl::Unfused => unfused_layer_activation_bytes(model, layout, seq_len, moe_layer),
        AttentionImpl::Flash => {
            fused_layer_activation_bytes(model, layout, seq_len, moe_layer, precision)
        }
    }
}

/// The feed-forward width one token passes through in this layer (routed top-k plus shared
/// experts in a MoE layer).
fn ffn_width(model: &Model, moe_layer: bool) -> f64 {
    match (&model.moe, moe_layer) {
        (Some(moe), true) => ((moe.top_k + moe.shared_experts) as u64 * moe.expert_ffn) as f64,
        _ => model.ffn as f64,
    }
}

/// Korthikanti et al. 2022, section 4, Table 2, generalised to GQA and SwiGLU:
/// none: s b h (34 + 5 a s / h) / t with sequence parallelism (the 10 of the h-sized terms
/// stay unsplit without it), selective: the 5 a s^2 b term dropped, full: only the 2 s b h
/// layer input.
fn unfused_layer_activation_bytes(
    model: &Model,
    layout: &Layout,
    seq_len: u64,
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
    let ffn = ffn_width(model, moe_layer);
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
    if layout.recompute == Recompute::None {
        let scores = (layout.micro_batch as u64 * seq_len) as f64 / layout.cp as f64
            * seq_len as f64
            * model.heads as f64
            / tp;
        bytes += 5.0 * scores;
    }
    bytes
}

/// Activations of one layer as Megatron-Core with Transformer Engine (and torchtitan) keep them
/// today: fused flash attention stores its output and a per-row log-sum-exp, never the s x s
/// scores (Dao et al. 2022, section 3.1), and the recipes train without dropout, so no masks.
/// Stored per token, in elements:
/// - sequence-sharded under sequence parallelism (replicated over tp otherwise): the two norm
///   inputs (2 x h, 16-bit) and, without recompute, the two norm outputs that feed the QKV and
///   FC1 GEMMs (2 x h, 8-bit under fp8: Transformer Engine saves the fp8 cast of a GEMM input);
/// - split over tp: q, k and v for the flash backward, the attention output (the out-projection
///   input), the FC1 output (the SwiGLU gate and up halves, or the GeLU input) and the FC2
///   input (the activation output, 8-bit under fp8).
///
/// Selective recompute is Megatron-Core's `--recompute-modules core_attn,layernorm` plus the
/// activation function (Megatron-Core docs, "Activation recomputation"; DeepSeek-V3 report
/// section 3.3.2 recomputes norms and MLA up-projections the same way, MaxText
/// `remat_policy=minimal` likewise keeps only weight-GEMM outputs): the norm outputs, the
/// attention output and the activation output are recomputed, so only the norm inputs, q/k/v
/// (for MLA the compressed latents instead, q/k/v being re-expanded) and the FC1 output stay.
/// A MoE layer also keeps its permuted expert inputs (top-k copies of the token). Full
/// recompute keeps the 2 s b h layer input.
fn fused_layer_activation_bytes(
    model: &Model,
    layout: &Layout,
    seq_len: u64,
    moe_layer: bool,
    precision: Precision,
) -> f64 {
    let tp = layout.tp as f64;
    let sp = if layout.sequence_parallel { tp } else { 1.0 };
    let tokens = (layout.micro_batch as u64 * seq_len) as f64 / layout.cp as f64;
    let hidden = model.hidden as f64;
    if layout.recompute == Recompute::Full {
        return 2.0 * tokens * hidden / sp;
    }
    let gemm_input_b = match precision {
        Precision::Fp8 | Precision::Fp4 | Precision::Int8 | Precision::Int4 => 1.0,
        _ => 2.0,
    };
    let none = layout.recompute == Recompute::None;
    let heads = model.heads as f64;
    let (qkv_width, out_width, latent_width) = match &model.mla {
        Some(mla) => {
            let qk = (mla.qk_nope_head_dim + mla.qk_rope_head_dim) as f64;
            let latent =
                (mla.q_lora_rank.unwrap_or(0) + mla.kv_lora_rank + mla.qk_rope_head_dim) as f64;
            (
                heads * (2.0 * qk + mla.v_head_dim as f64),
                heads * mla.v_head_dim as f64,
                latent,
            )
        }
        None => {
            let head_dim = model.head_dim() as f64;
            let kv = model.kv_heads as f64 * head_dim;
            (heads * head_dim + 2.0 * kv, heads * head_dim, 0.0)
        }
    };
    let ffn = ffn_width(model, moe_layer);
    let fc1_out = match model.mlp {
        suanli_catalog::Mlp::Gelu => ffn,
        suanli_catalog::Mlp::Swiglu => 2.0 * ffn,
    };
    // Bytes per token that sequence parallelism shards and bytes tensor parallelism splits.
    let mut sequence_bytes = 2.0 * 2.0 * hidden + 2.0 * latent_width;
    let mut split_bytes = 2.0 * fc1_out;
    if model.mla.is_none() || none {
        split_bytes += 2.0 * qkv_width;
    }
    if none {
        sequence_bytes += 2.0 * gemm_input_b * hidden;
        split_bytes += 2.0 * out_width + gemm_input_b * ffn;
    }
    if moe_layer && let Some(moe) = &model.moe {
        split_bytes += moe.top_k as f64 * hidden * gemm_input_b;
    }
    tokens * (sequence_bytes / sp + split_bytes / tp)
}
