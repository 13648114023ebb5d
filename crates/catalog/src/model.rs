//! Transformer architectures and the parameter counts that follow from their shape.

use serde::{Deserialize, Serialize};

/// Feed-forward kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mlp {
    /// Two matrices, up and down (GPT, BLOOM, OPT).
    Gelu,
    /// Three matrices, gate, up and down (Llama, Qwen, Mistral, DeepSeek).
    Swiglu,
}

impl Mlp {
    /// Weight matrices of size hidden x ffn in one feed-forward block.
    pub fn matrices(self) -> u64 {
        match self {
            Mlp::Gelu => 2,
            Mlp::Swiglu => 3,
        }
    }
}

/// Mixture-of-experts shape of the feed-forward blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Moe {
    /// Routed experts per MoE layer.
    pub experts: u32,
    /// Routed experts each token visits.
    pub top_k: u32,
    /// Intermediate size of one expert.
    pub expert_ffn: u64,
    /// Experts every token visits (DeepSeek), same size as a routed expert.
    #[serde(default)]
    pub shared_experts: u32,
    /// The first layers that stay dense (use the model's `ffn`).
    #[serde(default)]
    pub dense_layers: u32,
}

/// Multi-head latent attention (DeepSeek-V2/V3): low-rank compressed KV.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mla {
    /// Rank of the query compression; `None` = full-rank queries.
    pub q_lora_rank: Option<u64>,
    /// Rank of the joint KV compression (what the KV cache stores).
    pub kv_lora_rank: u64,
    pub qk_nope_head_dim: u64,
    /// Decoupled rotary key dimension (also cached).
    pub qk_rope_head_dim: u64,
    pub v_head_dim: u64,
}

/// A decoder-only transformer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Catalog id: `llama-3.1-70b`.
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Display name.
    pub name: String,
    /// Total parameters as reported by the authors, billions (a cross-check).
    pub params_b_reported: Option<f64>,
    pub layers: u32,
    pub hidden: u64,
    pub heads: u32,
    /// Key/value heads: equal to `heads` for MHA, fewer for GQA, 1 for MQA.
    pub kv_heads: u32,
    /// Per-head dimension; `None` = hidden / heads.
    #[serde(default)]
    pub head_dim: Option<u64>,
    /// Dense feed-forward intermediate size.
    pub ffn: u64,
    pub vocab: u64,
    pub mlp: Mlp,
    /// Input embedding and output head share one matrix.
    #[serde(default)]
    pub tied_embeddings: bool,
    /// Longest context the model was trained for.
    #[serde(default)]
    pub max_seq_len: Option<u64>,
    /// Learned absolute position embeddings (GPT-2/3, OPT, Megatron-LM GPT): a further
    /// `max_seq_len x hidden` parameters. Rotary (Llama) and ALiBi (BLOOM) models have none.
    #[serde(default)]
    pub learned_positions: bool,
    #[serde(default)]
    pub moe: Option<Moe>,
    #[serde(default)]
    pub mla: Option<Mla>,
    /// Where the shape comes from (paper, model card, config.json).
    #[serde(default)]
    pub source: String,
}

/// Largest sizes a model may state; far above any published model, small enough that the
/// parameter counts (u64) and the layout search stay finite and fast.
pub mod bounds {
    pub const LAYERS: u64 = 10_000;
    pub const HIDDEN: u64 = 1 << 20;
    pub const HEADS: u64 = 1 << 14;
    pub const HEAD_DIM: u64 = 1 << 16;
    pub const FFN: u64 = 1 << 24;
    pub const VOCAB: u64 = 1 << 24;
    pub const SEQ_LEN: u64 = 1 << 28;
    pub const EXPERTS: u64 = 1 << 16;
    pub const LORA_RANK: u64 = 1 << 20;
    /// Parameters in all (10^15, some 500 times the largest published model).
    pub const PARAMS: f64 = 1e15;
}

/// Why a model's shape is refused, in one line naming the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("`id` is empty")]
    EmptyId,
    #[error("`{field}` is {value}; it must be between 1 and {max}")]
    OutOfRange {
        field: &'static str,
        value: u64,
        max: u64,
    },
    #[error("`kv_heads` ({kv_heads}) must divide `heads` ({heads})")]
    KvHeadsNotDivisor { kv_heads: u32, heads: u32 },
    #[error("`hidden` ({hidden}) is smaller than `heads` ({heads}); give `head_dim`")]
    HeadDimNeeded { hidden: u64, heads: u32 },
    #[error(
        "`moe.shared_experts` ({shared_experts}) must be at most {max} and `moe.dense_layers` ({dense_layers}) at most `layers` ({layers})"
    )]
    MoeLayers {
        shared_experts: u32,
        max: u64,
        dense_layers: u32,
        layers: u32,
    },
    #[error("`params_b_reported` is {0}; it must be a positive number")]
    ParamsReported(f64),
    #[error("the shape gives about {params:.2e} parameters; at most {max:.0e} are supported")]
    TooManyParameters { params: f64, max: f64 },
}

