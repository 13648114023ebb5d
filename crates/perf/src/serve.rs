//! Inference (serving) performance: prefill time, decode step time, KV-cache size and capacity,
//! memory per device, and continuous-batching throughput for one model on one tensor- and
//! pipeline-parallel replica.
//!
//! Prefill runs every prompt token through the weights at once and is compute-bound; decode
//! produces one token per sequence per step and reads every weight and the whole KV cache, so it
//! is bound by memory bandwidth until the batch is large (Pope et al. 2022, "Efficiently Scaling
//! Transformer Inference", section 2). Both reuse the training model's kernel roofline
//! ([`Device::gemm_s`], [`Device::stream_s`]) and collectives ([`Group`]).
//!
//! ```
//! use suanli_catalog::{Catalog, Precision};
//! use suanli_perf::serve::{self, ServeSetup};
//!
//! let catalog = Catalog::builtin();
//! let model = catalog.model("llama-3.1-8b").unwrap().clone();
//! let h100 = catalog.accelerator("h100-sxm5-80gb").unwrap().clone();
//! let mut setup = ServeSetup::new(model, h100, 1024, 256);
//! setup.weight_precision = Precision::Fp8;
//! let estimate = serve::estimate(&setup).unwrap();
//! assert!(estimate.tpot_s > 0.002 && estimate.tpot_s < 0.2);
//! ```

use crate::collective::{Collective, Group};
use crate::efficiency::Efficiency;
use crate::kernels::Device;
use serde::Serialize;
use suanli_catalog::{Accelerator, Mlp, Model, Precision};

/// Fraction of the catalog's device memory the engine may use. vLLM's `gpu_memory_utilization`
/// and TensorRT-LLM's `kv_cache_free_gpu_mem_fraction` default to 0.9 of the physical memory,
/// and an "80 GB" device holds 80 GiB = 85.9e9 bytes (nvidia-smi: 81559 MiB), so 0.9 of it is
/// about 0.95 of the catalog figure in 10^9 bytes.
const USABLE_MEMORY_FRACTION: f64 = 0.95;

/// CUDA/ROCm context, GEMM workspaces and custom all-reduce buffers of an inference engine
/// (smaller than training's 2.5 GB: no optimizer or autograd state; vLLM's profiling run reports
/// 1-1.5 GB of non-torch memory).
const RUNTIME_RESERVE_BYTES: f64 = 1.5e9;

/// Tokens one forward pass holds activations for (TensorRT-LLM `max_num_tokens` and vLLM
/// `max_num_batched_tokens` default to 8192 with chunked prefill).
const ACTIVATION_TOKENS: f64 = 8192.0;

/// How the decode attention kernel reads the KV cache under grouped-query attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecodeAttention {
    /// One pass per KV head serves all its query heads (FlashDecoding, vLLM paged attention v2,
    /// TensorRT-LLM from v0.7 and its XQA kernels, FlashMLA).
    Grouped,
    /// One pass per query head re-reads the KV head it shares (TensorRT-LLM masked multi-head
    /// attention up to v0.6; "MMHA optimization for MQA and GQA" landed in NVIDIA/TensorRT-LLM
    /// PR #524, December 2023, and the XQA kernels later): the KV traffic is heads / kv_heads
    /// times larger.
    PerQueryHead,
}

/// Everything the serving model needs.
#[derive(Clone, Debug, Serialize)]
pub struct ServeSetup {
    pub model: Model,
    pub accelerator: Accelerator,
    /// Tensor-parallel size of one replica.
    pub tp: u32,
    /// Pipeline-parallel size of one replica.
    pub pp: u32,
    /// Replicas (data parallel); devices = tp x pp x replicas.
    pub replicas: u32,
    /// Accelerators per node.
    pub per_node: u32,
    /// Scale-out bandwidth per accelerator, one direction, GB/s.
    pub scaleout_gb_per_s: f64,
    pub weight_precision: Precision,
    pub kv_precision: Precision,
    /// Prompt tokens per request.
    pub input_len: u64,
    /// Generated tokens per request.
    pub output_len: u64,
    /// Concurrent sequences per replica; `None` = the largest that fits.
    pub batch: Option<u64>,
    pub decode_attention: DecodeAttention,
}

