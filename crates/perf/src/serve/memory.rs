//! Memory of serving: KV-cache bytes per token for each attention kind, weights per device,
//! and how many tokens and sequences fit next to them.

use super::{ServeError, ServeSetup};
use serde::Serialize;
use suanli_catalog::{Mlp, Model, Precision};

/// Fraction of the catalog's device memory the engine may use. vLLM's `gpu_memory_utilization`
/// and TensorRT-LLM's `kv_cache_free_gpu_mem_fraction` default to 0.9 of the physical memory,
/// and an "80 GB" device holds 80 GiB = 85.9e9 bytes (nvidia-smi: 81559 MiB), so 0.9 of it is
/// about 0.95 of the catalog figure in 10^9 bytes.
pub const USABLE_MEMORY_FRACTION: f64 = 0.95;

/// The same for an engine that allocates exactly what its static batch needs, with no fraction
/// held back (optimum-habana's `run_generation.py`, which Intel's Gaudi tables ran): the whole
/// memory the device's runtime reports free. A "128 GB" Gaudi 3 is 128 GiB of HBM2e, and hl-smi
/// shows 130400 of its 131072 MiB free at idle: 1.068 x the catalog figure (an "80 GB" H100,
/// 81559 MiB in nvidia-smi, is 1.069 x).
pub const STATIC_ALLOCATION_MEMORY_FRACTION: f64 = 130400.0 * 1048576.0 / 128e9;

/// CUDA/ROCm context, GEMM workspaces and custom all-reduce buffers of an inference engine
/// (smaller than training's 2.5 GB: no optimizer or autograd state; vLLM's profiling run reports
/// 1-1.5 GB of non-torch memory).
const RUNTIME_RESERVE_BYTES: f64 = 1.5e9;

/// Tokens one forward pass holds activations for (TensorRT-LLM `max_num_tokens` and vLLM
/// `max_num_batched_tokens` default to 8192 with chunked prefill).
const ACTIVATION_TOKENS: f64 = 8192.0;

/// Bytes of KV cache one token adds across all layers of one (unsharded) replica.
///
/// MHA/GQA/MQA: a key and a value of `head_dim` for every KV head of every layer,
/// 2 x layers x kv_heads x head_dim x bytes (Pope et al. 2022, section 3.3; Ainslie et al. 2023,
/// GQA). MLA: the compressed latent and the decoupled rotary key, layers x (kv_lora_rank +
/// qk_rope_head_dim) x bytes (DeepSeek-AI 2024, DeepSeek-V2, section 2.1.2 and Table 1).
pub fn kv_bytes_per_token(model: &Model, kv_precision: Precision) -> f64 {
    model.layers as f64 * kv_elements_per_token_layer(model, 1) * kv_precision.bytes()
}

/// KV elements per token and layer held by one of `tp` tensor-parallel ranks: KV heads are split
/// over tp and replicated when tp exceeds them (Megatron/vLLM); the MLA latent is replicated on
/// every rank (vLLM and SGLang MLA with tensor parallelism).
pub(crate) fn kv_elements_per_token_layer(model: &Model, tp: u32) -> f64 {
    match &model.mla {
        Some(mla) => (mla.kv_lora_rank + mla.qk_rope_head_dim) as f64,
        None => {
            let heads_here = model.kv_heads.div_ceil(tp.max(1)) as f64;
            2.0 * heads_here * model.head_dim() as f64
        }
    }
}

/// Bytes of KV cache per token on one device of the most loaded stage.
pub fn kv_bytes_per_token_per_device(setup: &ServeSetup) -> f64 {
    setup.layers_per_stage() as f64
        * kv_elements_per_token_layer(&setup.model, setup.tp)
        * setup.kv_precision.bytes()
}