/// `value` is within `1..=max`, else the error naming the field.
fn in_range(field: &'static str, value: u64, max: u64) -> Result<(), ModelError> {
    if value == 0 || value > max {
        return Err(ModelError::OutOfRange { field, value, max });
    }
    Ok(())
}

impl Model {
    /// Checks the shape makes sense (every size positive and within `bounds`, `kv_heads`
    /// divides `heads`, `top_k` at most `experts`, ...), so no later formula divides by zero,
    /// overflows or searches forever. The error is one line naming the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.id.trim().is_empty() {
            return Err(ModelError::EmptyId);
        }
        in_range("layers", self.layers.into(), bounds::LAYERS)?;
        in_range("hidden", self.hidden, bounds::HIDDEN)?;
        in_range("heads", self.heads.into(), bounds::HEADS)?;
        in_range("kv_heads", self.kv_heads.into(), self.heads.into())?;
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(ModelError::KvHeadsNotDivisor {
                kv_heads: self.kv_heads,
                heads: self.heads,
            });
        }
        match self.head_dim {
            Some(dim) => in_range("head_dim", dim, bounds::HEAD_DIM)?,
            None if self.hidden < self.heads as u64 => {
                return Err(ModelError::HeadDimNeeded {
                    hidden: self.hidden,
                    heads: self.heads,
                });
            }
            None => {}
        }
        in_range("ffn", self.ffn, bounds::FFN)?;
        in_range("vocab", self.vocab, bounds::VOCAB)?;
        if let Some(seq) = self.max_seq_len {
            in_range("max_seq_len", seq, bounds::SEQ_LEN)?;
        }
        if let Some(moe) = &self.moe {
            in_range("moe.experts", moe.experts.into(), bounds::EXPERTS)?;
            in_range("moe.top_k", moe.top_k.into(), moe.experts.into())?;
            in_range("moe.expert_ffn", moe.expert_ffn, bounds::FFN)?;
            if moe.shared_experts as u64 > bounds::EXPERTS || moe.dense_layers > self.layers {
                return Err(ModelError::MoeLayers {
                    shared_experts: moe.shared_experts,
                    max: bounds::EXPERTS,
                    dense_layers: moe.dense_layers,
                    layers: self.layers,
                });
            }
        }
        if let Some(mla) = &self.mla {
            if let Some(rank) = mla.q_lora_rank {
                in_range("mla.q_lora_rank", rank, bounds::LORA_RANK)?;
            }
            in_range("mla.kv_lora_rank", mla.kv_lora_rank, bounds::LORA_RANK)?;
            in_range(
                "mla.qk_nope_head_dim",
                mla.qk_nope_head_dim,
                bounds::HEAD_DIM,
            )?;
            in_range(
                "mla.qk_rope_head_dim",
                mla.qk_rope_head_dim,
                bounds::HEAD_DIM,
            )?;
            in_range("mla.v_head_dim", mla.v_head_dim, bounds::HEAD_DIM)?;
        }
        if let Some(b) = self.params_b_reported
            && !(b.is_finite() && b > 0.0)
        {
            return Err(ModelError::ParamsReported(b));
        }
        let params = self.params_upper_bound();
        if params > bounds::PARAMS {
            return Err(ModelError::TooManyParameters {
                params,
                max: bounds::PARAMS,
            });
        }
        Ok(())
    }

    /// The parameter count in f64 (the same formulas as `total_params`, which cannot overflow
    /// here), so a huge shape is refused before any u64 arithmetic overflows.
    fn params_upper_bound(&self) -> f64 {
        let h = self.hidden as f64;
        let heads = self.heads as f64;
        let attention = match &self.mla {
            Some(mla) => {
                let (nope, rope, v) = (
                    mla.qk_nope_head_dim as f64,
                    mla.qk_rope_head_dim as f64,
                    mla.v_head_dim as f64,
                );
                let rank = mla.kv_lora_rank as f64;
                let q = match mla.q_lora_rank {
                    Some(q_rank) => h * q_rank as f64 + q_rank as f64 * heads * (nope + rope),
                    None => h * heads * (nope + rope),
                };
                q + h * (rank + rope) + rank * heads * (nope + v) + heads * v * h
            }
            None => {
                let d = self
                    .head_dim
                    .unwrap_or(self.hidden / self.heads.max(1) as u64)
                    as f64;
                2.0 * h * heads * d + 2.0 * h * self.kv_heads as f64 * d
            }
        };
        let matrices = self.mlp.matrices() as f64;
        let dense = matrices * h * self.ffn as f64;
        let experts = self.moe.as_ref().map_or(0.0, |moe| {
            let count = (moe.experts + moe.shared_experts) as f64;
            count * matrices * h * moe.expert_ffn as f64 + h * moe.experts as f64
        });
        let positions = self.max_seq_len.unwrap_or(0) as f64 * h;
        self.layers as f64 * (attention + dense.max(experts))
            + 2.0 * self.vocab as f64 * h
            + positions
    }

    /// Per-head dimension.
    pub fn head_dim(&self) -> u64 {
        self.head_dim.unwrap_or(self.hidden / self.heads as u64)
    }

    /// Attention kind as a word: "mha", "gqa", "mqa" or "mla".
    pub fn attention_kind(&self) -> &'static str {
        if self.mla.is_some() {
            "mla"
        } else if self.kv_heads == self.heads {
            "mha"
        } else if self.kv_heads == 1 {
            "mqa"
        } else {
            "gqa"
        }
    }

    /// Number of layers whose feed-forward is a mixture of experts.
    pub fn moe_layers(&self) -> u32 {
        match &self.moe {
            Some(moe) => self.layers.saturating_sub(moe.dense_layers),
            None => 0,
        }
    }

    /// Parameters of one attention block (projections only, no norms).
    pub fn attention_params(&self) -> u64 {
        let h = self.hidden;
        let heads = self.heads as u64;
        match &self.mla {
            Some(mla) => {
                let qk_head = mla.qk_nope_head_dim + mla.qk_rope_head_dim;
                let q = match mla.q_lora_rank {
                    Some(rank) => h * rank + rank * heads * qk_head,
                    None => h * heads * qk_head,
                };
                let kv_down = h * (mla.kv_lora_rank + mla.qk_rope_head_dim);
                let kv_up = mla.kv_lora_rank * heads * (mla.qk_nope_head_dim + mla.v_head_dim);
                let out = heads * mla.v_head_dim * h;
                q + kv_down + kv_up + out
            }
            None => {
                let d = self.head_dim();
                let q_and_out = 2 * h * heads * d;
                let k_and_v = 2 * h * self.kv_heads as u64 * d;
                q_and_out + k_and_v
            }
        }
    }

    /// Parameters of one dense feed-forward block.
    pub fn dense_mlp_params(&self) -> u64 {
        self.mlp.matrices() * self.hidden * self.ffn
    }

    /// Parameters of one expert.
    pub fn expert_params(&self) -> u64 {
        match &self.moe {
            Some(moe) => self.mlp.matrices() * self.hidden * moe.expert_ffn,
            None => 0,
        }
    }

    /// Embedding plus output head parameters, and learned position embeddings if any.
    pub fn embedding_params(&self) -> u64 {
        let one = self.vocab * self.hidden;
        let token_and_head = if self.tied_embeddings { one } else { 2 * one };
        token_and_head + self.position_embedding_params()
    }

    /// Learned absolute position embedding parameters (zero for rotary or ALiBi models).
    pub fn position_embedding_params(&self) -> u64 {
        match (self.learned_positions, self.max_seq_len) {
            (true, Some(seq_len)) => seq_len * self.hidden,
            _ => 0,
        }
    }

    /// Total parameters (all experts).
    pub fn total_params(&self) -> u64 {
        self.params_with_experts(|moe| (moe.experts + moe.shared_experts) as u64)
    }

    /// Parameters a single token touches (top-k routed plus shared experts).
    pub fn active_params(&self) -> u64 {
        self.params_with_experts(|moe| (moe.top_k + moe.shared_experts) as u64)
    }

    fn params_with_experts(&self, experts_counted: impl Fn(&Moe) -> u64) -> u64 {
        let norms_per_layer = 2 * self.hidden;
        let layers = self.layers as u64;
        let moe_layers = self.moe_layers() as u64;
        let dense_layers = layers - moe_layers;
        let mut total = layers * (self.attention_params() + norms_per_layer)
            + dense_layers * self.dense_mlp_params()
            + self.embedding_params()
            + self.hidden;
        if let Some(moe) = &self.moe {
            let router = self.hidden * moe.experts as u64;
            total += moe_layers * (experts_counted(moe) * self.expert_params() + router);
        }
        total
    }
}
