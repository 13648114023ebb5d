//! Turning a training goal (model, tokens) into a rate per accelerator type, for the scheduler.

use suanli_catalog::{Accelerator, Model, Precision};

/// Training tokens per second that `count` accelerators of one type reach on `model`, with the
/// best layout the planner finds; `None` when the model cannot be trained on them at all.
pub fn best_training_tokens_per_s(
    model: &Model,
    accelerator: &Accelerator,
    count: u32,
) -> Option<f64> {
    // Provisional: 6 N FLOPs per token (Kaplan et al. 2020, eq. 2.1) at 40% of dense bf16 peak,
    // until the layout search lands and this calls it.
    let peak = accelerator.peak_flops_per_s(Precision::Bf16)?;
    let flops_per_token = 6.0 * model.active_params() as f64;
    Some(count as f64 * peak * 0.4 / flops_per_token)
}
