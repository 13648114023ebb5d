//! LoRA fine-tuning: frozen base weights with low-rank adapters (Hu et al. 2021, "LoRA: Low-Rank
//! Adaptation of Large Language Models", arXiv 2106.09685).
//!
//! Only the adapters get gradients and optimizer state; the backward pass still computes the
//! input gradient of every frozen GEMM (to reach the adapters below it) but skips its weight
//! gradient, so a frozen layer costs forward + one backward GEMM instead of forward + two.

use crate::kernels::Device;
use serde::Serialize;
use suanli_catalog::{Model, Precision};

/// What a training job updates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Workload {
    /// Every weight trains (pre-training or full fine-tuning).
    #[default]
    Pretrain,
    /// Base weights frozen; rank-`rank` adapters on the attention projections.
    Lora { rank: u32 },
}

/// Why a workload and rank do not go together.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WorkloadError {
    #[error("lora_rank is only for workload `lora`")]
    RankWithoutLora,
    #[error("lora rank {0} is not in 1..={MAX_LORA_RANK}")]
    RankOutOfRange(u32),
    #[error("workload `lora` needs a lora rank (e.g. 16)")]
    MissingRank,
    #[error("unknown workload `{0}`; expected pretrain or lora")]
    Unknown(String),
}

/// The largest adapter rank accepted (far above the 8-256 used in practice).
pub const MAX_LORA_RANK: u32 = 65536;

impl Workload {
    /// Parses the `workload` column / `--workload` flag with its `lora_rank`.
    pub fn parse(kind: Option<&str>, rank: Option<u32>) -> Result<Workload, WorkloadError> {
        match (kind.unwrap_or("pretrain"), rank) {
            ("pretrain" | "", None) => Ok(Workload::Pretrain),
            ("pretrain" | "", Some(_)) => Err(WorkloadError::RankWithoutLora),
            ("lora", Some(rank)) if (1..=MAX_LORA_RANK).contains(&rank) => {
                Ok(Workload::Lora { rank })
            }
            ("lora", Some(rank)) => Err(WorkloadError::RankOutOfRange(rank)),
            ("lora", None) => Err(WorkloadError::MissingRank),
            (other, _) => Err(WorkloadError::Unknown(other.to_string())),
        }
    }

    /// The adapter rank, if any.
    pub fn lora_rank(&self) -> Option<u32> {
        match self {
            Workload::Pretrain => None,
            Workload::Lora { rank } => Some(*rank),
        }
    }
}

/// The adapted matrices of one layer as (d_in, d_out): the fused qkv projection and the output
/// projection, as MLPerf's llama2_70b_lora reference (`target_modules = qkv_proj, o_proj`).
fn adapted_matrices(model: &Model) -> [(f64, f64); 2] {
    let hidden = model.hidden as f64;
    let head_dim = model.head_dim() as f64;
    let q_width = model.heads as f64 * head_dim;
    let qkv_width = q_width + 2.0 * model.kv_heads as f64 * head_dim;
    [(hidden, qkv_width), (q_width, hidden)]
}

/// Adapter parameters of one layer: r (d_in + d_out) per adapted matrix (Hu et al. 2021, sec. 4.1).
pub fn adapter_params_per_layer(model: &Model, rank: u32) -> f64 {
    adapted_matrices(model)
        .iter()
        .map(|(d_in, d_out)| rank as f64 * (d_in + d_out))
        .sum()
}

/// Forward seconds of one layer's adapters on one device: x A (tokens x r by d_in) then (x A) B,
/// with the output split over `tp` like the matrix it adapts.
pub fn adapter_forward_s(device: &Device, model: &Model, rank: u32, tokens: f64, tp: f64) -> f64 {
    adapted_matrices(model)
        .iter()
        .map(|(d_in, d_out)| {
            device.gemm_s(tokens, rank as f64, *d_in / tp)
                + device.gemm_s(tokens, d_out / tp, rank as f64)
        })
        .sum()
}

/// Bytes per frozen base weight: 8-bit runs keep the frozen weights in 8 bits (no master copy
/// is needed for weights that never update; NVIDIA's and AMD's MLPerf LoRA submissions store
/// them in fp8), 16-bit runs in 16 bits.
pub fn frozen_weight_bytes(precision: Precision) -> f64 {
    match precision {
        Precision::Fp32 => 4.0,
        Precision::Fp8 | Precision::Int8 => 1.0,
        Precision::Fp4 | Precision::Int4 => 0.5,
        _ => 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama2_70b_rank_16_adapters_match_the_mlperf_count() {
        // MLPerf llama2_70b_lora: rank 16 on qkv_proj (8192 -> 8192 + 2 x 1024) and o_proj
        // (8192 -> 8192) of 80 layers, counted by hand: 16 x (18432 + 16384) x 80 = 44,564,480.
        let model = suanli_catalog::Catalog::builtin()
            .model("llama-2-70b")
            .unwrap()
            .clone();
        let total = adapter_params_per_layer(&model, 16) * model.layers as f64;
        assert!((total - 44_564_480.0).abs() < 1.0, "{total}");
    }

    #[test]
    fn workload_parsing_rejects_nonsense() {
        assert_eq!(Workload::parse(None, None), Ok(Workload::Pretrain));
        assert_eq!(
            Workload::parse(Some("lora"), Some(16)),
            Ok(Workload::Lora { rank: 16 })
        );
        assert_eq!(
            Workload::parse(Some("lora"), None),
            Err(WorkloadError::MissingRank)
        );
        assert_eq!(
            Workload::parse(Some("lora"), Some(0)),
            Err(WorkloadError::RankOutOfRange(0))
        );
        assert_eq!(
            Workload::parse(Some("dpo"), None),
            Err(WorkloadError::Unknown("dpo".into()))
        );
        assert_eq!(
            Workload::parse(Some("pretrain"), Some(8)),
            Err(WorkloadError::RankWithoutLora)
        );
    }
}
