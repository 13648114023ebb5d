//! Time of the kernels one device runs for one transformer layer and one micro-batch: GEMMs by
//! their actual (per-device) shapes under a roofline, the attention core, and the memory-bound
//! element-wise kernels.

use crate::efficiency::Efficiency;
use crate::layout::Layout;
use serde::{Deserialize, Serialize};
use suanli_catalog::{Mla, Model};

/// How the attention core is implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionImpl {
    /// Fused, causal, IO-aware (FlashAttention, Dao et al. 2022): skips masked blocks and never
    /// writes the score matrix to memory.
    Flash,
    /// Batched GEMMs over the full score matrix plus separate softmax and dropout kernels that
    /// read and write it (Megatron-LM before 2023).
    Unfused,
}

/// One device's compute speeds.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    /// Dense peak for the math precision, FLOP/s.
    pub peak_flops_per_s: f64,
    /// Memory bandwidth, bytes/s.
    pub memory_bytes_per_s: f64,
    /// Bytes per activation element.
    pub activation_bytes: f64,
    pub efficiency: Efficiency,
}

/// GEMM tile sizes that shapes are rounded up to (wave/tile quantisation; NVIDIA "Matrix
/// Multiplication Background User's Guide", section "Tile quantization").
const TILE_MN: f64 = 128.0;
const TILE_K: f64 = 64.0;

fn round_up(x: f64, tile: f64) -> f64 {
    (x / tile).ceil() * tile
}

impl Device {
    /// Seconds of the attention projection GEMMs of one MLA layer for `tokens` rows, heads split
    /// over `tp`: the query through its low-rank compression where the model has one, the
    /// joint KV compression with the decoupled rope key, its up-projection to per-head keys
    /// and values, and the output projection (DeepSeek-AI 2024, DeepSeek-V2, section 2.1).
    pub fn mla_projections_s(&self, model: &Model, mla: &Mla, tokens: f64, tp: f64) -> f64 {
        let hidden = model.hidden as f64;
        let heads = model.heads as f64;
        let qk = (mla.qk_nope_head_dim + mla.qk_rope_head_dim) as f64;
        let q = match mla.q_lora_rank {
            Some(rank) => {
                self.gemm_s(tokens, rank as f64, hidden)
                    + self.gemm_s(tokens, heads * qk / tp, rank as f64)
            }
            None => self.gemm_s(tokens, heads * qk / tp, hidden),
        };
        let kv_rank = mla.kv_lora_rank as f64;
        let kv = self.gemm_s(tokens, kv_rank + mla.qk_rope_head_dim as f64, hidden)
            + self.gemm_s(
                tokens,
                heads * (mla.qk_nope_head_dim + mla.v_head_dim) as f64 / tp,
                kv_rank,
            );
        let out = self.gemm_s(tokens, hidden, heads * mla.v_head_dim as f64 / tp);
        q + kv + out
    }

    /// Seconds for an (m x k) by (k x n) GEMM: the roofline of its tile-quantised FLOPs at the
    /// achievable matmul rate and its operand and result bytes at the achievable bandwidth
    /// (Williams, Waterman and Patterson 2009), plus one launch.
    pub fn gemm_s(&self, m: f64, n: f64, k: f64) -> f64 {
        if m <= 0.0 || n <= 0.0 || k <= 0.0 {
            return 0.0;
        }
        let flops = 2.0 * round_up(m, TILE_MN) * round_up(n, TILE_MN) * round_up(k, TILE_K);
        let bytes = self.activation_bytes * (m * k + k * n + m * n);
        let depth = k / (k + self.efficiency.k0);
        let compute_s = flops / (self.peak_flops_per_s * self.efficiency.matmul * depth);
        let memory_s = bytes / (self.memory_bytes_per_s * self.efficiency.memory);
        compute_s.max(memory_s) + self.efficiency.kernel_overhead_s
    }

    /// Seconds for `kernels` memory-bound kernels moving `bytes` in total.
    pub fn stream_s(&self, bytes: f64, kernels: f64) -> f64 {
        bytes / (self.memory_bytes_per_s * self.efficiency.memory)
            + kernels * self.efficiency.kernel_overhead_s
    }
}

/// Seconds one device spends on one layer for one micro-batch, by kind of work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LayerTime {
    /// Weight GEMMs, forward.
    pub matmul_fwd_s: f64,
    /// Attention core (scores, softmax, weighted sum), forward.
    pub attention_fwd_s: f64,
    /// Attention core, backward.
    pub attention_bwd_s: f64,
    /// Norms, activations, residuals, dropout, rotary embedding, forward.
    pub elementwise_fwd_s: f64,
}