/// Weight bytes on one device of the most loaded stage: layers at the weight precision, the
/// embedding and output head kept in 16 bits (TensorRT-LLM and vLLM quantise only the
/// transformer GEMMs).
pub fn weight_bytes_per_device(setup: &ServeSetup) -> f64 {
    let model = &setup.model;
    let tp = setup.tp as f64;
    let layers_here = setup.layers_per_stage() as f64;
    let moe_share = model.moe_layers() as f64 / model.layers as f64;
    let mut per_layer =
        model.attention_params() as f64 + (1.0 - moe_share) * model.dense_mlp_params() as f64;
    if let Some(moe) = &model.moe {
        per_layer += moe_share
            * ((moe.experts + moe.shared_experts) as f64 * model.expert_params() as f64
                + (model.hidden * moe.experts as u64) as f64);
    }
    let layers_bytes = layers_here * per_layer / tp * setup.weight_precision.bytes();
    let one_embedding = (model.vocab * model.hidden) as f64;
    let embeddings = if setup.pp == 1 && !model.tied_embeddings {
        2.0 * one_embedding
    } else {
        one_embedding
    };
    layers_bytes + embeddings / tp * 2.0
}

/// Memory per device, bytes, by category.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ServeMemory {
    pub weights_bytes: f64,
    /// KV cache of the batch at full length (input + output).
    pub kv_cache_bytes: f64,
    /// Activations of one forward pass of up to 8192 tokens.
    pub activations_bytes: f64,
    /// Runtime context, communication buffers, allocator slack.
    pub reserve_bytes: f64,
    pub total_bytes: f64,
    pub capacity_bytes: f64,
    /// KV-cache tokens that fit next to the weights in the usable memory, per replica.
    pub kv_capacity_tokens: u64,
    /// Sequences of input + output tokens that fit at once, per replica.
    pub max_sequences: u64,
}

fn activation_bytes(setup: &ServeSetup) -> f64 {
    // Per token: the residual stream, norm output and QKV/attention output (~4 h), the MLP
    // intermediate (3 ffn / tp for SwiGLU, 2 for GeLU), 16-bit; logits in fp32 only for the last
    // token of each sequence (gather_last_token_logits), counted with the residual terms.
    let model = &setup.model;
    let ffn = match &model.moe {
        Some(moe) => ((moe.top_k + moe.shared_experts) as u64 * moe.expert_ffn).max(model.ffn),
        None => model.ffn,
    } as f64;
    let mlp = match model.mlp {
        Mlp::Gelu => 2.0,
        Mlp::Swiglu => 3.0,
    };
    // Engines reserve it for the largest forward pass up front, whatever the batch.
    ACTIVATION_TOKENS * (4.0 * model.hidden as f64 + mlp * ffn / setup.tp as f64) * 2.0
}

/// Memory per device for `batch` concurrent sequences of the setup's lengths; errors when the
/// weights do not fit.
pub fn memory(setup: &ServeSetup, batch: u64) -> Result<ServeMemory, ServeError> {
    let capacity_bytes = setup.accelerator.memory_bytes();
    let usable = capacity_bytes * setup.memory_fraction;
    let weights_bytes = weight_bytes_per_device(setup);
    let activations_bytes = activation_bytes(setup);
    let reserve_bytes = RUNTIME_RESERVE_BYTES;
    let free = usable - weights_bytes - activations_bytes - reserve_bytes;
    if free <= 0.0 {
        return Err(ServeError::WeightsTooLarge {
            model: setup.model.name.clone(),
            accelerator: setup.accelerator.id.clone(),
            tp: setup.tp,
            pp: setup.pp,
            weights_gb: weights_bytes / 1e9,
            usable_gb: (usable - activations_bytes - reserve_bytes) / 1e9,
        });
    }
    let kv_per_token = kv_bytes_per_token_per_device(setup);
    let kv_capacity_tokens = (free / kv_per_token).floor() as u64;
    let seq_len = setup.held_tokens();
    let max_sequences = kv_capacity_tokens / seq_len.max(1);
    let kv_cache_bytes = (batch * seq_len) as f64 * kv_per_token;
    Ok(ServeMemory {
        weights_bytes,
        kv_cache_bytes,
        activations_bytes,
        reserve_bytes,
        total_bytes: weights_bytes + kv_cache_bytes + activations_bytes + reserve_bytes,
        capacity_bytes,
        kv_capacity_tokens,
        max_sequences,
    })
}
