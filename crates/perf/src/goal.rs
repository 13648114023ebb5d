//! Turning a training goal (model, tokens) into a rate per accelerator type, for the scheduler.

use crate::search::{self, Constraints};
use crate::train::TrainSetup;
use suanli_catalog::{Accelerator, Model};

/// A model-plus-token goal as the scheduler's rates: for a gang of `gang_size` accelerators of
/// each type, the training tokens per second of [`best_training_tokens_per_s`], keyed by type id;
/// types the model cannot train on are left out. The scheduler's `Work` is then
/// `{ total_units: tokens, units_per_s: token_goal_rates(..) }` (this adapter lives here so that
/// `suanli-sched` depends on nothing but itself).
pub fn token_goal_rates(
    model: &Model,
    accelerators: &[&Accelerator],
    gang_size: u32,
) -> std::collections::BTreeMap<String, f64> {
    accelerators
        .iter()
        .filter_map(|a| {
            best_training_tokens_per_s(model, a, gang_size).map(|rate| (a.id.clone(), rate))
        })
        .filter(|(_, rate)| *rate > 0.0)
        .collect()
}

/// Training tokens per second that `count` accelerators of one type reach on `model` with the
/// best layout the planner finds (bf16, 4096-token sequences, the default global batch of
/// [`default_global_batch`] moved to the nearest size a layout divides, as `suanli plan train`
/// does); `None` when the model cannot be trained on them.
pub fn best_training_tokens_per_s(
    model: &Model,
    accelerator: &Accelerator,
    count: u32,
) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let mut setup = TrainSetup::new(model.clone(), accelerator.clone(), count as u64);
    setup.per_node = setup.per_node.min(count);
    setup.global_batch = default_global_batch(model, count as u64, setup.seq_len).sequences;
    let constraints = Constraints::default();
    if search::candidates(&setup, &constraints).is_empty() {
        setup.global_batch = search::nearest_valid_global_batch(&setup, &constraints)?;
    }
    let found = search::search(&setup, &constraints, 1).ok()?;
    found.top.first().map(|best| best.tokens_per_s)
}

/// Published batch sizes in tokens per optimizer step, by total parameter count: the final
/// (post-ramp) batch each run trained at.
/// - GPT-3 125M, 1.3B, 6.7B, 175B: 0.5M, 1M, 2M, 3.2M tokens (Brown et al. 2020, Table 2.1);
/// - Gopher 280B: 6M tokens after a 3M ramp (Rae et al. 2021, section 3 and Table 1);
/// - Llama 3 405B: 16M tokens (2048 x 8192) after 4M and 8M stages (Dubey et al. 2024,
///   section 3.4.1);
/// - DeepSeek-V3 671B: 15360 x 4096 = 62.9M tokens after a ramp from 3072 sequences
///   (DeepSeek-AI 2024, section 4.2).
pub const PUBLISHED_BATCH_TOKENS: [(f64, f64); 7] = [
    (1.25e8, 0.5e6),
    (1.3e9, 1.0e6),
    (6.7e9, 2.0e6),
    (1.75e11, 3.2e6),
    (2.8e11, 6.0e6),
    (4.05e11, 16_777_216.0),
    (6.71e11, 62_914_560.0),
];

/// A default global batch and why it was chosen.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DefaultBatch {
    /// Sequences per optimizer step.
    pub sequences: u64,
    /// Tokens per optimizer step.
    pub tokens: u64,
    /// One line saying where it comes from.
    pub reason: String,
}

/// `n` rounded to its four leading binary digits (2059 -> 2048, 15360 stays): batches are
/// chosen as round numbers, which many data-parallel sizes divide.
fn round_to_four_bits(n: u64) -> u64 {
    let bits = 64 - n.leading_zeros();
    if bits <= 4 {
        return n;
    }
    let step = 1u64 << (bits - 4);
    ((n + step / 2) / step * step).max(1)
}

