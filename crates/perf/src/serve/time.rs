//! Time of serving: one prefill and one decode step on one replica, kernel by kernel, over
//! the training model's GEMM roofline and collectives.

use super::memory::kv_elements_per_token_layer;
use super::{DecodeAttention, ServeError, ServeSetup};
use crate::collective::{Collective, Fabric, Group};
use crate::efficiency::Efficiency;
use crate::kernels::Device;
use serde::Serialize;
use suanli_catalog::{Accelerator, Mlp, Model, Precision};

/// Expected number of distinct experts that `tokens` tokens route to, each choosing `top_k` of
/// `experts` uniformly: E (1 - (1 - k/E)^tokens) (balls into bins; the balanced-routing
/// assumption of Lepikhin et al. 2020, GShard).
pub fn expected_experts_touched(experts: u32, top_k: u32, tokens: f64) -> f64 {
    let e = experts as f64;
    let k = (top_k as f64).min(e);
    e * (1.0 - (1.0 - k / e).powf(tokens.max(0.0)))
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
    /// Host scheduling between steps with the GPU idle (decode; 0 where the engine overlaps it).
    pub host_s: f64,
    /// Sum of the above over all stages a token passes through.
    pub total_s: f64,
}

impl PassTime {
    /// Seconds the replica is occupied per pass when passes stream through its `pp` pipeline
    /// stages back to back: each stage works on one pass while the next stage works on the
    /// previous one, so a stream of prompts costs one stage time per prompt, not the whole
    /// path (GPipe, Huang et al. 2019, section 2.2: with many micro-batches the bubble vanishes;
    /// TensorRT-LLM and vLLM pipeline parallelism keep one micro-batch of requests per stage).
    /// The latency of a lone pass is still `total_s`.
    pub fn pipelined_s(&self, pp: u32) -> f64 {
        let stages = pp.max(1) as f64;
        let sends = if pp > 1 {
            self.pp_comm_s / (stages - 1.0)
        } else {
            0.0
        };
        (self.total_s - self.pp_comm_s) / stages + sends
    }
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

/// PCIe 4.0 x16 bandwidth, both directions added, GB/s (PCI-SIG: 16 GT/s x 16 lanes with
/// 128b/130b encoding, 31.5 GB/s each way).
const PCIE4_X16_GB_PER_S_BIDIR: f64 = 63.0;

/// Devices without a scale-up link reach the others of their server over PCIe peer-to-peer
/// (NCCL's P2P transport; TensorRT-LLM and vLLM tensor parallelism on L40S and other PCIe
/// cards), not over the scale-out NIC: the accelerator as the fabric should see it.
fn pcie_peer_to_peer(accelerator: &Accelerator, per_node: u32) -> Option<Accelerator> {
    if accelerator.scaleup.domain_size > 1 || per_node <= 1 {
        return None;
    }
    let mut peer = accelerator.clone();
    peer.scaleup.link = "PCIe 4.0 x16 peer-to-peer".into();
    peer.scaleup.domain_size = per_node;
    peer.scaleup.bandwidth_gb_per_s_bidir = PCIE4_X16_GB_PER_S_BIDIR;
    Some(peer)
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
    // 8-bit GEMMs reach a smaller share of a doubled datasheet peak than 16-bit ones
    // (`Efficiency::matmul_8bit`). Where the 8-bit peak is no higher than the 16-bit one (Gaudi
    // 3's matrix engines run fp8 at their bf16 rate, 1,835 TFLOP/s each; Intel Gaudi 3 white
    // paper) there is no doubled rate to fall short of, and the 8-bit GEMM keeps the 16-bit
    // share.
    let doubled = math_peak > 1.5 * half_peak;
    if matches!(math, Precision::Fp8 | Precision::Int8 | Precision::Fp4) && doubled {
        gemm_efficiency.matmul = efficiency.matmul_8bit;
    }
    // The family's fitted serving scale; no GEMM passes 95% of its peak.
    gemm_efficiency.matmul = (gemm_efficiency.matmul * setup.gemm_scale).clamp(0.05, 0.95);
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
    let peer = pcie_peer_to_peer(accelerator, setup.per_node);
    let fabric = Fabric::new(
        peer.as_ref().unwrap_or(accelerator),
        setup.per_node,
        setup.scaleout_gb_per_s,
        &efficiency,
    );
    Ok(Hardware {
        gemm,
        half,
        tp_group: fabric.group(setup.tp, 1),
        pp_group: fabric.group(setup.pp, setup.tp),
        pp_crosses_nodes: setup.tp >= fabric.domain,
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

/// How much longer the busiest of `ep` expert-parallel ranks works than the mean when `pairs`
/// token-expert pairs are routed at random: each rank's count is binomial with mean m = pairs /
/// ep and variance m (1 - 1/ep), and the largest of ep such counts lies about sqrt(2 ln ep)
/// standard deviations above the mean (balls into bins; Raab and Steger 1998). The layer
/// waits for the busiest rank.
pub fn expert_imbalance(pairs: f64, ep: f64) -> f64 {
    if ep <= 1.0 || pairs <= 0.0 {
        return 1.0;
    }
    let mean = pairs / ep;
    1.0 + (2.0 * ep.ln()).sqrt() * ((1.0 - 1.0 / ep) / mean).sqrt()
}

/// Seconds of the weight GEMMs of one layer for `tokens` rows on one device.
fn layer_gemms_s(setup: &ServeSetup, device: &Device, tokens: f64, moe_layer: bool) -> f64 {
    let model = &setup.model;
    let tp = setup.tp as f64;
    let hidden = model.hidden as f64;
    let heads = model.heads as f64;
    let attention = match &model.mla {
        Some(mla) => device.mla_projections_s(model, mla, tokens, tp),
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
            // TensorRT-LLM MoE plugin): one launch each, not one per expert. With expert
            // parallelism inside the tp group a rank runs touched/ep experts (balanced routing,
            // Lepikhin et al. 2020), each split over tp/ep ranks: the same bytes in fewer,
            // wider GEMMs. The tokens stay replicated over the group and the layer's all-reduce
            // sums the partial outputs, as in SGLang's and vLLM's expert parallelism without
            // an all-to-all back end, so the communication is unchanged.
            let ep = setup.ep.max(1) as f64;
            let slice = tp / ep;
            let expert_pair = |rows: f64, ffn: f64| {
                device.gemm_s(rows, up * ffn / slice, hidden)
                    + device.gemm_s(rows, hidden, ffn / slice)
            };
            let launches = 2.0 * device.efficiency.kernel_overhead_s;
            // The busiest rank sets the pace, and it cannot touch more than the experts it holds.
            let busiest = (expert_imbalance(tokens * moe.top_k as f64, ep) * touched / ep)
                .min(moe.experts as f64 / ep);
            device.gemm_s(tokens, moe.experts as f64, hidden)
                + busiest * (expert_pair(rows, moe.expert_ffn as f64) - launches)
                + launches
                + shared
        }
        _ => ffn_pair(tokens, model.ffn as f64),
    };
    attention + mlp
}

/// Element-wise bytes per token and layer on one device, with the fusions inference engines
/// apply (TensorRT-LLM and vLLM: the residual add fused into the norm, rotary embedding fused
/// with the KV-cache write, the gated activation in one kernel): each of the two residual+norm
/// kernels reads the residual and the update and writes the residual (16-bit) and the normed
/// copy; rotary reads q, k and v and writes q and the cache; the activation reads the ffn-wide
/// GEMM outputs (two for SwiGLU) and writes one. Tensors that feed a GEMM are written at its
/// input width (8-bit GEMMs fuse the quantisation), the rest in 16 bits. The same traffic as
/// the training model's element-wise kernels (Korthikanti et al. 2022, section 4.1) without
/// dropout and the unfused round trips.
fn elementwise_bytes_per_token(setup: &ServeSetup) -> f64 {
    let model = &setup.model;
    let tp = setup.tp as f64;
    let hidden = model.hidden as f64;
    let gemm_input = math_precision(&setup.accelerator, setup.weight_precision).bytes();
    let ffn = match &model.moe {
        Some(moe) => ((moe.top_k + moe.shared_experts) as u64 * moe.expert_ffn) as f64,
        None => model.ffn as f64,
    } / tp;
    let norms = 2.0 * (3.0 * 2.0 + gemm_input) * hidden;
    let activation = match model.mlp {
        Mlp::Gelu => 2.0 * ffn + gemm_input * ffn,
        Mlp::Swiglu => 2.0 * 2.0 * ffn + gemm_input * ffn,
    };
    let query = match &model.mla {
        Some(mla) => model.heads as f64 * (mla.qk_nope_head_dim + mla.qk_rope_head_dim) as f64,
        None => model.heads as f64 * model.head_dim() as f64,
    } / tp;
    let cache = kv_elements_per_token_layer(model, setup.tp);
    let rotary = 2.0 * (query + cache) + 2.0 * query + setup.kv_precision.bytes() * cache;
    norms + activation + rotary
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
        host_s: 0.0,
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
        host_s: batch as f64 * setup.host_s_per_sequence,
        total_s: 0.0,
    };
    time.total_s = time.matmul_s
        + time.attention_s
        + time.elementwise_s
        + time.tp_comm_s
        + time.pp_comm_s
        + time.host_s;
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