impl LayerTime {
    /// Forward seconds.
    pub fn forward_s(&self) -> f64 {
        self.matmul_fwd_s + self.attention_fwd_s + self.elementwise_fwd_s
    }

    /// Backward seconds: two GEMMs (input and weight gradient) per forward GEMM, and about
    /// twice the element-wise traffic.
    pub fn backward_s(&self) -> f64 {
        2.0 * self.matmul_fwd_s + self.attention_bwd_s + 2.0 * self.elementwise_fwd_s
    }
}

/// What shapes a layer's kernels see on one device.
pub struct LayerShape<'a> {
    pub model: &'a Model,
    pub layout: &'a Layout,
    pub seq_len: u64,
    pub attention: AttentionImpl,
    /// Whether this layer's feed-forward is a mixture of experts.
    pub moe: bool,
}

impl LayerShape<'_> {
    /// Tokens of one micro-batch on one device (the sequence is split over cp).
    pub fn tokens(&self) -> f64 {
        (self.layout.micro_batch as u64 * self.seq_len) as f64 / self.layout.cp as f64
    }

    /// Times of one layer's forward and backward kernels on `device`.
    pub fn time(&self, device: &Device) -> LayerTime {
        let model = self.model;
        let tp = self.layout.tp as f64;
        let tokens = self.tokens();
        let hidden = model.hidden as f64;
        let heads = model.heads as f64;
        let head_dim = model.head_dim() as f64;
        let kv_heads = model.kv_heads as f64;

        // Attention projections: Megatron splits heads over tp (column-parallel QKV,
        // row-parallel output; Shoeybi et al. 2019, section 3).
        let mut matmul_fwd_s = match &model.mla {
            Some(mla) => device.mla_projections_s(model, mla, tokens, tp),
            None => {
                let qkv_width = (heads + 2.0 * kv_heads) * head_dim / tp;
                device.gemm_s(tokens, qkv_width, hidden)
                    + device.gemm_s(tokens, hidden, heads * head_dim / tp)
            }
        };
        matmul_fwd_s += self.mlp_time(device, tokens);

        let (attention_fwd_s, attention_bwd_s, softmax_bytes) = self.attention_time(device);

        // Element-wise traffic per token, in activation elements, after Korthikanti et al. 2022
        // (section 4.1: two norms, two dropout+residual pairs, the MLP activation): each norm
        // reads and writes h; each dropout+residual reads 2h, writes h and a 1-byte mask;
        // GeLU reads and writes ffn, SwiGLU reads 2 ffn and writes ffn; RoPE rewrites q and k.
        // Without sequence parallelism the h-sized work is repeated on every tp rank.
        let sp_split = if self.layout.sequence_parallel {
            tp
        } else {
            1.0
        };
        let ffn = self.mlp_width();
        let mlp_act_elements = match model.mlp {
            suanli_catalog::Mlp::Gelu => 2.0 * ffn / tp,
            suanli_catalog::Mlp::Swiglu => 3.0 * ffn / tp,
        };
        let rope_elements = if model.mla.is_some() || model.mlp == suanli_catalog::Mlp::Swiglu {
            2.0 * (heads + kv_heads) * head_dim / tp
        } else {
            0.0
        };
        let elements_per_token = (4.0 + 7.0) * hidden / sp_split + mlp_act_elements + rope_elements;
        let elementwise_bytes = tokens * elements_per_token * device.activation_bytes
            + 2.0 * tokens * hidden / sp_split
            + softmax_bytes;
        let elementwise_fwd_s = device.stream_s(elementwise_bytes, 8.0);

        LayerTime {
            matmul_fwd_s,
            attention_fwd_s,
            attention_bwd_s,
            elementwise_fwd_s,
        }
    }

    /// Elements of the operands of one layer's forward weight GEMMs on one device: the
    /// activation input (tokens x k) and the weight shard (k x n) of every projection. Used for
    /// the on-the-fly quantisation pass of int8 training (see `train::quantisation_s`).
    pub fn weight_gemm_operand_elements(&self) -> f64 {
        let model = self.model;
        let tp = self.layout.tp as f64;
        let tokens = self.tokens();
        let hidden = model.hidden as f64;
        // Attention: the QKV input (h wide) and the output projection's input (heads x
        // head_dim / tp wide), and their weight shards.
        let attention_weights = model.attention_params() as f64 / tp;
        let q_width = model.heads as f64 * model.head_dim() as f64 / tp;
        let attention_inputs = tokens * (hidden + q_width);
        let (mlp_weights, mlp_inputs) = match (&model.moe, self.moe) {
            (Some(moe), true) => {
                let rows = tokens * (moe.top_k + moe.shared_experts) as f64;
                let local = moe.experts as f64 / self.layout.ep as f64 + moe.shared_experts as f64;
                (
                    local * model.expert_params() as f64 / tp,
                    rows * (hidden + moe.expert_ffn as f64 / tp),
                )
            }
            _ => (
                model.dense_mlp_params() as f64 / tp,
                tokens * (hidden + model.ffn as f64 / tp),
            ),
        };
        attention_weights + attention_inputs + mlp_weights + mlp_inputs
    }

    /// Intermediate width of the feed-forward that one token passes through.
    fn mlp_width(&self) -> f64 {
        match (&self.model.moe, self.moe) {
            (Some(moe), true) => ((moe.top_k + moe.shared_experts) as u64 * moe.expert_ffn) as f64,
            _ => self.model.ffn as f64,
        }
    }

    fn mlp_time(&self, device: &Device, tokens: f64) -> f64 {
        let model = self.model;
        let tp = self.layout.tp as f64;
        let hidden = model.hidden as f64;
        let up_matrices = (model.mlp.matrices() - 1) as f64;
        let ffn_pair = |rows: f64, ffn: f64| {
            device.gemm_s(rows, up_matrices * ffn / tp, hidden)
                + device.gemm_s(rows, hidden, ffn / tp)
        };
        match (&model.moe, self.moe) {
            (Some(moe), true) => {
                // Each device holds experts/ep experts; with balanced routing each sees
                // tokens x top_k x ep / experts rows (Lepikhin et al. 2020, GShard).
                let ep = self.layout.ep as f64;
                let local_experts = moe.experts as f64 / ep;
                let rows_per_expert = tokens * moe.top_k as f64 * ep / moe.experts as f64;
                let router = device.gemm_s(tokens, moe.experts as f64, hidden);
                let routed = local_experts * ffn_pair(rows_per_expert, moe.expert_ffn as f64);
                let shared = if moe.shared_experts > 0 {
                    ffn_pair(tokens, (moe.shared_experts as u64 * moe.expert_ffn) as f64)
                } else {
                    0.0
                };
                router + routed + shared
            }
            _ => ffn_pair(tokens, model.ffn as f64),
        }
    }

    /// Forward seconds, backward seconds and softmax bytes of the attention core.
    fn attention_time(&self, device: &Device) -> (f64, f64, f64) {
        let model = self.model;
        let layout = self.layout;
        let local_heads = model.heads as f64 / layout.tp as f64;
        let batch = layout.micro_batch as f64;
        let queries = self.seq_len as f64 / layout.cp as f64;
        let keys = self.seq_len as f64;
        let flops_full =
            batch * queries * crate::flops::attention_core_flops_per_token(model, self.seq_len)
                / layout.tp as f64;
        let rate = device.peak_flops_per_s * device.efficiency.matmul;
        match self.attention {
            AttentionImpl::Flash => {
                // Causal masking skips half the score blocks; the backward pass recomputes the
                // scores, 2.5x the forward FLOPs (Dao 2023, FlashAttention-2, section 3.1).
                // The fused kernel runs below GEMM efficiency (~70% of it, FlashAttention-2
                // Figure 5 vs cuBLAS).
                let forward = 0.5 * flops_full / (rate * device.efficiency.attention)
                    + device.efficiency.kernel_overhead_s;
                (forward, 2.5 * forward, 0.0)
            }
            AttentionImpl::Unfused => {
                let head_dim = model.head_dim() as f64;
                let bmm = local_heads
                    * batch
                    * (device.gemm_s(queries, keys, head_dim)
                        - device.efficiency.kernel_overhead_s)
                    + device.efficiency.kernel_overhead_s;
                let forward = 2.0 * bmm;
                // Fused scale-mask-softmax reads and writes the scores (2+2 bytes per element in
                // 16-bit), dropout reads them, writes them and a 1-byte mask (Korthikanti et al.
                // 2022, section 4.1: the 5 a s^2 b term).
                let scores = batch * local_heads * queries * keys;
                let softmax_bytes = scores * (2.0 * device.activation_bytes + 3.0 + 2.0);
                (forward, 2.0 * forward, softmax_bytes)
            }
        }
    }
}