impl ServeSetup {
    /// One device, bf16 weights and KV cache, grouped decode attention, largest batch.
    pub fn new(
        model: Model,
        accelerator: Accelerator,
        input_len: u64,
        output_len: u64,
    ) -> ServeSetup {
        ServeSetup {
            per_node: accelerator.default_per_node.max(1),
            scaleout_gb_per_s: accelerator.scaleout_gb_per_s,
            model,
            accelerator,
            tp: 1,
            pp: 1,
            replicas: 1,
            weight_precision: Precision::Bf16,
            kv_precision: Precision::Bf16,
            input_len,
            output_len,
            batch: None,
            decode_attention: DecodeAttention::Grouped,
        }
    }

    /// Devices of one replica.
    pub fn devices_per_replica(&self) -> u64 {
        (self.tp * self.pp) as u64
    }

    /// Transformer layers on the most loaded pipeline stage.
    pub fn layers_per_stage(&self) -> u32 {
        self.model.layers.div_ceil(self.pp.max(1))
    }
}

/// Why a setup cannot be served.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ServeError {
    #[error("invalid setup: {0}")]
    Invalid(String),
    #[error(
        "{model} does not fit on {accelerator} with tp={tp}, pp={pp}: the weights alone take \
         {weights_gb:.1} GB per device and {usable_gb:.1} GB is usable; use more devices \
         (larger --tp/--pp), a lower --precision, or a larger accelerator"
    )]
    WeightsTooLarge {
        model: String,
        accelerator: String,
        tp: u32,
        pp: u32,
        weights_gb: f64,
        usable_gb: f64,
    },
    #[error(
        "batch {batch} does not fit: it needs {needed_tokens} KV-cache tokens per replica but \
         only {capacity_tokens} fit ({max_batch} sequences of {seq_len} tokens); lower --batch, \
         use --kv-precision fp8, or add devices"
    )]
    BatchTooLarge {
        batch: u64,
        needed_tokens: u64,
        capacity_tokens: u64,
        max_batch: u64,
        seq_len: u64,
    },
}

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
fn kv_elements_per_token_layer(model: &Model, tp: u32) -> f64 {
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

/// Expected number of distinct experts that `tokens` tokens route to, each choosing `top_k` of
/// `experts` uniformly: E (1 - (1 - k/E)^tokens) (balls into bins; the balanced-routing
/// assumption of Lepikhin et al. 2020, GShard).
pub fn expected_experts_touched(experts: u32, top_k: u32, tokens: f64) -> f64 {
    let e = experts as f64;
    let k = (top_k as f64).min(e);
    e * (1.0 - (1.0 - k / e).powf(tokens.max(0.0)))
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
    let usable = capacity_bytes * USABLE_MEMORY_FRACTION;
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
    let seq_len = setup.input_len + setup.output_len;
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

/// Seconds of one forward pass on one device of one stage, by kind of work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PassTime {
    /// Weight GEMMs (and the logit layer).
    pub matmul_s: f64,
    /// Attention core: scores and weighted sum (prefill) or the KV-cache read (decode).
    pub attention_s: f64,
    /// Norms, activations, residuals, rotary embedding.
    pub elementwise_s: f64,
    /// Tensor-parallel all-reduces.
    pub tp_comm_s: f64,
    /// Pipeline sends between stages.
    pub pp_comm_s: f64,
    /// Sum of the above over all stages a token passes through.
    pub total_s: f64,
}

/// The serving model's view of one device.
pub(crate) struct Hardware {
    /// GEMMs at the math precision, operands at the weight precision.
    pub gemm: Device,
    /// 16-bit kernels: attention, element-wise, logit layer.
    pub half: Device,
    pub tp_group: Group,
    pub pp_group: Group,
    pub pp_crosses_nodes: bool,
}

/// The math precision of the weight GEMMs: 8-bit weights run 8-bit GEMMs where the device has
/// them (fp8 or W8A8 int8, SmoothQuant, Xiao et al. 2023); 4-bit and unsupported 8-bit weights
/// are dequantised into 16-bit GEMMs (weight-only, AWQ, Lin et al. 2024; Marlin).
pub fn math_precision(accelerator: &Accelerator, weights: Precision) -> Precision {
    let native = accelerator.peak_flops_per_s(weights).is_some();
    match weights {
        Precision::Fp8 | Precision::Int8 | Precision::Fp4 if native => weights,
        Precision::Fp32 => Precision::Fp32,
        Precision::Fp16 => Precision::Fp16,
        _ => Precision::Bf16,
    }
}

pub(crate) fn hardware(setup: &ServeSetup) -> Result<Hardware, ServeError> {
    let accelerator = &setup.accelerator;
    let efficiency = Efficiency::for_accelerator(accelerator);
    let math = math_precision(accelerator, setup.weight_precision);
    let half_peak = accelerator
        .peak_flops_per_s(Precision::Bf16)
        .or_else(|| accelerator.peak_flops_per_s(Precision::Fp32))
        .ok_or_else(|| ServeError::Invalid(format!("{} has no 16-bit peak", accelerator.id)))?;
    let math_peak = accelerator.peak_flops_per_s(math).unwrap_or(half_peak);
    let mut gemm_efficiency = efficiency;
    if matches!(math, Precision::Fp8 | Precision::Int8 | Precision::Fp4) {
        gemm_efficiency.matmul = efficiency.matmul_8bit;
    }
    let gemm = Device {
        peak_flops_per_s: math_peak,
        memory_bytes_per_s: accelerator.memory_bandwidth_bytes_per_s(),
        // In decode the weight operand dominates the bytes; in prefill the FLOPs dominate.
        activation_bytes: setup.weight_precision.bytes(),
        efficiency: gemm_efficiency,
    };
    let half = Device {
        peak_flops_per_s: half_peak,
        memory_bytes_per_s: accelerator.memory_bandwidth_bytes_per_s(),
        activation_bytes: 2.0,
        efficiency,
    };
    let domain = accelerator
        .scaleup
        .domain_size
        .clamp(1, setup.per_node.max(1));
    let group = |size: u32, stride: u32| {
        Group::new(
            size,
            stride,
            domain,
            accelerator.scaleup.bandwidth_gb_per_s_unidir(),
            setup.scaleout_gb_per_s,
            &efficiency,
        )
    };
    Ok(Hardware {
        gemm,
        half,
        tp_group: group(setup.tp, 1),
        pp_group: group(setup.pp, setup.tp),
        pp_crosses_nodes: setup.tp >= domain,
    })
}

/// Seconds of a tensor-parallel all-reduce of `bytes`: the cheaper of NCCL's ring and the
/// one-shot all-reduce inference engines use for small messages inside a scale-up domain, where
/// every rank reads its peers' buffers directly (TensorRT-LLM and vLLM custom all-reduce).
fn all_reduce_s(group: &Group, bytes: f64) -> f64 {
    let ring = group.time_s(Collective::AllReduce, bytes);
    if group.size <= 1 || group.ranks_per_domain < group.size {
        return ring;
    }
    let one_shot =
        group.scaleup_latency_s + (group.size - 1) as f64 * bytes / group.scaleup_bytes_per_s;
    ring.min(one_shot)
}

/// Seconds of the weight GEMMs of one layer for `tokens` rows on one device.
fn layer_gemms_s(setup: &ServeSetup, device: &Device, tokens: f64, moe_layer: bool) -> f64 {
    let model = &setup.model;
    let tp = setup.tp as f64;
    let hidden = model.hidden as f64;
    let heads = model.heads as f64;
    let attention = match &model.mla {
        Some(mla) => {
            let qk = (mla.qk_nope_head_dim + mla.qk_rope_head_dim) as f64;
            let q = match mla.q_lora_rank {
                Some(rank) => {
                    device.gemm_s(tokens, rank as f64, hidden)
                        + device.gemm_s(tokens, heads * qk / tp, rank as f64)
                }
                None => device.gemm_s(tokens, heads * qk / tp, hidden),
            };
            let rank = mla.kv_lora_rank as f64;
            q + device.gemm_s(tokens, rank + mla.qk_rope_head_dim as f64, hidden)
                + device.gemm_s(
                    tokens,
                    heads * (mla.qk_nope_head_dim + mla.v_head_dim) as f64 / tp,
                    rank,
                )
                + device.gemm_s(tokens, hidden, heads * mla.v_head_dim as f64 / tp)
        }
        None => {
            let head_dim = model.head_dim() as f64;
            let kv_heads = model.kv_heads.div_ceil(setup.tp) as f64 * setup.tp as f64;
            device.gemm_s(tokens, (heads + 2.0 * kv_heads) * head_dim / tp, hidden)
                + device.gemm_s(tokens, hidden, heads * head_dim / tp)
        }
    };
    let up = (model.mlp.matrices() - 1) as f64;
    let ffn_pair = |rows: f64, ffn: f64| {
        device.gemm_s(rows, up * ffn / tp, hidden) + device.gemm_s(rows, hidden, ffn / tp)
    };
    let mlp = match (&model.moe, moe_layer) {
        (Some(moe), true) => {
            // Only the experts some token routes to are read (and computed); each sees its
            // share of the token-expert pairs.
            let touched = expected_experts_touched(moe.experts, moe.top_k, tokens);
            let rows = tokens * moe.top_k as f64 / touched.max(1.0);
            let shared = if moe.shared_experts > 0 {
                ffn_pair(tokens, (moe.shared_experts as u64 * moe.expert_ffn) as f64)
            } else {
                0.0
            };
            // The routed experts run as one grouped GEMM per matrix (vLLM fused_moe,
            // TensorRT-LLM MoE plugin): one launch each, not one per expert.
            let launches = 2.0 * device.efficiency.kernel_overhead_s;
            device.gemm_s(tokens, moe.experts as f64, hidden)
                + touched * (ffn_pair(rows, moe.expert_ffn as f64) - launches)
                + launches
                + shared
        }
        _ => ffn_pair(tokens, model.ffn as f64),
    };
    attention + mlp
}

/// Element-wise bytes per token and layer on one device, 16-bit: two norms, two residual adds,
/// the MLP activation and rotary embedding, as in the training model (Korthikanti et al. 2022,
/// section 4.1, without dropout).
fn elementwise_bytes_per_token(setup: &ServeSetup) -> f64 {
    let model = &setup.model;
    let tp = setup.tp as f64;
    let hidden = model.hidden as f64;
    let ffn = match &model.moe {
        Some(moe) => ((moe.top_k + moe.shared_experts) as u64 * moe.expert_ffn) as f64,
        None => model.ffn as f64,
    };
    let mlp = match model.mlp {
        Mlp::Gelu => 2.0 * ffn / tp,
        Mlp::Swiglu => 3.0 * ffn / tp,
    };
    let rope = 2.0 * (model.heads + model.kv_heads) as f64 * model.head_dim() as f64 / tp;
    (2.0 * 2.0 + 2.0 * 3.0) * hidden + mlp + rope
}

fn mix_layers(setup: &ServeSetup, per_layer: impl Fn(bool) -> f64) -> f64 {
    let model = &setup.model;
    let moe_share = model.moe_layers() as f64 / model.layers as f64;
    let dense = per_layer(false);
    let moe = if model.moe.is_some() {
        per_layer(true)
    } else {
        dense
    };
    setup.layers_per_stage() as f64 * ((1.0 - moe_share) * dense + moe_share * moe)
}

/// Seconds to prefill `sequences` prompts of `input_len` tokens together, through all stages.
///
/// Compute-bound weight GEMMs over sequences x input_len rows, the causal attention core with its
/// quadratic term (half the full score matrix, FlashAttention-2, Dao 2023), element-wise kernels,
/// two tensor-parallel all-reduces per layer (Shoeybi et al. 2019) and the logit layer for the
/// last token of each sequence.
pub fn prefill(setup: &ServeSetup, sequences: u64, input_len: u64) -> Result<PassTime, ServeError> {
    let hw = hardware(setup)?;
    let model = &setup.model;
    let tp = setup.tp as f64;
    let tokens = (sequences * input_len) as f64;
    let matmul_layers = mix_layers(setup, |moe| layer_gemms_s(setup, &hw.gemm, tokens, moe));
    let logits = hw.half.gemm_s(
        sequences as f64,
        model.vocab as f64 / tp,
        model.hidden as f64,
    );
    let flops = sequences as f64
        * input_len as f64
        * crate::flops::attention_core_flops_per_token(model, input_len)
        * 0.5
        / tp;
    let efficiency = hw.half.efficiency;
    let attention_layer = flops
        / (hw.half.peak_flops_per_s * efficiency.matmul * efficiency.attention)
        + efficiency.kernel_overhead_s;
    let layers = setup.layers_per_stage() as f64;
    let elementwise_layer = hw
        .half
        .stream_s(tokens * elementwise_bytes_per_token(setup), 6.0);
    let tp_layer = 2.0 * all_reduce_s(&hw.tp_group, tokens * model.hidden as f64 * 2.0);
    let pp_comm_s = pipeline_sends_s(setup, &hw, tokens);
    let stages = setup.pp as f64;
    let mut time = PassTime {
        matmul_s: stages * matmul_layers + logits,
        attention_s: stages * layers * attention_layer,
        elementwise_s: stages * layers * elementwise_layer,
        tp_comm_s: stages * layers * tp_layer,
        pp_comm_s,
        total_s: 0.0,
    };
    time.total_s =
        time.matmul_s + time.attention_s + time.elementwise_s + time.tp_comm_s + time.pp_comm_s;
    Ok(time)
}

fn pipeline_sends_s(setup: &ServeSetup, hw: &Hardware, tokens: f64) -> f64 {
    if setup.pp <= 1 {
        return 0.0;
    }
    let bytes = tokens * setup.model.hidden as f64 * 2.0;
    (setup.pp - 1) as f64 * hw.pp_group.point_to_point_s(bytes, hw.pp_crosses_nodes)
}

/// Seconds of one decode step in which each of `batch` sequences, holding `context` tokens of
/// KV cache, produces one token; one token's path through all stages.
///
/// Per kernel, the roofline of its bytes and FLOPs (Pope et al. 2022, section 2; Williams et al.
/// 2009): the weight GEMMs read every weight once per step (and only the experts some sequence
/// routes to) and turn compute-bound at large batch; the attention reads batch x context tokens
/// of KV cache (Kwon et al. 2023, vLLM, section 2.2). With pipeline stages the batch is split
/// into pp micro-batches that keep every stage busy, so a token waits pp stage-times.
pub fn decode_step(setup: &ServeSetup, batch: u64, context: f64) -> Result<PassTime, ServeError> {
    let hw = hardware(setup)?;
    let model = &setup.model;
    let tp = setup.tp as f64;
    let stages = setup.pp as f64;
    let micro = (batch as f64 / stages).max(1.0);
    let matmul_layers = mix_layers(setup, |moe| layer_gemms_s(setup, &hw.gemm, micro, moe));
    let logits = hw
        .half
        .gemm_s(micro, model.vocab as f64 / tp, model.hidden as f64);
    let layers = setup.layers_per_stage() as f64;
    let group_factor = match (setup.decode_attention, &model.mla) {
        (DecodeAttention::PerQueryHead, None) => (model.heads / model.kv_heads.max(1)) as f64,
        _ => 1.0,
    };
    let kv_bytes_layer = micro
        * context
        * kv_elements_per_token_layer(model, setup.tp)
        * setup.kv_precision.bytes()
        * group_factor;
    // The attention kernel is its own roofline: the KV read, or for MLA, whose absorbed
    // attention does 2 heads (2 kv_lora_rank + rope) FLOPs per cached position for 576 bytes,
    // the FLOPs (DeepSeek-V2, appendix C; FlashMLA is compute-bound on H800).
    let efficiency = hw.half.efficiency;
    let attention_flops_layer = micro * context * decode_attention_flops_per_position(model) / tp;
    let attention_compute_s = attention_flops_layer
        / (hw.half.peak_flops_per_s * efficiency.matmul * efficiency.attention);
    let attention_layer = hw
        .half
        .stream_s(kv_bytes_layer, 1.0)
        .max(attention_compute_s + efficiency.kernel_overhead_s);
    let elementwise_layer = hw
        .half
        .stream_s(micro * elementwise_bytes_per_token(setup), 6.0);
    let tp_layer = 2.0 * all_reduce_s(&hw.tp_group, micro * model.hidden as f64 * 2.0);
    let mut time = PassTime {
        matmul_s: stages * (matmul_layers + logits / stages),
        attention_s: stages * layers * attention_layer,
        elementwise_s: stages * layers * elementwise_layer,
        tp_comm_s: stages * layers * tp_layer,
        pp_comm_s: pipeline_sends_s(setup, &hw, micro),
        total_s: 0.0,
    };
    time.total_s =
        time.matmul_s + time.attention_s + time.elementwise_s + time.tp_comm_s + time.pp_comm_s;
    Ok(time)
}

/// FLOPs of one query token against one cached position in one layer (all heads): scores and
/// weighted sum, 2 x heads x (qk_dim + v_dim). With MLA the up-projections are absorbed into the
/// query and output, so both run over the latent: 2 x heads x (2 kv_lora_rank + qk_rope_head_dim)
/// (DeepSeek-AI 2024, DeepSeek-V2, section 2.1.2).
fn decode_attention_flops_per_position(model: &Model) -> f64 {
    let heads = model.heads as f64;
    match &model.mla {
        Some(mla) => 2.0 * heads * (2 * mla.kv_lora_rank + mla.qk_rope_head_dim) as f64,
        None => 2.0 * heads * 2.0 * model.head_dim() as f64,
    }
}

/// What the serving model predicts for one setup.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServeEstimate {
    /// Concurrent sequences per replica.
    pub batch: u64,
    /// Time to first token of a request arriving alone (prefill of its prompt).
    pub ttft_s: f64,
    /// Time per output token at the batch, mid-sequence context.
    pub tpot_s: f64,
    /// TTFT + (output_len - 1) x TPOT.
    pub e2e_latency_s: f64,
    /// Output tokens per second per replica at the batch, prefills included.
    pub output_tokens_per_s_per_replica: f64,
    /// Output tokens per second over all replicas.
    pub output_tokens_per_s_total: f64,
    pub output_tokens_per_s_per_device: f64,
    /// Prefill of one request, by kind.
    pub prefill: PassTime,
    /// One decode step at the batch and mid-sequence context, by kind.
    pub decode: PassTime,
    pub memory: ServeMemory,
    /// KV-cache bytes per token for the whole model (one replica, unsharded).
    pub kv_bytes_per_token: f64,
    pub devices: u64,
    /// Precision the weight GEMMs run at (16-bit when the device lacks the weights' format).
    pub gemm_precision: Precision,
}

