//! FLOP counts of a training step: the model FLOPs the utilisation metrics are quoted in, and
//! the hardware FLOPs including recomputation.

use crate::layout::Recompute;
use suanli_catalog::Model;

/// Forward FLOPs per token of one transformer layer's weight matmuls (2 per multiply-add).
///
/// Dense: 2 x (attention projection + feed-forward weights). MoE layers count the top-k routed
/// plus shared experts and the router (Fedus et al. 2021, Switch Transformer, section 2).
pub fn layer_matmul_flops_per_token(model: &Model) -> f64 {
    let layers = model.layers as f64;
    let moe_layers = model.moe_layers() as f64;
    let dense_layers = layers - moe_layers;
    let attention = model.attention_params() as f64;
    let mut mlp_total = dense_layers * model.dense_mlp_params() as f64;
    if let Some(moe) = &model.moe {
        let active = (moe.top_k + moe.shared_experts) as f64 * model.expert_params() as f64
            + (model.hidden * moe.experts as u64) as f64;
        mlp_total += moe_layers * active;
    }
    2.0 * (attention + mlp_total / layers)
}

/// Forward FLOPs per token of one layer's attention core (QK^T and AV) at sequence length
/// `seq_len`, counting the full (non-causal) score matrix as Megatron-LM does
/// (Narayanan et al. 2021, eq. 3: the 4 B s^2 h term per layer).
pub fn attention_core_flops_per_token(model: &Model, seq_len: u64) -> f64 {
    let heads = model.heads as f64;
    let (qk_dim, v_dim) = match &model.mla {
        Some(mla) => (
            (mla.qk_nope_head_dim + mla.qk_rope_head_dim) as f64,
            mla.v_head_dim as f64,
        ),
        None => (model.head_dim() as f64, model.head_dim() as f64),
    };
    2.0 * seq_len as f64 * heads * (qk_dim + v_dim)
}

/// Forward FLOPs per token of the output (logit) layer.
pub fn logit_flops_per_token(model: &Model) -> f64 {
    2.0 * (model.vocab * model.hidden) as f64
}

/// Model FLOPs per step: forward plus backward (3x forward), no recomputation.
///
/// For GPT shapes this is exactly Narayanan et al. 2021, eq. 3 without the recompute pass:
/// 72 B s l h^2 (1 + s/(6h) + V/(12 l h)); generalised to GQA, SwiGLU and MoE as Megatron-LM's
/// `num_floating_point_operations` does.
pub fn model_flops_per_step(model: &Model, seq_len: u64, global_batch: u64) -> f64 {
    let tokens = (seq_len * global_batch) as f64;
    let per_layer =
        layer_matmul_flops_per_token(model) + attention_core_flops_per_token(model, seq_len);
    3.0 * tokens * (model.layers as f64 * per_layer + logit_flops_per_token(model))
}

/// Hardware FLOPs per step: model FLOPs plus what recomputation repeats.
///
/// Full recompute repeats every layer's forward pass but not the logit layer (Narayanan et al.
/// 2021, eq. 3: 96 B s l h^2 (1 + s/(6h) + V/(16 l h))); selective recompute repeats only the
/// attention core (Korthikanti et al. 2022, section 4.2).
pub fn hardware_flops_per_step(
    model: &Model,
    seq_len: u64,
    global_batch: u64,
    recompute: Recompute,
) -> f64 {
    let tokens = (seq_len * global_batch) as f64;
    let layers = model.layers as f64;
    let repeated = match recompute {
        Recompute::None => 0.0,
        Recompute::Selective => layers * attention_core_flops_per_token(model, seq_len),
        Recompute::Full => {
            layers
                * (layer_matmul_flops_per_token(model)
                    + attention_core_flops_per_token(model, seq_len))
        }
    };
    model_flops_per_step(model, seq_len, global_batch) + tokens * repeated
}