/// Tokens per step the published runs used at `params`: log-log interpolation between the
/// neighbouring entries of `anchors` (sorted by parameters), flat beyond the ends.
pub fn batch_tokens_for_params(params: f64, anchors: &[(f64, f64)]) -> f64 {
    let (Some(first), Some(last)) = (anchors.first(), anchors.last()) else {
        return 4.0e6;
    };
    if params <= first.0 {
        return first.1;
    }
    if params >= last.0 {
        return last.1;
    }
    let upper = anchors
        .iter()
        .position(|a| a.0 >= params)
        .unwrap_or(0)
        .max(1);
    let (lo, hi) = (anchors[upper - 1], anchors[upper]);
    let t = (params.ln() - lo.0.ln()) / (hi.0.ln() - lo.0.ln());
    (lo.1.ln() + t * (hi.1.ln() - lo.1.ln())).exp()
}

/// The default global batch for `model` on `count` accelerators at `seq_len`: the published
/// batch for a model of its size ([`PUBLISHED_BATCH_TOKENS`]), and at least one sequence per
/// eight accelerators (one per 8-way tensor-parallel group, as Llama 3 405B ran 2048 sequences
/// on 16,384 H100) so a large cluster is not starved, rounded to a whole number of sequences.
pub fn default_global_batch(model: &Model, count: u64, seq_len: u64) -> DefaultBatch {
    let params = model.total_params() as f64;
    let by_size = batch_tokens_for_params(params, &PUBLISHED_BATCH_TOKENS);
    let seq = seq_len.max(1);
    let by_size_seqs = round_to_four_bits((by_size / seq as f64).round().max(1.0) as u64);
    let by_cluster_seqs = count.div_ceil(8).max(1);
    let sequences = by_size_seqs.max(by_cluster_seqs);
    let why = if by_cluster_seqs > by_size_seqs {
        format!("one sequence per 8 of the {count} accelerators")
    } else {
        format!(
            "published batches for a {:.0}B-parameter model (GPT-3, Gopher, Llama 3, DeepSeek-V3)",
            params / 1e9
        )
    };
    DefaultBatch {
        sequences,
        tokens: sequences * seq,
        reason: why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_passes_through_the_anchors_and_stays_flat_outside() {
        let a = &PUBLISHED_BATCH_TOKENS;
        assert!((batch_tokens_for_params(1.75e11, a) - 3.2e6).abs() < 1.0);
        assert_eq!(batch_tokens_for_params(1e6, a), 0.5e6);
        assert_eq!(batch_tokens_for_params(1e13, a), 62_914_560.0);
        assert_eq!(round_to_four_bits(2059), 2048);
        assert_eq!(round_to_four_bits(15_360), 15_360);
        assert_eq!(round_to_four_bits(9), 9);
        // GPT-3 2.7B ran 1M tokens, between the 1.3B (1M) and 6.7B (2M) anchors.
        let b = batch_tokens_for_params(2.7e9, a);
        assert!((1.0e6..=2.0e6).contains(&b), "{b}");
    }

    #[test]
    fn leaving_a_run_out_still_predicts_its_published_range() {
        // Without its own entry, each flagship's default falls inside the batch range its run
        // published (ramp start to final): Llama 3 405B 4M-16.8M, DeepSeek-V3 12.6M-62.9M.
        let without = |params: f64| -> Vec<(f64, f64)> {
            PUBLISHED_BATCH_TOKENS
                .iter()
                .copied()
                .filter(|a| a.0 != params)
                .collect()
        };
        let llama = batch_tokens_for_params(4.05e11, &without(4.05e11));
        assert!((4.0e6..=16_777_216.0).contains(&llama), "{llama}");
        let deepseek = batch_tokens_for_params(6.71e11, &without(6.71e11));
        assert!(
            (12_582_912.0..=62_914_560.0).contains(&deepseek),
            "{deepseek}"
        );
    }
}