/// Estimates a setup: the given batch, or the largest that fits.
pub fn estimate(setup: &ServeSetup) -> Result<ServeEstimate, ServeError> {
    if setup.tp == 0 || setup.pp == 0 || setup.replicas == 0 {
        return Err(ServeError::Invalid(
            "tp, pp and replicas must be at least 1".into(),
        ));
    }
    if setup.pp > setup.model.layers {
        return Err(ServeError::Invalid(format!(
            "pp={} exceeds the model's {} layers",
            setup.pp, setup.model.layers
        )));
    }
    if setup.input_len == 0 || setup.output_len == 0 {
        return Err(ServeError::Invalid(
            "input and output lengths must be at least 1".into(),
        ));
    }
    let probe = memory(setup, 1)?;
    let batch = match setup.batch {
        Some(batch) => {
            let seq_len = setup.input_len + setup.output_len;
            if batch * seq_len > probe.kv_capacity_tokens || batch == 0 {
                return Err(ServeError::BatchTooLarge {
                    batch,
                    needed_tokens: batch * seq_len,
                    capacity_tokens: probe.kv_capacity_tokens,
                    max_batch: probe.max_sequences,
                    seq_len,
                });
            }
            batch
        }
        None => probe.max_sequences.max(1),
    };
    if probe.max_sequences == 0 {
        return Err(ServeError::BatchTooLarge {
            batch,
            needed_tokens: setup.input_len + setup.output_len,
            capacity_tokens: probe.kv_capacity_tokens,
            max_batch: 0,
            seq_len: setup.input_len + setup.output_len,
        });
    }
    let memory = memory(setup, batch)?;
    let first = prefill(setup, 1, setup.input_len)?;
    let batch_prefill = prefill(setup, batch, setup.input_len)?;
    // The KV read grows linearly with context, so the mean over the output equals the step at
    // the mean context.
    let context = setup.input_len as f64 + (setup.output_len as f64 + 1.0) / 2.0;
    let step = decode_step(setup, batch, context)?;
    let output = setup.output_len as f64;
    // Continuous batching at a steady concurrency of `batch`: every output_len steps the
    // batch's worth of prompts is prefilled once (Kwon et al. 2023; Yu et al. 2022, Orca),
    // the same work as a static batch of prefill plus output_len decode steps.
    let cycle_s = batch_prefill.total_s + output * step.total_s;
    let per_replica = batch as f64 * output / cycle_s;
    let devices = setup.devices_per_replica() * setup.replicas as u64;
    let total = per_replica * setup.replicas as f64;
    Ok(ServeEstimate {
        batch,
        ttft_s: first.total_s,
        tpot_s: step.total_s,
        e2e_latency_s: first.total_s + (output - 1.0) * step.total_s,
        output_tokens_per_s_per_replica: per_replica,
        output_tokens_per_s_total: total,
        output_tokens_per_s_per_device: total / devices as f64,
        prefill: first,
        decode: step,
        memory,
        kv_bytes_per_token: kv_bytes_per_token(&setup.model, setup.kv_precision),
        devices,
        gemm_precision: math_precision(&setup.accelerator, setup.weight_precision),
    })
}
