//! Plans that compute but are probably not what the user meant: one warning line each.

use suanli_perf::layout::Layout;
use suanli_perf::train::TrainSetup;

/// Tokens per optimizer step above which `--global-batch` was surely given in tokens: ten times
/// the largest published batch (Llama 3 405B, 16M tokens; Dubey et al. 2024, section 3.4).
const MAX_TOKENS_PER_STEP: f64 = 1.6e8;

/// Refuses a global batch that only makes sense read as tokens.
pub fn check_batch(setup: &TrainSetup) -> anyhow::Result<()> {
    let tokens = setup.global_batch as f64 * setup.seq_len as f64;
    if tokens > MAX_TOKENS_PER_STEP {
        anyhow::bail!(
            "--global-batch {} sequences x seq-len {} is {:.3e} tokens per step, ten times the largest published batch; \
             for a batch of 4M tokens write --global-batch 4M (tokens) or --global-batch-seqs {}",
            setup.global_batch,
            setup.seq_len,
            tokens,
            (4_194_304 / setup.seq_len).max(1)
        );
    }
    Ok(())
}

/// Warnings about the sequence length against the model's context.
pub fn setup_warnings(setup: &TrainSetup) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(context) = setup.model.max_seq_len.filter(|&c| setup.seq_len > c) {
        warnings.push(format!(
            "seq-len {} is beyond {}'s context of {context} tokens; its position encoding was not trained that far (use --seq-len {context} or less)",
            setup.seq_len, setup.model.name
        ));
    }
    warnings
}

/// Warnings about an explicit layout the estimate accepts but a user would not want.
pub fn layout_warnings(setup: &TrainSetup, layout: &Layout) -> Vec<String> {
    let mut warnings = Vec::new();
    let layers = setup.model.layers;
    let stages = layout.pp * layout.vpp.max(1);
    if layout.pp > 1 && !layers.is_multiple_of(stages) {
        let split = if layout.vpp > 1 {
            format!("pp={} x vpp={}", layout.pp, layout.vpp)
        } else {
            format!("pp={}", layout.pp)
        };
        warnings.push(format!(
            "{split} does not divide {layers} layers: stages are uneven and the fullest one sets the pace (use a pp that divides {layers})"
        ));
    }
    if layout.tp > setup.per_node {
        warnings.push(format!(
            "tp={} spans {} nodes of {}: tensor-parallel traffic crosses the scale-out network in every layer (keep tp <= {})",
            layout.tp,
            layout.tp.div_ceil(setup.per_node),
            setup.per_node,
            setup.per_node
        ));
    }
    warnings
}
